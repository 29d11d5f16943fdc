"""The engine's order plumbing: validate, check, journal the intent, send; cancel, kill, reconcile.

A part of :class:`~cmc_lab.engine.facade.Engine`, which inherits it (``eng._submit_batch(...)`` and
the rest are the engine's own methods); kept apart so engine.py stays the loop, the lifecycle
and incoming messages. The guarantee that an order's intent is committed to the journal before
its message is handed to the venue is kept here, in :meth:`EngineOrders._submit_batch`.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from cmc_lab.core.crashpoints import crash_point
from cmc_lab.core.model import (
    CancelOrder,
    Event,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderRejected,
    OrderState,
    OrderSubmitted,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
    TradingStateChanged,
    parse_price,
    parse_qty,
)
from cmc_lab.core.order import Order
from cmc_lab.core.specs import Specs
from cmc_lab.journal import JournalError
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.pretrade import OrderRequest, PreTradeChecks, TradingState
from cmc_lab.venues.base import Venue

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine


class InvalidOrder(ValueError):
    """An order whose arguments cannot be sent at all (unknown symbol, bad price or size)."""


class EngineOrders:
    """Order plumbing of :class:`~cmc_lab.engine.facade.Engine` (runs on its loop unless a method says not)."""

    # Engine state used here; Engine.__init__ sets it.
    specs: Specs
    checks: PreTradeChecks
    venues: dict[str, Venue]
    risk: RiskMonitor
    trading_state: TradingState
    errors: list[str]
    _orders: dict[str, Order]
    _quotes: dict[str, Quote]
    _order_seq: int
    _id_prefix: str
    _journal_fault: dict[str, Any] | None
    _loop: asyncio.AbstractEventLoop

    if TYPE_CHECKING:  # defined by Engine and its journal part

        def instrument(self, instrument_id: str) -> Instrument: ...
        def now_ns(self) -> int: ...
        def venue_connected(self, venue: str) -> bool: ...
        def _on_event(self, event: Event) -> None: ...
        def _report(self, errors: list[str]) -> None: ...
        def _journal(
            self, events: list[Event], ticket_id: str | None = None, *, now: bool = False
        ) -> None: ...
        def _journal_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> None: ...
        def _journal_failed(self, exc: JournalError) -> None: ...

    def _request(
        self,
        instrument_id: str,
        side: str | Side,
        qty: int,
        price: float | str | Decimal,
        account: str | None,
        ticket_id: str | None,
    ) -> OrderRequest:
        """Static validation in the caller's thread: bad arguments never reach the journal."""
        instrument = self.instrument(instrument_id)
        if not instrument.tradeable:
            raise InvalidOrder(f"{instrument_id} is a {instrument.kind} rate; it cannot be traded")
        try:
            return OrderRequest(
                instrument=instrument,
                side=Side.parse(side),
                qty=parse_qty(qty, instrument),
                price=parse_price(price, instrument),
                account=account or self.specs.venues[instrument.venue].account,
                ticket_id=ticket_id,
            )
        except ValueError as exc:
            raise InvalidOrder(str(exc)) from None

    def _next_client_order_id(self) -> str:
        self._order_seq += 1
        return f"{self._id_prefix}-{self._order_seq:06d}"

    async def _submit(self, req: OrderRequest, tif: TimeInForce, reason: str) -> Order:
        return self._submit_now(req, tif, reason)

    def _submit_now(self, req: OrderRequest, tif: TimeInForce, reason: str) -> Order:
        return self._submit_batch([req], tif, reason)[0]

    def _submit_batch(
        self,
        requests: list[OrderRequest],
        tif: TimeInForce,
        reason: str,
        checked: list[tuple[str | None, tuple[str, ...]]] | None = None,
    ) -> list[Order]:
        """Check each order, commit every intent in one transaction, then hand them all to venues.

        Runs in one loop turn, so the legs of a hedge leave together. ``checked``: the checks'
        results for these requests, run by the caller earlier in this same loop turn (a hedge
        decision checks its legs before it commits to sending them); they are not run twice.
        """
        now = self.now_ns()
        engine = cast("Engine", self)  # an Order talks back to its Engine, the one class built on this
        staged: list[tuple[Order, OrderRequest, OrderInitialized, OrderEvent]] = []
        rows: list[Event] = []
        for i, req in enumerate(requests):
            cid = self._next_client_order_id()
            inst = req.instrument
            order = Order(
                engine, cid, inst, req.side, req.qty, req.price, tif, req.account, req.ticket_id, self._loop
            )
            self._orders[cid] = order
            init = _initialized(now, cid, req, tif, reason, self._quotes.get(inst.id))
            denial, passed = checked[i] if checked is not None else self.checks.run(req, self)
            outcome: OrderEvent
            if denial is None:
                outcome = OrderSubmitted(now, now, cid, inst.id, ",".join(passed))
            else:
                outcome = OrderDenied(now, now, cid, inst.id, denial)
            staged.append((order, req, init, outcome))
            rows += [init, outcome]
        try:
            self._journal(rows, ticket_id=requests[0].ticket_id if requests else None, now=True)
        except JournalError as exc:
            self._journal_failed(exc)
            for order, _, init, _ in staged:
                order._apply(init)
                denied = OrderDenied(
                    now, now, order.client_order_id, order.instrument_id, f"journal unavailable: {exc}"
                )
                self._apply(order, denied)
            return [order for order, *_ in staged]
        for order, _, init, outcome in staged:
            order._apply(init)
            self._apply(order, outcome)
        for order, req, _, outcome in staged:
            if not isinstance(outcome, OrderSubmitted):
                continue
            command = SubmitOrder(
                order.client_order_id,
                req.instrument.id,
                req.side,
                req.qty,
                req.price,
                tif,
                req.account,
                now,
                req.ticket_id,
            )
            crash_point("after_intent_commit")
            try:
                self.venues[req.instrument.venue].submit(command)
            except Exception as exc:
                self._on_event(
                    OrderRejected(
                        self.now_ns(),
                        self.now_ns(),
                        order.client_order_id,
                        req.instrument.id,
                        f"not sent: {exc}",
                    )
                )
            crash_point("after_send")
        return [order for order, *_ in staged]

    async def _cancel(self, order: Order, reason: str) -> bool:
        if order.done or order.state is OrderState.PENDING_CANCEL:
            return False
        now = self.now_ns()
        self._on_event(OrderCancelRequested(now, now, order.client_order_id, order.instrument_id, reason))
        command = CancelOrder(order.client_order_id, order.instrument_id, now, order.venue_order_id)
        try:
            self.venues[order.instrument.venue].cancel(command)
        except Exception as exc:
            self.errors.append(f"cancel of {order.client_order_id} not sent: {exc}")
            return False
        return True

    async def _cancel_all(self, instrument_id: str | None, reason: str) -> int:
        count = 0
        for order in list(self._orders.values()):
            if not order.done and (instrument_id is None or order.instrument_id == instrument_id):
                count += await self._cancel(order, reason)
        return count

    async def _kill(self, reason: str, who: str) -> int:
        await self._set_trading_state(TradingState.HALTED, reason, who)
        return await self._cancel_all(None, f"kill switch: {reason}")

    async def _set_trading_state(self, state: TradingState, reason: str, who: str) -> None:
        if state is TradingState.ACTIVE and self._journal_fault is not None:
            fault, self._journal_fault = self._journal_fault, None
            self._journal_raw("JournalFault", fault)  # the outage on record, now that rows are taken
            if self._journal_fault is not None:  # still refused: stay HALTED (a new alert says so)
                return
        self.trading_state = state
        now = self.now_ns()
        self._on_event(TradingStateChanged(now, now, state.value, reason, who))

    async def _reconcile_orders(self, orders: list[Order]) -> None:
        """Reconcile just these orders (a hedge leg that neither acks nor cancels)."""
        for name in {o.instrument.venue for o in orders}:
            await self._reconcile(self.venues[name], [o for o in orders if o.instrument.venue == name])

    async def _reconcile(self, venue: Venue, orders: list[Order] | None = None) -> None:
        """Ask the venue about every order we think is working there and apply what changed."""
        candidates = orders if orders is not None else list(self._orders.values())
        working = [o for o in candidates if o.instrument.venue == venue.name and not o.done]
        if not working:
            return
        reports = {
            r.client_order_id: r for r in await venue.order_status([o.client_order_id for o in working])
        }
        changed, unknown = [], []
        for order in working:
            if order.done:  # answered while we were asking
                continue
            report = reports.get(order.client_order_id)
            now = self.now_ns()
            cid, iid = order.client_order_id, order.instrument_id
            before = len(order.events)
            if report is None:
                unknown.append(cid)
                lost = OrderRejected if order.state is OrderState.SUBMITTED else OrderCanceled
                self._on_event(lost(now, now, cid, iid, "reconcile: the venue does not know this order"))
                continue
            if order.state is OrderState.SUBMITTED and report.venue_order_id:
                self._on_event(OrderAccepted(now, now, cid, iid, report.venue_order_id))
            missing = report.filled_qty - order.filled_qty
            if missing > 0 and report.avg_px is not None:
                known = sum((f.last_px * f.last_qty for f in order.fills), Decimal(0))
                px = (report.avg_px * report.filled_qty - known) / missing
                trade_id = f"{cid}-reconciled-{len(order.fills) + 1}"
                self._on_event(
                    OrderFilled(
                        now, now, cid, iid, report.venue_order_id or "", trade_id, order.side, px, missing
                    )
                )
            if not order.done and report.state in _FINAL_REPORTS:
                self._on_event(_FINAL_REPORTS[report.state](now, now, cid, iid, "reconcile"))
            if len(order.events) != before:
                changed.append(cid)
        self._journal_raw(
            "Reconciled",
            {"venue": venue.name, "checked": len(working), "changed": changed, "unknown": unknown},
            venue=venue.name,
        )

    def _apply(self, order: Order, event: OrderEvent) -> None:
        self._report(order._apply(event))
        self.risk.on_order_event(order, event)


_FINAL_REPORTS: dict[OrderState, Any] = {
    OrderState.CANCELED: OrderCanceled,
    OrderState.EXPIRED: OrderExpired,
    OrderState.REJECTED: OrderRejected,
}


def _initialized(
    now: int, cid: str, req: OrderRequest, tif: TimeInForce, reason: str, quote: Quote | None
) -> OrderInitialized:
    """An order's decision row, with the top of book it saw (receipts and the audit pack show it)."""
    seen = (str(quote.bid), str(quote.ask), quote.ts_event) if quote is not None else (None, None, 0)
    inst = req.instrument
    return OrderInitialized(
        now, now, cid, inst.id, req.side, req.qty, req.price, tif, req.account, req.ticket_id, reason, *seen
    )


def _parse_tif(tif: str | TimeInForce) -> TimeInForce:
    try:
        return TimeInForce.parse(tif)
    except ValueError as exc:
        raise InvalidOrder(str(exc)) from None
