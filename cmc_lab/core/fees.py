"""Trading fees: what one fill costs, from a dated fee schedule per instrument (pure, no IO).

SHFE and INE charge per lot or per share of notional, with separate rates to open, to close a
position opened the same exchange trading day (close today) and to close an older one (close
yesterday). CME (COMEX, NYMEX) and LME charge per contract, the same to open or close: the
exchange's fee, the clearing house's and the broker's, each named. The numbers live in
``fees.toml`` beside the instrument specs, each entry with its source and as-of date; a schedule
that changes gets a new entry with a later ``as_of``, so a fill is always charged at the rates in
force on its trading day (a journal replayed after the change books what it booked before).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from cmc_lab.core.instruments import Instrument

ZERO = Decimal(0)
CENT = Decimal("0.01")


class FeeBasis(StrEnum):
    PER_LOT = "per_lot"  # money per lot, by open / close today / close yesterday (SHFE au, INE sc)
    NOTIONAL = "notional"  # share of the traded value, by open / close today / close yesterday (SHFE cu)
    PER_CONTRACT = "per_contract"  # money per contract, open or close alike: exchange + clearing + broker


@dataclass(frozen=True, slots=True)
class FeeEntry:
    """One instrument's fee rates from one date on, in the instrument's currency, with their source.

    ``open``, ``close_today`` and ``close_yesterday`` are money per lot (``per_lot``) or a share of
    notional (``notional``); for ``per_contract`` all three are the sum of ``components``.
    """

    instrument_id: str
    currency: str
    basis: FeeBasis
    open: Decimal
    close_today: Decimal
    close_yesterday: Decimal
    as_of: date
    source: str
    components: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class FillFee:
    """The fee of one fill: the amount (instrument currency, in cents) and how it was worked out."""

    amount: Decimal
    currency: str
    detail: str
    as_of: date | None
    source: str


def no_fee(currency: str) -> FillFee:
    return FillFee(ZERO, currency, "no fee schedule for this instrument", None, "")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Every dated fee entry, by instrument; :meth:`fee` prices one fill.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> au = specs.instrument("SHFE.au")
    >>> fee = specs.fees.fee(au, Decimal("620.00"), opened=3, closed_today=0, closed_yesterday=0,
    ...                      day=date(2026, 11, 25))
    >>> fee.amount, fee.detail
    (Decimal('30.00'), 'open 3 x 10 CNY/lot')
    """

    entries: dict[str, tuple[FeeEntry, ...]]  # instrument id -> entries, oldest as_of first

    def entry(self, instrument_id: str, day: date | None) -> FeeEntry | None:
        """The entry in force on ``day`` (the latest with ``as_of <= day``; the oldest if none is)."""
        found = self.entries.get(instrument_id)
        if not found:
            return None
        if day is None:
            return found[-1]
        i = bisect.bisect_right([e.as_of for e in found], day)
        return found[max(i - 1, 0)]

    def fee(
        self,
        inst: Instrument,
        price: Decimal,
        *,
        opened: int,
        closed_today: int,
        closed_yesterday: int,
        day: date | None,
    ) -> FillFee:
        """The fee of a fill of ``price`` that opened, closed today's and closed older lots."""
        entry = self.entry(inst.id, day)
        if entry is None:
            return no_fee(inst.currency)
        parts = [("open", opened, entry.open), ("close today", closed_today, entry.close_today)]
        parts.append(("close yesterday", closed_yesterday, entry.close_yesterday))
        if entry.basis is FeeBasis.PER_CONTRACT:  # the same to open or close: no today or yesterday
            parts = [
                ("open", opened, entry.open),
                ("close", closed_today + closed_yesterday, entry.close_today),
            ]
        amount = ZERO
        detail = []
        for what, lots, rate in parts:
            if not lots:
                continue
            if entry.basis is FeeBasis.NOTIONAL:
                amount += rate * inst.notional(price, lots)
                detail.append(f"{what} {lots} x {rate} of notional")
            else:
                amount += rate * lots
                unit = "lot" if entry.basis is FeeBasis.PER_LOT else "contract"
                detail.append(f"{what} {lots} x {rate} {entry.currency}/{unit}")
        if entry.basis is FeeBasis.PER_CONTRACT and entry.components:
            detail.append("(" + " + ".join(f"{name} {value}" for name, value in entry.components) + ")")
        return FillFee(
            amount.quantize(CENT, rounding=ROUND_HALF_UP), entry.currency, " ".join(detail), entry.as_of,
            entry.source,
        )  # fmt: skip


def fee_schedule(entries: Sequence[FeeEntry]) -> FeeSchedule:
    """A schedule from entries in any order; a later entry with the same instrument and as_of wins."""
    by_id: dict[str, dict[date, FeeEntry]] = {}
    for e in entries:
        by_id.setdefault(e.instrument_id, {})[e.as_of] = e
    return FeeSchedule({iid: tuple(d[k] for k in sorted(d)) for iid, d in by_id.items()})
