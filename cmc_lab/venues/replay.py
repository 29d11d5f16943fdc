"""Replay venue: a recorded quote Dataset played on the engine loop, orders matched against its top of book.

A :class:`ReplayFeed` walks the Dataset's rows in time order on the engine's loop: under the
virtual clock as fast as the CPU allows, under a real clock at wall speed. Each venue whose
instruments the feed holds is a :class:`ReplayVenue` behind the same
:class:`~cmc_lab.venues.base.Venue` protocol as the embedded exchange, so the engine, spreads,
triggers and hedge tickets run unchanged: a research result and a live ticket share one path.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from cmc_lab.core.clock import Clock
from cmc_lab.core.model import Quote, SubmitOrder
from cmc_lab.core.specs import Specs, VenueSpec
from cmc_lab.data.history import check_quotes, quote_columns, time_ns
from cmc_lab.data.recorder import open_quotes
from cmc_lab.venues.base import EventSink
from cmc_lab.venues.sim.faults import Faults
from cmc_lab.venues.sim.inproc import InProcessVenue, latency_ranges
from cmc_lab.venues.sim.matching import Item, Listing, Matcher, limit_band

_BLOCK = 4096  # rows converted to Python floats at a time


def replay_path(address: str) -> Path:
    """The store named by a ``"replay:PATH"`` venue address."""
    path = address.removeprefix("replay:")
    if not address.startswith("replay:") or not path:
        raise ValueError(
            f"replay address {address!r} must look like 'replay:PATH' (a .zarr or .nc quote store)"
        )
    return Path(path).expanduser()


def first_time_ns(data: xr.Dataset) -> int:
    """When the first row of a quote Dataset was seen (the replay's clock starts there)."""
    times = time_ns(check_quotes(data))
    if not times.size:
        raise ValueError("the quote Dataset has no rows; record or generate some quotes first")
    return int(times[0])


class ReplayFeed:
    """One recorded quote Dataset played on one loop, shared by the venues whose instruments it holds.

    A row's time is when its quotes reach the engine; the venue's book holds the recorded top
    of book as of that time. Orders reach the book after a one-way latency drawn from
    ``latency`` (None: each venue's ``latency_ms``; a number of ms for all; or
    ``{"COMEX": (60, 120)}``), are matched as on the embedded exchange (limit price, IOC
    remainder cancelled, GFD resting in price-time order, filled at most the recorded size of
    the level, which our fills use up until the next recorded quote), and the answers come back
    after another one-way latency.

    Parameters
    ----------
    data
        A quote Dataset (``time x instrument``; see :mod:`cmc_lab.data.history`).
    specs, clock
        Instruments and venues; the engine's clock (virtual: as fast as the CPU).
    instruments
        Instruments to play (default: every one the Dataset and the specs both have).
    seed
        Seeds the latency draws: same seed, same latencies, same fills.

    Attributes ``start_ns`` / ``end_ns`` (first and last row), ``rows``, ``played`` (rows played so
    far), ``quotes`` (quotes delivered) and ``done`` follow the playback.

    Examples
    --------
    >>> from cmc_lab.core.clock import VirtualClock
    >>> from cmc_lab.data.history import synthetic_quotes
    >>> from cmc_lab.core.specs import load_specs
    >>> ds = synthetic_quotes(rate_hz=10, start="2026-11-24 14:00", day_length="10s")
    >>> feed = ReplayFeed(ds, load_specs(), VirtualClock(first_time_ns(ds)), latency=0)
    >>> feed
    ReplayFeed(9 instruments, 100 rows, 0 played)
    """

    def __init__(
        self,
        data: xr.Dataset,
        specs: Specs,
        clock: Clock,
        *,
        latency: float | Mapping[str, tuple[float, float]] | None = None,
        seed: int = 7,
        instruments: Iterable[str] | None = None,
    ) -> None:
        check_quotes(data)
        held = [i for i in data.instrument.values.tolist() if i in specs.instruments]
        wanted = list(instruments) if instruments is not None else held
        missing = [i for i in wanted if i not in held]
        if missing:
            raise ValueError(
                f"no quotes for {', '.join(missing)} in the replay data; it holds {', '.join(held) or 'none'}"
            )
        if not wanted:
            raise ValueError("the replay data holds none of the instruments in the specs")
        self.specs = specs
        self.clock = clock
        self.seed = seed
        self.ids = wanted
        cols = quote_columns(data, wanted)
        times = time_ns(data)
        stamped = (
            np.asarray(data["ts_event"].sel(instrument=wanted).values, dtype=np.int64)
            if "ts_event" in data.data_vars
            else None
        )
        keep = np.isfinite(cols["bid"]).any(axis=1)
        self._t = times[keep]
        if not self._t.size:
            raise ValueError(f"the replay data has no quotes for {', '.join(wanted)}")
        self._bid, self._ask = cols["bid"][keep], cols["ask"][keep]
        self._bid_size, self._ask_size = cols["bid_size"][keep], cols["ask_size"][keep]
        self._ts_event = stamped[keep] if stamped is not None else None
        self._times: list[int] = self._t.tolist()  # read once per row: a list reads faster than numpy
        self.start_ns = int(self._t[0])
        self.end_ns = int(self._t[-1])
        self.played = 0
        self.quotes = 0
        self._latest: list[Quote | None] = [None] * len(wanted)  # as last played (ts_init: when)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._t0 = (0.0, 0)  # (loop time, clock ns) when the feed attached
        self._block_start = -_BLOCK  # no block loaded yet
        self._block: tuple[list[list[Any]], ...] = ()  # bids, asks, sizes, stamps: one list per instrument
        ranges = latency_ranges(specs, latency)
        self.venues: dict[str, ReplayVenue] = {
            name: ReplayVenue(self, spec, ranges[name]) for name, spec in specs.venues.items()
        }
        self._venue_of = [self.venues[specs.instruments[i].venue] for i in wanted]
        self._deliver = [venue._on_quote for venue in self._venue_of]  # bound once, called per quote
        for j, iid in enumerate(wanted):
            first = np.flatnonzero(np.isfinite(self._bid[:, j]))
            if first.size:
                mid = (self._bid[first[0], j] + self._ask[first[0], j]) / 2
                self._venue_of[j]._set_band(iid, mid)

    def __repr__(self) -> str:
        return f"ReplayFeed({len(self.ids)} instruments, {self._t.size} rows, {self.played} played)"

    @property
    def rows(self) -> int:
        return int(self._t.size)

    @property
    def done(self) -> bool:
        """Every row has been played."""
        return self.played >= self._t.size

    def venue(self, name: str) -> ReplayVenue:
        """The replay venue called ``name`` (one object per name)."""
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(f"no venue {name!r} in the specs; venues: {', '.join(self.venues)}") from None

    def latest(self, instrument_id: str) -> Quote | None:
        """The recorded top of book of an instrument as of now (None before its first quote)."""
        j = self.ids.index(instrument_id) if instrument_id in self.ids else -1
        state = self._latest[j] if j >= 0 else None
        return None if state is None else state._replace(ts_init=self.clock.now_ns())

    # ------------------------------------------------------------------ playback

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
            self._timer = None
            self._t0 = (loop.time(), self.clock.now_ns())
        elif self._loop is not loop:
            raise RuntimeError("every venue of one ReplayFeed must connect on the same event loop")

    def _start(self) -> None:
        if self._timer is not None or self._loop is None:
            return
        self._advance(deliver=False)  # rows before now are the book's state, not news
        self._schedule()

    def _at(self, row: int) -> float:
        loop_t0, ns0 = self._t0
        return loop_t0 + (self._times[row] - ns0) / 1e9

    def _schedule(self) -> None:
        loop = self._loop
        if loop is None or self.done or not any(v._client_connected for v in self.venues.values()):
            self._timer = None
            return
        self._timer = loop.call_at(self._at(self.played), self._play)

    def _play(self) -> None:
        self._timer = None
        try:
            self._advance(deliver=True)
        finally:  # a failing subscriber must not stop the tape (the loop reports the error)
            self._schedule()

    def _advance(self, deliver: bool) -> None:
        """Play the rows due by now; delivering, on a virtual clock, play on while the loop would
        come back to the tape next anyway (``VirtualTimeLoop.jump_to``), in this one call."""
        loop = self._loop
        if loop is None:
            return
        total = self._t.size
        times, latest, on_quote, ids = self._times, self._latest, self._deliver, self.ids
        loop_t0, ns0 = self._t0
        jump = getattr(loop, "jump_to", None) if deliver else None
        now_ns = self.clock.now_ns
        now, ts_init = loop.time(), now_ns()
        new = tuple.__new__  # Quote(...) without the named tuple's Python-level __new__
        start, stop, block = self._block_start, self._block_start + _BLOCK, self._block
        while self.played < total:
            row = self.played
            at = loop_t0 + (times[row] - ns0) / 1e9  # _at(row)
            if at > now:
                if jump is None or not jump(at):
                    return
                now, ts_init = at, now_ns()
            self.played = row + 1  # before delivering: a row whose delivery fails is not played twice
            if not start <= row < stop:
                self._load_block(row)
                start, stop, block = row, row + _BLOCK, self._block
            r = row - start
            bids, asks, bid_sizes, ask_sizes, stamps = block
            for j, column in enumerate(bids):
                bid = column[r]
                if bid != bid:  # NaN: this instrument did not quote in this row
                    continue
                quote: Quote = new(
                    Quote, (ids[j], bid, asks[j][r], bid_sizes[j][r], ask_sizes[j][r], stamps[j][r], ts_init)
                )
                latest[j] = quote
                if deliver:
                    on_quote[j](quote)

    def _load_block(self, row: int) -> None:
        end = min(row + _BLOCK, self._t.size)
        stamps = self._ts_event[row:end] if self._ts_event is not None else None
        if stamps is None:
            stamps = np.repeat(self._t[row:end, None], len(self.ids), axis=1)
        else:
            stamps = np.where(stamps > 0, stamps, self._t[row:end, None])
        # Column by column (one list per instrument): a list of floats is one object for the
        # garbage collector to track, where a list per row would be thousands of them.
        self._block = (
            self._bid[row:end].T.tolist(),
            self._ask[row:end].T.tolist(),
            _sizes(self._bid_size[row:end]),
            _sizes(self._ask_size[row:end]),
            stamps.astype(np.int64).T.tolist(),
        )
        self._block_start = row


def _sizes(block: np.ndarray) -> list[list[int]]:
    """Recorded sizes as Python ints, one list per instrument (no size: 0; a fraction truncated)."""
    sizes = np.nan_to_num(block)
    if np.isfinite(sizes).all():
        return sizes.astype(np.int64).T.tolist()
    return [[int(x) for x in column] for column in sizes.T.tolist()]


class _ReplayMatcher(Matcher):
    """The embedded exchange's matcher, its simulated liquidity replaced by the recorded top of book."""

    def requote_top(self, listing: Listing, state: Quote, now: int, items: list[Item]) -> None:
        _, bid, ask, bid_size, ask_size, _, _ = state
        book = listing.book
        book.remove_owner("mm")
        buy, sell = listing.mm[0]
        orders = []
        buy.price_ticks, buy.qty = round(bid / listing.tick), bid_size
        sell.price_ticks, sell.qty = round(ask / listing.tick), ask_size
        if buy.qty >= 1 and buy.price_ticks >= 1:
            orders.append(buy)
        if sell.qty >= 1:
            orders.append(sell)
        matches = book.add_many(orders)
        if matches:
            self._report_matches(listing, matches, None, now, items)

    def has_resting(self, listing: Listing) -> bool:
        """Whether any user order rests in the book (so a new recorded quote may fill it)."""
        book = listing.book
        buy, sell = listing.mm[0]
        return len(book) > (buy.key in book) + (sell.key in book)


class ReplayVenue(InProcessVenue):
    """One venue of a :class:`ReplayFeed`, as the engine's :class:`~cmc_lab.venues.base.Venue`.

    Events delivered to the sink: the recorded quotes of its instruments, ``VenueConnected`` /
    ``VenueDisconnected``, and per order ``OrderAccepted``, ``OrderRejected``, ``OrderFilled``,
    ``OrderCanceled``, ``OrderCancelRejected``, as on the embedded exchange (same checks: sessions,
    tick grid, limit band around the first recorded price, order size; same latency link, see
    :class:`~cmc_lab.venues.sim.inproc.InProcessVenue`). Quotes show the recorded book, not our own
    resting orders.

    Examples
    --------
    >>> venue = feed.venue("COMEX")        # doctest: +SKIP
    >>> await venue.connect(events.append) # doctest: +SKIP
    """

    kind = "replay"
    _matcher: _ReplayMatcher

    def __init__(self, feed: ReplayFeed, spec: VenueSpec, latency_ms: tuple[float, float]) -> None:
        super().__init__(feed, spec, latency_ms)
        self._feed = feed
        self._matcher = _ReplayMatcher(spec.name, self._listed(), Faults(self._rng))
        self._synced: dict[str, Quote | None] = {}
        # Instruments whose book may hold a user order: only a submit rests one (a replace needs one
        # resting already), and a quote then checks the book until none rests; the others skip it.
        self._may_rest: set[str] = set()

    @property
    def feed(self) -> ReplayFeed:
        """The feed this venue plays from (progress: ``feed.played`` rows, ``feed.quotes``, ``feed.done``)."""
        return self._feed

    # ------------------------------------------------------------------ session

    def _session_opening(self) -> None:
        self._feed._start()

    def _session_opened(self, sink: EventSink, now: int) -> None:
        for iid in self._matcher.listings:
            quote = self._feed.latest(iid)
            if quote is not None:
                self._feed.quotes += 1
                sink(quote)

    def _session_closing(self) -> None:
        """Nothing to tidy: the feed stops by itself once none of its venues is connected."""

    # ------------------------------------------------------------------ exchange side

    def _set_band(self, instrument_id: str, mid: float) -> None:
        listing = self._matcher.listings.get(instrument_id)
        if listing is None or not math.isfinite(mid) or mid <= 0:
            return
        listing.band = limit_band(listing.inst, Decimal(str(mid)))

    def _sync(self, instrument_id: str, items: list[Item]) -> None:
        """Bring the book to the recorded top of book as of now, if it is behind."""
        listing = self._matcher.listings.get(instrument_id)
        if listing is None or instrument_id not in self._feed.ids:
            return
        state = self._feed._latest[self._feed.ids.index(instrument_id)]
        if state is not None and self._synced.get(instrument_id) is not state:
            self._synced[instrument_id] = state
            self._matcher.requote_top(listing, state, self._clock.now_ns(), items)

    def _on_quote(self, quote: Quote) -> None:
        """A recorded quote played: fills any resting order it crosses, then reaches the client."""
        may_rest = self._may_rest
        if may_rest and quote.instrument_id in may_rest:
            iid = quote.instrument_id
            if self._matcher.has_resting(self._matcher.listings[iid]):
                items: list[Item] = []
                self._sync(iid, items)
                self._emit(items)
            else:
                may_rest.discard(iid)
        sink = self._sink
        if self._client_connected and sink is not None:
            self._feed.quotes += 1
            sink(quote)

    def _on_submit(self, command: SubmitOrder) -> None:
        items: list[Item] = []
        self._sync(command.instrument_id, items)
        items += self._matcher.submit(command, self._clock.now_ns())
        self._rests(command.instrument_id)
        self._emit(items)

    def _rests(self, instrument_id: str) -> None:
        listing = self._matcher.listings.get(instrument_id)
        if listing is not None and self._matcher.has_resting(listing):
            self._may_rest.add(instrument_id)


def open_replay(address: str) -> xr.Dataset:
    """The quote Dataset behind a ``"replay:PATH"`` address; a clear error if the store is missing."""
    path = replay_path(address)
    try:
        return open_quotes(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"replay store {str(path)!r} does not exist; record one with "
            "cmc_lab.data.recorder.Recorder(eng, path='quotes.zarr') or save_quotes(ds, 'quotes.zarr')"
        ) from None


def replay_venues(
    addresses: Mapping[str, str],
    data: Mapping[str, xr.Dataset],
    specs: Specs,
    clock: Clock,
    *,
    latency: float | Mapping[str, tuple[float, float]] | None = None,
    seed: int = 7,
) -> dict[str, ReplayVenue]:
    """Replay venues for ``{venue: "replay:PATH"}``: one feed per store, playing its venues' instruments."""
    out: dict[str, ReplayVenue] = {}
    for address, ds in data.items():
        names = [name for name, a in addresses.items() if a == address]
        held = set(ds.instrument.values.tolist())
        ids = [i.id for i in specs.instruments.values() if i.venue in names and i.id in held]
        if not ids:
            raise ValueError(
                f"replay store {address!r} has no quotes for venue(s) {', '.join(names)}; "
                f"it holds {', '.join(sorted(held)) or 'nothing'}"
            )
        feed = ReplayFeed(ds, specs, clock, latency=latency, seed=seed, instruments=ids)
        out.update({name: feed.venue(name) for name in names})
    return out


__all__ = ["ReplayFeed", "ReplayVenue", "first_time_ns", "open_replay", "replay_path", "replay_venues"]
