"""Hedge ticket vocabulary and decisions: states, transitions, policy, legs, what to send (pure).

The functions at the end decide *what* a ticket sends (lead leg, chase and unwind orders and
their bounded prices) from the legs, the quotes and the policy; :mod:`cmc_lab.execution.flow`
decides *when*, on the engine loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cmc_lab.core.ids import USDCNH_ID, USDCNY_ID
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import OrderFilled, Quote, Side, TimeInForce
from cmc_lab.core.order import Order
from cmc_lab.pricing.units import FxRates, convert_money


class TicketState(StrEnum):
    NEW = "NEW"
    ARMED = "ARMED"  # waiting for its trigger
    DISARMED = "DISARMED"  # its trigger is paused: t.arm() resumes it
    CHECKING = "CHECKING"  # both legs' pre-trade checks
    WORKING = "WORKING"  # legs sent (together, or lead then hedge)
    LEGGED = "LEGGED"  # one leg filled more than the other: naked exposure
    HEDGING = "HEDGING"  # chasing the missing leg
    UNWINDING = "UNWINDING"  # rolling back the filled excess
    FILLED = "FILLED"
    UNWOUND = "UNWOUND"
    BROKEN = "BROKEN"  # could not restore a hedged position: a human must act
    CANCELLED = "CANCELLED"
    DENIED = "DENIED"  # a pre-trade check failed: nothing was sent

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {TicketState.FILLED, TicketState.UNWOUND, TicketState.BROKEN, TicketState.CANCELLED, TicketState.DENIED}
)

TS = TicketState
#: Allowed moves of a ticket; anything else is a bug and raises.
TICKET_TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    TS.NEW: frozenset({TS.ARMED, TS.CHECKING, TS.CANCELLED}),
    TS.ARMED: frozenset({TS.CHECKING, TS.DISARMED, TS.CANCELLED}),
    TS.DISARMED: frozenset({TS.ARMED, TS.CANCELLED}),
    TS.CHECKING: frozenset({TS.WORKING, TS.DENIED}),
    TS.WORKING: frozenset({TS.FILLED, TS.LEGGED, TS.HEDGING, TS.UNWINDING, TS.CANCELLED, TS.BROKEN}),
    TS.LEGGED: frozenset({TS.HEDGING, TS.UNWINDING, TS.FILLED, TS.CANCELLED, TS.BROKEN}),
    TS.HEDGING: frozenset({TS.FILLED, TS.LEGGED, TS.UNWINDING, TS.CANCELLED, TS.BROKEN}),
    TS.UNWINDING: frozenset({TS.UNWOUND, TS.FILLED, TS.CANCELLED, TS.BROKEN}),
}

POLICIES = ("chase", "unwind", "hold")
MODES = ("concurrent", "lead_lag")


class IllegalTicketMove(RuntimeError):
    """A ticket asked to move along an edge TICKET_TRANSITIONS does not have (a bug)."""


class TicketNotArmed(RuntimeError):
    """arm() or disarm() on a ticket (and series) with no armed or disarmed ticket left."""


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """How a ticket sends its legs and what it does when they do not fill together.

    Prices are bounded in ticks of each leg; times in milliseconds (market time).

    Attributes
    ----------
    policy
        ``"chase"`` re-prices the missing leg (up to ``chase_ticks`` from the decision price,
        ``max_attempts`` times, within ``chase_window_ms``); ``"unwind"`` rolls back the filled
        excess; ``"hold"`` stops and alerts a human. Every policy is bounded by the limits below.
    mode
        ``"concurrent"``: all legs at once; ``"lead_lag"``: the less liquid leg first, the hedge
        leg sent for each whole unit the lead fills (never more).
    tif, allowance_ticks
        Each leg is a limit order at its crossing price plus ``allowance_ticks``, IOC or GFD.
    leg_timeout_ms
        An order still working after this is cancelled; one that stays unresolved is reconciled.
    max_legged_ms
        The longest a ticket may carry naked exposure: then it unwinds, whatever its policy.
    max_legged_exposure
        Naked notional (CNY, at the quotes) beyond which the ticket unwinds at once. None (the
        default) derives it from the ticket's own size: 1.25 x its notional (every leg at the
        decision prices; :func:`cmc_lab.execution.limits.exposure_limit`), so a whole leg left
        naked by one reject is chased, not unwound, at any size.
    time_limit_ms
        From firing: the ticket stops chasing and unwinds; ``max_legged_ms`` later an unfinished
        ticket goes BROKEN with an alert.
    unwind_ticks, max_unwind_attempts
        An unwind never sells below (buys above) the leg's average fill by more than
        ``unwind_ticks``: the loss is bounded; after ``max_unwind_attempts`` it goes BROKEN.
    retry_ms
        Pause before trying again when an attempt was blocked (venue down, kill switch, no quote);
        unwind attempts that fill nothing back off from it, doubling up to 8 times as long.
    min_top_cover
        Minimum size: the share of the ticket that the spread's top of book must show on the side
        traded, checked before the first leg leaves (1.0: all of it; 0: no check).
    """

    policy: str = "chase"
    mode: str = "concurrent"
    tif: str = "IOC"
    allowance_ticks: int = 2
    chase_ticks: int = 10
    max_attempts: int = 3
    chase_window_ms: float = 3000.0
    leg_timeout_ms: float = 1500.0
    max_legged_ms: float = 5000.0
    max_legged_exposure: float | None = None
    time_limit_ms: float = 20_000.0
    unwind_ticks: int = 20
    max_unwind_attempts: int = 10
    retry_ms: float = 250.0
    min_top_cover: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} is not known; use one of {', '.join(POLICIES)}")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not known; use one of {', '.join(MODES)}")
        TimeInForce.parse(self.tif)
        for name in ("allowance_ticks", "chase_ticks", "max_attempts", "unwind_ticks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if (
            isinstance(self.max_unwind_attempts, bool)
            or not isinstance(self.max_unwind_attempts, int)
            or self.max_unwind_attempts < 1
        ):
            raise ValueError(
                f"max_unwind_attempts must be a whole number >= 1, got {self.max_unwind_attempts!r}"
            )
        for name in (
            "chase_window_ms",
            "leg_timeout_ms",
            "max_legged_ms",
            "max_legged_exposure",
            "time_limit_ms",
            "retry_ms",
        ):
            value = getattr(self, name)
            if value is None and name == "max_legged_exposure":
                continue  # derived from the ticket's size when it fires
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                unset = " (or None: derived from the ticket's size)" if name == "max_legged_exposure" else ""
                raise ValueError(f"{name} must be a finite number > 0{unset}, got {value!r}")
        cover = self.min_top_cover
        if isinstance(cover, bool) or not isinstance(cover, int | float) or not 0 <= cover <= 1:
            raise ValueError(
                f"min_top_cover must be between 0 (no check) and 1 (whole ticket), got {cover!r}"
            )

    @property
    def time_in_force(self) -> TimeInForce:
        return TimeInForce.parse(self.tif)

    def needed_top(self, units: int) -> int:
        """Spread units the top of book must show for a ticket of ``units`` (0: no check)."""
        return math.ceil(self.min_top_cover * units - 1e-9) if self.min_top_cover else 0


@dataclass
class Leg:
    """One leg of a ticket: which side, how many lots, and the orders sent for it."""

    instrument: Instrument
    side: Side
    target: int
    lots_per_unit: int
    decision_px: Decimal = Decimal(0)
    orders: list[Order] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.instrument.id

    @property
    def net(self) -> int:
        """Lots filled in the leg's direction, less any unwound."""
        total = 0
        for order in self.orders:
            sign = 1 if order.side is self.side else -1
            total += sign * order.filled_qty
        return total

    @property
    def working(self) -> list[Order]:
        return [o for o in self.orders if not o.done]

    @property
    def forward_sent(self) -> int:
        """Lots sent in the leg's direction (every forward order's quantity, filled or not)."""
        return sum(o.qty for o in self.orders if o.side is self.side)

    def units(self) -> float:
        return self.net / self.lots_per_unit

    def forward_fills(self) -> list[OrderFilled]:
        return [f for o in self.orders if o.side is self.side for f in o.fills]

    def avg_forward_px(self) -> Decimal | None:
        fills = self.forward_fills()
        qty = sum(f.last_qty for f in fills)
        return sum((f.last_px * f.last_qty for f in fills), Decimal(0)) / qty if qty else None

    def __repr__(self) -> str:
        return f"Leg({self.side.value} {self.id}: {self.net}/{self.target} lots, {len(self.orders)} orders)"


