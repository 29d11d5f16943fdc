"""A hedge ticket's position and record: its legs and orders, what they hold (hedged, naked, exposure),
its report, and how it records (state changes, journal rows, alerts).

:class:`TicketPosition` owns a ticket's state; :class:`~cmc_lab.execution.flow.TicketFlow` builds
the moves on it (when to send what), :class:`~cmc_lab.execution.hedge.HedgeTicket` the public face.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cmc_lab.core.display import Readable
from cmc_lab.core.model import Side
from cmc_lab.core.order import Order, fire_callbacks
from cmc_lab.core.ports import CheckResult
from cmc_lab.core.trading import OrderRequest
from cmc_lab.execution.context import DeskContext
from cmc_lab.execution.figures import (
    fee_figures,
    leg_figures,
    money_figures,
    naked_lines,
    naked_positions,
    naked_text,
    order_rows,
)
from cmc_lab.execution.spread import Spread, SpreadSnapshot
from cmc_lab.execution.ticket import (
    TICKET_TRANSITIONS,
    HedgePolicy,
    IllegalTicketMove,
    Leg,
    TicketState,
    hedged_units,
    imbalance,
    legged_exposure,
)

TS = TicketState
TicketCallback = Callable[[Any, Any], None]
Limit = dict[str, Any]


class TicketPosition:
    """A ticket's legs, orders and state, and how it records them (engine loop; see HedgeTicket)."""

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
        self.limits: list[Limit] = []  # each limit that changed what the ticket does
        self.purposes: dict[str, str] = {}  # client order id -> why it was sent, in sending order
        self.exposure_limit: float | None = None  # naked CNY that unwinds at once; set on firing
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
        self._stop_limit: Limit | None = None
        self._t_decision: int | None = None
        self._t_filled: int | None = None
        self._legged_since: int | None = None
        self._legged_episode = 0
        self._held = False
        self._cancel_asked: set[str] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._last_wait: str | None = None
        self._venue_wait: str | None = None
        self._last_unwind: list[Order] = []
        self._paused_after = 0
        self._stalled = 0  # unwind attempts in a row that filled nothing
        self._timers: list[asyncio.TimerHandle] = []
        self._unresolved: dict[str, Order] = {}  # working when their venue dropped: fate unknown
        self._overdue = False  # a deadline passed while an order was unresolved

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
        """Per leg, the naked lots as the account holds them: signed (+ long, - short) beyond the
        balanced part. A sell leg short of its hedge by 3 lots is ``-3``; ``+3`` is long."""
        lots = imbalance(self.legs)
        return {leg.id: lots[leg.id] * leg.side.sign for leg in self.legs}

    @property
    def is_balanced(self) -> bool:
        """True when every leg holds its hedge: no naked lots (:meth:`imbalance_lots` all zero)."""
        return all(v == 0 for v in imbalance(self.legs).values())

    def legged_exposure(self) -> float:
        """Notional of the naked lots in CNY, at the legs' last quotes (or decision prices)."""
        return legged_exposure(self.legs, self._desk.market.quotes)

    def report(self) -> Readable:
        """Per-ticket figures: every order, slippage per leg, naked lots as the account holds them
        and the order that flattens each, the unwind's prices and cost, realised P&L, the limits
        that changed what it did, time between legs, outcome, the fees the book charged for the
        ticket's fills and the realised P&L net of them. Money is Decimal; CNY at the decision's
        USDCNH (``fx_usdcnh``)."""
        legs, between = leg_figures(self.legs)
        hedged = None
        if self._t_filled is not None and self._t_decision is not None:
            hedged = self._t_filled - self._t_decision
        naked = naked_positions(self.legs)
        fx = self.decision.fx if self.decision else None
        usdcnh = Decimal(str(fx)) if fx else None
        figures = {
            "ticket": self.ticket_id,
            "spread": self.spread.name,
            "side": self.side.value,
            "outcome": self.state.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "unwind_attempts": self.unwind_attempts,
            "hedged_units": self.hedged_units(),
            "naked_lots": naked,
            "naked": naked_lines(naked),
            "decision_bid": self.decision.bid if self.decision else None,
            "decision_ask": self.decision.ask if self.decision else None,
            "fx_usdcnh": usdcnh,
            "exposure_limit": self.exposure_limit,
            "limits": list(self.limits),
            "time_between_legs_ns": between,
            "time_to_hedged_ns": hedged,
            "legs": legs,
            "orders": order_rows(self.legs, self.purposes),
            **money_figures(self.legs, self.purposes, usdcnh),
            **fee_figures(self.legs, self._desk.bookings_of, usdcnh),
        }
        gross, fees = figures["realised_pnl_cny"], figures["fees_cny"]
        figures["realised_pnl_net_cny"] = None if gross is None or fees is None else gross - fees
        return Readable(figures)  # shown as a table in a notebook; a dict for code

    def naked_text(self) -> str:
        """What is naked, as the account holds it, and the order that flattens each leg:
        ``naked: short 3 SHFE.au; buy 3 to flatten`` (``balanced`` when nothing is)."""
        return naked_text(naked_positions(self.legs))

    # ================================================================== checks and timers

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

    def _arm_timer(self, ms: float, callback: Callable[[], None]) -> None:
        self._timers.append(self._desk.runner.loop.call_later(ms / 1000, callback))

    def _legged_ms(self) -> float:
        if self._legged_since is None:
            return 0.0
        return (self._desk.market.mono_ns() - self._legged_since) / 1e6

    def _chase_ms(self) -> float:
        return (self._desk.market.mono_ns() - (self._t_decision or 0)) / 1e6

    # ================================================================== unresolved orders

    def _live(self) -> bool:
        """Some order works on a venue that answers (not one whose fate is unknown)."""
        return any(not o.done and o.client_order_id not in self._unresolved for o in self.orders)

    def _unknown(self) -> list[Order]:
        return [o for o in self._unresolved.values() if not o.done]

    def _unknown_venues(self) -> str:
        return ", ".join(sorted({o.instrument.venue for o in self._unknown()}))

    def _unknown_text(self) -> str:
        ids = ", ".join(o.client_order_id for o in self._unknown())
        return f"{ids} unresolved while {self._unknown_venues()} is down"

    def _wait_for_venues(self, why: str) -> None:
        """Nothing to do until the venues of the unresolved orders return (their reconnect resumes it)."""
        reason = f"{why}; waiting for {self._unknown_venues()}: {self._unknown_text()}"
        if reason != self._venue_wait:
            self._venue_wait = reason
            self._journal("HedgeWait", {"reason": reason, "retry_ms": None})

    # ================================================================== bookkeeping

    def _set(self, state: TicketState, reason: str, extra: dict[str, Any] | None = None) -> None:
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
        payload: dict[str, Any] = {
            "from": previous.value,
            "to": state.value,
            "reason": reason,
            **(extra or {}),
        }
        if state.is_terminal:
            for timer in self._timers:
                timer.cancel()
            payload["report"] = self.report()  # the journal writes Decimal as exact text
        self._journal("HedgeStateChanged", payload)
        self._report(fire_callbacks(self._state_callbacks, self, state))
        if state.is_terminal and not self._done.done():
            self._done.set_result(state)

    def _alert(self, message: str, level: str = "critical") -> None:
        self.alerts.append(message)
        self._desk.alerts.alert("hedge", level, message, ticket_id=self.ticket_id)

    def _journal(self, kind: str, payload: dict[str, Any], order_id: str | None = None) -> None:
        self._desk.journal.write_raw(kind, payload, ticket_id=self.ticket_id, order_id=order_id)

    def _report(self, errors: list[str]) -> None:
        self._desk.runner.report(errors)
