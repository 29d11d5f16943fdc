"""Order routing: ids, checks, the intent committed before send; answers journaled before applied.

:class:`OrderRouter` is the engine part every order passes through, out and back. Outgoing, in
one loop turn: a client order id, the pre-trade checks, ``OrderInitialized`` + ``OrderSubmitted``
(or ``OrderDenied``) committed, and only then the command handed to the venue
(:meth:`OrderRouter.submit_batch`). Incoming: every event is journaled, then applied to its
live Order, then told to subscribers (:meth:`OrderRouter.on_event`). It also holds the trading
state (the kill switch) and is the pre-trade checks' view of the engine.
"""

from __future__ import annotations

import asyncio
import getpass
import importlib.metadata
import os
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from cmc_lab.core.crashpoints import crash_point
from cmc_lab.core.instruments import Instrument, parse_price, parse_qty
from cmc_lab.core.model import (
    CancelOrder,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderState,
    OrderSubmitted,
    Quote,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    TradingStateChanged,
    VenueConnected,
    VenueEvent,
    event_payload,
)
from cmc_lab.core.offsets import Offset
from cmc_lab.core.order import Order, fire_callbacks
from cmc_lab.core.ports import CheckResult
from cmc_lab.core.runner import Runner
from cmc_lab.core.specs import Specs
from cmc_lab.core.trading import OrderRequest, TradingState
from cmc_lab.engine.alerts import AlertLog
from cmc_lab.engine.errors import InvalidOrder, TradingRefused
from cmc_lab.engine.journaling import EngineJournal
from cmc_lab.engine.market import MarketState
from cmc_lab.journal import JournalError
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.pretrade import PreTradeChecks
from cmc_lab.venues.base import Amends, Venue

EventCallback = Callable[[Event], None]


