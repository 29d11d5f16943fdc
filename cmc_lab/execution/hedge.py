"""Hedge tickets: a spread traded with its legs sent together, chased or unwound when they do not fill.

A ticket runs entirely on the engine loop (:mod:`cmc_lab.execution.flow`). Its orders are
ordinary engine orders carrying the ticket id, so the journal's ``timeline(ticket_id)`` holds
every leg, re-order and unwind beside the ticket's own decisions (``Hedge*`` rows, each with
its reason). Every ticket ends in a terminal state: the legged-exposure limit,
``max_legged_ms`` and ``time_limit_ms`` bound every policy, and a ticket that cannot restore a
hedged position goes BROKEN with an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from html import escape
from typing import Any

from cmc_lab.core.model import OrderFilled, Side
from cmc_lab.core.order import register_callback
from cmc_lab.core.ports import CheckResult
from cmc_lab.core.trading import OrderRequest
from cmc_lab.execution.context import DeskContext
from cmc_lab.execution.flow import TicketFlow
from cmc_lab.execution.limits import exposure_limit
from cmc_lab.execution.position import TicketCallback
from cmc_lab.execution.spread import Spread, SpreadSnapshot
from cmc_lab.execution.ticket import (
    MODES,
    POLICIES,
    TICKET_TRANSITIONS,
    HedgePolicy,
    IllegalTicketMove,
    Leg,
    TicketNotArmed,
    TicketState,
    decision_payload,
    lead_leg,
    limit_price,
    size_shortfall,
)
from cmc_lab.execution.trigger import Condition, TriggerRule

TS = TicketState


class HedgeTicket(TicketFlow):
    """A hedged trade of a spread whose legs go out together; updates itself in place.

    Events (callbacks on the engine thread): ``on_fill(callback(ticket, fill))`` for every leg
    fill, ``on_state(callback(ticket, state))`` for every change of state.

    A ticket with a trigger waits ARMED; ``disarm()`` pauses it and ``arm()`` resumes it. With
    ``repeat=N`` each fire is one ticket and the next waits ARMED, up to N: ``series`` lists them.
    ``report()`` gives the per-ticket figures: every order, slippage per leg, naked lots as the
    account holds them, the unwind's cost, realised P&L, the limits that changed its course.

    Examples
    --------
    >>> t = eng.hedge("au_gc", side="buy", qty=3, policy="chase")   # doctest: +SKIP
    >>> t.wait(timeout=10); t.state, t.legs                          # doctest: +SKIP
    >>> t.report()["legs"]["COMEX.GC"]["slippage_ticks"]             # doctest: +SKIP
    """

    def __init__(
        self,
        desk: DeskContext,
        ticket_id: str,
        spread: Spread,
        side: Side,
        units: int,
        policy: HedgePolicy,
        trigger: TriggerRule | None,
        series: list[HedgeTicket] | None = None,
    ) -> None:
        super().__init__(desk, ticket_id, spread, side, units, policy)
        self.trigger = trigger
        self.series: list[HedgeTicket] = series if series is not None else []
        self.series.append(self)

    # ================================================================== reading

    def algo(self) -> str:
        trigger = f"trigger '{self.trigger.condition}'" if self.trigger is not None else "no trigger"
        return f"{super().algo()}, {trigger}"

    @property
    def qty(self) -> int:
        """Lots of the first leg (what ``eng.hedge(..., qty=)`` was given)."""
        return self.legs[0].target

    @property
    def fills(self) -> list[OrderFilled]:
        return sorted((f for leg in self.legs for o in leg.orders for f in o.fills), key=lambda f: f.ts_init)

    # ================================================================== acting (any thread)

    def wait(self, timeout: float = 10.0) -> TicketState:
        """Block until the ticket ends (or ``timeout`` seconds pass); returns its state."""
        return self._desk.runner.call(self._wait_on_loop(timeout), advance=True, timeout=timeout)

    async def wait_async(self, timeout: float = 10.0) -> TicketState:
        return await self._desk.runner.call_async(self._wait_on_loop(timeout), advance=True)

    async def _wait_on_loop(self, timeout: float) -> TicketState:
        if not self._done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._done), timeout)
        return self.state

    def cancel(self, reason: str = "cancelled by user") -> None:
        """Cancel a waiting ticket, or stop a working one: no more chasing; a legged one unwinds."""
        self._desk.runner.call(self._cancel_on_loop(reason))

    def arm(self, reason: str = "armed by user") -> None:
        """Resume the trigger of the disarmed ticket of this series."""
        self._desk.runner.call(self._arm_on_loop(True, reason))

    def disarm(self, reason: str = "disarmed by user") -> None:
        """Pause the trigger of the armed ticket of this series; it waits DISARMED until arm()."""
        self._desk.runner.call(self._arm_on_loop(False, reason))

    def on_fill(self, callback: TicketCallback, remove: bool = False) -> None:
        register_callback(self._fill_callbacks, callback, remove)

    def on_state(self, callback: TicketCallback, remove: bool = False) -> None:
        register_callback(self._state_callbacks, callback, remove)

    # ================================================================== on the loop: firing

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
        self.exposure_limit, basis = exposure_limit(self.policy, self.legs, snap.fx if snap else None)
        payload = decision_payload(self.decision, self.legs, why, denials)
        self._journal(
            "HedgeDecision", {**payload, "exposure_limit": self.exposure_limit, "exposure_limit_basis": basis}
        )
        if denials:
            self._set(TS.DENIED, "; ".join(denials))
            return
        self._set(TS.WORKING, f"{self.policy.mode}: both legs checked")
        if self.policy.mode == "lead_lag":
            lead = self._lead = lead_leg(self.legs, self._desk.market.quotes)
            i = self.legs.index(lead)
            self._send([(lead, requests[i])], "lead", "lead leg first", [checked[i]])
        else:
            self._send(list(zip(self.legs, requests, strict=True)), "leg", "legs sent together", checked)
        if not self.done:  # the time limit, armed once the legs are on their way (the same loop turn)
            self._arm_timer(self.policy.time_limit_ms, self._on_time_limit)

    # ================================================================== on the loop: the trigger

    async def _cancel_on_loop(self, reason: str) -> None:
        if self.state in (TS.NEW, TS.ARMED, TS.DISARMED):
            self._set(TS.CANCELLED, reason)
        elif not self.done:
            self._stop(reason)

    async def _arm_on_loop(self, arm: bool, reason: str) -> None:
        waiting = [t for t in self.series if t.state in (TS.ARMED, TS.DISARMED) and t.trigger]
        if not waiting:
            states = ", ".join(f"{t.ticket_id} {t.state.value}" for t in self.series)
            raise TicketNotArmed(
                f"ticket {self.ticket_id} has no armed or disarmed ticket in its series ({states}); "
                "only a ticket waiting for its trigger can be armed or disarmed"
            )
        ticket = waiting[-1]
        trigger = ticket.trigger
        if trigger is None:  # filtered above; for the type checker
            return
        if arm and ticket.state is TS.DISARMED:
            trigger.arm()
            ticket._set(TS.ARMED, reason)
        elif not arm and ticket.state is TS.ARMED:
            trigger.disarm()
            ticket._set(TS.DISARMED, reason)

    def _start(self) -> None:
        self._journal("HedgeCreated", self._describe())
        if self.trigger is not None:
            self._set(TS.ARMED, f"waiting for {self.trigger.condition}")
            return
        self._fire("no trigger: immediate")

    def _on_quote_snapshot(self, snap: SpreadSnapshot | None) -> None:
        """An armed ticket looks at its spread each time it is recomputed (None: not quotable)."""
        trigger = self.trigger
        if self.state is not TS.ARMED or trigger is None:
            return
        value = trigger.condition.read(snap.value) if snap is not None else None
        if trigger.update(value, snap.ts_ns if snap is not None else self._desk.market.now_ns()):
            why = f"trigger {trigger.condition} met at {value:.6g}"
            if trigger.max_count != 1:
                why += f" (fire {trigger.count}" + (f" of {trigger.max_count})" if trigger.max_count else ")")
            self._fire(why, snap)
            self._desk.fired(self)

    def _describe(self) -> dict[str, Any]:
        trigger = self.trigger
        return {
            "spread": self.spread.name,
            "side": self.side.value,
            "units": self.units,
            "legs": {leg.id: [leg.side.value, leg.target] for leg in self.legs},
            "trigger": str(trigger.condition) if trigger else None,
            "repeat": trigger.max_count if trigger else None,
            "series": self.series[0].ticket_id,
            "series_index": len(self.series),
            "policy": asdict(self.policy),
        }

    # ================================================================== display

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
            f"<i>{escape(self.reason)}</i> ({escape(self.naked_text())})<table><tr><th>leg</th><th>side</th><th>filled</th>"
            f"<th>decision px</th><th>orders</th></tr>{rows}</table></div>"
        )


def parse_trigger(when: str | None, dwell_ms: float, hysteresis: float, repeat: int) -> TriggerRule | None:
    """The trigger of ``eng.hedge(..., when=...)``: fires at most ``repeat`` times."""
    if when is None:
        return None
    return TriggerRule(
        Condition.parse(when), dwell_ns=int(dwell_ms * 1e6), hysteresis=hysteresis, max_count=repeat
    )


__all__ = [
    "MODES",
    "POLICIES",
    "TICKET_TRANSITIONS",
    "HedgePolicy",
    "HedgeTicket",
    "IllegalTicketMove",
    "Leg",
    "TicketNotArmed",
    "TicketState",
    "parse_trigger",
]
