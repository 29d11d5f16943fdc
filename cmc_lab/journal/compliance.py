"""Journal compliance layer: the counts the exchanges' rules ask for, per exchange trading day, from the
journal rows (numbers and their sources in ``core/compliance.toml``).

:class:`MessageCounter`: each account's messages (orders and cancels) and its busiest second, against
the programmatic-trading high-frequency thresholds. :class:`ContractCounter`: per account and contract,
orders, cancels, large cancels, self-trades and the pre-trade self-match denials, against the
exchanges' abnormal-trading standard. A row counts toward its contract's exchange trading day
(``TradingHours.trading_day``: SHFE's Friday night toward Monday); a contract the specs do not know
counts by UTC day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmc_lab.core.compliance import AbnormalTrading, Thresholds, load_compliance
from cmc_lab.core.ids import venue_of
from cmc_lab.core.instruments import Instrument

FIELDS = (
    "day",
    "account",
    "messages",
    "busiest_second",
    "high_frequency",
    "threshold_per_day",
    "threshold_per_second",
)
#: Columns of compliance_contracts.csv: one row per (trading day, account, contract).
CONTRACT_FIELDS = (
    "day",
    "account",
    "instrument",
    "orders",
    "cancels",
    "ioc_cancels",
    "orders_and_cancels",
    "large_cancels",
    "self_trades",
    "self_match_denials",
    "cancels_flag",
    "large_cancels_flag",
    "self_trades_flag",
    "standard",
)


def load_thresholds() -> Thresholds:
    """The shipped programmatic-trading thresholds (``core/compliance.toml``)."""
    return load_compliance().thresholds


def load_abnormal() -> AbnormalTrading:
    """The shipped abnormal-trading standard (``core/compliance.toml``)."""
    return load_compliance().abnormal


def _day(instruments: Mapping[str, Instrument], instrument: str | None, ts_event: int) -> str:
    inst = instruments.get(instrument or "")
    if inst is not None:
        return inst.hours.trading_day(ts_event).isoformat()
    return datetime.fromtimestamp(ts_event // 1_000_000_000, tz=UTC).date().isoformat()


class MessageCounter:
    """Counts each account's orders and cancels per exchange trading day and per second, as rows arrive."""

    def __init__(self, instruments: Mapping[str, Instrument], thresholds: Thresholds) -> None:
        self.instruments = instruments
        self.thresholds = thresholds
        self.per_day: Counter[tuple[str, str]] = Counter()
        self.per_second: Counter[tuple[str, str, int]] = Counter()

    def count(self, account: str | None, instrument: str | None, ts_event: int) -> None:
        """One message (an order that left, or a cancel request) of ``account`` at ``ts_event``."""
        day = _day(self.instruments, instrument, ts_event)
        who = account or "unknown"
        self.per_day[(day, who)] += 1
        self.per_second[(day, who, ts_event // 1_000_000_000)] += 1

    def rows(self) -> Iterator[list[Any]]:
        """One row per (trading day, account), in FIELDS order, flagged at or over a threshold."""
        busiest: Counter[tuple[str, str]] = Counter()
        for (day, who, _), n in self.per_second.items():
            busiest[(day, who)] = max(busiest[(day, who)], n)
        t = self.thresholds
        for (day, who), n in sorted(self.per_day.items()):
            peak = busiest[(day, who)]
            flag = "yes" if n >= t.per_day or peak >= t.per_second else "no"
            yield [day, who, n, peak, flag, t.per_day, t.per_second]


@dataclass
class _Counts:
    orders: int = 0
    cancels: int = 0
    ioc_cancels: int = 0
    large_cancels: int = 0
    self_match_denials: int = 0
    self_trades: set[str] = field(default_factory=set)  # match ids
    sides: dict[str, set[str]] = field(default_factory=dict)  # match id -> sides of our fills in it


class ContractCounter:
    """Per (exchange trading day, account, contract): orders sent, cancel requests (those of IOC orders
    apart: the exchanges exempt FAK/FOK cancels), large cancels (of an order of ``large_cancel_lots``
    or more, IOC exempt), self-trades and pre-trade self-match denials.

    A self-trade is one match whose two sides are orders of the same account, counted once however
    many of its fills the journal holds: a fill the venue marks ``self_trade``, or two fills of ours
    in one match (same ``match_id``) on opposite sides.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> counter = ContractCounter(load_specs().instruments, load_abnormal())
    >>> t = 1_795_528_800 * 10**9  # 2026-11-24 14:00 UTC: 22:00 in Shanghai, Wednesday's trading day
    >>> for side in ("buy", "sell"):
    ...     counter.fill("CN-FUT", "SHFE.au", t, {"side": side, "match_id": "M1", "trade_id": side})
    >>> counter.cancel("CN-FUT", "SHFE.au", t, "GFD", 300)
    >>> row = dict(zip(CONTRACT_FIELDS, next(counter.rows())))
    >>> row["day"], row["self_trades"], row["large_cancels"], row["self_trades_flag"]
    ('2026-11-25', 1, 1, 'no')
    """

    def __init__(self, instruments: Mapping[str, Instrument], standard: AbnormalTrading) -> None:
        self.instruments = instruments
        self.standard = standard
        self.counts: dict[tuple[str, str, str], _Counts] = {}

    def _of(self, account: str | None, instrument: str | None, ts_event: int) -> _Counts:
        key = (_day(self.instruments, instrument, ts_event), account or "unknown", instrument or "unknown")
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = _Counts()
        return counts

    def order(self, account: str | None, instrument: str | None, ts_event: int) -> None:
        """An order that left for the venue."""
        self._of(account, instrument, ts_event).orders += 1

    def cancel(self, account: str | None, instrument: str | None, ts_event: int, tif: Any, qty: Any) -> None:
        """A cancel request of an order of ``tif`` and ``qty`` lots."""
        counts = self._of(account, instrument, ts_event)
        if tif == "IOC":
            counts.ioc_cancels += 1
            return
        counts.cancels += 1
        if isinstance(qty, int) and qty >= self.standard.large_cancel_lots:
            counts.large_cancels += 1

    def denied(self, account: str | None, instrument: str | None, ts_event: int, reason: str) -> None:
        """An order the pre-trade checks denied; counted when the self-match check did."""
        if reason.startswith("self_match:"):
            self._of(account, instrument, ts_event).self_match_denials += 1

    def fill(
        self, account: str | None, instrument: str | None, ts_event: int, payload: Mapping[str, Any]
    ) -> None:
        """One of our fills (its journal payload)."""
        counts = self._of(account, instrument, ts_event)
        match = str(payload.get("match_id") or payload.get("trade_id") or "")
        if not match:
            return
        if payload.get("self_trade"):
            counts.self_trades.add(match)
        sides = counts.sides.setdefault(match, set())
        sides.add(str(payload.get("side")))
        if len(sides) > 1:
            counts.self_trades.add(match)

    def rows(self) -> Iterator[list[Any]]:
        """One row per (trading day, account, contract) in CONTRACT_FIELDS order; a contract of a venue
        the standard does not cover is counted and flagged ``n/a``."""
        s = self.standard
        for (day, account, instrument), c in sorted(self.counts.items()):
            venue = venue_of(instrument)
            covered = s.covers(venue)

            def flag(n: int, limit: int, covered: bool = covered) -> str:
                return ("yes" if n >= limit else "no") if covered else "n/a"

            trades = len(c.self_trades)
            yield [
                day,
                account,
                instrument,
                c.orders,
                c.cancels,
                c.ioc_cancels,
                c.orders + c.cancels + c.ioc_cancels,
                c.large_cancels,
                trades,
                c.self_match_denials,
                flag(c.cancels, s.cancels),
                flag(c.large_cancels, s.large_cancels),
                flag(trades, s.self_trades),
                s.text() if covered else f"none shipped for {venue}",
            ]


__all__ = [
    "CONTRACT_FIELDS",
    "FIELDS",
    "ContractCounter",
    "MessageCounter",
    "Thresholds",
    "load_abnormal",
    "load_thresholds",
]
