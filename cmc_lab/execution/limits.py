"""Hedge ticket limits (pure): the naked-notional limit a ticket works to, and the record of a limit
that changed what a ticket does (which limit, its value, what was seen and by how much it was over).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from cmc_lab.core.model import Quote
from cmc_lab.execution.ticket import HedgePolicy, Leg, crossing_price
from cmc_lab.pricing.units import FxRates, convert_money

#: Without ``max_legged_exposure`` a ticket may carry this multiple of its own notional naked.
EXPOSURE_HEADROOM = 1.25


@lru_cache(maxsize=16)
def _rates(fx: float) -> FxRates:
    """The rate of a decision, built once (each decision converts every leg with it)."""
    return FxRates(fx)


def leg_notional_cny(leg: Leg, fx: float | None) -> float:
    """The whole leg (its target lots) at its decision price, in CNY (unconverted without a rate)."""
    notional = leg.target * float(leg.instrument.lot_size) * float(leg.decision_px)
    try:
        return float(convert_money(notional, leg.instrument.currency, "CNY", _rates(fx) if fx else None))
    except ValueError:
        return notional


def exposure_limit(policy: HedgePolicy, legs: Sequence[Leg], fx: float | None) -> tuple[float, str]:
    """The naked notional (CNY) above which the ticket unwinds at once, and where it comes from.

    ``max_legged_exposure`` when set; otherwise :data:`EXPOSURE_HEADROOM` times the ticket's own
    notional (every leg whole, at its decision price). Naked exposure counts each leg's naked lots
    (:func:`~cmc_lab.execution.ticket.legged_exposure`), so a ticket whose other leg is rejected,
    or whose legs part-fill short of a whole unit, holds up to its own notional naked: that is what
    chasing is for, and the default never turns a chase into an unwind for the ticket's own size
    (a fixed 5 M CNY did, from 9 au lots up). It catches what that size cannot explain: an
    over-fill, prices running while legged. A desk-wide cap on naked notional is a threshold:
    ``eng.thresholds.add("legged_exposure", ...)``.
    """
    if policy.max_legged_exposure is not None:
        return float(policy.max_legged_exposure), "max_legged_exposure set on the ticket"
    sizes = [(leg, leg_notional_cny(leg, fx)) for leg in legs]
    whole = sum(size for _, size in sizes)
    parts = " + ".join(f"{leg.target} {leg.id} {size:,.0f}" for leg, size in sizes)
    basis = (
        f"{EXPOSURE_HEADROOM:g} x the ticket's notional at the decision prices ({parts} = {whole:,.0f} CNY)"
    )
    return EXPOSURE_HEADROOM * whole, basis


def limit_hit(name: str, value: float, seen: float, policy: HedgePolicy, then: str) -> dict[str, Any]:
    """A limit that changed what a ticket does: journaled with the change and kept in its report."""
    return {
        "limit": name,
        "value": value,
        "seen": seen,
        "over_by": seen - value,
        "policy": policy.policy,
        "then": then,
    }


def limit_text(hit: dict[str, Any], unit: str) -> str:
    """``max_legged_exposure 1,000,000 CNY (seen 1,860,120, over by 860,120)``."""
    return (
        f"{hit['limit']} {hit['value']:,.0f} {unit} (seen {hit['seen']:,.0f}, over by {hit['over_by']:,.0f})"
    )


def chase_overrun(legs: Sequence[Leg], quotes: Mapping[str, Quote]) -> float:
    """Ticks the crossing price of a leg still short of its target has run from its decision price
    (the largest, in the paying direction): what ``chase_ticks`` is measured against."""
    ticks = [
        float((crossing - leg.decision_px) * leg.side.sign / leg.instrument.tick)
        for leg in legs
        if leg.net < leg.target
        and (crossing := crossing_price(leg, leg.side, quotes.get(leg.id))) is not None
    ]
    return max(ticks, default=0.0)
