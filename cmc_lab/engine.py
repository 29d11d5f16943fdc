"""Engine: owns the event-loop thread, the venues, the live orders, the checks and the journal.

Everything that changes engine state runs on one asyncio loop in a daemon thread, so
heartbeats, quotes and fills keep flowing while a notebook cell computes. The public methods
are synchronous calls that hand work to that loop and wait; ``*_async`` twins exist for
``await`` in cells.

Guarantees kept here: an order's intent is committed to the journal before its message is
handed to the venue, and a venue's answer is journaled before an order or a subscriber sees it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from cmc_lab.clock import Clock
from cmc_lab.crashpoints import crash_point
from cmc_lab.execution.desk import Desk
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.execution.spread import Spread
from cmc_lab.journal import Journal, JournalError, JournalRow
from cmc_lab.journal.audit import export_pack
from cmc_lab.journal.receipts import Receipt, read_receipt
from cmc_lab.model import (
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
    VenueConnected,
    VenueDisconnected,
    VenueEvent,
    event_payload,
    parse_price,
    parse_qty,
)
from cmc_lab.orders import Order, OrderNotWorking, _fire, _register
from cmc_lab.pricing import CostTerms
from cmc_lab.recovery import reconcile_recovered, recover, run_owner
from cmc_lab.risk.capital import CapitalView
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.pretrade import OrderRequest, PreTradeChecks, RiskLimits, TradingState
from cmc_lab.risk.thresholds import Thresholds
from cmc_lab.risk.transfers import Transfer
from cmc_lab.specs import Specs, unknown_instrument_message
from cmc_lab.venues.base import Venue

T = TypeVar("T")
EventCallback = Callable[[Event], None]
QuoteCallback = Callable[[Quote], None]


class EngineError(RuntimeError):
    """Base of the engine's own errors."""


class EngineClosed(EngineError):
    """A call on an engine after ``close()``."""


class InvalidOrder(ValueError):
    """An order whose arguments cannot be sent at all (unknown symbol, bad price or size)."""


