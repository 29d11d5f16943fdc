"""Contract months: month codes in each exchange's style, listed months, last trading days, the main month.

A desk holds ``SHFE.au2606`` against ``COMEX.GCM26``, not "gold": each contract month has its own
price, its own last trading day and, near expiry, has to be rolled to the next. The rules per
product (which months are listed, how the last trading day falls, which month is the main one)
ship in ``contracts.toml`` with their sources; business days are the exchange calendar's trading
days (``core/calendar.py``). Pure: no IO beyond reading the rules file.

>>> rules = load_contract_rules()
>>> parse_contract_id("COMEX.GCM26", rules)
('COMEX.GC', ContractMonth(year=2026, month=6))
>>> contract_id("SHFE.au", ContractMonth(2026, 6), rules)
'SHFE.au2606'
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cmc_lab.core.calendar import TradingCalendar
from cmc_lab.core.instruments import Instrument

#: The shipped contract-month rules (``[contracts."VENUE.SYMBOL"]`` tables).
SHIPPED_CONTRACTS = Path(__file__).with_name("contracts.toml")

#: CME month letters, January to December.
MONTH_LETTERS = "FGHJKMNQUVXZ"

_LAST_TRADING = (
    "day_of_month",
    "business_days_before_end",
    "before_day_of_prior_month",
    "last_business_day_of_prior_month",
)
_ONE_DAY = timedelta(days=1)
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class ContractError(ValueError):
    """A contract id or a contract-month rule is wrong; the message says what to write instead."""


@dataclass(frozen=True, slots=True, order=True)
class ContractMonth:
    """A delivery month: ``ContractMonth(2026, 6)`` is June 2026."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 2099:
            raise ContractError(f"contract month {self.year}-{self.month} is not a month of 2000-2099")

    def plus(self, months: int) -> ContractMonth:
        """The month ``months`` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return ContractMonth(index // 12, index % 12 + 1)

    def months_after(self, other: ContractMonth) -> int:
        return (self.year - other.year) * 12 + self.month - other.month

    @classmethod
    def of(cls, day: date) -> ContractMonth:
        return cls(day.year, day.month)


@dataclass(frozen=True, slots=True)
class ContractRule:
    """One product's contract months, as ``contracts.toml`` states them (see that file for the keys)."""

    product: str  # "SHFE.au"
    code: str  # "yymm" or "cme"
    calendar: str
    consecutive: int
    cycles: tuple[tuple[frozenset[int], int], ...]  # (months, within this many months)
    last_trading: str
    day: int
    n: int
    n_if_closed: int
    main: frozenset[int]
    main_roll_days: int
    source: str
    as_of: str
    carry: float = 0.0  # the embedded exchange's yearly premium of a later month over an earlier one
    remind_days: int = 5  # trading days before the last trading day from which a position is reminded to roll

    def main_months(
        self,
        today: date,
        calendar: TradingCalendar,
        count: int,
        activity: dict[ContractMonth, float] | None = None,
    ) -> list[ContractMonth]:
        """The main month on ``today`` (by ``activity`` when given) and the ``count - 1`` main months
        after it, nearest first."""
        first = self.main_month(today, calendar, activity)
        later = [m for m in self.listed_months(today, calendar) if m > first and m.month in self.main]
        return [first, *later][:count]

    @property
    def symbol(self) -> str:
        return self.product.split(".", 1)[1]

    def code_of(self, month: ContractMonth) -> str:
        """The month as the exchange writes it after the symbol: ``2606`` or ``M26``."""
        if self.code == "cme":
            return f"{MONTH_LETTERS[month.month - 1]}{month.year % 100:02d}"
        return f"{month.year % 100:02d}{month.month:02d}"

    def month_of(self, code: str) -> ContractMonth | None:
        """The month a code names (``2606``, ``M26``); None if it is not one in this product's style."""
        if self.code == "cme":
            if len(code) != 3 or code[0] not in MONTH_LETTERS or not code[1:].isdigit():
                return None
            return ContractMonth(2000 + int(code[1:]), MONTH_LETTERS.index(code[0]) + 1)
        if len(code) != 4 or not code.isdigit() or not 1 <= int(code[2:]) <= 12:
            return None
        return ContractMonth(2000 + int(code[:2]), int(code[2:]))

    def is_listed(self, month: ContractMonth, today: date) -> bool:
        """Whether ``month`` is listed on ``today`` (before its last trading day has passed)."""
        ahead = month.months_after(ContractMonth.of(today))
        if ahead < 0:
            return False
        return ahead < self.consecutive or any(
            month.month in months and ahead <= within for months, within in self.cycles
        )

    def last_trading_day(self, month: ContractMonth, calendar: TradingCalendar) -> date:
        """The month's last trading day by the product's rule, on ``calendar``'s trading days."""
        first = date(month.year, month.month, 1)
        if self.last_trading == "day_of_month":
            day = date(month.year, month.month, self.day)
            return day if calendar.is_trading_day(day) else calendar.next_trading_day(day)
        if self.last_trading == "business_days_before_end":
            end = (first + timedelta(days=31)).replace(day=1) - _ONE_DAY
            return _business_days_back(end, self.n, calendar, count_start=True)
        if self.last_trading == "before_day_of_prior_month":
            anchor = (first - _ONE_DAY).replace(day=self.day)  # dates, not months: Jan 2000's prior is 1999
            n = self.n if calendar.is_trading_day(anchor) else self.n_if_closed
            return _business_days_back(anchor, n, calendar, count_start=False)
        end = first - _ONE_DAY  # last_business_day_of_prior_month
        return _business_days_back(end, 1, calendar, count_start=True)

    def listed_months(self, today: date, calendar: TradingCalendar) -> list[ContractMonth]:
        """The months listed on ``today`` whose last trading day has not passed, nearest first."""
        start = ContractMonth.of(today).plus(-1)  # INE/NYMEX: a month expires in the month before it
        horizon = max([self.consecutive, *(within for _, within in self.cycles)]) + 2
        out = []
        for k in range(horizon):
            month = start.plus(k)
            if (self.is_listed(month, today) or k == 0) and self.last_trading_day(month, calendar) >= today:
                out.append(month)
        return out

    def main_month(
        self, today: date, calendar: TradingCalendar, activity: dict[ContractMonth, float] | None = None
    ) -> ContractMonth:
        """The main contract on ``today``: the listed month with the most ``activity`` (open interest or
        volume) when given, else the first of the rule's main months whose last trading day is more
        than ``main_roll_days`` calendar days away.
        """
        listed = self.listed_months(today, calendar)
        if activity:
            known = [m for m in listed if m in activity]
            if known:
                return max(known, key=lambda m: (activity[m], -m.months_after(listed[0])))
        for month in listed:
            days_left = (self.last_trading_day(month, calendar) - today).days
            if month.month in self.main and days_left > self.main_roll_days:
                return month
        return listed[-1]


