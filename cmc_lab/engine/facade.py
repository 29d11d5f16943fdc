"""Engine: owns the event-loop thread, the venues, the live orders, the checks and the journal.

Everything that changes engine state runs on one asyncio loop in a daemon thread, so
heartbeats, quotes and fills keep flowing while a notebook cell computes. The public methods
are synchronous calls that hand work to that loop and wait; ``*_async`` twins exist for
``await`` in cells.

Guarantees kept by the engine: an order's intent is committed to the journal before its message
is handed to the venue (``_submit_batch`` in :mod:`cmc_lab.engine.routing`), and a venue's answer
is journaled before an order or a subscriber sees it (``Engine._on_event``, here).

This module holds construction, the loop thread, the lifecycle, venue sessions, incoming
messages and the core reading and ordering API. ``Engine`` inherits its other parts, one job per
module: :mod:`cmc_lab.engine.routing` (order plumbing: checks, intent, send, cancel, kill,
reconcile), :mod:`cmc_lab.engine.journaling` (journal writes and batches, halting when a write
fails, receipts and the audit pack) and :mod:`cmc_lab.engine.desk_api` (the desk and risk facades:
spreads, hedges, capital, transfers, thresholds, alerts).
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

from cmc_lab.core.clock import Clock
from cmc_lab.core.crashpoints import crash_point
from cmc_lab.core.model import (
    Event,
    Instrument,
    OrderEvent,
    OrderFilled,
    Quote,
    Side,
    TimeInForce,
    VenueConnected,
    VenueDisconnected,
    VenueEvent,
    event_payload,
)
from cmc_lab.core.order import Order, OrderNotWorking, _fire, _register
from cmc_lab.core.specs import Specs, unknown_instrument_message
from cmc_lab.engine.desk_api import EngineDesk
from cmc_lab.engine.journaling import EngineJournal
from cmc_lab.engine.recovery import reconcile_recovered, recover, run_owner
from cmc_lab.engine.routing import EngineOrders, InvalidOrder, _parse_tif
from cmc_lab.execution.desk import Desk
from cmc_lab.journal import Journal, JournalError, JournalRow
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.pretrade import PreTradeChecks, TradingState
from cmc_lab.venues.base import Venue

T = TypeVar("T")
EventCallback = Callable[[Event], None]
QuoteCallback = Callable[[Quote], None]


class EngineError(RuntimeError):
    """Base of the engine's own errors."""


class EngineClosed(EngineError):
    """A call on an engine after ``close()``."""


class NoQuote(LookupError):
    """No quote has arrived yet for an instrument."""


class Engine(EngineOrders, EngineJournal, EngineDesk):
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

    # ================================================================== public: session

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

    def _report(self, errors: list[str]) -> None:
        if errors:
            self.errors.extend(errors)
            del self.errors[:-200]


def _memory_prefix() -> str:
    """Client order ids without a journal file: unique per process start (base-36 milliseconds)."""
    value = time.time_ns() // 1_000_000
    digits = ""
    while value:
        value, rem = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
    return "m" + digits[-7:]
