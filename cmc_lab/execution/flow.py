"""How a hedge ticket moves on the engine loop once fired: venue answers, chase, unwind, limits, outages.

:class:`TicketFlow` runs a ticket's state machine (``TICKET_TRANSITIONS``) on its position
(:class:`~cmc_lab.execution.position.TicketPosition`); :class:`~cmc_lab.execution.hedge.HedgeTicket`
adds the public face and the firing. What to send comes from the pure functions of
:mod:`cmc_lab.execution.ticket`; this module decides when. Every decision is journaled with its
reason, linked to the ticket (and to the order it concerns), before its orders leave.

An order whose venue dropped while it worked is *unresolved*: its fate is unknown until the venue
is back and the order reconciled. Meanwhile the ticket acts on its fills only: it never chases or
ends on a guess, the legged limits still unwind the filled leg (on a venue that is up, or alert that
they cannot), and a deadline that passes is alerted instead of ending it. When the venue returns,
the ticket reconciles those orders and resumes (re-hedge, unwind, or BROKEN) with a fresh alert.
"""

from __future__ import annotations

import functools
from typing import Any

from cmc_lab.core.model import OrderFilled, OrderState
from cmc_lab.core.order import Order, fire_callbacks
from cmc_lab.core.ports import CheckResult
from cmc_lab.core.trading import OrderRequest
from cmc_lab.execution.limits import chase_overrun, limit_hit, limit_text
from cmc_lab.execution.position import Limit, TicketPosition
from cmc_lab.execution.ticket import (
    Leg,
    Planned,
    TicketState,
    chase_plan,
    crossing_price,
    limit_price,
    unwind_plan,
)

TS = TicketState
PlanChecked = tuple[list[tuple[Leg, OrderRequest]], list[CheckResult]]