def _business_days_back(day: date, n: int, calendar: TradingCalendar, *, count_start: bool) -> date:
    """The ``n``-th trading day counting back from ``day`` (``day`` itself is the first if
    ``count_start`` and it is a trading day)."""
    found = 0
    current = day if count_start else day - _ONE_DAY
    for _ in range(400):
        if calendar.is_trading_day(current):
            found += 1
            if found == n:
                return current
        current -= _ONE_DAY
    raise ContractError(f"no {n} trading days before {day} on calendar {calendar.name}")


def parse_contract_id(iid: str, rules: dict[str, ContractRule]) -> tuple[str, ContractMonth] | None:
    """``("COMEX.GC", ContractMonth(2026, 6))`` for ``COMEX.GCM26``; None for a product id
    (``SHFE.au``) or an instrument without contract-month rules; :class:`ContractError` for a
    product with rules whose month code is wrong.
    """
    venue, _, symbol = iid.partition(".")
    candidates = [
        rule
        for product, rule in rules.items()
        if product.partition(".")[0] == venue and symbol.startswith(rule.symbol)
    ]
    if not candidates:
        return None
    rule = max(candidates, key=lambda r: len(r.symbol))  # the longest symbol that fits
    code = symbol[len(rule.symbol) :]
    if not code:
        return None
    month = rule.month_of(code)
    if month is None:
        example = rule.code_of(ContractMonth(2026, 6))
        raise ContractError(
            f"{iid!r}: {code!r} is not a contract month of {rule.product}; write it as "
            f"{rule.product}{example} (June 2026)"
        )
    return rule.product, month