class OrderRouter:
    """Orders out and answers in, on the engine loop (the :class:`~cmc_lab.core.ports.OrderSender` port).

    ``risk`` is set once by the engine after the risk monitor is built (the monitor sends orders
    through this router, and the router feeds the monitor every applied order event).
    """

    risk: RiskMonitor

    def __init__(
        self,
        *,
        specs: Specs,
        venues: Mapping[str, Venue],
        market: MarketState,
        writer: EngineJournal,
        runner: Runner,
        alerts: AlertLog,
        checks: PreTradeChecks,
        id_prefix: str,
    ) -> None:
        self.specs = specs
        self.venues = venues
        self.market = market
        self.writer = writer
        self.runner = runner
        self.alerts = alerts
        self.checks = checks
        self.id_prefix = id_prefix
        #: the trader every order names (``cmc.connect(..., trader=...)``, ``$CMC_LAB_TRADER``, else the OS user)
        self.trader = trader_id(None)
        self.orders: dict[str, Order] = {}
        self.trading_state = TradingState.ACTIVE
        self.event_callbacks: list[EventCallback] = []
        self.reconciling: dict[str, asyncio.Task[None]] = {}
        self.journal_fault: dict[str, Any] | None = None  # the write failure that HALTED trading
        self.refusal: str | None = None  # why trading may not resume in this session at all
        self._order_seq = 0
        self._replacing: dict[str, asyncio.Future[OrderEvent]] = {}  # orders with a replace on its way
        self._dropped: set[str] = set()  # venues that went down after being up
        self.closing: set[str] = set()  # venues whose session the user closed (not a drop)

    # ================================================================== the checks' view

    def now_ns(self) -> int:
        return self.market.now_ns()

    def venue_connected(self, venue: str) -> bool:
        return self.market.venue_up.get(venue, False)

    @property
    def halt_reason(self) -> str | None:
        """Why trading is HALTED when the kill switch did not do it (a journal that cannot be trusted
        or written)."""
        if self.refusal is not None:
            return self.refusal
        fault = self.journal_fault
        return None if fault is None else f"the journal cannot be written: {fault['error']}"

    def check(self, request: OrderRequest) -> CheckResult:
        return self.checks.run(request, self)

    # ================================================================== outgoing

    def request(
        self,
        instrument_id: str,
        side: str | Side,
        qty: int,
        price: float | str | Decimal,
        account: str | None,
        ticket_id: str | None,
        offset: str | Offset | None = None,
    ) -> OrderRequest:
        """Static validation in the caller's thread: bad arguments never reach the journal."""
        instrument = self.market.instrument(instrument_id)
        if not instrument.tradeable:
            raise InvalidOrder(
                f"{instrument_id} is a {instrument.kind} rate, not a contract; it cannot be traded: "
                "use it in a spread, and trade the futures legs"
            )
        default = self.specs.venues[instrument.venue].account
        known = self.risk.capital.accounts
        if account is not None and (not isinstance(account, str) or account not in known):
            raise InvalidOrder(
                f"account {account!r} is not known; use one of {', '.join(known)} (or leave it out: "
                f"{instrument.venue} trades in {default})"
            )
        try:
            return OrderRequest(
                instrument=instrument,
                side=Side.parse(side),
                qty=parse_qty(qty, instrument),
                price=parse_price(price, instrument),
                account=account or default,
                ticket_id=ticket_id,
                offset=self._offset(instrument, offset),
            )
        except ValueError as exc:
            raise InvalidOrder(str(exc)) from None

    def _offset(self, inst: Instrument, offset: str | Offset | None) -> Offset | None:
        if offset is None:
            return None
        if not self.risk.capital.offsets.keeps(inst):
            raise InvalidOrder(
                f"{inst.venue} nets long and short: its orders carry no offset; leave offset out for {inst.id}"
            )
        return Offset.parse(offset)

    def submit_now(self, request: OrderRequest, tif: TimeInForce, reason: str) -> Order:
        return self.submit_batch([request], tif, reason)[0]

    def submit_batch(
        self,
        requests: list[OrderRequest],
        tif: TimeInForce,
        reason: str,
        checked: list[CheckResult] | None = None,
        algo: str | None = None,
    ) -> list[Order]:
        """Check each order, commit every intent in one transaction, then hand them all to venues.

        Runs in one loop turn, so the legs of a hedge leave together. ``checked``: the checks'
        results for these requests, run by the caller earlier in this same loop turn (a hedge
        decision checks its legs before it commits to sending them); they are not run twice.
        ``algo``: what made the orders (a ticket, its policy and trigger), journaled with each intent.

        On SHFE and INE one venue order carries one offset: a request without one goes out as the
        parts the offset book plans (close yesterday's lots, today's, then open), each its own order
        journaled with its offset and ``part_of`` the first; a forced offset that closes more than
        can be closed is DENIED. Returns one Order per request, its first part (``order.parts``: all).
        """
        now = self.market.now_ns()
        staged: list[tuple[Order, OrderRequest, OrderInitialized, OrderEvent]] = []
        rows: list[Event] = []
        first: dict[int, Order] = {}
        parts = self.risk.capital.offsets.split(requests, now, self.risk.activity.orders_in)
        counts = Counter(i for i, _, _ in parts)
        for i, req, problem in parts:
            cid = self._next_client_order_id()
            inst = req.instrument
            order = Order(
                self.runner, self.request_cancel, cid, inst, req.side, req.qty, req.price, tif,
                req.account, req.ticket_id, replace=self.request_replace,
            )  # fmt: skip
            self.orders[cid] = order
            head = first.setdefault(i, order)
            if head is not order:
                head.parts.append(order)
                order.parts = head.parts
            part_of = head.client_order_id if head is not order else ""
            quote = self.market.quotes.get(inst.id)
            init = _initialized(now, cid, req, tif, reason, quote, self.trader, algo, part_of)
            whole = checked is not None and counts[i] == 1  # a split request's parts are checked each
            denial, passed = checked[i] if checked is not None and whole else self.checks.run(req, self)
            if problem is not None:
                denial = f"offset: {problem}"
            outcome: OrderEvent
            if denial is None:
                outcome = OrderSubmitted(now, now, cid, inst.id, ",".join(passed))
            else:
                outcome = OrderDenied(now, now, cid, inst.id, denial)
            staged.append((order, req, init, outcome))
            rows += [init, outcome]
        if not self.writer.write(rows, ticket_id=requests[0].ticket_id if requests else None, now=True):
            why = f"journal unavailable: {self.halt_reason}"
            for order, _, init, _ in staged:
                order.apply(init)
                self.apply(order, OrderDenied(now, now, order.client_order_id, order.instrument_id, why))
            return list(first.values())
        report = self.runner.report
        for order, _, init, outcome in staged:
            order.apply(init)
            report(order.apply(outcome))
        for order, req, _, outcome in staged:
            if isinstance(outcome, OrderSubmitted):
                self._send(order, req, tif, now)
        # The risk book's bookkeeping (working orders, margin held, rates) after the orders left: the
        # checks ran before the commit, and no venue answer is applied before this loop turn ends. An
        # order whose send failed at once is already rejected; its bookkeeping opens and closes here.
        on_order_event = self.risk.on_order_event
        for order, _, _, outcome in staged:
            on_order_event(order, outcome)
        return list(first.values())

    def _send(self, order: Order, req: OrderRequest, tif: TimeInForce, now: int) -> None:
        command = SubmitOrder(
            order.client_order_id, req.instrument.id, req.side, req.qty, req.price, tif, req.account, now,
            req.ticket_id, req.offset.value if req.offset is not None else "",
        )  # fmt: skip
        crash_point("after_intent_commit")
        try:
            self.venues[req.instrument.venue].submit(command)
        except Exception as exc:
            ts = self.market.now_ns()
            self.on_event(OrderRejected(ts, ts, order.client_order_id, req.instrument.id, f"not sent: {exc}"))
        crash_point("after_send")

    def _next_client_order_id(self) -> str:
        self._order_seq += 1
        return f"{self.id_prefix}-{self._order_seq:06d}"

    def request_cancel(self, order: Order) -> None:
        """``order.cancel()`` from a notebook: hand the cancel to the loop and wait for it to leave."""
        self.runner.call(self.cancel(order, "user request"))

    async def cancel(self, order: Order, reason: str) -> bool:
        if order.done or order.state is OrderState.PENDING_CANCEL:
            return False
        now = self.market.now_ns()
        self.on_event(OrderCancelRequested(now, now, order.client_order_id, order.instrument_id, reason))
        command = CancelOrder(order.client_order_id, order.instrument_id, now, order.venue_order_id)
        try:
            self.venues[order.instrument.venue].cancel(command)
        except Exception as exc:
            self.runner.report([f"cancel of {order.client_order_id} not sent: {exc}"])
            return False
        return True

    def request_replace(self, order: Order, price: Any, qty: Any, timeout: float) -> OrderEvent | None:
        """``order.replace()`` from a notebook: validated here, sent from the loop, the answer awaited."""
        inst = order.instrument
        try:
            new_price = order.price if price is None else parse_price(price, inst)
            new_qty = order.qty if qty is None else parse_qty(qty, inst)
        except ValueError as exc:
            raise InvalidOrder(str(exc)) from None
        if (new_qty, new_price) == (order.qty, order.price):
            raise InvalidOrder(
                f"order {order.client_order_id} already works {new_qty} @ {new_price}; nothing to replace"
            )
        return self.runner.call(
            self.replace(order, new_price, new_qty, timeout), advance=True, timeout=timeout
        )

    async def replace(self, order: Order, price: Decimal, qty: int, timeout: float) -> OrderEvent | None:
        """Check, journal ``OrderReplaceRequested``, hand ``ReplaceOrder`` to the venue, await its answer.

        Only a change that lowers the quantity at the same price reduces exposure: it passes every
        check. Any other change passes the pre-trade checks as the order it would become.
        """
        cid, iid, inst = order.client_order_id, order.instrument_id, order.instrument
        if order.state not in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED) or cid in self._replacing:
            why = (
                "a replace is already on its way" if cid in self._replacing else f"it is {order.state.value}"
            )
            raise InvalidOrder(f"order {cid} cannot be replaced now: {why}; wait for the venue's answer")
        if qty <= order.filled_qty:
            raise InvalidOrder(
                f"the new quantity {qty} of {cid} must be above the {order.filled_qty} filled; cancel it instead"
            )
        now = self.market.now_ns()
        venue = self.venues[inst.venue]
        refused = (
            None if isinstance(venue, Amends) else f"{inst.venue} cannot replace orders; cancel and resubmit"
        )
        if price == order.price and qty < order.qty:
            reason = f"reduces: quantity {order.qty} -> {qty}, every check passed as exempt"
        else:
            request = OrderRequest(
                instrument=inst, side=order.side, qty=qty - order.filled_qty, price=price,
                account=order.account, ticket_id=order.ticket_id, offset=Offset(order.offset) if order.offset else None,
            )  # fmt: skip
            denial, passed = self.checks.run(request, self)
            refused = refused or (f"denied: {denial}" if denial else None)
            reason = ",".join(passed)
        if refused is not None:
            rejected = OrderReplaceRejected(now, now, cid, iid, refused)
            self.on_event(rejected)
            return rejected
        answer: asyncio.Future[OrderEvent] = self.runner.loop.create_future()
        self._replacing[cid] = answer
        self.on_event(OrderReplaceRequested(now, now, cid, iid, qty, price, reason))
        try:
            venue.amend(ReplaceOrder(cid, iid, qty, price, now, order.venue_order_id))  # type: ignore[attr-defined]
        except Exception as exc:
            self.on_event(OrderReplaceRejected(now, now, cid, iid, f"not sent: {exc}"))
        try:
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except TimeoutError:
            return None
        finally:
            self._replacing.pop(cid, None)

    async def cancel_all(self, instrument_id: str | None, reason: str) -> int:
        count = 0
        for order in list(self.orders.values()):
            if not order.done and (instrument_id is None or order.instrument_id == instrument_id):
                count += await self.cancel(order, reason)
        return count

    # ================================================================== trading state

    async def kill(self, reason: str, who: str) -> int:
        self.set_trading_state(TradingState.HALTED, reason, who)
        cancelled = await self.cancel_all(None, f"kill switch: {reason}")
        self.alerts.alert(
            "kill switch",
            "critical",
            f"KILL pressed by {who}: {reason}; {cancelled} working order{'s' if cancelled != 1 else ''} "
            "cancelled, orders that add exposure blocked until eng.rearm()",
            details={"reason": reason, "who": who, "cancelled": cancelled},
        )
        return cancelled

    def refuse_trading(self, why: str, details: dict[str, Any]) -> None:
        """HALT for a reason no re-arm can lift (a damaged journal): journaled, alerted, said on rearm."""
        self.refusal = why
        self.alerts.alert("journal", "critical", f"trading HALTED: {why}", details=details)
        self.set_trading_state(TradingState.HALTED, why, "journal check")

    def set_trading_state(self, state: TradingState, reason: str, who: str) -> None:
        """Change the trading state, journaled; re-arming first puts a journal outage on record."""
        if state is TradingState.ACTIVE and self.refusal is not None:
            raise TradingRefused(f"cannot re-arm: {self.refusal}")
        if state is TradingState.ACTIVE and self.journal_fault is not None:
            fault, self.journal_fault = self.journal_fault, None
            if not self.writer.write_raw("JournalFault", fault):  # still refused: stay HALTED
                return
        self.trading_state = state
        now = self.market.now_ns()
        self.on_event(TradingStateChanged(now, now, state.value, reason, who))

    def journal_failed(self, exc: JournalError) -> None:
        """Without a journal we cannot prove what we sent: stop sending, and say why in an alert."""
        self.runner.report([f"journal write failed: {exc}"])
        if self.trading_state is not TradingState.HALTED:
            self.trading_state = TradingState.HALTED
            self.runner.report(["trading HALTED: the journal cannot be written; fix it and eng.rearm()"])
        if self.journal_fault is None:  # the first failure of an outage alerts (journaled if it can be)
            self.journal_fault = {
                "error": str(exc),
                "since_ns": self.market.now_ns(),
                "alert": self.alerts.next_id(),
            }
            self.alerts.alert(
                "journal",
                "critical",
                f"trading HALTED: the journal cannot be written, so no order is sent until it can ({exc}); "
                "fix the disk or the file, then eng.rearm()",
            )

    # ================================================================== incoming

    def on_event(self, event: Event) -> None:
        """Journal first, then apply, then tell subscribers."""
        ticket_id = None
        order = None
        if isinstance(event, OrderEvent):
            order = self.orders.get(event.client_order_id)
            if order is None:
                self.writer.write_raw("UnknownOrderReport", {"event": event.kind, **event_payload(event)})
                return
            if isinstance(event, OrderFilled) and order.seen_trade(event.trade_id):
                self.writer.write_raw(
                    "DuplicateFillIgnored", event_payload(event), order_id=order.client_order_id
                )
                return
            ticket_id = order.ticket_id
        crash_point("before_answer_journaled")
        self.writer.write([event], ticket_id=ticket_id)
        crash_point("after_answer_journaled")
        if order is not None:
            self.apply(order, event)  # type: ignore[arg-type]
            if isinstance(event, OrderFilled):
                self.risk.journal_booking(order, event)
            elif isinstance(event, OrderReplaced | OrderReplaceRejected):
                answer = self._replacing.get(order.client_order_id)
                if answer is not None and not answer.done():
                    answer.set_result(event)
        elif isinstance(event, VenueEvent):
            self._venue_health(event)
        self.runner.report(fire_callbacks(self.event_callbacks, event))

    def _venue_health(self, event: VenueEvent) -> None:
        """A venue that drops alerts at once, and its return alerts again, working ticket or not."""
        was_up = self.market.venue_up.get(event.venue, False)
        up = isinstance(event, VenueConnected)
        self.market.venue_up[event.venue] = up
        if not up:
            self.market.drop_quotes(event.venue)
            if was_up and event.venue not in self.closing:
                self._dropped.add(event.venue)
                working = sum(
                    1 for o in self.orders.values() if not o.done and o.instrument.venue == event.venue
                )
                self.alerts.alert(
                    "venue",
                    "critical",
                    f"{event.venue} disconnected ({event.detail or 'no reason given'}): its "
                    f"quotes are dropped and {working} working order(s) there are unknown until it returns",
                    venue=event.venue,
                )
        elif not was_up and event.venue in self._dropped:
            self._dropped.discard(event.venue)
            self.alerts.alert(
                "venue",
                "info",
                f"{event.venue} reconnected; its orders are being reconciled",
                venue=event.venue,
            )

    def apply(self, order: Order, event: OrderEvent) -> None:
        self.runner.report(order.apply(event))
        self.risk.on_order_event(order, event)

    # ================================================================== reconciliation

    def reconcile_in_background(self, venue: Venue) -> asyncio.Task[None]:
        """Start (or join) the reconcile of one venue; a failure is reported, never lost."""
        task = self.reconciling.get(venue.name)
        if task is None or task.done():
            task = self.runner.loop.create_task(self.reconcile(venue), name=f"reconcile of {venue.name}")
            task.add_done_callback(self.on_reconcile_done)
            self.reconciling[venue.name] = task
        return task

    def on_reconcile_done(self, task: asyncio.Task[None]) -> None:
        """A background reconcile must not fail unseen; the venue's next reconnect runs it again."""
        if not task.cancelled() and task.exception() is not None:
            self.runner.report(
                [f"{task.get_name()} failed: {task.exception()!r}; it runs again on reconnect"]
            )

    async def reconcile_orders(self, orders: list[Order]) -> None:
        """Reconcile just these orders (a hedge leg that neither acks nor cancels)."""
        for name in {o.instrument.venue for o in orders}:
            await self.reconcile(self.venues[name], [o for o in orders if o.instrument.venue == name])

    async def reconcile(self, venue: Venue, orders: list[Order] | None = None) -> None:
        """Ask the venue about every order we think is working there and apply what changed."""
        candidates = orders if orders is not None else list(self.orders.values())
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
            now = self.market.now_ns()
            cid, iid = order.client_order_id, order.instrument_id
            before = len(order.events)
            if report is None:
                unknown.append(cid)
                lost = OrderRejected if order.state is OrderState.SUBMITTED else OrderCanceled
                self.on_event(lost(now, now, cid, iid, "reconcile: the venue does not know this order"))
                continue
            if order.state is OrderState.SUBMITTED and report.venue_order_id:
                self.on_event(OrderAccepted(now, now, cid, iid, report.venue_order_id))
            missing = report.filled_qty - order.filled_qty
            if missing > 0 and report.avg_px is not None:
                known = sum((f.last_px * f.last_qty for f in order.fills), Decimal(0))
                px = (report.avg_px * report.filled_qty - known) / missing
                trade_id = f"{cid}-reconciled-{len(order.fills) + 1}"
                self.on_event(
                    OrderFilled(
                        now, now, cid, iid, report.venue_order_id or "", trade_id, order.side, px, missing
                    )
                )
            if not order.done and report.state in _FINAL_REPORTS:
                self.on_event(_FINAL_REPORTS[report.state](now, now, cid, iid, "reconcile"))
            if len(order.events) != before:
                changed.append(cid)
        self.writer.write_raw(
            "Reconciled",
            {"venue": venue.name, "checked": len(working), "changed": changed, "unknown": unknown},
            venue=venue.name,
        )


