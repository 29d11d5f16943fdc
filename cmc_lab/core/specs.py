"""Instrument and venue specifications, loaded from TOML data files users can extend."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cmc_lab.core.calendar import CalendarError, TradingCalendar, calendar_from_table
from cmc_lab.core.fee_table import check_fees, fee_entry
from cmc_lab.core.fees import FeeEntry, FeeSchedule, fee_schedule
from cmc_lab.core.hours import SessionWindow, TradingHours
from cmc_lab.core.ids import unknown_instrument_message
from cmc_lab.core.instruments import Instrument, MarginKind
from cmc_lab.core.months import (
    ContractError,
    ContractRule,
    contract_instrument,
    load_contract_rules,
    parse_contract_id,
)
from cmc_lab.core.spec_fields import SpecError
from cmc_lab.core.spec_fields import decimal_field as _decimal
from cmc_lab.core.spec_fields import read_toml as _read
from cmc_lab.core.spec_fields import require as _require
from cmc_lab.core.spec_fields import table as _table
from cmc_lab.core.spec_fields import tables as _tables
from cmc_lab.core.terms import SHIPPED_TERMS, ImportTerms, terms_from_table

SHIPPED = Path(__file__).with_name("instruments.toml")
#: The shipped fee schedule, read after the instruments file (``[[fee]]`` entries, see the file).
SHIPPED_FEES = Path(__file__).with_name("fees.toml")
#: The shipped exchange calendars (``[calendars.X]`` tables, see the file), read after the fees.
SHIPPED_CALENDARS = Path(__file__).with_name("calendars.toml")
ENV_VAR = "CMC_LAB_INSTRUMENTS"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """A venue's region, the account that trades on it and its one-way latency range."""

    name: str
    region: str  # "domestic" or "overseas"
    account: str
    latency_ms: tuple[float, float]
    offsets: bool = False  # keeps long and short apart: orders say open, close today or close yesterday


#: Currencies an account may hold: the ones the FX conversion knows (CNY and CNH count as one money).
ACCOUNT_CURRENCIES = ("CNY", "CNH", "USD")


#: How a broker decides an account is in margin call: China's futures brokers on the risk degree
#: (margin held over equity reaching ``call_level``, 100 %); CME clearing firms when equity falls
#: below the maintenance margin.
MARGIN_CALL_RULES = ("risk_degree", "maintenance")


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """A trading account at a broker: its currency, its starting cash (exact) and its broker's margin terms.

    ``margin_call`` names the broker's rule (:data:`MARGIN_CALL_RULES`) and ``call_level`` where the
    risk degree calls (1 = 100 %). ``broker_add_on`` is what the broker charges over the exchange's
    margin: percentage points on a percent rate (0.03: 17 % -> 20 %), a share on a per-lot rate.
    ``hedge`` marks an account trading under a hedge code (the instruments' ``hedge_rate``).
    """

    name: str
    currency: str
    cash: Decimal
    margin_call: str = "maintenance"
    call_level: Decimal = Decimal(1)
    broker_add_on: Decimal = Decimal(0)
    hedge: bool = False


