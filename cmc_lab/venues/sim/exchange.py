"""The embedded exchange: simulated market, order books, latency and faults behind the Venue protocol."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cmc_lab.core.clock import Clock
from cmc_lab.core.ids import venue_of
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side, VenueConnected, VenueDisconnected
from cmc_lab.core.specs import Specs, VenueSpec
from cmc_lab.data.market import SimMarket
from cmc_lab.data.month_curve import FairQuote
from cmc_lab.venues.base import EventSink, VenueNotConnected
from cmc_lab.venues.sim.book import OrderBook
from cmc_lab.venues.sim.faults import FaultHandle, Faults, make_fault
from cmc_lab.venues.sim.inproc import InProcessVenue, latency_ranges
from cmc_lab.venues.sim.matching import Matcher
from cmc_lab.venues.sim.positions import TradeLog


class SimExchange:
    """One simulated market shared by every venue, so domestic and overseas prices move together.

    The exchange ticks on the loop of the first venue that connects: every ``quote_interval``
    seconds the market steps, the simulated liquidity is re-quoted around the new fair
    prices (filling resting user orders it crosses) and each venue publishes its quotes.

    Parameters
    ----------
    specs
        Instruments and venues (``load_specs()``).
    clock
        ``VirtualClock`` (tests: deterministic) or ``RealClock``.
    seed
        Same seed, same market, same latencies, same fills for the same orders.
    quote_interval
        Seconds between market steps and quotes.
    latency
        One-way latency in ms: None for each venue's ``latency_ms``, a number for all venues
        (0: none, for benchmarks), or ``{"COMEX": (60, 120)}`` to override some venues.
    trade_log
        A JSON-lines file where the exchange appends every trade it books (``cmc.connect`` puts
        it beside the journal). Each venue keeps its accounts' positions from its own fills; with
        a log they outlive the process and a new exchange on the same file starts from them, as
        a real exchange's book outlives an engine restart. None: in memory only.

    Examples
    --------
    >>> import asyncio
    >>> from cmc_lab.core.clock import VirtualClock
    >>> from cmc_lab.core.specs import load_specs
    >>> clock = VirtualClock()
    >>> loop = clock.new_loop()
    >>> ex = SimExchange(load_specs(), clock, seed=7)
    >>> seen = []
    >>> loop.run_until_complete(ex.venue("COMEX").connect(seen.append))
    >>> loop.run_until_complete(clock.advance(asyncio.sleep(1.0)))
    >>> sorted({m.instrument_id for m in seen if type(m).__name__ == "Quote"})
    ['COMEX.GC', 'COMEX.SI']
    >>> loop.close()
    """

    def __init__(
        self,
        specs: Specs,
        clock: Clock,
        seed: int = 7,
        *,
        quote_interval: float = 0.2,
        latency: float | Mapping[str, tuple[float, float]] | None = None,
        trade_log: str | Path | None = None,
    ) -> None:
        if (
            isinstance(quote_interval, bool)
            or not isinstance(quote_interval, int | float)
            or quote_interval <= 0
        ):
            raise ValueError(f"quote_interval must be a positive number of seconds, got {quote_interval!r}")
        self.specs = specs
        self.clock = clock
        self.seed = seed
        self.quote_interval = float(quote_interval)
        self.market = SimMarket(specs, seed, dt=self.quote_interval)
        self.ticks = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._open: dict[int, bool] = {}
        self.trade_log = TradeLog(trade_log) if trade_log is not None else None
        ranges = latency_ranges(specs, latency)
        self.venues: dict[str, SimVenue] = {
            name: SimVenue(self, spec, ranges[name]) for name, spec in specs.venues.items()
        }
        for trade in self.trade_log.trades() if self.trade_log is not None else ():
            venue = self.venues.get(trade["venue"])
            if venue is not None:  # a venue these specs no longer list trades nowhere here
                venue._matcher.positions.replay(trade)

    def __repr__(self) -> str:
        up = sum(v.connected for v in self.venues.values())
        return f"SimExchange(seed={self.seed}, {len(self.venues)} venues, {up} connected, {self.ticks} ticks)"

    def venue(self, name: str) -> SimVenue:
        """The venue called ``name`` (one object per name).

        Examples
        --------
        >>> ex.venue("COMEX").instruments[0].id   # doctest: +SKIP
        'COMEX.GC'
        """
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(
                f"no venue {name!r} on the embedded exchange; venues: {', '.join(self.venues)}"
            ) from None

    def book(self, instrument_id: str) -> OrderBook:
        """The order book of one instrument (a product: its main month), for inspection."""
        instrument_id = self.specs.aliases.get(instrument_id, instrument_id)
        venue = self.venue(venue_of(instrument_id)) if "." in instrument_id else None
        if venue is None or instrument_id not in venue._matcher.listings:
            raise KeyError(f"no instrument {instrument_id!r} on the embedded exchange; name it VENUE.SYMBOL")
        return venue._matcher.listings[instrument_id].book

    def shock(self, instrument_id: str, pct: float) -> None:
        """Move one instrument's fair price by ``pct`` (0.02 is +2 %) from the next market step.

        Shocking an overseas factor (COMEX.GC, COMEX.SI, LME.CA, NYMEX.CL) moves the domestic
        contract priced from it too, as a real move would; shocking a domestic contract jumps its
        cross-market spread, which then reverts. Safe from any thread.

        Examples
        --------
        >>> ex.shock("COMEX.GC", 0.02)   # doctest: +SKIP
        """
        market = self.market
        instrument_id = market.curve.product_of(self.specs.aliases.get(instrument_id, instrument_id))
        if instrument_id not in market.ids:
            raise KeyError(f"no instrument {instrument_id!r} on the embedded exchange; name it VENUE.SYMBOL")
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not -1 < pct < 10:
            raise ValueError(f"pct = {pct!r} must be a fraction above -1 (0.02 is +2 %)")
        i = market.ids.index(instrument_id)
        step = math.log1p(pct)

        def apply() -> None:
            if i in market._idx_factor:
                market._x[market._of_factor[market._idx_factor.index(i)]] += step
            elif i in market._idx_fx:
                market._fx_y += step
            elif i in market._idx_dom:
                market._spread[market._idx_dom.index(i)] += market.quotes[instrument_id].mid * pct
            else:
                market._alone_x[market._idx_alone.index(i)] += step

        loop = self._loop
        if loop is not None and loop.is_running() and not _on_thread_of(loop):
            loop.call_soon_threadsafe(apply)
        else:
            apply()

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
            self._timer = None
        elif self._loop is not loop:
            raise RuntimeError("every venue of one SimExchange must connect on the same event loop")

    def _start_ticking(self) -> None:
        if self._timer is None and self._loop is not None:
            self._next_tick = self._loop.time() + self.quote_interval
            self._timer = self._loop.call_at(self._next_tick, self._tick)

    def _tick(self) -> None:
        loop = self._loop
        if loop is None or not any(v._client_connected for v in self.venues.values()):
            self._timer = None
            return
        self._next_tick = max(self._next_tick + self.quote_interval, loop.time())
        self._timer = loop.call_at(self._next_tick, self._tick)
        fair = self.market.step()
        self.ticks += 1
        now = self.clock.now_ns()
        self._open.clear()
        for venue in self.venues.values():
            venue._on_tick(fair, now)

    def _is_open(self, inst: Instrument, now: int) -> bool:
        key = id(inst.hours)
        is_open = self._open.get(key)
        if is_open is None:
            is_open = self._open[key] = inst.hours.is_open(now)
        return is_open


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class SimVenue(InProcessVenue):
    """One venue of the embedded exchange, as the engine's :class:`~cmc_lab.venues.base.Venue`.

    Orders and cancels reach the exchange after a one-way latency drawn from ``latency_ms``;
    answers come back the same way, each direction in order (see
    :class:`~cmc_lab.venues.sim.inproc.InProcessVenue`). Call ``submit``, ``cancel`` and
    ``order_status`` on the loop the venue connected on. Faults are scripted with :meth:`inject`
    (any thread).

    Events delivered to the sink: quotes, ``VenueConnected`` / ``VenueDisconnected``, and per order
    ``OrderAccepted``, ``OrderRejected``, ``OrderFilled``, ``OrderCanceled``, ``OrderCancelRejected``.

    Examples
    --------
    >>> venue = ex.venue("COMEX")                        # doctest: +SKIP
    >>> await venue.connect(events.append)               # doctest: +SKIP
    >>> venue.inject("reject", times=1, reason="margin") # doctest: +SKIP
    FaultHandle(reject on COMEX, times=1, used=0, active)
    """

    kind = "sim"

    def __init__(self, exchange: SimExchange, spec: VenueSpec, latency_ms: tuple[float, float]) -> None:
        super().__init__(exchange, spec, latency_ms)
        self._ex = exchange
        self.faults = Faults(self._rng)
        self._matcher = Matcher(spec.name, self._listed(), self.faults, exchange.trade_log, spec.offsets)
        self._link_up = True
        self._outage: FaultHandle | None = None
        self._restore_timer: asyncio.TimerHandle | None = None
        now = self._clock.now_ns()
        for iid, listing in self._matcher.listings.items():
            self._matcher.requote(listing, exchange.market.quotes[iid], now, [])

    @property
    def connected(self) -> bool:
        return self._client_connected and self._link_up

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        probability: float | None = None,
        instrument: str | None = None,
        side: str | Side | None = None,
        duration: float | None = None,
        **params: Any,
    ) -> FaultHandle:
        """Script a fault: reject, partial, no_ack, disconnect, stale, halt, close, duplicate_fill, late_fill.

        ``resume`` ends a halt and ``open`` ends a close. Order faults hit the next ``times``
        matching orders (None: no limit), each with ``probability`` if given; ``instrument``
        ("GC" or "COMEX.GC") and ``side`` narrow them. State faults last ``duration`` seconds
        (a disconnect 1 s by default, the others until cleared).

        An order fault belongs to the venue, not to a ticket: it waits for the next matching order
        that reaches this venue, whoever sends it. An order the engine denies never reaches the
        venue, so a fault meant for a ticket that was then denied stays armed and hits the next
        plain order; narrow it (``instrument``, ``side``) or end it with the returned handle's
        ``remove()``.

        Examples
        --------
        >>> venue.inject("partial", ratio=0.3, instrument="GC")   # doctest: +SKIP
        >>> venue.inject("disconnect", duration=2.0)               # doctest: +SKIP
        >>> venue.inject("halt"); venue.inject("resume")           # doctest: +SKIP
        """
        handle = make_fault(
            kind,
            self.name,
            self.instruments,
            self._clock.mono_ns,
            times=times,
            probability=probability,
            instrument=instrument,
            side=side,
            duration=duration,
            params=params,
        )
        if kind == "disconnect":
            if not self._client_connected:
                raise VenueNotConnected(
                    f"venue {self.name!r} is not connected; connect it before injecting a disconnect"
                )
            self._on_loop(self._drop_link, handle)
        else:
            self.faults.add(handle)
        return handle

    def book_trade(self, account: str, instrument: str, side: str | Side, qty: int) -> None:
        """Book a trade in the venue's own position book that the engine never hears of.

        What a give-up, a broker's allocation or a fill whose report was lost leaves behind: the
        venue holds the lots, the engine's book does not, and ``eng.reconcile()`` says so. Safe
        from any thread.

        Examples
        --------
        >>> venue.book_trade("US-FUT", "GC", "buy", 1)   # doctest: +SKIP
        """
        iid = instrument if "." in instrument else f"{self.name}.{instrument}"
        iid = self._ex.specs.aliases.get(iid, iid)
        if iid not in self._matcher.listings:
            raise KeyError(
                f"no instrument {iid!r} on {self.name}; its instruments: {', '.join(self._matcher.listings)}"
            )
        if not isinstance(account, str) or not account:
            raise ValueError(f"account must be an account name such as 'US-FUT', got {account!r}")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            raise ValueError(f"qty must be a whole number of lots >= 1, got {qty!r}")
        parsed = Side.parse(side)
        self._on_loop(self._matcher.positions.book, account, iid, parsed, qty, self._clock.now_ns())

    def shock(self, instrument: str, pct: float) -> None:
        """Move an instrument's fair price by ``pct`` ("GC" or "COMEX.GC"); see :meth:`SimExchange.shock`."""
        self._ex.shock(instrument if "." in instrument else f"{self.name}.{instrument}", pct)

    def clear_faults(self) -> None:
        """End every injected fault; an outage in progress ends now with ``VenueConnected``."""
        self.faults.clear()
        self._on_loop(self._restore_link)

    # ------------------------------------------------------------------ session and link

    def _session_opening(self) -> None:
        self._end_outage()

    def _session_opened(self, sink: EventSink, now: int) -> None:
        for item in self._matcher.snapshot(now):
            message = item(ts_init=now)
            if message is not None:
                sink(message)
        self._ex._start_ticking()

    def _session_closing(self) -> None:
        self._end_outage()

    def _not_connected(self) -> str:
        if self._client_connected and self._outage is not None and self._outage.until_ns is not None:
            left = max(0, self._outage.until_ns - self._clock.mono_ns()) / 1e9
            return (
                f"venue {self.name!r} is not connected: connection lost (injected outage, back in "
                f"{left:.3f} s); wait for VenueConnected, then reconcile with order_status()"
            )
        return super()._not_connected()

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._ex._loop
        if loop is None or not loop.is_running() or _on_thread_of(loop):
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _drop_link(self, handle: FaultHandle) -> None:
        loop = self._ex._loop
        if loop is None or not self._client_connected:
            return
        duration = ((handle.until_ns or 0) - self._clock.mono_ns()) / 1e9
        if self._restore_timer is not None:
            self._restore_timer.cancel()
        self._restore_timer = loop.call_later(max(0.0, duration), self._restore_link)
        was_up, self._outage = self._link_up, handle
        if not was_up:
            return
        self._link_up = False
        self._epoch += 1
        self._fail_pending("the connection was lost")
        now = self._clock.now_ns()
        if self._sink is not None:
            self._sink(VenueDisconnected(now, now, self.name, f"connection lost (injected, {duration:g} s)"))

    def _restore_link(self) -> None:
        if self._outage is None:
            return
        self._end_outage()
        now = self._clock.now_ns()
        if self._client_connected and self._sink is not None:
            self._sink(VenueConnected(now, now, self.name, "reconnected after outage"))

    def _end_outage(self) -> None:
        if self._restore_timer is not None:
            self._restore_timer.cancel()
            self._restore_timer = None
        if self._outage is not None:
            self._outage.removed = True
            self._outage = None
        self._link_up = True

    def _on_tick(self, fair: dict[str, FairQuote], now: int) -> None:
        self._emit(self._matcher.tick(fair, now, lambda inst: self._ex._is_open(inst, now), self.connected))


__all__ = ["FaultHandle", "SimExchange", "SimVenue"]
