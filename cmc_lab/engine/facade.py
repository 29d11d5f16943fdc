"""Engine: the facade a notebook talks to; it owns the parts and builds each with the ports it uses.

The parts, built in this order (each only with what it needs, as ib_async's ``IB`` builds its
``Wrapper`` and ``Client``): ``runtime`` (the loop thread), ``market`` (instruments, quotes,
sessions), ``journal_writer`` (rows into the journal; a failed write halts trading),
``alert_log``, ``router`` (orders out, answers in, the trading state), ``desk`` (spreads and hedge
tickets), ``risk`` (limits, capital, transfers, thresholds), ``inbox`` (what venues hand in) and
``books`` (reconciliation with the venues and broker statements).

Every public method is a thin delegation: it checks its arguments in the caller's thread (bad input
raises before anything is journaled), hands the work to the loop and waits (``*_async``: awaits).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from cmc_lab.core.clock import Clock
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote, Side, TimeInForce
from cmc_lab.core.order import Order, OrderNotWorking, register_callback
from cmc_lab.core.specs import Specs
from cmc_lab.core.trading import TradingState
from cmc_lab.engine import lifecycle
from cmc_lab.engine.alerts import AlertLog
from cmc_lab.engine.errors import EngineClosed, OpenExposureWarning
from cmc_lab.engine.html import engine_html
from cmc_lab.engine.inbox import Inbox, QuoteCallback
from cmc_lab.engine.journaling import EngineJournal
from cmc_lab.engine.market import MarketState
from cmc_lab.engine.order_table import orders_frame, parse_tif
from cmc_lab.engine.reconciliation import BookReconciler, Reconciliation
from cmc_lab.engine.recovery import rebuild_order
from cmc_lab.engine.routing import EventCallback, OrderRouter
from cmc_lab.engine.runtime import Runtime
from cmc_lab.execution.desk import Desk
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.execution.spread import Spread, SpreadBook
from cmc_lab.journal import Journal, Receipt, read_receipt
from cmc_lab.journal.audit import export_pack
from cmc_lab.pricing.spreads import CostTerms
from cmc_lab.risk.capital_view import CapitalView
from cmc_lab.risk.flatten import flatten
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.position_table import position_table
from cmc_lab.risk.pretrade import PreTradeChecks, RiskLimits
from cmc_lab.risk.roll_reminders import RollReminders
from cmc_lab.risk.thresholds import Thresholds
from cmc_lab.risk.transfers import Transfer
from cmc_lab.venues.base import Venue

T = TypeVar("T")


class Engine:
    """The live connection engine: venues, orders, checks and journal on one loop thread.

    Make one with :func:`cmc_lab.connect`. Events (callbacks run on the engine thread):

    - ``on_event(callback(event))``: every journaled event (order, venue, kill switch).
    - ``on_quote(callback(quote))``: every quote, not journaled; keep it very short.

    Examples
    --------
    >>> import cmc_lab as cmc
    >>> eng = cmc.connect("sim", seed=7, clock="virtual")
    >>> o = eng.submit("COMEX.GC", "buy", 1, price=2700.0)
    >>> o.wait(timeout=5)
    <OrderState.FILLED: 'FILLED'>
    >>> eng.close()
    """

    def __init__(
        self,
        venues: Mapping[str, Venue],
        *,
        specs: Specs,
        journal: Journal,
        clock: Clock,
        label: str = "sim",
        checks: PreTradeChecks | None = None,
        connect_timeout: float = 10.0,
        accounts: Mapping[str, Any] | None = None,
        accept_damaged_journal: str | None = None,
    ) -> None:
        self.label = label
        self.specs = specs
        self.journal = journal
        self.clock = clock
        self.venues: dict[str, Venue] = dict(venues)
        self._close_callbacks: list[Callable[[], None]] = []
        self.accept_damaged_journal = accept_damaged_journal
        prefix = lifecycle.run_prefix(journal)
        self.runtime = Runtime(clock)  # first: every part below may schedule on its loop
        instruments = {i.id: i for i in specs.instruments.values() if i.venue in self.venues}
        self.market = MarketState(instruments, list(self.venues), clock, specs)
        self.journal_writer = EngineJournal(
            journal, clock, on_failure=lambda exc: self.router.journal_failed(exc)
        )
        self.alert_log = AlertLog(self.journal_writer, clock.now_ns)
        self.router = OrderRouter(
            specs=specs,
            venues=self.venues,
            market=self.market,
            writer=self.journal_writer,
            runner=self.runtime,
            alerts=self.alert_log,
            checks=checks or PreTradeChecks(),
            id_prefix=prefix,
        )
        self.desk = Desk(
            specs=specs,
            market=self.market,
            orders=self.router,
            journal=self.journal_writer,
            runner=self.runtime,
            alerts=self.alert_log,
        )
        self.risk = RiskMonitor(
            specs=specs,
            market=self.market,
            orders=self.router,
            journal=self.journal_writer,
            runner=self.runtime,
            alerts=self.alert_log,
            tickets=self.desk,
            venues=list(self.venues),
            accounts=accounts,
        )
        self.router.risk = self.risk
        self.desk.fees = self.risk.capital  # ticket reports read the fees the book charged
        remind = {p: rule.remind_days for p, rule in specs.contracts.items()}
        rolls = RollReminders(self.risk.capital, self.alert_log, lambda i: remind.get(i.product, 5))
        self.inbox = Inbox(self.market, self.router, self.risk, self.desk, rolls)
        self.books = BookReconciler(
            venues=self.venues,
            router=self.router,
            capital=self.risk.capital,
            writer=self.journal_writer,
            alerts=self.alert_log,
            runner=self.runtime,
        )
        self.on_close(self.books.stop)
        try:
            self.runtime.call(lifecycle.start(self), timeout=connect_timeout)
        except BaseException:
            self.runtime.stop()
            raise

    # ================================================================== public: reading

    @property
    def instruments(self) -> pd.DataFrame:
        """The tradeable universe: venue, symbol, currency, lot, quote unit, tick, margin, sessions."""
        return self.market.instruments_frame(self.risk.margin_text)

    def instrument(self, instrument_id: str) -> Instrument:
        """An instrument by id; a product (``"SHFE.au"``) is its main month (``SHFE.au2702``)."""
        return self.market.instrument(instrument_id)

    def quote(self, instrument_id: str) -> Quote:
        """Top of book of one instrument, as last heard from its venue."""
        if self.runtime.closed:
            raise EngineClosed("this engine is closed; make a new one with cmc.connect(...)")
        return self.market.quote(instrument_id)

    def quotes(self) -> pd.DataFrame:
        """Every instrument's last quote and its age in milliseconds."""
        return self.market.quotes_frame()

    def order(self, client_order_id: str) -> Order:
        """A live order of this session, or one of an earlier run rebuilt from the journal."""
        order = self.router.orders.get(client_order_id) or rebuild_order(self, client_order_id)
        if order is None:
            raise KeyError(f"no order {client_order_id!r} in this session or its journal")
        return order

    def orders(self, working: bool = False) -> pd.DataFrame:
        """One row per order of this session; ``working=True`` keeps the live ones."""
        return orders_frame(self.working_orders(all_orders=not working))

    def working_orders(self, all_orders: bool = False) -> list[Order]:
        """The live Order objects still working (every order of the session with ``all_orders``)."""
        return [o for o in list(self.router.orders.values()) if all_orders or not o.done]

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def venue_connected(self, venue: str) -> bool:
        return self.market.venue_up.get(venue, False)

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING (only orders that reduce a position) or HALTED (the kill switch)."""
        return self.router.trading_state

    @property
    def halt_reason(self) -> str | None:
        """Why trading is HALTED when the kill switch did not do it (the journal cannot be written)."""
        return self.router.halt_reason

    @property
    def checks(self) -> PreTradeChecks:
        return self.router.checks

    @property
    def errors(self) -> list[str]:
        """Problems nobody could be told about (a callback that raised, a failed background task)."""
        return self.runtime.errors

    # ================================================================== public: acting

    def submit(
        self,
        instrument_id: str,
        side: str | Side,
        qty: int,
        price: float | str | Decimal,
        *,
        tif: str | TimeInForce = "GFD",
        account: str | None = None,
        ticket_id: str | None = None,
        reason: str = "",
        offset: str | None = None,
    ) -> Order:
        """Send one limit order; returns the live :class:`Order` once it has left (or been denied).

        Bad arguments raise :class:`InvalidOrder` (nothing journaled); a refused order comes back DENIED.
        ``offset`` (SHFE/INE): open, close, close_today, close_yesterday, or None (the engine chooses; an
        order needing two goes out as parts, one offset each: the first returned, ``o.parts`` all).
        """
        return self.runtime.call(
            self._submit(instrument_id, side, qty, price, tif, account, ticket_id, reason, offset)
        )

    async def submit_async(
        self,
        instrument_id: str,
        side: str | Side,
        qty: int,
        price: float | str | Decimal,
        *,
        tif: str | TimeInForce = "GFD",
        account: str | None = None,
        ticket_id: str | None = None,
        reason: str = "",
        offset: str | None = None,
    ) -> Order:
        """``await`` twin of :meth:`submit`."""
        return await self.runtime.call_async(
            self._submit(instrument_id, side, qty, price, tif, account, ticket_id, reason, offset)
        )

    def _submit(
        self,
        instrument_id: str,
        side: str | Side,
        qty: int,
        price: float | str | Decimal,
        tif: str | TimeInForce,
        account: str | None,
        ticket_id: str | None,
        reason: str,
        offset: str | None = None,
    ) -> Coroutine[Any, Any, Order]:
        """Validate in the caller's thread, then the coroutine both twins run on the loop."""
        request = self.router.request(instrument_id, side, qty, price, account, ticket_id, offset)
        parsed_tif = parse_tif(tif)

        async def send() -> Order:
            return self.router.submit_now(request, parsed_tif, reason)

        return send()

    def cancel(self, order: Order | str) -> None:
        """Ask the venue to cancel a working order (an Order or its client order id)."""
        target = order if isinstance(order, Order) else self.order(order)
        if target.done:
            raise OrderNotWorking(
                f"order {target.client_order_id} is {target.state.value}; only working orders can be "
                "cancelled"
            )
        self.runtime.call(self.router.cancel(target, "user request"))

    def cancel_all(self, instrument_id: str | None = None) -> int:
        """Cancel every working order (of one instrument if given); returns how many."""
        return self.runtime.call(self.router.cancel_all(instrument_id, "cancel all"))

    def kill(self, reason: str, who: str = "user") -> int:
        """The kill switch: cancel working orders, block orders that add exposure (reducing ones pass, exemption
        journaled), journal who and why; returns how many were cancelled. HALTED until :meth:`rearm`."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("say why: eng.kill(reason='...') is journaled for the auditor")
        return self.runtime.call(self.router.kill(reason, who))

    def flatten(self, instrument_id: str, account: str | None = None) -> list[Order]:
        """Close what is held with reduce-only IOC orders, ``[]`` if nothing is (risk/flatten.py)."""
        return self.runtime.call(self._flatten(instrument_id, account))

    async def flatten_async(self, instrument_id: str, account: str | None = None) -> list[Order]:
        """``await`` twin of :meth:`flatten`."""
        return await self.runtime.call_async(self._flatten(instrument_id, account))

    def _flatten(self, instrument_id: str, account: str | None) -> Coroutine[Any, Any, list[Order]]:
        return flatten(self.risk, self.market.instrument(instrument_id), account)

    def rearm(self, reason: str = "re-armed", who: str = "user") -> None:
        """Leave HALTED (or REDUCING) and accept orders again; journaled."""
        self.runtime.call(self._on_loop(self.router.set_trading_state, TradingState.ACTIVE, reason, who))

    # ================================================================== public: session

    def sleep(self, seconds: float) -> None:
        """Let the market run for ``seconds`` (market seconds under the virtual clock)."""
        if self.clock.virtual:
            self.runtime.call(asyncio.sleep(seconds), advance=True, timeout=seconds)
        else:
            time.sleep(seconds)

    def disconnect(self, venue: str) -> None:
        """Close one venue's session; its orders stay at the venue and are reconciled on reconnect."""
        self.runtime.call(lifecycle.disconnect_venue(self, self._venue(venue)))

    def reconnect(self, venue: str) -> None:
        """Open one venue's session again and reconcile its working orders."""
        self.runtime.call(lifecycle.connect_venue(self, self._venue(venue), reconcile=True), advance=True)

    def reconcile(self) -> Reconciliation:
        """Compare the venues' positions and working orders with the book; differences are alerted."""
        return self.runtime.call(self.books.reconcile(), advance=True)

    async def reconcile_async(self) -> Reconciliation:
        """``await`` twin of :meth:`reconcile`."""
        return await self.runtime.call_async(self.books.reconcile(), advance=True)

    def load_statement(self, path: str | Path) -> Reconciliation:
        """Reconcile positions and cash with a broker's start-of-day CSV (:mod:`cmc_lab.engine.statement`)."""
        return self.runtime.call(self.books.reconcile_statement(self.books.read_statement(path)))

    def on_event(self, callback: EventCallback, remove: bool = False) -> None:
        register_callback(self.router.event_callbacks, callback, remove)

    def on_quote(self, callback: QuoteCallback, remove: bool = False) -> None:
        register_callback(self.inbox.quote_callbacks, callback, remove)

    def on_close(self, callback: Callable[[], None]) -> None:
        """``callback()`` when the engine closes (side channels, UI pumps): runs in the closing thread."""
        self._close_callbacks.append(callback)

    @property
    def closed(self) -> bool:
        return self.runtime.closed

    def close(self) -> None:
        """Disconnect, stop the loop, close the journal (idempotent); what is left open is journaled and warned."""
        if self.runtime.closed:
            return
        for callback in self._close_callbacks:
            try:
                callback()
            except Exception as exc:
                self.runtime.report([f"close callback {callback!r} raised {exc!r}"])
        try:
            left_open = self.runtime.call(lifecycle.stop(self), timeout=10.0)
        finally:
            self.runtime.stop()
            self.journal.close()
        if left_open:
            warnings.warn(left_open, OpenExposureWarning, stacklevel=2)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================== spreads and hedges

    def spread(
        self,
        name: str,
        legs: Mapping[str, float] | None = None,
        kind: str = "diff",
        *,
        lots: Mapping[str, int] | None = None,
        costs: Mapping[str, CostTerms] | None = None,
        formula: str | None = None,
        ratio_tolerance: float = 0.04,
        stale_after_ms: float = 3000.0,
        z_window: int = 300,
        fx: str = "USDCNH",
    ) -> Spread:
        """Define a spread (or fetch one by name when ``legs`` is omitted).

        Units and currency convert from the specs: SHFE au (CNY/g) against COMEX GC (USD/oz) at
        ``fx`` (offshore USDCNH, or onshore USDCNY); SHFE cu against LME copper with the import
        terms (13 % VAT, bonded premium) unless ``costs`` says otherwise. ``lots``: the smallest
        whole ratio of equal quantity within ``ratio_tolerance``; ``z``: the mid's z-score over ``z_window`` updates.

        Examples
        --------
        >>> eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}, fx="USDCNY").quote()  # doctest: +SKIP
        """
        if legs is None:
            return self.desk.spread(name)
        tuning = {"ratio_tolerance": ratio_tolerance, "stale_after_ms": stale_after_ms}
        return self.desk.add_spread(
            name, legs, kind, lots=lots, costs=costs, formula=formula, fx=fx, z_window=z_window, **tuning
        )

    @property
    def spreads(self) -> SpreadBook:
        """The spreads by name (``eng.spreads["au_gc"]``); ``eng.spreads()`` is their table."""
        return SpreadBook(self.desk.spreads)

    def hedge(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        *,
        when: str | None = None,
        policy: str = "chase",
        **options: Any,
    ) -> HedgeTicket:
        """Trade a spread with its legs sent together; returns the live :class:`HedgeTicket`.

        ``qty``: lots of the first leg (a multiple of the lot ratio). ``when``: a trigger such as
        ``"ask <= 2.5"`` (bid, ask, mid, ratio, z); without it the ticket fires now. ``policy``: when
        the legs do not fill together, ``"chase"`` the missing leg, ``"unwind"`` the filled one or
        ``"hold"`` (bounded by ``max_legged_ms``). Other options: the fields of
        :class:`~cmc_lab.execution.hedge.HedgePolicy`, and ``dwell_ms``, ``hysteresis``, ``repeat=N``.
        """
        return self.runtime.call(self._hedge(spread, side, qty, when, policy, options))

    async def hedge_async(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        *,
        when: str | None = None,
        policy: str = "chase",
        **options: Any,
    ) -> HedgeTicket:
        """``await`` twin of :meth:`hedge`."""
        return await self.runtime.call_async(self._hedge(spread, side, qty, when, policy, options))

    def _hedge(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        when: str | None,
        policy: str,
        options: dict[str, Any],
    ) -> Coroutine[Any, Any, HedgeTicket]:
        """Validate in the caller's thread (bad input raises here), then the coroutine both twins run."""
        return self.desk.start(*self.desk.prepare(spread, side, qty, when, policy, dict(options)))

    def roll(
        self,
        instrument_id: str,
        to: str | None = None,
        *,
        qty: int | None = None,
        policy: str = "chase",
        when: str | None = None,
        **options: Any,
    ) -> HedgeTicket:
        """Move a position to a later month as one hedged ticket: the calendar spread ``near - far``, sold
        to roll a long, bought to roll a short (execution/roll.py). Options as for :meth:`hedge`."""
        spread, side, lots = self.desk.prepare_roll(instrument_id, to, qty, self.risk.capital)
        return self.runtime.call(
            self.desk.start(*self.desk.prepare(spread, side, lots, when, policy, options))
        )

    def ticket(self, ticket_id: str) -> HedgeTicket | Receipt:
        """A ticket of this session; one of an earlier run comes back as its :class:`Receipt`."""
        if ticket_id in self.desk.tickets or not self.journal.rows_of(ticket_id):
            return self.desk.ticket(ticket_id)
        return self.receipt(ticket_id)

    def tickets(self) -> pd.DataFrame:
        """One row per hedge ticket of this session: state, reason, fills per leg."""
        return self.desk.frame()

    # ================================================================== capital and risk

    def capital(self) -> CapitalView:
        """Capital per account and unified in the base currency (``accounts, unified = eng.capital()``)."""
        return self.risk.capital_view()

    def positions(self) -> pd.DataFrame:
        """Signed positions per account and contract: FIFO average, mark, P&L in its money and the base's;
        SHFE/INE long and short lots, today's and yesterday's."""
        return position_table(self.risk.capital, self.specs.capital.base_currency, self.clock.now_ns())

    def transfer(
        self,
        source: str,
        dest: str,
        amount: float | str | Decimal,
        currency: str | None = None,
        reason: str = "user",
    ) -> Transfer:
        """Move money between accounts (venue or account names); a refused one comes back FAILED."""
        parsed = self.risk.transfers.parse(source, dest, amount, currency)
        return self.runtime.call(self.risk.transfer(*parsed, reason))

    def set_margin_rate(
        self,
        instrument_id: str,
        rate: float | str | Decimal,
        *,
        kind: str | None = None,
        maintenance: Any = None,
    ) -> None:
        """Change an instrument's margin rate (exchanges raise margins in a squeeze); journaled."""
        parsed = self.risk.parse_margin_rate(instrument_id, rate, kind, maintenance)
        self.runtime.call(self.risk.set_margin_rate(*parsed))

    @property
    def thresholds(self) -> Thresholds:
        """Threshold rules and their crossings: ``eng.thresholds.add("margin_utilisation", ...)``."""
        return self.risk.thresholds

    @property
    def limits(self) -> RiskLimits:
        """The pre-trade limits, editable live: ``eng.limits.max_position = 50``."""
        return self.risk.limits

    def alert(
        self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
    ) -> None:
        """Record an alert (engine thread): journaled and listed by :meth:`alerts`."""
        self.alert_log.alert(source, level, message, details, **ids)

    def acknowledge_alerts(self, who: str = "user") -> int:
        """Mark every open alert acknowledged (journaled with who); returns how many."""
        return self.runtime.call(self._on_loop(self.alert_log.acknowledge, who))

    def alerts(self) -> pd.DataFrame:
        """Alerts raised in this session (hedges legged or broken, thresholds crossed, ...)."""
        return self.alert_log.frame()

    # ================================================================== the journal, read back

    def journal_batch(self) -> AbstractContextManager[None]:
        """Rows journaled inside commit in one transaction when the outermost batch ends."""
        return self.journal_writer.batch()

    def receipt(self, order_or_ticket: Order | HedgeTicket | str) -> Receipt:
        """The complete receipt of one order or hedge ticket, from the journal (see :class:`Receipt`).

        Decision and the quotes it saw, checks, intent, send, ack, each fill, re-orders and
        unwinds, final state; latency per hop and slippage.
        """
        if isinstance(order_or_ticket, Order):
            order_or_ticket = order_or_ticket.client_order_id
        elif isinstance(order_or_ticket, HedgeTicket):
            order_or_ticket = order_or_ticket.ticket_id
        return read_receipt(self.journal, order_or_ticket, self.specs.instruments)

    def audit(self, path: str | Path, since: object = None, until: object = None, **options: Any) -> Path:
        """Write the audit pack (zip) of the journal rows from ``since`` to ``until`` (int ns, datetimes or
        ISO 8601 text, UTC unless it says otherwise); its path. Options of :func:`cmc_lab.journal.audit.export_pack`:
        ``progress``, ``overwrite``. Check a pack later with ``cmc-lab audit verify PACK``."""
        return export_pack(self.journal, path, since, until, instruments=self.specs.instruments, **options)

    # ================================================================== display

    def __repr__(self) -> str:
        where = Path(self.journal.path).name if self.journal.path != ":memory:" else ":memory:"
        state = "closed" if self.runtime.closed else self.trading_state.value
        return f"Engine({self.label}, {len(self.venues)} venues, journal={where}, {state})"

    def _repr_html_(self) -> str:
        return engine_html(repr(self), self.venues, self.market, len(self.working_orders()))

    # ================================================================== on the loop

    @staticmethod
    async def _on_loop(fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def _venue(self, name: str) -> Venue:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(f"no venue {name!r}; this engine has {', '.join(self.venues)}") from None
