"""How a hedge ticket moves on the engine loop: firing, venue answers, chase, unwind, time limits.

:class:`TicketFlow` holds a ticket's position and runs its state machine
(``TICKET_TRANSITIONS``); :class:`~cmc_lab.execution.hedge.HedgeTicket` adds the public face.
What to send comes from the pure functions of :mod:`cmc_lab.execution.ticket`; this module
decides when. Every decision is journaled with its reason, linked to the ticket (and to the
order it concerns), before its orders leave.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cmc_lab.core.model import OrderFilled, OrderState, Side
from cmc_lab.core.order import Order, fire_callbacks
from cmc_lab.core.ports import CheckResult
from cmc_lab.core.trading import OrderRequest
from cmc_lab.execution.context import DeskContext
from cmc_lab.execution.spread import Spread, SpreadSnapshot
from cmc_lab.execution.ticket import (
    TICKET_TRANSITIONS,
    HedgePolicy,
    IllegalTicketMove,
    Leg,
    Planned,
    TicketState,
    chase_plan,
    crossing_price,
    decision_payload,
    hedged_units,
    imbalance,
    lead_leg,
    leg_figures,
    legged_exposure,
    limit_price,
    size_shortfall,
    unwind_plan,
)

TS = TicketState
TicketCallback = Callable[[Any, Any], None]
PlanChecked = tuple[list[tuple[Leg, OrderRequest]], list[CheckResult]]


class TicketFlow:
    """A ticket's legs, orders and state machine, run on the engine loop (see HedgeTicket)."""

    def __init__(
        self, desk: DeskContext, ticket_id: str, spread: Spread, side: Side, units: int, policy: HedgePolicy
    ) -> None:
        self._desk = desk
        self.ticket_id = ticket_id
        self.spread = spread
        self.side = side
        self.units = units
        self.policy = policy
        self.state = TicketState.NEW
        self.reason = ""
        self.decision: SpreadSnapshot | None = None
        self.attempts = 0
        self.unwind_attempts = 0
        self.alerts: list[str] = []
        self.history: list[tuple[int, str, str]] = []  # (mono ns, state, reason)
        self.legs = [
            Leg(
                desk.market.instrument(iid),
                side if weight > 0 else side.opposite,
                units * spread.lots[iid],
                spread.lots[iid],
            )
            for iid, weight in zip(spread.leg_ids, spread.defn.weights, strict=True)
        ]
        self._done: asyncio.Future[TicketState] = desk.runner.loop.create_future()
        self._fill_callbacks: list[TicketCallback] = []
        self._state_callbacks: list[TicketCallback] = []
        self._lead: Leg | None = None
        self._stopping: str | None = None  # why it stopped trying to fill (user cancel, time limit)
        self._t_decision: int | None = None
        self._t_filled: int | None = None
        self._legged_since: int | None = None
        self._legged_episode = 0
        self._held = False
        self._cancel_asked: set[str] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._last_wait: str | None = None
        self._last_unwind: list[Order] = []
        self._paused_after = 0
        self._stalled = 0  # unwind attempts in a row that filled nothing
        self._timers: list[asyncio.TimerHandle] = []

    # ================================================================== position

    @property
    def done(self) -> bool:
        return self.state.is_terminal

    @property
    def orders(self) -> list[Order]:
        return [o for leg in self.legs for o in leg.orders]

    def hedged_units(self) -> int:
        """Whole spread units every leg holds: the hedged part of the position."""
        return hedged_units(self.legs)

    def imbalance_lots(self) -> dict[str, int]:
        """Per leg, lots beyond the balanced (hedged) position: the naked part."""
        return imbalance(self.legs)

    def is_balanced(self) -> bool:
        return all(v == 0 for v in self.imbalance_lots().values())

    def legged_exposure(self) -> float:
        """Notional of the naked lots in CNY, at the legs' last quotes (or decision prices)."""
        return legged_exposure(self.legs, self._desk.market.quotes)

    def report(self) -> dict[str, Any]:
        """Per-ticket figures: slippage per leg (ticks and money), time between legs, outcome."""
        legs, between = leg_figures(self.legs)
        hedged = None
        if self._t_filled is not None and self._t_decision is not None:
            hedged = self._t_filled - self._t_decision
        return {
            "ticket": self.ticket_id,
            "spread": self.spread.name,
            "side": self.side.value,
            "outcome": self.state.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "unwind_attempts": self.unwind_attempts,
            "hedged_units": self.hedged_units(),
            "naked_lots": {k: v for k, v in self.imbalance_lots().items() if v},
            "decision_bid": self.decision.bid if self.decision else None,
            "decision_ask": self.decision.ask if self.decision else None,
            "time_between_legs_ns": between,
            "time_to_hedged_ns": hedged,
            "legs": legs,
        }

    # ================================================================== firing

    def _fire(self, why: str, snap: SpreadSnapshot | None = None) -> None:
        """Check both legs; send them only if every check passes, else DENIED and nothing leaves."""
        self._set(TS.CHECKING, why)
        self._t_decision = self._desk.market.mono_ns()
        denials: list[str] = []
        requests: list[OrderRequest] = []
        checked: list[CheckResult] = []  # each request's check result, handed on: the checks run once
        unquotable = self.spread.not_quotable_reason()
        if unquotable:
            denials.append(f"spread {self.spread.name!r} is not quotable: {unquotable}")
        else:
            snap = self.decision = snap or self.spread.quote()
            for leg, quote in zip(self.legs, snap.legs, strict=True):
                px = quote.ask if leg.side is Side.BUY else quote.bid
                leg.decision_px = leg.instrument.round_to_tick(px)
                price = limit_price(leg, leg.side, leg.decision_px, self.policy.allowance_ticks)
                requests.append(self._request(leg, leg.side, leg.target, price))
            checked = [self._desk.orders.check(request) for request in requests]
            for request, (denial, _) in zip(requests, checked, strict=True):
                if denial:
                    denials.append(f"{request.instrument.id}: {denial}")
            short = size_shortfall(self.policy, self.side, self.units, snap.bid_size, snap.ask_size)
            denials += [short] if short else []
        self._journal_decision(why, denials)
        if denials:
            self._set(TS.DENIED, "; ".join(denials))
            return
        self._set(TS.WORKING, f"{self.policy.mode}: both legs checked")
        self._arm_timer(self.policy.time_limit_ms, self._on_time_limit)
        if self.policy.mode == "lead_lag":
            lead = self._lead = lead_leg(self.legs, self._desk.market.quotes)
            i = self.legs.index(lead)
            self._send([(lead, requests[i])], "lead", "lead leg first", [checked[i]])
        else:
            self._send(list(zip(self.legs, requests, strict=True)), "leg", "legs sent together", checked)

    def _journal_decision(self, why: str, denials: list[str]) -> None:
        self._journal("HedgeDecision", decision_payload(self.decision, self.legs, why, denials))

    def _request(self, leg: Leg, side: Side, qty: int, price: Decimal) -> OrderRequest:
        account = self._desk.specs.venues[leg.instrument.venue].account
        return OrderRequest(leg.instrument, side, qty, price, account, self.ticket_id)

    def _blocked(self, requests: list[OrderRequest]) -> tuple[str | None, list[CheckResult]]:
        """Why orders would be denied now (venue down, kill switch): wait, do not burn attempts.

        Also each request's check result, up to the first denial, for :meth:`_send`.
        """
        checked = []
        for request in requests:
            result = self._desk.orders.check(request)
            checked.append(result)
            denial = result[0]
            if denial:
                return f"{request.instrument.id}: {denial}", checked
        return None, checked

    def _send(
        self,
        batch: list[tuple[Leg, OrderRequest]],
        purpose: str,
        why: str,
        checked: list[CheckResult] | None = None,
    ) -> list[Order]:
        """Hand the orders to the engine in one turn; each gets a HedgeOrderSent row and a timeout.

        ``checked``: the check results of these requests from earlier in this loop turn.
        """
        orders = self._desk.orders.submit_batch(
            [r for _, r in batch], self.policy.time_in_force, f"ticket {self.ticket_id}: {why}", checked
        )
        for (leg, request), order in zip(batch, orders, strict=True):
            leg.orders.append(order)
            order.on_fill(self._on_order_fill)
            order.on_state(self._on_order_state)
            self._journal(
                "HedgeOrderSent",
                {
                    "leg": leg.id,
                    "purpose": purpose,
                    "reason": why,
                    "side": request.side.value,
                    "qty": request.qty,
                    "price": str(request.price),
                    "state": order.state.value,
                },
                order.client_order_id,
            )
            self._arm_timer(self.policy.leg_timeout_ms, functools.partial(self._on_leg_timeout, order))
        if any(o.done for o in orders):  # denied in the batch: no state callback will come
            self._schedule_settle(retry=True)
        return orders

    def _checked_plan(self, plan: list[Planned], purpose: str) -> PlanChecked | None:
        """The planned orders and their check results, or None (and a retry scheduled) when the
        checks would deny them now."""
        batch = [(p.leg, self._request(p.leg, p.side, p.qty, p.price)) for p in plan]
        blocked, checked = self._blocked([r for _, r in batch])
        if blocked:
            why = f"{purpose} blocked: {blocked}"
            if purpose == "unwind" and why != self._last_wait:
                self._alert(f"ticket {self.ticket_id} cannot unwind ({self._imbalance_text()}): {blocked}")
            self._wait(why)
            return None
        return batch, checked

    def _send_plan(self, planned: PlanChecked, purpose: str, why: str) -> list[Order]:
        self._last_wait = None
        batch, checked = planned
        return self._send(batch, purpose, why, checked)

    # ================================================================== venue answers

    def _on_order_fill(self, order: Order, fill: OrderFilled) -> None:
        self._report(fire_callbacks(self._fill_callbacks, self, fill))
        if self.done:
            self._alert(
                f"ticket {self.ticket_id} is {self.state.value} but {order.client_order_id} filled "
                f"{fill.last_qty} more: {self._imbalance_text()}"
            )
            return
        if self._lead_lagging():
            self._hedge_lead_fill()
        self._track_legged()
        exposure = self.legged_exposure()
        if exposure > self.policy.max_legged_exposure and self.state is not TS.UNWINDING:
            self._alert(
                f"ticket {self.ticket_id}: legged exposure {exposure:,.0f} CNY is above the limit "
                f"{self.policy.max_legged_exposure:,.0f}; unwinding"
            )
            self._start_unwind(f"legged exposure {exposure:,.0f} CNY above the limit")
        elif not any(leg.working for leg in self.legs):
            self._schedule_settle()  # a fill on an order already done (late, or reconciled)

    def _on_order_state(self, order: Order, state: Any) -> None:
        if self.done:
            return
        if order.done:
            if self._lead_lagging():
                self._hedge_lead_fill()  # a hedge order ended: top up to the lead's units
            self._schedule_settle(retry=order.state is OrderState.DENIED)
        elif order.client_order_id in self._cancel_asked and state is not OrderState.PENDING_CANCEL:
            # the cancel was refused (unknown order, too late): ask the venue what it knows
            self._journal(
                "HedgeReconcile", {"reason": f"cancel refused: {order.reason}"}, order.client_order_id
            )
            self._desk.runner.loop.create_task(self._reconcile(order))

    def _lead_lagging(self) -> bool:
        return self.policy.mode == "lead_lag" and self.state is TS.WORKING and not self._stopping

    def _hedge_lead_fill(self) -> None:
        """Lead-lag: send the hedge legs for the whole units the lead has filled, never more.

        One hedge order per leg at a time: fills that arrive while it works are hedged when it ends.
        """
        lead = self._lead
        if lead is None:
            return
        units = max(lead.net, 0) // lead.lots_per_unit
        for leg in self.legs:
            needed = units * leg.lots_per_unit - leg.forward_sent
            if leg is lead or needed <= 0 or leg.working:
                continue
            reference = crossing_price(leg, leg.side, self._desk.market.quotes.get(leg.id)) or leg.decision_px
            price = limit_price(leg, leg.side, reference, self.policy.allowance_ticks)
            why = f"hedge {needed} lots for the lead's {units} filled unit(s)"
            self._send([(leg, self._request(leg, leg.side, needed, price))], "hedge", why)

    def _track_legged(self) -> None:
        """Start (or end) a legged episode; each one is bounded by max_legged_ms."""
        if self.is_balanced():
            self._legged_since = None
            return
        if self._legged_since is None:
            self._legged_since = self._desk.market.mono_ns()
            self._legged_episode += 1
            episode = self._legged_episode
            self._arm_timer(self.policy.max_legged_ms, lambda: self._on_legged_limit(episode))

    def _schedule_settle(self, retry: bool = False, pause_ms: float | None = None) -> None:
        if not retry:
            self._desk.runner.loop.call_soon(self._settle)
        elif self._retry is None:
            pause = self.policy.retry_ms if pause_ms is None else pause_ms
            self._retry = self._desk.runner.loop.call_later(pause / 1000, self._retry_now)
            self._timers.append(self._retry)

    def _retry_now(self) -> None:
        self._retry = None
        self._settle()

    def _settle(self) -> None:
        """No order of the ticket is working: decide the next step (its rows commit together)."""
        with self._desk.journal.batch():
            self._settle_now()

    def _settle_now(self) -> None:
        if self.done or self.state is TS.CHECKING or any(leg.working for leg in self.legs):
            return
        if self._lead_lagging():
            self._hedge_lead_fill()
            if any(leg.working for leg in self.legs):
                return
        self._track_legged()
        if self.state is TS.UNWINDING:
            self._after_unwind()
        elif all(leg.net == leg.target for leg in self.legs):
            self._t_filled = self._desk.market.mono_ns()
            self._set(TS.FILLED, "all legs filled")
        elif self.is_balanced():
            self._settle_balanced()
        elif self._stopping:
            self._start_unwind(self._stopping)
        else:
            self._settle_legged()

    def _settle_balanced(self) -> None:
        units = self.hedged_units()
        if self._stopping:
            self._set(TS.CANCELLED, f"{self._stopping}; balanced at {units} of {self.units} units")
        elif self.policy.policy == "chase" and self._can_chase():
            self._chase(f"balanced at {units} of {self.units} units; re-sending the rest")
        elif units == 0:
            self._set(TS.CANCELLED, "no leg filled: nothing at risk")
        else:
            self._set(TS.CANCELLED, f"balanced at {units} of {self.units} units; the rest not filled")

    def _settle_legged(self) -> None:
        if self.state is not TS.LEGGED:
            self._set(TS.LEGGED, self._imbalance_text())
        if self.policy.policy == "chase":
            if self._can_chase():
                self._chase("re-pricing the missing leg")
            else:
                self._start_unwind(
                    f"chase limits reached ({self.attempts}/{self.policy.max_attempts} attempts)"
                )
        elif self.policy.policy == "unwind":
            self._start_unwind("policy unwind")
        elif not self._held:
            self._held = True
            left = self.policy.max_legged_ms - self._legged_ms()
            self._journal(
                "HedgeHold", {"reason": f"policy hold: {self._imbalance_text()}", "unwind_in_ms": left}
            )
            self._alert(
                f"ticket {self.ticket_id} is LEGGED and on hold ({self._imbalance_text()}); it unwinds in "
                f"{left:,.0f} ms unless you act (t.cancel() unwinds now)"
            )

    def _imbalance_text(self) -> str:
        naked = {k: v for k, v in self.imbalance_lots().items() if v}
        if not naked:
            return "balanced"
        return "naked " + ", ".join(f"{v:+d} lots {k}" for k, v in naked.items())

    def _legged_ms(self) -> float:
        if self._legged_since is None:
            return 0.0
        return (self._desk.market.mono_ns() - self._legged_since) / 1e6

    def _can_chase(self) -> bool:
        if self.attempts >= self.policy.max_attempts:
            return False
        elapsed = (self._desk.market.mono_ns() - (self._t_decision or 0)) / 1e6
        return elapsed <= self.policy.chase_window_ms and self._legged_ms() <= self.policy.max_legged_ms

    # ================================================================== chase and unwind

    def _chase(self, why: str) -> None:
        """Re-order each short leg at today's crossing price, within chase_ticks of the decision."""
        plan, problem = chase_plan(self.legs, self.units, self._desk.market.quotes, self.policy)
        if problem and problem.startswith("no quote"):
            self._wait(f"chase: {problem}")
            return
        if problem:
            self._journal("HedgeChase", {"abandoned": True, "reason": problem})
            self._start_unwind(problem)
            return
        planned = self._checked_plan(plan, "chase") if plan else None
        if planned is None:
            return
        self.attempts += 1
        reason = f"{why} (attempt {self.attempts}/{self.policy.max_attempts})"
        self._set(TS.HEDGING, reason)
        orders = {p.leg.id: [p.qty, str(p.price)] for p in plan}
        self._journal("HedgeChase", {"attempt": self.attempts, "reason": reason, "orders": orders})
        self._send_plan(planned, "chase", f"chase attempt {self.attempts}")

    def _start_unwind(self, why: str) -> None:
        """Roll back every leg's filled excess over the balanced position, with a bounded loss."""
        if self.done:
            return
        if self.state is not TS.UNWINDING:
            self._set(TS.UNWINDING, why)
        self._cancel_working("unwinding")
        if not any(leg.working for leg in self.legs):
            self._after_unwind()  # otherwise _settle comes back here once the cancels are answered

    def _after_unwind(self) -> None:
        if self.is_balanced():
            units = self.hedged_units()
            if all(leg.net == leg.target for leg in self.legs):
                self._t_filled = self._desk.market.mono_ns()
                self._set(TS.FILLED, "all legs filled (while unwinding)")
            elif not any(o.fills for o in self.orders):
                self._set(TS.CANCELLED, f"{self.reason}: nothing filled, nothing at risk")
            else:
                why = f"{self.reason}: filled excess rolled back; balanced at {units} of {self.units} units"
                self._set(TS.UNWOUND, why)
        elif self.unwind_attempts >= self.policy.max_unwind_attempts:
            self._break(f"unwind failed after {self.unwind_attempts} attempts: {self._imbalance_text()}")
        elif self._last_unwind and self._paused_after != self.unwind_attempts:
            self._paused_after = self.unwind_attempts  # pause once before re-pricing
            self._stalled = 0 if any(o.filled_qty for o in self._last_unwind) else self._stalled + 1
            if not self._stalled:
                self._unwind_step()
                return
            # a halt or a closed book does not end faster for being hammered: back off
            pause = min(self.policy.retry_ms * 2 ** (self._stalled - 1), self.policy.retry_ms * 8)
            self._wait(f"unwind attempt {self.unwind_attempts} filled nothing; next in {pause:g} ms", pause)
        else:
            self._unwind_step()

    def _unwind_step(self) -> None:
        plan = unwind_plan(self.legs, self._desk.market.quotes, self.policy)
        if not plan:
            self._after_unwind()
            return
        planned = self._checked_plan(plan, "unwind")
        if planned is None:
            return
        self.unwind_attempts += 1
        limit = self.policy.max_unwind_attempts
        reason = f"roll back {self._imbalance_text()} (attempt {self.unwind_attempts}/{limit})"
        orders = {p.leg.id: [p.side.value, p.qty, str(p.price)] for p in plan}
        self._journal("HedgeUnwind", {"attempt": self.unwind_attempts, "reason": reason, "orders": orders})
        self._last_unwind = self._send_plan(planned, "unwind", f"unwind attempt {self.unwind_attempts}")

    def _wait(self, why: str, pause_ms: float | None = None) -> None:
        """Blocked for now (venue down, kill switch, no quote): try again after a pause (retry_ms)."""
        pause = self.policy.retry_ms if pause_ms is None else pause_ms
        if why != self._last_wait:
            self._last_wait = why
            self._journal("HedgeWait", {"reason": why, "retry_ms": pause})
        self._schedule_settle(retry=True, pause_ms=pause)

    def _cancel_working(self, why: str) -> None:
        for order in self.orders:
            if not order.done:
                self._cancel_order(order, why)

    def _cancel_order(self, order: Order, why: str) -> None:
        self._cancel_asked.add(order.client_order_id)
        self._desk.runner.loop.create_task(self._desk.orders.cancel(order, f"ticket {self.ticket_id}: {why}"))

    async def _reconcile(self, order: Order) -> None:
        try:
            await self._desk.orders.reconcile_orders([order])
        except Exception as exc:  # venue down: the next timeout (or the reconnect) tries again
            self._journal("HedgeReconcile", {"reason": f"reconcile failed: {exc}"}, order.client_order_id)

    def _stop(self, why: str) -> None:
        """No more chasing: cancel what works; then a balanced ticket ends, a legged one unwinds."""
        if self._stopping is None:
            self._stopping = why
            self._journal("HedgeStop", {"reason": why})
        if self.state is TS.UNWINDING:
            return
        self._cancel_working(why)
        if not any(leg.working for leg in self.legs):
            self._settle()

    def _break(self, why: str) -> None:
        self._cancel_working("ticket broken")
        self._alert(f"ticket {self.ticket_id} BROKEN: {why}")
        self._set(TS.BROKEN, why)

    # ================================================================== timers

    def _arm_timer(self, ms: float, callback: Callable[[], None]) -> None:
        self._timers.append(self._desk.runner.loop.call_later(ms / 1000, callback))

    def _on_leg_timeout(self, order: Order) -> None:
        """An order still working: cancel it; while it stays unresolved, ask the venue again."""
        if self.done or order.done:
            return
        cid = order.client_order_id
        if order.state is OrderState.PENDING_CANCEL or cid in self._cancel_asked:
            self._journal("HedgeTimeout", {"stage": "reconcile", "reason": "cancel not answered"}, cid)
            self._desk.runner.loop.create_task(self._reconcile(order))
        else:
            self._journal("HedgeTimeout", {"stage": "cancel", "reason": "leg timeout"}, cid)
            self._cancel_order(order, "leg timeout")
        self._arm_timer(self.policy.leg_timeout_ms, functools.partial(self._on_leg_timeout, order))

    def _on_legged_limit(self, episode: int) -> None:
        if self.done or episode != self._legged_episode or self._legged_since is None:
            return
        if self.state is TS.UNWINDING or self.is_balanced():
            return
        why = f"legged for {self.policy.max_legged_ms:g} ms: time limit ({self._imbalance_text()})"
        if self.policy.policy == "hold":
            self._alert(f"ticket {self.ticket_id}: {why}; unwinding")
        self._start_unwind(why)

    def _on_time_limit(self) -> None:
        if self.done:
            return
        self._arm_timer(self.policy.max_legged_ms, self._on_final_deadline)
        self._stop(f"ticket time limit of {self.policy.time_limit_ms:g} ms reached")

    def _on_final_deadline(self) -> None:
        if self.done:
            return
        unresolved = [o.client_order_id for o in self.orders if not o.done]
        extra = f"; orders unresolved: {', '.join(unresolved)}" if unresolved else ""
        self._break(f"time limit passed and still {self.state.value}: {self._imbalance_text()}{extra}")

    # ================================================================== bookkeeping

    def _set(self, state: TicketState, reason: str) -> None:
        if state is not self.state and state not in TICKET_TRANSITIONS.get(self.state, frozenset()):
            raise IllegalTicketMove(
                f"ticket {self.ticket_id}: illegal move {self.state} -> {state} ({reason})"
            )
        previous = self.state
        self.state = state
        self.reason = reason
        if state not in (TS.ARMED, TS.DISARMED):
            self._desk.left_armed(self)
        self.history.append((self._desk.market.mono_ns(), state.value, reason))
        payload: dict[str, Any] = {"from": previous.value, "to": state.value, "reason": reason}
        if state.is_terminal:
            for timer in self._timers:
                timer.cancel()
            payload["report"] = self.report()  # the journal writes Decimal as exact text
        self._journal("HedgeStateChanged", payload)
        self._report(fire_callbacks(self._state_callbacks, self, state))
        if state.is_terminal and not self._done.done():
            self._done.set_result(state)

    def _alert(self, message: str) -> None:
        self.alerts.append(message)
        self._desk.alerts.alert("hedge", "critical", message, ticket_id=self.ticket_id)

    def _journal(self, kind: str, payload: dict[str, Any], order_id: str | None = None) -> None:
        self._desk.journal.write_raw(kind, payload, ticket_id=self.ticket_id, order_id=order_id)

    def _report(self, errors: list[str]) -> None:
        self._desk.runner.report(errors)