class NoQuote(LookupError):
    """No quote has arrived yet for an instrument."""


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
    ) -> None:
        self.label = label
        self.specs = specs
        self.journal = journal
        self.clock = clock
        self.checks = checks or PreTradeChecks()
        self.venues: dict[str, Venue] = dict(venues)
        self.trading_state = TradingState.ACTIVE
        self.errors: list[str] = []
        self._instruments: dict[str, Instrument] = {
            i.id: i for i in specs.instruments.values() if i.venue in self.venues
        }
        self._venue_up: dict[str, bool] = dict.fromkeys(self.venues, False)
        self._quotes: dict[str, Quote] = {}
        self._orders: dict[str, Order] = {}
        self._order_seq = 0
        self._id_prefix = f"r{journal.run_id}" if str(journal.path) != ":memory:" else _memory_prefix()
        self._event_callbacks: list[EventCallback] = []
        self._quote_callbacks: list[QuoteCallback] = []
        self._reconciling: dict[str, asyncio.Task[None]] = {}
        self._alerts: list[dict[str, Any]] = []
        self._journal_fault: dict[str, Any] | None = None  # the write failure that HALTED trading
        self._pending_rows: list[JournalRow] = []
        self._batch_depth = 0
        self._close_callbacks: list[Callable[[], None]] = []
        self.desk = Desk(self)
        self.risk = RiskMonitor(self, accounts)
        self._closed = False
        self._loop = clock.new_loop()
        self._thread = threading.Thread(target=self._run_loop, name="cmc-engine", daemon=True)
        self._thread.start()
        try:
            self._call(self._start(), timeout=connect_timeout)
        except BaseException:
            self._stop_loop()
            raise

    # ================================================================== public: reading

    @property
    def instruments(self) -> pd.DataFrame:
        """The tradeable universe: venue, symbol, currency, lot, quote unit, tick, margin, sessions."""
        now = self.clock.now_ns()
        rows = [
            {
                "id": i.id,
                "venue": i.venue,
                "symbol": i.symbol,
                "name": i.name,
                "currency": i.currency,
                "lot": f"{i.lot_size} {i.lot_unit}",
                "quote unit": i.quote_unit,
                "tick": i.tick,
                "daily limit": i.daily_limit,
                "margin": self.risk.margin_text(i),
                "sessions": i.hours.describe(),
                "open now": i.hours.is_open(now),
            }
            for i in self._instruments.values()
        ]
        return pd.DataFrame(rows).set_index("id")

    def instrument(self, instrument_id: str) -> Instrument:
        try:
            return self._instruments[instrument_id]
        except KeyError:
            raise InvalidOrder(unknown_instrument_message(instrument_id, self._instruments)) from None

    def quote(self, instrument_id: str) -> Quote:
        """Top of book of one instrument, as last heard from its venue."""
        if self._closed:
            raise EngineClosed("this engine is closed; make a new one with cmc.connect(...)")
        self.instrument(instrument_id)
        try:
            return self._quotes[instrument_id]
        except KeyError:
            raise NoQuote(
                f"no quote for {instrument_id} yet; its venue may be disconnected or its feed stale"
            ) from None

    def quotes(self) -> pd.DataFrame:
        """Every instrument's last quote and its age in milliseconds."""
        now = self.clock.now_ns()
        rows = [
            {
                "id": q.instrument_id,
                "bid_size": q.bid_size,
                "bid": q.bid,
                "ask": q.ask,
                "ask_size": q.ask_size,
                "age_ms": (now - q.ts_event) / 1e6,
            }
            for q in list(self._quotes.values())
        ]
        return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()

    def order(self, client_order_id: str) -> Order:
        try:
            return self._orders[client_order_id]
        except KeyError:
            raise KeyError(f"no order {client_order_id!r} in this session") from None

    def orders(self, working: bool = False) -> pd.DataFrame:
        """One row per order of this session; ``working=True`` keeps the live ones."""
        rows = [
            {
                "client_order_id": o.client_order_id,
                "instrument": o.instrument_id,
                "side": o.side.value,
                "qty": o.qty,
                "price": o.price,
                "state": o.state.value,
                "filled": o.filled_qty,
                "avg_px": o.avg_px,
                "ticket": o.ticket_id,
                "reason": o.reason,
            }
            for o in list(self._orders.values())
            if not working or not o.done
        ]
        return pd.DataFrame(rows)

    def receipt(self, order_or_ticket: Order | HedgeTicket | str) -> Receipt:
        """The complete receipt of one order or hedge ticket, from the journal (see :class:`Receipt`).

        Decision and the quotes it saw, checks, intent, send, ack, each fill, re-orders and
        unwinds, final state; latency per hop and slippage. ``receipt.timeline()`` charts it.
        """
        if isinstance(order_or_ticket, Order):
            order_or_ticket = order_or_ticket.client_order_id
        elif isinstance(order_or_ticket, HedgeTicket):
            order_or_ticket = order_or_ticket.ticket_id
        return read_receipt(self.journal, order_or_ticket, self.specs.instruments)

    def audit(self, path: str | Path, since: object = None, until: object = None, **options: Any) -> Path:
        """Write the audit pack (zip) of the journal rows from ``since`` to ``until``; its path.

        ``since``/``until``: int ns, datetimes or ISO 8601 text (UTC unless it says otherwise).
        Options of :func:`cmc_lab.journal.audit.export_pack`: ``progress``, ``overwrite``. Check a
        pack later with ``cmc-lab audit verify PACK``.
        """
        return export_pack(self.journal, path, since, until, instruments=self.specs.instruments, **options)

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def venue_connected(self, venue: str) -> bool:
        return self._venue_up.get(venue, False)

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
    ) -> Order:
        """Send one limit order; returns the live :class:`Order` once it has left (or been denied).

        Arguments that cannot make an order raise :class:`InvalidOrder` and nothing is
        journaled; an order the pre-trade checks refuse comes back DENIED with its reason.
        """
        request = self._request(instrument_id, side, qty, price, account, ticket_id)
        return self._call(self._submit(request, _parse_tif(tif), reason))

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
    ) -> Order:
        """``await`` twin of :meth:`submit`."""
        request = self._request(instrument_id, side, qty, price, account, ticket_id)
        return await self._call_async(self._submit(request, _parse_tif(tif), reason))

    def cancel(self, order: Order | str) -> None:
        """Ask the venue to cancel a working order (an Order or its client order id)."""
        target = order if isinstance(order, Order) else self.order(order)
        if target.done:
            raise OrderNotWorking(
                f"order {target.client_order_id} is {target.state.value}; only working orders can be "
                "cancelled"
            )
        self._call(self._cancel(target, "user request"))

    def cancel_all(self, instrument_id: str | None = None) -> int:
        """Cancel every working order (of one instrument if given); returns how many."""
        return self._call(self._cancel_all(instrument_id, "cancel all"))

    def kill(self, reason: str, who: str = "user") -> int:
        """The kill switch: block new orders, cancel every working order, journal who and why.

        Returns the number of orders cancelled. Trading stays HALTED until :meth:`rearm`.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("say why: eng.kill(reason='...') is journaled for the auditor")
        return self._call(self._kill(reason, who))

    def rearm(self, reason: str = "re-armed", who: str = "user") -> None:
        """Leave HALTED (or REDUCING) and accept orders again; journaled."""
        self._call(self._set_trading_state(TradingState.ACTIVE, reason, who))

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
    ) -> Spread:
        """Define a spread (or fetch one by name when ``legs`` is omitted).

        Units and currency convert from the instrument specs: SHFE au (CNY/g) against COMEX GC
        (USD/oz) through USD/CNH; SHFE cu against LME copper with the import-parity terms
        (13 % VAT, bonded premium) unless ``costs`` says otherwise. ``lots`` defaults to the
        smallest whole ratio of equal physical quantity within ``ratio_tolerance``.

        Examples
        --------
        >>> sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})   # doctest: +SKIP
        >>> sp.quote()                                                      # doctest: +SKIP
        """
        if legs is None:
            return self.desk.spread(name)
        return self.desk.add_spread(
            name,
            legs,
            kind,
            lots=lots,
            costs=costs,
            formula=formula,
            ratio_tolerance=ratio_tolerance,
            stale_after_ms=stale_after_ms,
        )

    @property
    def spreads(self) -> dict[str, Spread]:
        return dict(self.desk.spreads)

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

        ``qty`` is in lots of the first leg (a multiple of the spread's lot ratio). ``when`` is a
        trigger such as ``"ask <= 2.5"`` (fields bid, ask, mid, ratio, z); without it the ticket fires
        now. ``policy`` is what to do when the legs do not fill together: ``"chase"`` the
        missing leg, ``"unwind"`` the filled one, or ``"hold"`` for a human (bounded by
        ``max_legged_ms``). Other options: see :class:`~cmc_lab.execution.hedge.HedgePolicy`
        (``mode="lead_lag"``, ``tif``, ``allowance_ticks``, ``chase_ticks``, ``max_attempts``,
        ``leg_timeout_ms``, ``max_legged_exposure``, ``time_limit_ms``, ``min_top_cover``, ...),
        plus ``dwell_ms``, ``hysteresis`` and ``repeat=N`` (one ticket per fire, at most N; the
        next waits ARMED in ``ticket.series``) for the trigger.
        """
        prepared = self.desk.prepare(spread, side, qty, when, policy, dict(options))
        return self._call(self.desk.start(*prepared))

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
        prepared = self.desk.prepare(spread, side, qty, when, policy, dict(options))
        return await self._call_async(self.desk.start(*prepared))

    def ticket(self, ticket_id: str) -> HedgeTicket:
        return self.desk.ticket(ticket_id)

    def tickets(self) -> pd.DataFrame:
        """One row per hedge ticket of this session: state, reason, fills per leg."""
        return self.desk.frame()

    # ================================================================== capital and risk

    def capital(self) -> CapitalView:
        """Capital per account and unified in the base currency (``accounts, unified = eng.capital()``)."""
        return self.risk.capital_view()

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
        return self._call(self.risk.transfer(*parsed, reason))

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
        self._call(self.risk.set_margin_rate(*parsed))

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
        now = self.now_ns()
        alert_id = len(self._alerts) + 1
        self._alerts.append(
            {
                "id": alert_id,
                "ts": now,
                "source": source,
                "level": level,
                "message": message,
                "acknowledged": False,
                **(details or {}),
                **ids,
            }
        )
        payload = {"id": alert_id, "source": source, "level": level, "message": message, **(details or {})}
        self._journal_raw("Alert", payload, **ids)

    def acknowledge_alerts(self, who: str = "user") -> int:
        """Mark every open alert acknowledged (journaled with who); returns how many."""
        return self._call(self._acknowledge(who))

    async def _acknowledge(self, who: str) -> int:
        open_ids = [a["id"] for a in self._alerts if not a["acknowledged"]]
        for alert in self._alerts:
            alert["acknowledged"] = True
        if open_ids:
            self._journal_raw("AlertsAcknowledged", {"ids": open_ids, "who": who})
        return len(open_ids)

    def alerts(self) -> pd.DataFrame:
        """Alerts raised in this session (hedges legged or broken, thresholds crossed, ...)."""
        frame = pd.DataFrame(list(self._alerts))
        if not frame.empty:
            frame["time"] = pd.to_datetime(frame.pop("ts"), unit="ns", utc=True)
        return frame

    def sleep(self, seconds: float) -> None:
        """Let the market run for ``seconds`` (market seconds under the virtual clock)."""
        if self.clock.virtual:
            self._call(asyncio.sleep(seconds), advance=True, timeout=seconds)
        else:
            time.sleep(seconds)

    def disconnect(self, venue: str) -> None:
        """Close one venue's session; its orders stay at the venue and are reconciled on reconnect."""
        self._call(self._disconnect_venue(self._venue(venue)))

    def reconnect(self, venue: str) -> None:
        """Open one venue's session again and reconcile its working orders."""
        self._call(self._connect_venue(self._venue(venue), reconcile=True), advance=True)

    def on_event(self, callback: EventCallback, remove: bool = False) -> None:
        _register(self._event_callbacks, callback, remove)

    def on_quote(self, callback: QuoteCallback, remove: bool = False) -> None:
        _register(self._quote_callbacks, callback, remove)

    def on_close(self, callback: Callable[[], None]) -> None:
        """``callback()`` when the engine closes (side channels, UI pumps): runs in the closing thread."""
        self._close_callbacks.append(callback)

    def close(self) -> None:
        """Disconnect every venue, stop the engine thread and close the journal. Idempotent."""
        if self._closed:
            return
        for callback in self._close_callbacks:
            try:
                callback()
            except Exception as exc:
                self.errors.append(f"close callback {callback!r} raised {exc!r}")
        try:
            self._call(self._stop(), timeout=10.0)
        finally:
            self._closed = True
            self._stop_loop()
            self.journal.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================== display

    def __repr__(self) -> str:
        where = Path(self.journal.path).name if self.journal.path != ":memory:" else ":memory:"
        state = "closed" if self._closed else self.trading_state.value
        return f"Engine({self.label}, {len(self.venues)} venues, journal={where}, {state})"

    def _repr_html_(self) -> str:
        now = self.clock.now_ns()
        rows = []
        for name, venue in self.venues.items():
            ages = [
                (now - q.ts_event) / 1e6
                for iid, q in list(self._quotes.items())
                if iid.startswith(name + ".")
            ]
            age = f"{min(ages):.0f} ms" if ages else "no quote"
            up = "connected" if self._venue_up.get(name) else "down"
            rows.append(f"<tr><td>{name}</td><td>{venue.kind}</td><td>{up}</td><td>{age}</td></tr>")
        working = sum(1 for o in list(self._orders.values()) if not o.done)
        return (
            f"<div class='cmc-engine'><b>{escape(repr(self))}</b> — {working} working orders"
            "<table><tr><th>venue</th><th>kind</th><th>session</th><th>last quote</th></tr>"
            + "".join(rows)
            + "</table></div>"
        )

    # ================================================================== loop plumbing

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro: Coroutine[Any, Any, T], *, advance: bool = False, timeout: float = 10.0) -> T:
        """Run ``coro`` on the engine loop and wait for its result from the caller's thread."""
        if self._closed:
            coro.close()
            raise EngineClosed("this engine is closed; make a new one with cmc.connect(...)")
        if threading.current_thread() is self._thread:
            coro.close()
            raise EngineError(
                "a blocking engine call was made from the engine thread (a callback?); "
                "use the *_async method or schedule the work instead"
            )
        if advance:
            coro = self.clock.advance(coro)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        # Under the virtual clock the timeout is in market seconds; allow real time for the CPU.
        real_timeout = max(60.0, timeout * 4) if self.clock.virtual else timeout + 5.0
        try:
            return future.result(real_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the engine did not answer within {real_timeout:.0f} s; it may be overloaded "
                f"(errors so far: {self.errors[-3:]})"
            ) from None

    async def _call_async(self, coro: Coroutine[Any, Any, T], *, advance: bool = False) -> T:
        if self._closed:
            coro.close()
            raise EngineClosed("this engine is closed; make a new one with cmc.connect(...)")
        if advance:
            coro = self.clock.advance(coro)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # ================================================================== on the loop

    async def _start(self) -> None:
        self._journal_raw(
            "EngineStarted",
            {
                "label": self.label,
                "venues": {n: v.kind for n, v in self.venues.items()},
                **run_owner(self._id_prefix),
            },
        )
        recovered = recover(self)  # before the venues connect: their first reports must find these orders
        for venue in self.venues.values():
            await self._connect_venue(venue, reconcile=False)
        reconcile_recovered(self, recovered)  # a background task: virtual time runs only while a call waits

    async def _stop(self) -> None:
        for venue in self.venues.values():
            await venue.disconnect()  # also stops a reconnecting venue's back-off task
        working = [o.client_order_id for o in self._orders.values() if not o.done]
        self._journal_raw("EngineStopped", {"working_orders": working, "run": self._id_prefix})

    async def _connect_venue(self, venue: Venue, reconcile: bool) -> None:
        await venue.connect(self._on_venue_message)
        if not self._venue_up[venue.name]:
            self._on_event(VenueConnected(self.now_ns(), self.now_ns(), venue.name, "session opened"))
        if reconcile:  # the venue's VenueConnected may have started one already: wait for that one
            task = self._reconciling.get(venue.name)
            if task is None or task.done():
                task = self._reconciling[venue.name] = self._loop.create_task(self._reconcile(venue))
            await task

    async def _disconnect_venue(self, venue: Venue) -> None:
        await venue.disconnect()
        if self._venue_up[venue.name]:
            self._on_event(VenueDisconnected(self.now_ns(), self.now_ns(), venue.name, "closed by user"))

    def _venue(self, name: str) -> Venue:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(f"no venue {name!r}; this engine has {', '.join(self.venues)}") from None

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
        staged: list[tuple[Order, OrderRequest, OrderInitialized, OrderEvent]] = []
        rows: list[Event] = []
        for i, req in enumerate(requests):
            cid = self._next_client_order_id()
            inst = req.instrument
            order = Order(
                self, cid, inst, req.side, req.qty, req.price, tif, req.account, req.ticket_id, self._loop
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

    # ------------------------------------------------------------------ incoming

    def _on_venue_message(self, message: Event | Quote) -> None:
        if isinstance(message, Quote):
            self._quotes[message.instrument_id] = message
            self.risk.on_quote(message)
            if message.instrument_id in self.desk._by_leg:
                self.desk.on_quote(message)
            if self._quote_callbacks:
                self._report(_fire(self._quote_callbacks, message))
            return
        self._on_event(message)
        if isinstance(message, VenueConnected) and message.venue in self.venues:
            task = self._loop.create_task(
                self._reconcile(self.venues[message.venue]), name=f"reconcile of {message.venue}"
            )
            task.add_done_callback(self._on_reconcile_done)
            self._reconciling[message.venue] = task

    def _on_reconcile_done(self, task: asyncio.Task[None]) -> None:
        """A background reconcile must not fail unseen; the venue's next reconnect runs it again."""
        if not task.cancelled() and task.exception() is not None:
            self._report([f"{task.get_name()} failed: {task.exception()!r}; it runs again on reconnect"])

    def _on_event(self, event: Event) -> None:
        """Journal first, then apply, then tell subscribers."""
        ticket_id = None
        order = None
        if isinstance(event, OrderEvent):
            order = self._orders.get(event.client_order_id)
            if order is None:
                self._journal_raw("UnknownOrderReport", {"event": event.kind, **event_payload(event)})
                return
            if isinstance(event, OrderFilled) and order._seen_trade(event.trade_id):
                self._journal_raw(
                    "DuplicateFillIgnored", event_payload(event), order_id=order.client_order_id
                )
                return
            ticket_id = order.ticket_id
        crash_point("before_answer_journaled")
        try:
            self._journal([event], ticket_id=ticket_id)
        except JournalError as exc:
            self._journal_failed(exc)
        crash_point("after_answer_journaled")
        if order is not None:
            self._apply(order, event)  # type: ignore[arg-type]
        elif isinstance(event, VenueEvent):
            self._venue_up[event.venue] = isinstance(event, VenueConnected)
            if isinstance(event, VenueDisconnected):
                self._drop_quotes(event.venue)
        self._report(_fire(self._event_callbacks, event))

    def _drop_quotes(self, venue: str) -> None:
        for iid in [k for k in self._quotes if k.startswith(venue + ".")]:
            del self._quotes[iid]

    def _apply(self, order: Order, event: OrderEvent) -> None:
        self._report(order._apply(event))
        self.risk.on_order_event(order, event)

    def _report(self, errors: list[str]) -> None:
        if errors:
            self.errors.extend(errors)
            del self.errors[:-200]

    # ------------------------------------------------------------------ journal

    def journal_batch(self) -> _JournalBatch:
        """Rows journaled inside commit in one transaction when the outermost batch ends.

        A decision and its legs cost one commit instead of six. Intents still commit before
        any order leaves: :meth:`_submit_batch` flushes whatever is pending first.
        """
        return _JournalBatch(self)

    def _commit_pending(self) -> None:
        rows, self._pending_rows = self._pending_rows, []
        if rows:
            self.journal.append_many(rows)

    def _journal(self, events: list[Event], ticket_id: str | None = None, *, now: bool = False) -> None:
        """Journal events; outside a batch (or with ``now``) they are committed before this returns."""
        mono = self.clock.mono_ns()
        for event in events:
            iid = getattr(event, "instrument_id", None)
            venue = getattr(event, "venue", None) or (iid.split(".", 1)[0] if iid else None)
            self._pending_rows.append(
                JournalRow(
                    kind=event.kind,
                    ts_event=event.ts_event,
                    ts_init=event.ts_init,
                    mono_ns=mono,
                    payload=event_payload(event),
                    order_id=getattr(event, "client_order_id", None),
                    ticket_id=ticket_id,
                    venue=venue,
                    instrument=iid,
                )
            )
        if now or not self._batch_depth:
            self._commit_pending()

    def _journal_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> None:
        now = self.now_ns()
        self._pending_rows.append(
            JournalRow(
                kind=kind,
                ts_event=now,
                ts_init=now,
                mono_ns=self.clock.mono_ns(),
                payload=payload,
                order_id=ids.get("order_id"),
                ticket_id=ids.get("ticket_id"),
                venue=ids.get("venue"),
                instrument=ids.get("instrument"),
            )
        )
        if self._batch_depth:
            return
        try:
            self._commit_pending()
        except JournalError as exc:
            self._journal_failed(exc)

    def _journal_failed(self, exc: JournalError) -> None:
        """Without a journal we cannot prove what we sent: stop sending, and say why in an alert."""
        self.errors.append(f"journal write failed: {exc}")
        if self.trading_state is not TradingState.HALTED:
            self.trading_state = TradingState.HALTED
            self.errors.append("trading HALTED: the journal cannot be written; fix it and eng.rearm()")
        if self._journal_fault is None:  # the first failure of an outage alerts (journaled if it can be)
            self._journal_fault = {
                "error": str(exc),
                "since_ns": self.now_ns(),
                "alert": len(self._alerts) + 1,
            }
            self.alert(
                "journal",
                "critical",
                f"trading HALTED: the journal cannot be written, so no order is sent until it can ({exc}); "
                "fix the disk or the file, then eng.rearm()",
            )

    @property
    def halt_reason(self) -> str | None:
        """Why trading is HALTED when the kill switch did not do it (the journal cannot be written)."""
        fault = self._journal_fault
        return None if fault is None else f"the journal cannot be written: {fault['error']}"


_FINAL_REPORTS: dict[OrderState, Any] = {
    OrderState.CANCELED: OrderCanceled,
    OrderState.EXPIRED: OrderExpired,
    OrderState.REJECTED: OrderRejected,
}


class _JournalBatch:
    """``with engine.journal_batch():`` (a plain class: the desk opens one per quote with armed tickets)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> None:
        self._engine._batch_depth += 1

    def __exit__(self, *exc: object) -> None:
        engine = self._engine
        engine._batch_depth -= 1
        if not engine._batch_depth:
            try:
                engine._commit_pending()
            except JournalError as error:
                engine._journal_failed(error)


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


def _memory_prefix() -> str:
    """Client order ids without a journal file: unique per process start (base-36 milliseconds)."""
    value = time.time_ns() // 1_000_000
    digits = ""
    while value:
        value, rem = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
    return "m" + digits[-7:]