@dataclass(frozen=True, slots=True)
class CapitalSpec:
    """How capital is counted: the base currency of the unified view, margin and transfer defaults.

    ``maintenance_ratio`` is maintenance margin as a share of initial margin, for instruments whose
    ``margin`` table gives no ``maintenance``. ``transfer_delay_s`` is how long a transfer between
    accounts of different currencies (a cross-border wire) stays in transit; a transfer between
    accounts of the same currency arrives at once.
    """

    base_currency: str = "CNY"
    maintenance_ratio: Decimal = Decimal("0.8")
    transfer_delay_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Specs:
    instruments: dict[str, Instrument]
    venues: dict[str, VenueSpec]
    accounts: dict[str, AccountSpec] = field(default_factory=dict)
    capital: CapitalSpec = CapitalSpec()
    #: instrument id -> maintenance margin as a share of initial (from ``margin = { maintenance = ... }``)
    maintenance: dict[str, Decimal] = field(default_factory=dict)
    #: instrument id -> the margin rate of a hedge account (from ``margin = { hedge_rate = ... }``)
    hedge_margin: dict[str, Decimal] = field(default_factory=dict)
    #: dated trading fees per instrument (``[[fee]]`` entries of ``fees.toml`` and any extra file)
    fees: FeeSchedule = field(default_factory=lambda: FeeSchedule({}))
    #: exchange calendars by name (``[calendars.X]`` of ``calendars.toml`` and any extra file)
    calendars: dict[str, TradingCalendar] = field(default_factory=dict)
    #: (domestic id, overseas id) -> VAT, premium and FX rate that land the overseas price (``terms.toml``)
    import_terms: dict[tuple[str, str], ImportTerms] = field(default_factory=dict)
    #: product id -> its contract months' rules (``contracts.toml`` and ``[contracts.X]`` of any extra file)
    contracts: dict[str, ContractRule] = field(default_factory=dict)
    #: product id -> the contract id it stands for (its main month), once months are listed (core/listing.py)
    aliases: dict[str, str] = field(default_factory=dict)
    #: the product instruments months were listed from (empty while ``instruments`` are the products)
    products: dict[str, Instrument] = field(default_factory=dict)

    def instrument(self, instrument_id: str) -> Instrument:
        """The instrument of an id; a product with listed months (``SHFE.au``) is its main month, and
        a month not listed here (an old position's, a far one) is worked out from its product's rules."""
        found = None
        if isinstance(instrument_id, str):
            found = self.instruments.get(self.aliases.get(instrument_id, instrument_id))
            found = found or self._contract(instrument_id)
        if found is None:
            raise KeyError(unknown_instrument_message(instrument_id, [*self.instruments, *self.aliases]))
        return found

    def recorded(self, instrument_id: str) -> Instrument | None:
        """The instrument a journal row names, exactly: a listed one, a product as journals written
        before months were listed name it, or a month no longer listed (an old position's); None if
        no spec knows it."""
        found = self.instruments.get(instrument_id) or self.products.get(instrument_id)
        if found is None and isinstance(instrument_id, str):
            try:
                found = self._contract(instrument_id)
            except KeyError:
                return None
        return found if found is not None and found.id == instrument_id else None

    def _contract(self, instrument_id: str) -> Instrument | None:
        try:
            parsed = parse_contract_id(instrument_id, self.contracts)
        except ContractError as exc:
            raise KeyError(f"unknown instrument {exc}") from None
        if parsed is None:
            return None
        product, rule = (self.products or self.instruments).get(parsed[0]), self.contracts[parsed[0]]
        calendar = self.calendars.get(rule.calendar)
        return (
            None
            if product is None or calendar is None
            else contract_instrument(product, rule, parsed[1], calendar)
        )