class TicketFlow(TicketPosition):
    """A ticket's moves on the engine loop: answers, settle, chase, unwind, limits, outages."""

    # ================================================================== sending

    def algo(self) -> str:
        """What makes this ticket's orders, journaled with each intent (the record a regulator asks for)."""
        return f"hedge ticket {self.ticket_id}, spread {self.spread.name}, policy {self.policy.policy}/{self.policy.mode}"

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
            [r for _, r in batch],
            self.policy.time_in_force,
            f"ticket {self.ticket_id}: {why}",
            checked,
            self.algo(),
        )
        sent = []  # SHFE/INE: a leg order that needs two offsets went out as parts, one order each
        for (leg, request), first in zip(batch, orders, strict=True):
            for order in first.parts:
                sent.append(order)
                leg.orders.append(order)
                self.purposes[order.client_order_id] = purpose
                order.on_fill(self._on_order_fill)
                order.on_state(self._on_order_state)
                self._journal(
                    "HedgeOrderSent",
                    {
                        "leg": leg.id,
                        "purpose": purpose,
                        "reason": why,
                        "side": request.side.value,
                        "qty": order.qty,
                        "price": str(request.price),
                        "state": order.state.value,
                        "offset": order.offset,
                    },
                    order.client_order_id,
                )
                self._arm_timer(self.policy.leg_timeout_ms, functools.partial(self._on_leg_timeout, order))
        if any(o.done for o in sent):  # denied in the batch: no state callback will come
            self._schedule_settle(retry=True)
        return sent

    def _checked_plan(self, plan: list[Planned], purpose: str) -> PlanChecked | None:
        """The planned orders and their check results, or None (and a retry scheduled) when the
        checks would deny them now."""
        batch = [(p.leg, self._request(p.leg, p.side, p.qty, p.price)) for p in plan]
        blocked, checked = self._blocked([r for _, r in batch])
        if blocked:
            why = f"{purpose} blocked: {blocked}"
            if purpose == "unwind" and why != self._last_wait:
                self._alert(f"ticket {self.ticket_id} cannot unwind ({self.naked_text()}): {blocked}")
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
                f"{fill.last_qty} more: {self.naked_text()}"
            )
            return
        if self._lead_lagging():
            self._hedge_lead_fill()
        self._track_legged()
        exposure = self.legged_exposure()
        limit = self.exposure_limit
        if limit is not None and exposure > limit and self.state is not TS.UNWINDING:
            hit = limit_hit("max_legged_exposure", limit, exposure, self.policy, "unwind")
            self._alert(
                f"ticket {self.ticket_id}: legged exposure {exposure:,.0f} CNY is above the limit "
                f"{limit:,.0f} ({self.naked_text()}); unwinding"
            )
            self._start_unwind(f"legged exposure above the limit: {limit_text(hit, 'CNY')}", hit)
        elif not self._live():
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
        if self.is_balanced:
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
        if self.done or self.state is TS.CHECKING or self._live():
            return
        if self._lead_lagging():
            self._hedge_lead_fill()
            if self._live():
                return
        self._track_legged()
        if self.state is TS.UNWINDING:
            self._after_unwind()
        elif all(leg.net == leg.target for leg in self.legs):
            self._end(TS.FILLED, "all legs filled")
        elif self._unknown():
            self._settle_unresolved()
        elif self.is_balanced:
            self._settle_balanced()
        elif self._stopping:
            self._start_unwind(self._stopping, self._stop_limit)
        else:
            self._settle_legged()

    def _settle_balanced(self) -> None:
        units = self.hedged_units()
        if self._stopping:
            self._end(TS.CANCELLED, f"{self._stopping}; balanced at {units} of {self.units} units")
        elif self.policy.policy == "chase" and self._can_chase():
            self._chase(f"balanced at {units} of {self.units} units; re-sending the rest")
        elif units == 0:
            self._end(TS.CANCELLED, "no leg filled: nothing at risk")
        else:
            self._end(TS.CANCELLED, f"balanced at {units} of {self.units} units; the rest not filled")

    def _settle_legged(self) -> None:
        if self.state is not TS.LEGGED:
            self._set(TS.LEGGED, self.naked_text())
        if self.policy.policy == "chase":
            if self._can_chase():
                self._chase("re-pricing the missing leg")
            else:
                hit, unit = self._chase_limit()
                self._start_unwind(f"chase limits reached: {limit_text(hit, unit)}", hit)
        elif self.policy.policy == "unwind":
            self._start_unwind("policy unwind")
        elif not self._held:
            self._held = True
            left = self.policy.max_legged_ms - self._legged_ms()
            self._journal("HedgeHold", {"reason": f"policy hold: {self.naked_text()}", "unwind_in_ms": left})
            self._alert(
                f"ticket {self.ticket_id} is LEGGED and on hold ({self.naked_text()}); it unwinds in "
                f"{left:,.0f} ms unless you act (t.cancel() unwinds now)"
            )

    def _settle_unresolved(self) -> None:
        """Some order's fate is unknown: never chase or end on a guess. The filled lots stay bounded
        by the legged limits (max_legged_ms, the exposure limit), which unwind on a venue that is up."""
        if self.is_balanced:
            self._wait_for_venues("balanced on its fills")
        elif self._stopping or self.policy.policy == "unwind":
            self._start_unwind(self._stopping or "policy unwind", self._stop_limit)
        elif self.policy.policy == "hold":
            self._settle_legged()
        else:
            if self.state is not TS.LEGGED:
                self._set(TS.LEGGED, f"{self.naked_text()}; {self._unknown_text()}")
            left = self.policy.max_legged_ms - self._legged_ms()
            self._wait_for_venues(f"cannot chase: the missing leg may have filled; unwinds in {left:,.0f} ms")

    def _can_chase(self) -> bool:
        if self.attempts >= self.policy.max_attempts:
            return False
        return (
            self._chase_ms() <= self.policy.chase_window_ms and self._legged_ms() <= self.policy.max_legged_ms
        )

    def _chase_limit(self) -> tuple[Limit, str]:
        """Which chase limit stopped the chase, and the unit it counts in."""
        p = self.policy
        if self.attempts >= p.max_attempts:
            return limit_hit("max_attempts", p.max_attempts, self.attempts, p, "unwind"), "attempts"
        if self._chase_ms() > p.chase_window_ms:
            return limit_hit("chase_window_ms", p.chase_window_ms, self._chase_ms(), p, "unwind"), "ms"
        return limit_hit("max_legged_ms", p.max_legged_ms, self._legged_ms(), p, "unwind"), "ms"

    # ================================================================== chase and unwind

    def _chase(self, why: str) -> None:
        """Re-order each short leg at today's crossing price, within chase_ticks of the decision."""
        quotes = self._desk.market.quotes
        plan, problem = chase_plan(self.legs, self.units, quotes, self.policy)
        if problem and problem.startswith("no quote"):
            self._wait(f"chase: {problem}")
            return
        if problem:
            ticks = chase_overrun(self.legs, quotes)
            hit = limit_hit("chase_ticks", self.policy.chase_ticks, ticks, self.policy, "unwind")
            self._journal("HedgeChase", {"abandoned": True, "reason": problem, "limit": hit})
            self._start_unwind(f"{problem}: {limit_text(hit, 'ticks')}", hit)
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

    def _start_unwind(self, why: str, limit: Limit | None = None) -> None:
        """Roll back every leg's filled excess over the balanced position, with a bounded loss."""
        if self.done:
            return
        if limit is not None and not any(hit is limit for hit in self.limits):
            self.limits.append(limit)
        if self.state is not TS.UNWINDING:
            self._set(TS.UNWINDING, why, {"limit": limit} if limit is not None else None)
        self._cancel_working("unwinding")
        if not self._live():
            self._after_unwind()  # otherwise _settle comes back here once the cancels are answered

    def _after_unwind(self) -> None:
        if self.is_balanced:
            units = self.hedged_units()
            if all(leg.net == leg.target for leg in self.legs):
                self._end(TS.FILLED, "all legs filled (while unwinding)")
            elif not any(o.fills for o in self.orders):
                self._end(TS.CANCELLED, f"{self.reason}: nothing filled, nothing at risk")
            else:
                why = f"{self.reason}: filled excess rolled back; balanced at {units} of {self.units} units"
                self._end(TS.UNWOUND, why)
        elif self.unwind_attempts >= self.policy.max_unwind_attempts:
            self._break(f"unwind failed after {self.unwind_attempts} attempts: {self.naked_text()}")
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
        unknown_legs = {o.instrument_id for o in self._unknown()}
        plan = [
            p
            for p in unwind_plan(self.legs, self._desk.market.quotes, self.policy)
            if p.leg.id not in unknown_legs
        ]
        if not plan:
            if unknown_legs:  # what is naked has an order whose fate is unknown: never unwind twice
                self._wait_for_venues(f"unwind waits: {self.naked_text()}")
            else:
                self._after_unwind()
            return
        planned = self._checked_plan(plan, "unwind")
        if planned is None:
            return
        self.unwind_attempts += 1
        limit = self.policy.max_unwind_attempts
        reason = f"roll back {self.naked_text()} (attempt {self.unwind_attempts}/{limit})"
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
            if not order.done and order.client_order_id not in self._unresolved:
                self._cancel_order(order, why)

    def _cancel_order(self, order: Order, why: str) -> None:
        self._cancel_asked.add(order.client_order_id)
        self._desk.runner.loop.create_task(self._desk.orders.cancel(order, f"ticket {self.ticket_id}: {why}"))

    async def _reconcile(self, order: Order) -> None:
        try:
            await self._desk.orders.reconcile_orders([order])
        except Exception as exc:  # venue down: the next timeout (or the reconnect) tries again
            self._journal("HedgeReconcile", {"reason": f"reconcile failed: {exc}"}, order.client_order_id)

    def _stop(self, why: str, limit: Limit | None = None) -> None:
        """No more chasing: cancel what works; then a balanced ticket ends, a legged one unwinds."""
        if self._stopping is None:
            self._stopping, self._stop_limit = why, limit
            self._journal("HedgeStop", {"reason": why, **({"limit": limit} if limit else {})})
        if self.state is TS.UNWINDING:
            return
        self._cancel_working(why)
        if not self._live():
            self._settle()

    def _end(self, state: TicketState, why: str) -> None:
        """End the ticket, unless an order's fate is unknown: then it waits for the venue to return."""
        if self._unknown():
            self._wait_for_venues(f"would end {state.value} ({why})")
            return
        if state is TS.FILLED:
            self._t_filled = self._desk.market.mono_ns()
        self._set(state, why)

    def _break(self, why: str) -> None:
        unknown = self._unknown()
        if unknown:  # it may yet be whole: alert now, decide once the venue is back
            self._overdue = True
            message = (
                f"ticket {self.ticket_id} cannot finish ({why}); {self._unknown_text()}: "
                f"it resumes when {self._unknown_venues()} returns"
            )
            if message not in self.alerts:
                self._alert(message)
            self._wait_for_venues(why)
            return
        self._cancel_working("ticket broken")
        self._alert(f"ticket {self.ticket_id} BROKEN: {why}")
        self._set(TS.BROKEN, why)

    # ================================================================== venue outages

    def on_venue_down(self, venue: str) -> None:
        """``venue`` dropped: the ticket's orders working there are unresolved until it returns."""
        orders = [
            o
            for o in self.orders
            if not o.done and o.instrument.venue == venue and o.client_order_id not in self._unresolved
        ]
        if self.done or not orders:
            return
        self._unresolved.update((o.client_order_id, o) for o in orders)
        ids = [o.client_order_id for o in orders]
        why = f"{venue} dropped with {', '.join(ids)} working: fate unknown until it returns; {self.naked_text()}"
        self._journal("HedgeVenueDown", {"venue": venue, "orders": ids, "reason": why})
        self._schedule_settle()

    def on_venue_up(self, venue: str) -> None:
        """``venue`` is back: reconcile the ticket's unresolved orders there, then resume."""
        orders = [o for o in self._unresolved.values() if o.instrument.venue == venue]
        if orders and not self.done:
            self._desk.runner.loop.create_task(self._resume(venue, orders))

    async def _resume(self, venue: str, orders: list[Order]) -> None:
        """Reconcile, then resume. A venue down again keeps them unresolved (its next return tries
        again); one that is up but cannot say makes them live again, for their leg timeouts."""
        try:
            await self._desk.orders.reconcile_orders([o for o in orders if not o.done])
        except Exception as exc:
            self._journal("HedgeReconcile", {"reason": f"reconcile after {venue} returned failed: {exc}"})
            if not self._desk.market.venue_up.get(venue, False):
                return
        for order in orders:
            self._unresolved.pop(order.client_order_id, None)
        if self.done:
            return
        with self._desk.journal.batch():
            self._resume_now(venue, orders)

    def _resume_now(self, venue: str, orders: list[Order]) -> None:
        """The orders are reconciled: say what they did and what the ticket does now, then do it."""
        self._venue_wait = None
        outcome = {o.client_order_id: {"state": o.state.value, "filled": o.filled_qty} for o in orders}
        then = self._resume_step()
        said = ", ".join(f"{cid} {o['state']} ({o['filled']} filled)" for cid, o in outcome.items())
        why = f"{venue} returned: {said}; {self.naked_text()}; {then}"
        self._journal("HedgeResume", {"venue": venue, "orders": outcome, "reason": why, "then": then})
        self._alert(
            f"ticket {self.ticket_id} resumes after {why}",
            "critical" if not self.is_balanced else "warning",
        )
        if self._overdue and not self._unknown():
            self._overdue = False  # its deadline passed while it could not know: a fresh one
            self._arm_timer(self.policy.max_legged_ms, self._on_final_deadline)
        if self.state is TS.UNWINDING or self._stopping:
            self._cancel_working("resumed after a venue outage")
        self._settle_now()

    def _resume_step(self) -> str:
        """What :meth:`_settle_now` will do next, in words (it mirrors its branches)."""
        if self._unknown():
            return f"still waiting: {self._unknown_text()}"
        if self.is_balanced:
            return "balanced: settling"
        if self.state is TS.UNWINDING or self._stopping or self.policy.policy == "unwind":
            return "unwinding"
        if self.policy.policy == "hold":
            return "holding (policy hold)"
        return "re-hedging" if self._can_chase() else "unwinding (chase limits reached)"

    # ================================================================== timers

    def _on_leg_timeout(self, order: Order) -> None:
        """An order still working: cancel it; while it stays unresolved, ask the venue again."""
        if self.done or order.done:
            return
        cid = order.client_order_id
        if cid in self._unresolved:  # its venue is down: its return reconciles it, then this timer acts
            self._arm_timer(self.policy.leg_timeout_ms, functools.partial(self._on_leg_timeout, order))
            return
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
        if self.state is TS.UNWINDING or self.is_balanced:
            return
        hit = limit_hit("max_legged_ms", self.policy.max_legged_ms, self._legged_ms(), self.policy, "unwind")
        why = f"legged for {hit['seen']:,.0f} ms: time limit {limit_text(hit, 'ms')}; {self.naked_text()}"
        if self.policy.policy == "hold":
            self._alert(f"ticket {self.ticket_id}: {why}; unwinding")
        self._start_unwind(why, hit)

    def _on_time_limit(self) -> None:
        if self.done:
            return
        self._arm_timer(self.policy.max_legged_ms, self._on_final_deadline)
        p = self.policy
        hit = (
            None
            if self.state is TS.UNWINDING
            else limit_hit("time_limit_ms", p.time_limit_ms, self._chase_ms(), p, "stop")
        )
        self._stop(f"ticket time limit of {p.time_limit_ms:g} ms reached", hit)

    def _on_final_deadline(self) -> None:
        if self.done:
            return
        unresolved = [o.client_order_id for o in self.orders if not o.done]
        extra = f"; orders unresolved: {', '.join(unresolved)}" if unresolved else ""
        self._break(f"time limit passed and still {self.state.value}: {self.naked_text()}{extra}")