# --------------------------------------------------------------------------- pure figures and decisions


@dataclass(frozen=True, slots=True)
class Planned:
    """One order a ticket decided to send: which leg, side, lots and limit price."""

    leg: Leg
    side: Side
    qty: int
    price: Decimal


def hedged_units(legs: Sequence[Leg]) -> int:
    """Whole spread units every leg holds: the hedged part of the position."""
    return max(min(leg.net // leg.lots_per_unit for leg in legs), 0)


def imbalance(legs: Sequence[Leg]) -> dict[str, int]:
    """Per leg, lots beyond the balanced (hedged) position, in the leg's own direction (+3 on a
    sell leg is 3 lots sold too many): what the plans below work with. State it to a person as the
    account holds it: :func:`cmc_lab.execution.figures.naked_positions`."""
    hedged = hedged_units(legs)
    return {leg.id: leg.net - hedged * leg.lots_per_unit for leg in legs}


def legged_exposure(legs: Sequence[Leg], quotes: Mapping[str, Quote]) -> float:
    """Notional of the naked lots in CNY, at the legs' last quotes (or decision prices).

    USD converts to CNY at USDCNY (onshore), at USDCNH while no USDCNY quote was heard. A leg
    priced in a money whose FX rate has not been heard counts unconverted, never as zero.
    """
    naked_lots = imbalance(legs)
    total = 0.0
    fx: FxRates | None = None
    for leg in legs:
        naked = naked_lots[leg.id]
        if not naked:
            continue
        if fx is None and (cnh := quotes.get(USDCNH_ID)) is not None:  # read once, when a leg is naked
            cny = quotes.get(USDCNY_ID)
            fx = FxRates(usdcnh=cnh.mid, cnh_cny_basis=cny.mid - cnh.mid if cny else 0.0)
        quote = quotes.get(leg.id)
        price = quote.mid if quote else float(leg.decision_px)
        notional = abs(naked) * float(leg.instrument.lot_size) * price
        try:
            total += float(convert_money(notional, leg.instrument.currency, "CNY", fx))
        except ValueError:
            total += notional
    return total


def decision_payload(snap: Any, legs: Sequence[Leg], why: str, denials: list[str]) -> dict[str, Any]:
    """A ``HedgeDecision`` row: send or deny, why, and the spread and leg quotes it was taken on.

    ``snap`` is the :class:`~cmc_lab.execution.spread.SpreadSnapshot` decided on (None when the
    spread was not quotable).
    """
    return {
        "action": "deny" if denials else "send",
        "reason": "; ".join(denials) if denials else why,
        "spread_bid": snap.bid if snap else None,
        "spread_ask": snap.ask if snap else None,
        "bid_size": snap.bid_size if snap else None,
        "ask_size": snap.ask_size if snap else None,
        "fx": snap.fx if snap else None,
        "fx_rate": snap.fx_rate if snap and snap.fx is not None else None,
        "quotes": {q.instrument_id: [q.bid, q.ask, q.bid_size, q.ask_size] for q in snap.legs}
        if snap
        else {},
        "legs": {leg.id: [leg.side.value, leg.target, str(leg.decision_px)] for leg in legs},
    }


def crossing_price(leg: Leg, side: Side, quote: Quote | None) -> Decimal | None:
    """The price that trades at once on ``side`` (the ask to buy), on the tick grid; None if unknown."""
    if quote is None:
        return None
    px = quote.ask if side is Side.BUY else quote.bid
    if not px or not math.isfinite(px) or px <= 0:
        return None
    return leg.instrument.round_to_tick(px)


def limit_price(leg: Leg, side: Side, reference: Decimal, allowance_ticks: int) -> Decimal:
    """``reference`` plus the allowance in the paying direction, never below one tick."""
    step = leg.instrument.tick * allowance_ticks
    return reference + step if side is Side.BUY else max(reference - step, leg.instrument.tick)


def lead_leg(legs: Sequence[Leg], quotes: Mapping[str, Quote]) -> Leg:
    """The less liquid leg (fewer spread units at the top of its book on the side traded)."""

    def depth(leg: Leg) -> float:
        quote = quotes.get(leg.id)
        size = (quote.ask_size if leg.side is Side.BUY else quote.bid_size) if quote else 0
        return size / leg.lots_per_unit

    return min(legs, key=depth)


def size_shortfall(policy: HedgePolicy, side: Side, units: int, bid_size: int, ask_size: int) -> str | None:
    """Minimum size: why the spread's top of book is too thin for ``units``, or None."""
    needed = policy.needed_top(units)
    shown, where = (ask_size, "ask") if side is Side.BUY else (bid_size, "bid")
    if not needed or shown >= needed:
        return None
    return (
        f"minimum size: the top of book shows {shown} spread unit(s) at the {where}, the ticket needs "
        f"{needed} (min_top_cover={policy.min_top_cover:g}); trade less or set min_top_cover lower"
    )


def chase_plan(
    legs: Sequence[Leg], units: int, quotes: Mapping[str, Quote], policy: HedgePolicy
) -> tuple[list[Planned], str | None]:
    """Orders that bring every leg to the next whole unit (all units when balanced), or why not.

    Each is priced at the leg's crossing price plus the allowance, capped at ``chase_ticks``
    from its decision price. The reason is set when a short leg has no quote (``no quote``) or
    its crossing price ran beyond the cap (``price ran away``).
    """
    if all(v == 0 for v in imbalance(legs).values()):
        top = units
    else:
        top = min(math.ceil(max(leg.units() for leg in legs) - 1e-9), units)
    plan = []
    for leg in legs:
        short = top * leg.lots_per_unit - leg.net
        if short <= 0:
            continue
        crossing = crossing_price(leg, leg.side, quotes.get(leg.id))
        if crossing is None:
            return [], f"no quote for {leg.id}"
        bound = leg.decision_px + leg.side.sign * leg.instrument.tick * policy.chase_ticks
        if (crossing - bound) * leg.side.sign > 0:
            return [], f"price ran away on {leg.id}: crossing {crossing} beyond chase bound {bound}"
        price = limit_price(leg, leg.side, crossing, policy.allowance_ticks)
        price = min(price, bound) if leg.side is Side.BUY else max(price, bound)
        plan.append(Planned(leg, leg.side, short, price))
    return plan, None


def unwind_plan(legs: Sequence[Leg], quotes: Mapping[str, Quote], policy: HedgePolicy) -> list[Planned]:
    """Orders that roll every leg back to the balanced position, each loss bounded.

    A leg's excess is sold back (bought back) at its crossing price plus the allowance, but
    never worse than its average fill by more than ``unwind_ticks`` (without a quote: at that
    bound). A leg short of the balance (after an over-unwind) is re-bought the same way.
    """
    plan = []
    for leg in legs:
        lots = imbalance(legs)[leg.id]
        if not lots:
            continue
        side = leg.side.opposite if lots > 0 else leg.side
        reference = (leg.avg_forward_px() or leg.decision_px) if lots > 0 else leg.decision_px
        worst = reference + side.sign * leg.instrument.tick * policy.unwind_ticks
        bound = leg.instrument.round_to_tick(max(worst, leg.instrument.tick))
        crossing = crossing_price(leg, side, quotes.get(leg.id))
        price = bound if crossing is None else limit_price(leg, side, crossing, policy.allowance_ticks)
        price = max(price, bound) if side is Side.SELL else min(price, bound)
        plan.append(Planned(leg, side, abs(lots), price))
    return plan