def load_specs(extra: str | Path | Iterable[str | Path] | None = None) -> Specs:
    """Read the shipped specs, then each extra file (and ``$CMC_LAB_INSTRUMENTS``) over them.

    The shipped fee schedule (``fees.toml``) and exchange calendars (``calendars.toml``) are read
    right after the shipped instruments. A later file's ``[[instrument]]`` with the same venue and
    symbol replaces the earlier one, a later ``[[fee]]`` with the same instrument and ``as_of`` the
    earlier one; a later ``[calendars.X]`` replaces the keys it gives and adds its ``closed`` and
    ``early_close`` entries to X's;
    a later ``[sessions.X]``, ``[venues.X]`` or ``[accounts.X]`` replaces X, shipped or not; keys
    of a later ``[capital]`` table replace the earlier ones.

    Examples
    --------
    >>> specs = load_specs()
    >>> specs.instrument("SHFE.au").tick
    Decimal('0.02')
    """
    paths: list[Path] = [SHIPPED, SHIPPED_FEES, SHIPPED_CALENDARS, SHIPPED_TERMS]
    env = os.environ.get(ENV_VAR)
    if env:
        paths += [Path(p) for p in env.split(os.pathsep) if p]
    if isinstance(extra, str | Path):
        paths.append(Path(extra))
    elif extra is not None:
        paths += [Path(p) for p in extra]

    # Two passes: sessions and venues from every file first, so that a later file's
    # [sessions.X] also applies to the instruments an earlier file defines on X.
    raw_sessions: dict[str, tuple[dict[str, Any], str]] = {}
    raw_calendars: dict[str, list[tuple[dict[str, Any], str]]] = {}
    venues: dict[str, VenueSpec] = {}
    accounts: dict[str, AccountSpec] = {}
    capital: dict[str, Any] = {}
    raw_instruments: list[tuple[dict[str, Any], str]] = []
    fees: list[tuple[FeeEntry, str]] = []
    terms: dict[tuple[str, str], ImportTerms] = {}
    for path in paths:
        data = _read(path)
        for name, raw in _tables(data, "accounts", str(path)).items():
            where = f"{path}: [accounts.{name}]"
            accounts[name] = _account(name, _table(raw, where), where)
        for key, value in _tables(data, "capital", str(path)).items():
            capital[key] = (value, f"{path}: [capital]")
        for name, raw in _tables(data, "sessions", str(path)).items():
            where = f"{path}: [sessions.{name}]"
            raw_sessions[name] = (_table(raw, where), where)
        for name, raw in _tables(data, "calendars", str(path)).items():
            where = f"{path}: [calendars.{name}]"
            raw_calendars.setdefault(name, []).append((_table(raw, where), where))
        for name, raw in _tables(data, "venues", str(path)).items():
            where = f"{path}: [venues.{name}]"
            venues[name] = _venue(name, _table(raw, where), where)
        entries = data.get("instrument", [])
        if not isinstance(entries, list):
            raise SpecError(f"{path}: 'instrument' must be an array of tables, written [[instrument]]")
        for i, raw in enumerate(entries):
            where = f"{path}: [[instrument]] #{i + 1}"
            raw_instruments.append((_table(raw, where), where))
        fee_entries = data.get("fee", [])
        if not isinstance(fee_entries, list):
            raise SpecError(f"{path}: 'fee' must be an array of tables, written [[fee]]")
        for i, raw in enumerate(fee_entries):
            where = f"{path}: [[fee]] #{i + 1}"
            fees.append((fee_entry(_table(raw, where), where), where))
        term_entries = data.get("import_terms", [])
        if not isinstance(term_entries, list):
            raise SpecError(f"{path}: 'import_terms' must be an array of tables, written [[import_terms]]")
        for i, raw in enumerate(term_entries):
            try:
                entry = terms_from_table(
                    _table(raw, f"{path}: [[import_terms]] #{i + 1}"), f"{path}: [[import_terms]] #{i + 1}"
                )
            except ValueError as exc:
                raise SpecError(str(exc)) from None
            terms[(entry.domestic, entry.overseas)] = entry
    calendars: dict[str, TradingCalendar] = {}
    for name, tables in raw_calendars.items():
        try:
            calendars[name] = calendar_from_table(name, tables)
        except CalendarError as exc:
            raise SpecError(str(exc)) from None
    sessions = {name: _hours(raw, where, calendars) for name, (raw, where) in raw_sessions.items()}
    instruments: dict[str, Instrument] = {}
    maintenance: dict[str, Decimal] = {}
    hedge_margin: dict[str, Decimal] = {}
    for raw, where in raw_instruments:
        inst = _instrument(raw, sessions, where)
        instruments[inst.id] = inst
        ratio = _maintenance(raw["margin"], f"{where} ({inst.id}) margin")
        if ratio is None:
            maintenance.pop(inst.id, None)
        else:
            maintenance[inst.id] = ratio
        hedge_margin.pop(inst.id, None)
        if "hedge_rate" in raw["margin"]:
            hedge_margin[inst.id] = _decimal(raw["margin"], "hedge_rate", f"{where} ({inst.id}) margin")
    for inst in instruments.values():
        if inst.venue not in venues:
            raise SpecError(
                f"instrument {inst.id} names venue {inst.venue!r}, which has no [venues.{inst.venue}] "
                "table; add one with region, account and latency_ms"
            )
    for venue in venues.values():
        if venue.account and venue.account not in accounts:
            raise SpecError(
                f"venue {venue.name} trades in account {venue.account!r}, which has no "
                f"[accounts.{venue.account}] table; add one with currency and cash, e.g. "
                f'[accounts.{venue.account}] currency = "USD", cash = "1000000"'
            )
    check_fees(fees, instruments)
    try:
        contracts = load_contract_rules(*paths[4:])
    except ContractError as exc:
        raise SpecError(str(exc)) from None
    return Specs(
        instruments=instruments,
        venues=venues,
        accounts=accounts,
        capital=_capital(capital),
        maintenance=maintenance,
        hedge_margin=hedge_margin,
        fees=fee_schedule([entry for entry, _ in fees]),
        calendars=calendars,
        import_terms=terms,
        contracts={p: rule for p, rule in contracts.items() if p in instruments},
    )


def _fraction(raw: dict[str, Any], key: str, where: str) -> Decimal:
    """An optional share below 1 (0.05 is 5 %); 0 when absent."""
    if key not in raw:
        return Decimal(0)
    out = _decimal(raw, key, where)
    if out >= 1:
        raise SpecError(f'{where}: {key} = {raw[key]!r} must be a fraction below 1: write 5 % as "0.05"')
    return out