def contract_id(product: str, month: ContractMonth, rules: dict[str, ContractRule]) -> str:
    """The contract id of ``product`` in ``month``: ``SHFE.au2606``, ``COMEX.GCM26``."""
    rule = rules.get(product)
    if rule is None:
        raise ContractError(f"{product!r} has no contract-month rules; known: {', '.join(sorted(rules))}")
    return f"{product}{rule.code_of(month)}"


def contract_instrument(
    product: Instrument,
    rule: ContractRule,
    month: ContractMonth,
    calendar: TradingCalendar,
    premium: float = 1.0,
) -> Instrument:
    """``product`` in ``month``: its own id (``SHFE.au2702``), name and last trading day; the
    reference price (where the embedded exchange starts it) is the product's times ``premium``."""
    return dataclasses.replace(
        product,
        symbol=f"{product.symbol}{rule.code_of(month)}",
        name=f"{product.name} {_MONTH_NAMES[month.month - 1]} {month.year}",
        reference_price=product.round_to_tick(float(product.reference_price) * premium),
        product=product.id,
        last_trading_day=rule.last_trading_day(month, calendar),
    )


def load_contract_rules(*paths: Path | str) -> dict[str, ContractRule]:
    """The shipped rules, then each ``[contracts."VENUE.SYMBOL"]`` table of ``paths`` over them."""
    tables: dict[str, dict[str, Any]] = {}
    for path in (SHIPPED_CONTRACTS, *paths):
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        for product, table in data.get("contracts", {}).items():
            if not isinstance(table, dict):
                raise ContractError(f'{path}: [contracts."{product}"] must be a table')
            tables.setdefault(product, {}).update(table)
    return {product: rule_from_table(product, table) for product, table in tables.items()}


def rule_from_table(product: str, table: dict[str, Any]) -> ContractRule:
    """One ``[contracts."VENUE.SYMBOL"]`` table as a :class:`ContractRule`; wrong keys name the fix."""
    where = f'[contracts."{product}"]'
    if product.count(".") != 1:
        raise ContractError(f"{where}: the product must be written VENUE.SYMBOL, e.g. SHFE.au")

    def need(key: str, kind: type) -> Any:
        if key not in table:
            raise ContractError(f"{where}: missing {key}")
        if not isinstance(table[key], kind) or isinstance(table[key], bool):
            raise ContractError(f"{where}: {key} must be a {kind.__name__}, got {table[key]!r}")
        return table[key]

    def months(key: str) -> frozenset[int]:
        values = table.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, int) and 1 <= v <= 12 for v in values):
            raise ContractError(f"{where}: {key} must be a list of months 1-12, got {values!r}")
        return frozenset(values)

    code = need("code", str)
    if code not in ("yymm", "cme"):
        raise ContractError(f'{where}: code must be "yymm" (au2606) or "cme" (GCM26), got {code!r}')
    last_trading = need("last_trading", str)
    if last_trading not in _LAST_TRADING:
        raise ContractError(
            f"{where}: last_trading must be one of {', '.join(_LAST_TRADING)}, got {last_trading!r}"
        )
    if last_trading in ("day_of_month", "before_day_of_prior_month") and not 1 <= need("day", int) <= 28:
        raise ContractError(f"{where}: day must be a day of the month 1-28, got {table['day']!r}")
    cycles = tuple(
        (months(key), int(table.get(f"{key}_within", 0))) for key in ("cycle", "cycle2") if key in table
    )
    return ContractRule(
        product=product,
        code=code,
        calendar=need("calendar", str),
        consecutive=need("consecutive", int),
        cycles=cycles,
        last_trading=last_trading,
        day=int(table.get("day", 0)),
        n=int(table.get("n", 1)),
        n_if_closed=int(table.get("n_if_closed", table.get("n", 1))),
        main=months("main") or frozenset(range(1, 13)),
        main_roll_days=int(table.get("main_roll_days", 30)),
        carry=float(table.get("carry", 0.0)),
        remind_days=int(table.get("remind_days", 5)),
        source=str(table.get("source", "")),
        as_of=str(table.get("as_of", "")),
    )


__all__ = [
    "ContractError",
    "ContractMonth",
    "ContractRule",
    "contract_id",
    "contract_instrument",
    "load_contract_rules",
    "parse_contract_id",
    "rule_from_table",
]
