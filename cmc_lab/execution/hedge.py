"""Hedge tickets: legs sent together, and on a reject, partial fill or timeout a chase or unwind.

A ticket runs entirely on the engine loop. Its orders are ordinary engine orders carrying the
ticket id, so the journal's ``timeline(ticket_id)`` holds every leg, re-order and unwind beside
the ticket's own decisions (``Hedge*`` rows, each with its reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from html import escape
from typing import TYPE_CHECKING, Any

from cmc_lab.execution.spread import Spread, SpreadNotQuotable, SpreadSnapshot
from cmc_lab.execution.trigger import Condition, TriggerRule
from cmc_lab.model import Instrument, OrderFilled, Side, TimeInForce
from cmc_lab.orders import Order, _fire, _register
from cmc_lab.pricing import FxRates, convert_money
from cmc_lab.risk.pretrade import OrderRequest

if TYPE_CHECKING:
    from cmc_lab.engine import Engine


class TicketState(StrEnum):
    NEW = "NEW"
    ARMED = "ARMED"  # waiting for its trigger
    CHECKING = "CHECKING"  # both legs' pre-trade checks
    WORKING = "WORKING"  # legs sent together
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
    TS.ARMED: frozenset({TS.CHECKING, TS.CANCELLED}),
    TS.CHECKING: frozenset({TS.WORKING, TS.DENIED}),
    TS.WORKING: frozenset({TS.FILLED, TS.LEGGED, TS.HEDGING, TS.CANCELLED, TS.UNWINDING}),
    TS.LEGGED: frozenset({TS.HEDGING, TS.UNWINDING, TS.FILLED, TS.BROKEN}),
    TS.HEDGING: frozenset({TS.FILLED, TS.LEGGED, TS.UNWINDING, TS.CANCELLED, TS.BROKEN}),
    TS.UNWINDING: frozenset({TS.UNWOUND, TS.BROKEN, TS.UNWINDING}),
}

POLICIES = ("chase", "unwind", "hold")
MODES = ("concurrent", "lead_lag")


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """How a ticket sends its legs and what it does when they do not fill together.

    Prices are bounded in ticks of each leg; times in milliseconds (market time).
    ``max_legged_exposure`` is in the base currency (CNY): beyond it, unwind at once.
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
    max_legged_exposure: float = 5_000_000.0
    unwind_ticks: int = 20

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
        for name in ("chase_window_ms", "leg_timeout_ms", "max_legged_ms", "max_legged_exposure"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


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

    def units(self) -> float:
        return self.net / self.lots_per_unit

    def forward_fills(self) -> list[OrderFilled]:
        return [f for o in self.orders if o.side is self.side for f in o.fills]

    def __repr__(self) -> str:
        return f"Leg({self.side.value} {self.id}: {self.net}/{self.target} lots, {len(self.orders)} orders)"


TicketCallback = Callable[["HedgeTicket", Any], None]


class HedgeTicket:
    """A hedged trade of a spread whose legs go out together; updates itself in place.

    Events (callbacks on the engine thread): ``on_fill(callback(ticket, fill))`` for every leg
    fill, ``on_state(callback(ticket, state))`` for every change of state.

    Examples
    --------
    >>> t = eng.hedge("au_gc", side="buy", qty=3, policy="chase")   # doctest: +SKIP
    >>> t.wait(timeout=10); t.state, t.legs                          # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        ticket_id: str,
        spread: Spread,
        side: Side,
        units: int,
        policy: HedgePolicy,
        trigger: TriggerRule | None,
    ) -> None:
        self._engine = engine
        self.ticket_id = ticket_id
        self.spread = spread
        self.side = side
        self.units = units
        self.policy = policy
        self.trigger = trigger
        self.state = TicketState.NEW
        self.reason = ""
        self.decision: SpreadSnapshot | None = None
        self.attempts = 0
        self.unwind_attempts = 0
        self.alerts: list[str] = []
        self.history: list[tuple[int, str, str]] = []  # (mono ns, state, reason)
        self.legs = [
            Leg(
                engine.instrument(iid),
                side if weight > 0 else side.opposite,
                units * spread.lots[iid],
                spread.lots[iid],
            )
            for iid, weight in zip(spread.leg_ids, spread.defn.weights, strict=True)
        ]
        self._done: asyncio.Future[TicketState] = engine._loop.create_future()
        self._fill_callbacks: list[TicketCallback] = []
        self._state_callbacks: list[TicketCallback] = []
        self._t_decision: int | None = None
        self._t_filled: int | None = None
        self._legged_since: int | None = None
        self._timers: list[asyncio.TimerHandle] = []

    # ================================================================== reading

    @property
    def done(self) -> bool:
        return self.state.is_terminal

    @property
    def qty(self) -> int:
        """Lots of the first leg (what ``eng.hedge(..., qty=)`` was given)."""
        return self.legs[0].target

    @property
    def fills(self) -> list[OrderFilled]:
        return sorted((f for leg in self.legs for o in leg.orders for f in o.fills), key=lambda f: f.ts_init)

    @property
    def orders(self) -> list[Order]:
        return [o for leg in self.legs for o in leg.orders]

    def imbalance_lots(self) -> dict[str, int]:
        """Per leg, lots beyond the balanced (hedged) position: the naked part."""
        hedged = min(int(leg.net // leg.lots_per_unit) for leg in self.legs)
        hedged = max(hedged, 0)
        return {leg.id: leg.net - hedged * leg.lots_per_unit for leg in self.legs}

    def is_balanced(self) -> bool:
        return all(v == 0 for v in self.imbalance_lots().values())

    def legged_exposure(self) -> float:
        """Notional of the naked lots in CNY, at the legs' last quotes (or fills)."""
        eng = self._engine
        fx_quote = eng._quotes.get("FX.USDCNH")
        fx = FxRates(usdcnh=fx_quote.mid) if fx_quote else None
        total = 0.0
        for leg in self.legs:
            naked = self.imbalance_lots()[leg.id]
            if not naked:
                continue
            quote = eng._quotes.get(leg.id)
            price = quote.mid if quote else float(leg.decision_px)
            notional = abs(naked) * float(leg.instrument.lot_size) * price
            try:
                total += float(convert_money(notional, leg.instrument.currency, "CNY", fx))
            except ValueError:
                total += notional
        return total

    def report(self) -> dict[str, Any]:
        """Per-ticket figures: slippage per leg (ticks and money), time between legs, outcome."""
        legs = {}
        first_fill: dict[str, int] = {}
        for leg in self.legs:
            fills = leg.forward_fills()
            qty = sum(f.last_qty for f in fills)
            avg = sum((f.last_px * f.last_qty for f in fills), Decimal(0)) / qty if qty else None
            slip_ticks = None
            slip_money = None
            if avg is not None and leg.decision_px:
                worse = (avg - leg.decision_px) * leg.side.sign
                slip_ticks = float(worse / leg.instrument.tick)
                slip_money = worse * leg.instrument.lot_size * qty
            if fills:
                first_fill[leg.id] = min(f.ts_init for f in fills)
            legs[leg.id] = {
                "side": leg.side.value,
                "target": leg.target,
                "net": leg.net,
                "decision_px": leg.decision_px,
                "avg_px": avg,
                "slippage_ticks": slip_ticks,
                "slippage_money": slip_money,
                "currency": leg.instrument.currency,
                "orders": len(leg.orders),
            }
        between = max(first_fill.values()) - min(first_fill.values()) if len(first_fill) > 1 else None
        hedged = (
            (self._t_filled - self._t_decision)
            if self._t_filled is not None and self._t_decision is not None
            else None
        )
        return {
            "ticket": self.ticket_id,
            "spread": self.spread.name,
            "side": self.side.value,
            "state": self.state.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "unwind_attempts": self.unwind_attempts,
            "decision_bid": self.decision.bid if self.decision else None,
            "decision_ask": self.decision.ask if self.decision else None,
            "time_between_legs_ns": between,
            "time_to_hedged_ns": hedged,
            "legs": legs,
        }

    # ================================================================== acting (any thread)

    def wait(self, timeout: float = 10.0) -> TicketState:
        """Block until the ticket ends (or ``timeout`` seconds pass); returns its state."""
        return self._engine._call(self._wait_on_loop(timeout), advance=True, timeout=timeout)

    async def wait_async(self, timeout: float = 10.0) -> TicketState:
        return await self._engine._call_async(self._wait_on_loop(timeout), advance=True)

    async def _wait_on_loop(self, timeout: float) -> TicketState:
        if not self._done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._done), timeout)
        return self.state

    def cancel(self, reason: str = "cancelled by user") -> None:
        """Disarm an armed ticket, or stop a working one (its policy then restores the hedge)."""
        self._engine._call(self._cancel_on_loop(reason))

    def on_fill(self, callback: TicketCallback, remove: bool = False) -> None:
        _register(self._fill_callbacks, callback, remove)

    def on_state(self, callback: TicketCallback, remove: bool = False) -> None:
        _register(self._state_callbacks, callback, remove)

    # ================================================================== on the loop

    async def _cancel_on_loop(self, reason: str) -> None:
        if self.state in (TS.NEW, TS.ARMED):
            self._set(TS.CANCELLED, reason)
            return
        for order in self.orders:
            if not order.done:
                await self._engine._cancel(order, f"ticket {self.ticket_id}: {reason}")

    def _start(self) -> None:
        self._journal("HedgeCreated", self._describe())
        if self.trigger is not None:
            self._set(TS.ARMED, f"waiting for {self.trigger.condition}")
            return
        self._fire("no trigger: immediate")

    def _on_quote_snapshot(self, snap: SpreadSnapshot) -> None:
        """An armed ticket looks at its spread each time it is recomputed."""
        if self.state is not TS.ARMED or self.trigger is None:
            return
        value = snap.value(self.trigger.condition.field)
        if self.trigger.update(value, snap.ts_ns):
            self._fire(f"trigger {self.trigger.condition} met at {value:.6g}", snap)

    def _fire(self, why: str, snap: SpreadSnapshot | None = None) -> None:
        self._set(TS.CHECKING, why)
        self._t_decision = self._engine.clock.mono_ns()
        if snap is None:
            try:
                snap = self.spread.quote()
            except SpreadNotQuotable as exc:
                self._set(TS.DENIED, str(exc))
                return
        self.decision = snap
        for leg, quote in zip(self.legs, snap.legs, strict=True):
            px = quote.ask if leg.side is Side.BUY else quote.bid
            leg.decision_px = leg.instrument.round_to_tick(px)
        self._journal(
            "HedgeDecision",
            {
                "reason": why,
                "spread_bid": snap.bid,
                "spread_ask": snap.ask,
                "fx": snap.fx,
                "quotes": {q.instrument_id: [q.bid, q.ask, q.bid_size, q.ask_size] for q in snap.legs},
                "legs": {leg.id: [leg.side.value, leg.target, str(leg.decision_px)] for leg in self.legs},
            },
        )
        requests = [
            self._request(leg, leg.target, self._limit(leg, leg.side, leg.decision_px)) for leg in self.legs
        ]
        denials = []
        for request in requests:
            denial, _ = self._engine.checks.run(request, self._engine)
            if denial:
                denials.append(f"{request.instrument.id}: {denial}")
        if denials:
            self._set(TS.DENIED, "; ".join(denials))
            return
        reason = self.spread.not_quotable_reason()
        if reason:
            self._set(TS.DENIED, reason)
            return
        self._set(TS.WORKING, f"{self.policy.mode}: both legs checked")
        if self.policy.mode == "lead_lag":
            lead = self._lead_leg()
            self._send([(lead, requests[self.legs.index(lead)])], "lead leg")
        else:
            self._send(list(zip(self.legs, requests, strict=True)), "legs sent together")
        self._arm_timer(self.policy.max_legged_ms * 4, self._on_ticket_timeout)

    def _lead_leg(self) -> Leg:
        """The less liquid leg goes first: fewer spread units at the top of its book."""

        def depth(leg: Leg) -> float:
            quote = self._engine._quotes.get(leg.id)
            size = (quote.ask_size if leg.side is Side.BUY else quote.bid_size) if quote else 0
            return size / leg.lots_per_unit

        return min(self.legs, key=depth)

    def _hedge_leg_for(self, lead: Leg) -> list[Leg]:
        return [leg for leg in self.legs if leg is not lead]

    def _request(self, leg: Leg, qty: int, price: Decimal, side: Side | None = None) -> OrderRequest:
        account = self._engine.specs.venues[leg.instrument.venue].account
        return OrderRequest(leg.instrument, side or leg.side, qty, price, account, self.ticket_id)

    def _limit(self, leg: Leg, side: Side, reference: Decimal) -> Decimal:
        """Crossing price plus the allowance, on the tick grid."""
        step = leg.instrument.tick * self.policy.allowance_ticks
        return reference + step if side is Side.BUY else max(reference - step, leg.instrument.tick)

    def _send(self, batch: list[tuple[Leg, OrderRequest]], why: str) -> list[Order]:
        tif = TimeInForce.parse(self.policy.tif)
        orders = self._engine._submit_batch([r for _, r in batch], tif, f"ticket {self.ticket_id}: {why}")
        for (leg, _), order in zip(batch, orders, strict=True):
            leg.orders.append(order)
            order.on_fill(self._on_order_fill)
            order.on_state(self._on_order_state)
            self._arm_timer(self.policy.leg_timeout_ms, functools.partial(self._on_leg_timeout, order, 1))
        return orders

    def _on_order_fill(self, order: Order, fill: OrderFilled) -> None:
        self._report(_fire(self._fill_callbacks, self, fill))
        if self.done:
            return
        if self.policy.mode == "lead_lag" and self.state is TS.WORKING:
            self._hedge_lead_fill()
        if self._legged_since is None and not self.is_balanced():
            self._legged_since = self._engine.clock.mono_ns()
        if self.legged_exposure() > self.policy.max_legged_exposure and self.state is not TS.UNWINDING:
            self._alert(f"legged exposure {self.legged_exposure():,.0f} CNY is above the limit")
            self._start_unwind("legged exposure limit hit")

    def _hedge_lead_fill(self) -> None:
        """Lead-lag: send the hedge leg for what the lead has filled, never more."""
        lead = next((leg for leg in self.legs if leg.orders), None)
        if lead is None:
            return
        units = lead.net // lead.lots_per_unit
        for leg in self._hedge_leg_for(lead):
            sent = sum(o.qty for o in leg.orders if o.side is leg.side)
            needed = units * leg.lots_per_unit - sent
            if needed > 0:
                price = self._limit(leg, leg.side, self._crossing(leg, leg.side) or leg.decision_px)
                self._send([(leg, self._request(leg, needed, price))], f"hedge {needed} for lead fill")

    def _on_order_state(self, order: Order, state: Any) -> None:
        if not self.done and order.done:
            self._engine._loop.call_soon(self._settle)

    def _settle(self) -> None:
        """Every order of the ticket has ended: decide the next step."""
        if self.done or any(leg.working for leg in self.legs):
            return
        if self.policy.mode == "lead_lag" and self.state is TS.WORKING:
            self._hedge_lead_fill()
            if any(leg.working for leg in self.legs):
                return
        if self.state is TS.UNWINDING:
            self._after_unwind()
            return
        if all(leg.net == leg.target for leg in self.legs):
            self._t_filled = self._engine.clock.mono_ns()
            self._set(TS.FILLED, "all legs filled")
            return
        if self.is_balanced():
            self._legged_since = None
            units = min(leg.units() for leg in self.legs)
            if self.policy.policy == "chase" and self._can_chase():
                self._chase(f"balanced at {units:g} of {self.units} units; re-sending the rest")
            elif units == 0:
                self._set(TS.CANCELLED, "no leg filled: nothing at risk")
            else:
                self._set(TS.CANCELLED, f"balanced at {units:g} of {self.units} units; the rest not filled")
            return
        if self.state is not TS.LEGGED:
            self._set(TS.LEGGED, self._imbalance_text())
        if self._legged_since is None:
            self._legged_since = self._engine.clock.mono_ns()
        if self.policy.policy == "chase":
            if self._can_chase():
                self._chase("re-pricing the missing leg")
            else:
                self._start_unwind("chase limits reached")
        elif self.policy.policy == "unwind":
            self._start_unwind("policy unwind")
        else:
            self._alert(f"ticket {self.ticket_id} is LEGGED and on hold: {self._imbalance_text()}")
            remaining = self.policy.max_legged_ms - self._legged_ms()
            self._arm_timer(max(remaining, 0.0), self._on_hold_timeout)

    def _imbalance_text(self) -> str:
        naked = {k: v for k, v in self.imbalance_lots().items() if v}
        return "naked " + ", ".join(f"{v:+d} lots {k}" for k, v in naked.items())

    def _legged_ms(self) -> float:
        if self._legged_since is None:
            return 0.0
        return (self._engine.clock.mono_ns() - self._legged_since) / 1e6

    def _can_chase(self) -> bool:
        if self.attempts >= self.policy.max_attempts:
            return False
        elapsed = (self._engine.clock.mono_ns() - (self._t_decision or 0)) / 1e6
        return elapsed <= self.policy.chase_window_ms and self._legged_ms() <= self.policy.max_legged_ms

    def _crossing(self, leg: Leg, side: Side) -> Decimal | None:
        quote = self._engine._quotes.get(leg.id)
        if quote is None:
            return None
        px = quote.ask if side is Side.BUY else quote.bid
        if not px or px != px:
            return None
        return leg.instrument.round_to_tick(px)

    def _chase(self, why: str) -> None:
        """Re-order each short leg at today's crossing price, within chase_ticks of the decision."""
        top = max(leg.units() for leg in self.legs) if not self.is_balanced() else self.units
        batch = []
        for leg in self.legs:
            short = round(top * leg.lots_per_unit) - leg.net
            if short <= 0:
                continue
            crossing = self._crossing(leg, leg.side)
            bound = leg.decision_px + leg.side.sign * leg.instrument.tick * self.policy.chase_ticks
            if crossing is None or (crossing - bound) * leg.side.sign > 0:
                self._journal(
                    "HedgeChase",
                    {"leg": leg.id, "abandoned": True, "crossing": str(crossing), "bound": str(bound)},
                )
                self._start_unwind(
                    f"price ran away on {leg.id}: crossing {crossing} beyond chase bound {bound}"
                )
                return
            price = self._limit(leg, leg.side, crossing)
            price = min(price, bound) if leg.side is Side.BUY else max(price, bound)
            batch.append((leg, self._request(leg, short, price)))
        if not batch:
            return
        self.attempts += 1
        self._set(TS.HEDGING, f"{why} (attempt {self.attempts}/{self.policy.max_attempts})")
        self._journal(
            "HedgeChase",
            {"attempt": self.attempts, "orders": {leg.id: [r.qty, str(r.price)] for leg, r in batch}},
        )
        self._send(batch, f"chase attempt {self.attempts}")

    def _start_unwind(self, why: str) -> None:
        """Roll back every leg's filled excess over the balanced position, with a bounded loss."""
        if self.done:
            return
        for order in self.orders:
            if not order.done:
                self._engine._loop.create_task(
                    self._engine._cancel(order, f"ticket {self.ticket_id}: unwinding")
                )
        if self.state is not TS.UNWINDING:
            self._set(TS.UNWINDING, why)
        if any(leg.working for leg in self.legs):
            return  # _settle comes back here once the cancels are answered
        self._unwind_step()

    def _unwind_step(self) -> None:
        excess = self.imbalance_lots()
        batch = []
        for leg in self.legs:
            lots = excess[leg.id]
            if lots <= 0:
                continue
            back = leg.side.opposite
            fills = leg.forward_fills()
            qty = sum(f.last_qty for f in fills)
            avg = sum((f.last_px * f.last_qty for f in fills), Decimal(0)) / qty if qty else leg.decision_px
            bound = leg.instrument.round_to_tick(
                avg - leg.side.sign * leg.instrument.tick * self.policy.unwind_ticks
            )
            crossing = self._crossing(leg, back) or bound
            price = self._limit(leg, back, crossing)
            price = max(price, bound) if back is Side.SELL else min(price, bound)
            batch.append((leg, self._request(leg, lots, price, side=back)))
        if not batch:
            self._after_unwind()
            return
        self.unwind_attempts += 1
        self._journal(
            "HedgeUnwind",
            {
                "attempt": self.unwind_attempts,
                "orders": {leg.id: [r.side.value, r.qty, str(r.price)] for leg, r in batch},
            },
        )
        self._send(batch, f"unwind attempt {self.unwind_attempts}")

    def _after_unwind(self) -> None:
        if self.is_balanced():
            self._set(TS.UNWOUND, "filled excess rolled back; no naked exposure")
        elif self.unwind_attempts < self.policy.max_attempts:
            self._unwind_step()
        else:
            self._alert(f"ticket {self.ticket_id} could not unwind: {self._imbalance_text()}")
            self._set(
                TS.BROKEN, f"unwind failed after {self.unwind_attempts} attempts: {self._imbalance_text()}"
            )

    # ------------------------------------------------------------------ timers

    def _arm_timer(self, ms: float, callback: Callable[[], None]) -> None:
        self._timers.append(self._engine._loop.call_later(ms / 1000, callback))

    def _on_leg_timeout(self, order: Order, stage: int) -> None:
        if self.done or order.done:
            return
        if stage == 1:
            self._journal(
                "HedgeTimeout", {"order": order.client_order_id, "stage": "cancel"}, order.client_order_id
            )
            self._engine._loop.create_task(
                self._engine._cancel(order, f"ticket {self.ticket_id}: leg timeout")
            )
            self._arm_timer(self.policy.leg_timeout_ms, lambda: self._on_leg_timeout(order, 2))
        elif stage == 2:
            self._journal(
                "HedgeTimeout", {"order": order.client_order_id, "stage": "reconcile"}, order.client_order_id
            )
            self._engine._loop.create_task(self._engine._reconcile_orders([order]))
            self._arm_timer(self.policy.leg_timeout_ms, lambda: self._on_leg_timeout(order, 3))
        else:
            self._alert(f"order {order.client_order_id} is unresolved after cancel and reconcile")
            self._set(TS.BROKEN, f"order {order.client_order_id} unresolved ({order.state.value})")

    def _on_hold_timeout(self) -> None:
        if self.state is TS.LEGGED and not self.is_balanced():
            self._start_unwind(f"held legged for {self.policy.max_legged_ms:g} ms: time limit")

    def _on_ticket_timeout(self) -> None:
        if self.done:
            return
        if self.is_balanced() and not any(leg.working for leg in self.legs):
            self._settle()
        elif self.state is TS.UNWINDING:
            self._alert(f"ticket {self.ticket_id} still unwinding at its time limit")
            self._set(TS.BROKEN, f"time limit reached while unwinding: {self._imbalance_text()}")
        else:
            self._start_unwind("ticket time limit reached")

    # ------------------------------------------------------------------ bookkeeping

    def _set(self, state: TicketState, reason: str) -> None:
        if state is not self.state and state not in TICKET_TRANSITIONS.get(self.state, frozenset()):
            raise RuntimeError(f"ticket {self.ticket_id}: illegal move {self.state} -> {state} ({reason})")
        previous = self.state
        if previous is TS.ARMED or state.is_terminal:
            self._engine.desk.ticket_left_armed(self)
        self.state = state
        self.reason = reason
        self.history.append((self._engine.clock.mono_ns(), state.value, reason))
        payload: dict[str, Any] = {"from": previous.value, "to": state.value, "reason": reason}
        if state.is_terminal:
            for timer in self._timers:
                timer.cancel()
            payload["report"] = _jsonable(self.report())
        self._journal("HedgeStateChanged", payload)
        self._report(_fire(self._state_callbacks, self, state))
        if state.is_terminal and not self._done.done():
            self._done.set_result(state)

    def _alert(self, message: str) -> None:
        self.alerts.append(message)
        self._engine.alert("hedge", "critical", message, ticket_id=self.ticket_id)

    def _journal(self, kind: str, payload: dict[str, Any], order_id: str | None = None) -> None:
        self._engine._journal_raw(kind, payload, ticket_id=self.ticket_id, order_id=order_id)

    def _report(self, errors: list[str]) -> None:
        self._engine._report(errors)

    def _describe(self) -> dict[str, Any]:
        return {
            "spread": self.spread.name,
            "side": self.side.value,
            "units": self.units,
            "legs": {leg.id: [leg.side.value, leg.target] for leg in self.legs},
            "trigger": str(self.trigger.condition) if self.trigger else None,
            "policy": asdict(self.policy),
        }

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        legs = ", ".join(f"{leg.side.value} {leg.net}/{leg.target} {leg.id}" for leg in self.legs)
        return (
            f"HedgeTicket({self.ticket_id} {self.spread.name} {self.side.value}: {self.state.value}; {legs})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(leg.id)}</td><td>{leg.side.value}</td><td>{leg.net} / {leg.target}</td>"
            f"<td>{leg.decision_px}</td><td>{len(leg.orders)}</td></tr>"
            for leg in self.legs
        )
        return (
            f"<div class='cmc-ticket'><b>{escape(self.ticket_id)}</b> {escape(self.spread.name)} "
            f"{self.side.value} {self.units} unit(s): <b>{self.state.value}</b> "
            f"<i>{escape(self.reason)}</i><table><tr><th>leg</th><th>side</th><th>filled</th>"
            f"<th>decision px</th><th>orders</th></tr>{rows}</table></div>"
        )


def parse_trigger(
    when: str | None, dwell_ms: float, hysteresis: float, max_count: int | None
) -> TriggerRule | None:
    if when is None:
        return None
    return TriggerRule(
        Condition.parse(when), dwell_ns=int(dwell_ms * 1e6), hysteresis=hysteresis, max_count=max_count
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    return value