def _clock(value: Any, where: str) -> time:
    if isinstance(value, time):  # a TOML local time, written without quotes: 09:00:00
        out = value
    else:
        try:
            out = time.fromisoformat(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where}: time {value!r} is not HH:MM") from None
    if out.tzinfo is not None:
        raise SpecError(f"{where}: time {value!r} must not carry an offset; set the table's timezone")
    return out


def _days(value: str, where: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in str(value).lower().split(","):
        first, dash, last = part.strip().partition("-")
        if first not in _DAYS or (dash and last not in _DAYS):
            raise SpecError(f"{where}: days {value!r} must look like 'mon-fri' or 'sun-thu,sat'")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        out.extend(span)
    return tuple(sorted(set(out)))


def _zone(zone: Any, where: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SpecError(
            f"{where}: unknown time zone {zone!r}; use an IANA name such as 'Asia/Shanghai'"
        ) from None


def _hours(raw: dict[str, Any], where: str, calendars: dict[str, TradingCalendar]) -> TradingHours:
    zone = _require(raw, "timezone", where)
    _zone(zone, where)
    calendar = None
    if "calendar" in raw:
        name = raw["calendar"]
        calendar = calendars.get(name) if isinstance(name, str) else None
        if calendar is None:
            raise SpecError(
                f"{where}: calendar = {name!r} is not defined; known: {', '.join(sorted(calendars)) or 'none'} "
                "(add a [calendars.NAME] table)"
            )
        _zone(calendar.timezone, f"[calendars.{name}]")
        if calendar.timezone != zone:
            raise SpecError(
                f"{where}: its timezone {zone!r} differs from calendar {name}'s ({calendar.timezone!r}); "
                "write the sessions in the exchange's own time zone"
            )
    raw_windows = _require(raw, "windows", where)
    if not isinstance(raw_windows, list) or not raw_windows:
        raise SpecError(f"{where}: windows must be a non-empty list of {{ open, close, days }} tables")
    windows = []
    for i, w in enumerate(raw_windows):
        here = f"{where} window #{i + 1}"
        w = _table(w, here)
        windows.append(
            SessionWindow(
                name=str(w.get("name", f"session-{i + 1}")),
                open=_clock(_require(w, "open", here), here),
                close=_clock(_require(w, "close", here), here),
                days=_days(_require(w, "days", here), here),
            )
        )
    return TradingHours(timezone=zone, windows=tuple(windows), calendar=calendar)


def _venue(name: str, raw: dict[str, Any], where: str) -> VenueSpec:
    latency = raw.get("latency_ms", [1.0, 1.0])
    if (
        not isinstance(latency, list)
        or len(latency) != 2
        or not all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in latency)
    ):
        raise SpecError(f"{where}: latency_ms must be [low, high] in milliseconds, >= 0")
    lo, hi = float(latency[0]), float(latency[1])
    if lo > hi:
        raise SpecError(f"{where}: latency_ms low {lo} is above high {hi}")
    region = raw.get("region", "overseas")
    if region not in ("domestic", "overseas"):
        raise SpecError(f"{where}: region {region!r} must be 'domestic' or 'overseas'")
    if not isinstance(offsets := raw.get("offsets", False), bool):
        raise SpecError(f"{where}: offsets must be true (long and short kept apart: SHFE, INE) or false")
    return VenueSpec(name, region, str(raw.get("account", "")), (lo, hi), offsets)


def _account(name: str, raw: dict[str, Any], where: str) -> AccountSpec:
    currency = str(_require(raw, "currency", where)).upper()
    if currency not in ACCOUNT_CURRENCIES:
        raise SpecError(
            f"{where}: currency {raw['currency']!r} is not one the FX conversion knows; "
            f"use one of {', '.join(ACCOUNT_CURRENCIES)}"
        )
    unknown = sorted(set(raw) - {"currency", "cash", "margin_call", "call_level", "broker_add_on", "hedge"})
    if unknown:
        raise SpecError(
            f"{where}: unknown key {unknown[0]!r}; an account takes currency, cash, margin_call, "
            "call_level, broker_add_on and hedge"
        )
    rule = str(raw.get("margin_call", "maintenance"))
    if rule not in MARGIN_CALL_RULES:
        raise SpecError(
            f"{where}: margin_call = {rule!r} must be one of {', '.join(MARGIN_CALL_RULES)} "
            "(risk_degree: China's brokers; maintenance: CME clearing firms)"
        )
    add_on = _decimal(raw, "broker_add_on", where) if "broker_add_on" in raw else Decimal(0)
    if add_on < 0:
        raise SpecError(f'{where}: broker_add_on {add_on} is negative; the broker adds, e.g. "0.03"')
    hedge = raw.get("hedge", False)
    if not isinstance(hedge, bool):
        raise SpecError(f"{where}: hedge = {hedge!r} must be true or false")
    return AccountSpec(
        name=name,
        currency=currency,
        cash=_decimal(raw, "cash", where),
        margin_call=rule,
        call_level=_ratio(raw["call_level"], f"{where} call_level") if "call_level" in raw else Decimal(1),
        broker_add_on=add_on,
        hedge=hedge,
    )


def _capital(raw: dict[str, tuple[Any, str]]) -> CapitalSpec:
    out = CapitalSpec()
    unknown = sorted(set(raw) - {"base_currency", "maintenance_ratio", "transfer_delay_s"})
    if unknown:
        where = raw[unknown[0]][1]
        raise SpecError(
            f"{where}: unknown key {unknown[0]!r}; known: base_currency, maintenance_ratio, transfer_delay_s"
        )
    base, ratio, delay = out.base_currency, out.maintenance_ratio, out.transfer_delay_s
    if "base_currency" in raw:
        value, where = raw["base_currency"]
        base = str(value).upper()
        if base not in ACCOUNT_CURRENCIES:
            raise SpecError(
                f"{where}: base_currency {value!r} must be one of {', '.join(ACCOUNT_CURRENCIES)}"
            )
    if "maintenance_ratio" in raw:
        value, where = raw["maintenance_ratio"]
        ratio = _ratio(value, f"{where} maintenance_ratio")
    if "transfer_delay_s" in raw:
        value, where = raw["transfer_delay_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 86_400:
            raise SpecError(f"{where}: transfer_delay_s = {value!r} must be a number of seconds, 0 to 86400")
        delay = float(value)
    return CapitalSpec(base_currency=base, maintenance_ratio=ratio, transfer_delay_s=delay)


def _ratio(value: Any, where: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise SpecError(f"{where}: {value!r} is not a number") from None
    if not out.is_finite() or not 0 < out <= 1:
        raise SpecError(
            f"{where}: {value!r} must be a share of initial margin above 0 and at most 1, e.g. 0.8"
        )
    return out


def _maintenance(margin: dict[str, Any], where: str) -> Decimal | None:
    if "maintenance" not in margin:
        return None
    return _ratio(margin["maintenance"], f"{where} maintenance")


def _instrument(raw: dict[str, Any], sessions: dict[str, TradingHours], where: str) -> Instrument:
    venue = str(_require(raw, "venue", where))
    symbol = str(_require(raw, "symbol", where))
    where = f"{where} ({venue}.{symbol})"
    session_name = _require(raw, "sessions", where)
    if not isinstance(session_name, str) or session_name not in sessions:
        raise SpecError(
            f"{where}: sessions = {session_name!r} is not defined; known: {', '.join(sorted(sessions))}"
        )
    margin = _table(_require(raw, "margin", where), f"{where} margin")
    try:
        margin_kind = MarginKind(margin.get("kind", "percent"))
    except ValueError:
        raise SpecError(f"{where}: margin kind must be 'percent' or 'per_lot'") from None
    tick = _decimal(raw, "tick", where)
    if tick == 0:
        raise SpecError(f"{where}: tick must be above zero")
    lot_size = _decimal(raw, "lot_size", where)
    if lot_size == 0:
        raise SpecError(f"{where}: lot_size must be above zero")
    kind = str(raw.get("kind", "future"))
    if kind not in ("future", "fx"):
        raise SpecError(f"{where}: kind {kind!r} must be 'future' or 'fx'")
    max_order_qty = raw.get("max_order_qty", 500)
    if not isinstance(max_order_qty, int) or isinstance(max_order_qty, bool) or max_order_qty < 1:
        raise SpecError(f"{where}: max_order_qty = {max_order_qty!r} must be a whole number of lots, >= 1")
    return Instrument(
        venue=venue,
        symbol=symbol,
        name=str(raw.get("name", symbol)),
        currency=str(_require(raw, "currency", where)),
        lot_size=lot_size,
        lot_unit=str(_require(raw, "lot_unit", where)),
        price_unit=str(_require(raw, "price_unit", where)),
        tick=tick,
        daily_limit=_fraction(raw, "daily_limit", where),
        margin_kind=margin_kind,
        margin_rate=_decimal(margin, "rate", where + " margin"),
        hours=sessions[session_name],
        kind=kind,
        reference_price=_decimal(raw, "reference_price", where),
        max_order_qty=max_order_qty,
        price_band=_fraction(raw, "price_band", where),
        limits_source=str(raw.get("limits_source", "")),
    )