_FINAL_REPORTS: dict[OrderState, Any] = {
    OrderState.CANCELED: OrderCanceled,
    OrderState.EXPIRED: OrderExpired,
    OrderState.REJECTED: OrderRejected,
}


def _initialized(
    now: int,
    cid: str,
    req: OrderRequest,
    tif: TimeInForce,
    reason: str,
    quote: Quote | None,
    trader: str,
    algo: str | None,
    part_of: str = "",
) -> OrderInitialized:
    """An order's decision row, with the top of book it saw (receipts and the audit pack show it), the
    trader responsible and the algorithm that made it (``algo``, else the reason: manual, flatten ...)."""
    bid, ask, quote_ts = (
        (str(quote.bid), str(quote.ask), quote.ts_event) if quote is not None else (None, None, 0)
    )
    inst = req.instrument
    return OrderInitialized(
        now, now, cid, inst.id, req.side, req.qty, req.price, tif, req.account, req.ticket_id, reason,
        bid=bid, ask=ask, quote_ts=quote_ts, trader=trader, algo=f"cmc_lab {VERSION}: {algo or reason or 'manual'}",
        offset=req.offset.value if req.offset is not None else "", part_of=part_of,
    )  # fmt: skip


def trader_id(configured: str | None) -> str:
    """The trader orders name: ``configured``, else ``$CMC_LAB_TRADER``, else the OS user."""
    if configured is not None:
        if not isinstance(configured, str) or not configured.strip():
            raise ValueError(f"trader must be a non-empty id such as 'T-ZHANG', got {configured!r}")
        return configured.strip()
    return os.environ.get("CMC_LAB_TRADER") or getpass.getuser()


try:
    VERSION = importlib.metadata.version("cmc-lab")
except importlib.metadata.PackageNotFoundError:  # a checkout run without installing
    VERSION = "unknown"
