"""In-process venues: the latency link between the engine and an exchange side run on the engine's loop.

The embedded exchange (:mod:`cmc_lab.venues.sim.exchange`) and recorded-quote replay
(:mod:`cmc_lab.venues.replay`) both match orders with a
:class:`~cmc_lab.venues.sim.matching.Matcher` on the engine's own loop. What sits between the
engine and that matcher lives here, once, so both deliver the same messages in the same order,
after the same latencies for the same seed: the session, one ordered channel each way, and the
latency draws.
"""

from __future__ import annotations

import asyncio
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np

from cmc_lab.core.clock import Clock
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import CancelOrder, ReplaceOrder, SubmitOrder, VenueConnected, VenueDisconnected
from cmc_lab.core.specs import Specs, VenueSpec
from cmc_lab.venues.base import EventSink, OrderStatusReport, PositionReport, VenueNotConnected
from cmc_lab.venues.sim.matching import Item, Matcher

T = TypeVar("T")


class Host(Protocol):
    """What an in-process venue needs of the exchange or feed that owns it: specs, clock, seed, loop."""

    specs: Specs
    clock: Clock
    seed: int
    _loop: asyncio.AbstractEventLoop | None

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None: ...


def latency_ranges(
    specs: Specs, latency: float | Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float]]:
    """One-way latency range in ms of every venue: the specs' own, all set to one number, or some overridden."""
    ranges = {name: spec.latency_ms for name, spec in specs.venues.items()}
    if latency is None:
        return ranges
    if isinstance(latency, int | float) and not isinstance(latency, bool):
        if not latency >= 0:
            raise ValueError(f"latency must be >= 0 ms, got {latency!r}")
        return dict.fromkeys(ranges, (float(latency), float(latency)))
    if not isinstance(latency, Mapping):
        raise ValueError(
            f"latency must be None, a number of ms or {{venue: (low_ms, high_ms)}}, got {latency!r}"
        )
    for name, value in latency.items():
        if name not in ranges:
            raise ValueError(f"latency names unknown venue {name!r}; venues: {', '.join(ranges)}")
        try:
            lo, hi = (float(x) for x in value)
        except (TypeError, ValueError):
            raise ValueError(f"latency of {name} must be (low_ms, high_ms), got {value!r}") from None
        if not 0 <= lo <= hi:
            raise ValueError(f"latency of {name} must satisfy 0 <= low <= high, got {value!r}")
        ranges[name] = (lo, hi)
    return ranges


class _Channel:
    """One direction of a link: messages arrive after their latency, never overtaking each other."""

    __slots__ = ("_deliver", "_last", "_queue")

    def __init__(self, deliver: Callable[[int, Any], None]) -> None:
        self._deliver = deliver
        self._queue: deque[tuple[int, Any]] = deque()
        self._last = 0.0

    def send(self, loop: asyncio.AbstractEventLoop, delay: float, epoch: int, payload: Any) -> None:
        now = loop.time()
        at = max(now + delay, self._last)
        self._last = at
        self._queue.append((epoch, payload))
        if at <= now:
            loop.call_soon(self._pop)
        else:
            loop.call_at(at, self._pop)

    def _pop(self) -> None:
        epoch, payload = self._queue.popleft()
        self._deliver(epoch, payload)


class InProcessVenue(ABC):
    """A :class:`~cmc_lab.venues.base.Venue` whose exchange side is a ``Matcher`` on the engine's loop.

    Orders, cancels and status requests reach the matcher after a one-way latency drawn from
    ``latency_ms`` by the venue's own generator (seeded by the host's seed and the venue's name,
    so each venue draws the same latencies on every run whatever the others do); answers come
    back the same way, each direction in order. Messages carry the session's epoch: whatever is
    in flight when the session ends is dropped. Call ``submit``, ``cancel`` and the queries
    (``order_status``, ``positions``, ``working_orders``) on the loop the venue connected on; a
    query's answer is the exchange's view when the query reached it.

    A subclass sets ``kind`` and ``_matcher`` and fills in the session hooks (what happens as a
    session opens and closes, what it sees first).
    """

    kind: str
    _matcher: Matcher

    def __init__(self, host: Host, spec: VenueSpec, latency_ms: tuple[float, float]) -> None:
        self.name = spec.name
        self.spec = spec
        self.latency_ms = latency_ms
        self._host = host
        self._clock = host.clock
        self._rng = np.random.Generator(np.random.PCG64([host.seed, zlib.crc32(spec.name.encode())]))
        self._sink: EventSink | None = None
        self._client_connected = False
        self._epoch = 0
        self._pending: dict[asyncio.Future[Any], str] = {}  # queries in flight, and what each asks
        self._to_exchange = _Channel(self._arrive)
        self._to_client = _Channel(self._deliver)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "down" if self._client_connected else "not connected"
        return f"{type(self).__name__}({self.name}, {self.kind}, {state}, {len(self._matcher.listings)} instruments)"

    @property
    def connected(self) -> bool:
        return self._client_connected

    @property
    def instruments(self) -> list[Instrument]:
        return [listing.inst for listing in self._matcher.listings.values()]

    # ------------------------------------------------------------------ client side

    async def connect(self, sink: EventSink) -> None:
        """Open the session: ``VenueConnected`` and the quotes as of now reach ``sink`` at once."""
        self._host._attach(asyncio.get_running_loop())
        self._sink = sink
        if self._client_connected:
            return
        self._client_connected = True
        self._session_opening()
        now = self._clock.now_ns()
        sink(VenueConnected(now, now, self.name, f"{self.kind} session open"))
        self._session_opened(sink, now)

    async def disconnect(self) -> None:
        """Close the session; messages in flight are lost, resting orders stay in the book."""
        if not self._client_connected:
            return
        self._client_connected = False
        self._epoch += 1
        self._fail_pending("the session was closed")
        self._session_closing()
        sink, self._sink = self._sink, None
        now = self._clock.now_ns()
        if sink is not None:
            sink(VenueDisconnected(now, now, self.name, "session closed by client"))

    def submit(self, command: SubmitOrder) -> None:
        """Send an order; the answer comes back through the sink after the round trip."""
        self._send(self._on_submit, command)

    def cancel(self, command: CancelOrder) -> None:
        """Ask to cancel an order; ``OrderCanceled`` or ``OrderCancelRejected`` comes back."""
        self._send(self._on_cancel, command)

    def amend(self, command: ReplaceOrder) -> None:
        """Ask to replace a resting order's quantity and price; ``OrderReplaced`` or ``OrderReplaceRejected`` comes back."""
        self._send(self._on_amend, command)

    async def order_status(self, client_order_ids: Iterable[str]) -> list[OrderStatusReport]:
        """What the venue knows of these orders (one round trip); unknown ids are left out.

        Examples
        --------
        >>> [r.state for r in await venue.order_status(["c1"])]   # doctest: +SKIP
        [<OrderState.FILLED: 'FILLED'>]
        """
        wanted = list(client_order_ids)
        return await self._ask("order_status", lambda: self._matcher.status(wanted))

    async def positions(self) -> list[PositionReport]:
        """Every non-flat position the venue books for its accounts, long and short apart (one round trip).

        Examples
        --------
        >>> [(p.account, p.instrument_id, p.net_qty) for p in await venue.positions()]   # doctest: +SKIP
        [('US-FUT', 'COMEX.GC', 2)]
        """
        return await self._ask("positions", lambda: self._matcher.positions.reports(self._clock.now_ns()))

    async def working_orders(self) -> list[OrderStatusReport]:
        """Every order still working at the venue, with its side and account (one round trip)."""
        return await self._ask("working_orders", self._matcher.working)

    async def _ask(self, what: str, query: Callable[[], T]) -> T:
        """Run ``query`` on the exchange side after the one-way latency; its answer comes back the same way."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._send(self._on_query, (query, future))
        self._pending[future] = what
        try:
            return await future
        finally:
            self._pending.pop(future, None)

    # ------------------------------------------------------------------ session hooks

    @abstractmethod
    def _session_opening(self) -> None:
        """Get the exchange side ready as a session opens, before ``VenueConnected`` is delivered."""

    @abstractmethod
    def _session_opened(self, sink: EventSink, now: int) -> None:
        """Deliver what a new session sees right after ``VenueConnected`` (its quotes as of now)."""

    @abstractmethod
    def _session_closing(self) -> None:
        """Tidy the exchange side as a session closes, before ``VenueDisconnected`` is delivered."""

    # ------------------------------------------------------------------ link

    def _send(self, handler: Callable[[Any], None], arg: Any) -> None:
        loop = self._host._loop
        if not self.connected or loop is None:
            raise VenueNotConnected(self._not_connected())
        self._to_exchange.send(loop, self._delay(), self._epoch, (handler, arg))

    def _not_connected(self) -> str:
        return (
            f"venue {self.name!r} is not connected; call connect() first (engine: eng.connect({self.name!r}))"
        )

    def _delay(self) -> float:
        lo, hi = self.latency_ms
        if hi == 0:
            return 0.0
        return (lo if lo == hi else float(self._rng.uniform(lo, hi))) / 1000.0

    def _emit(self, items: list[Item]) -> None:
        loop = self._host._loop
        if items and self.connected and loop is not None:
            self._to_client.send(loop, self._delay(), self._epoch, items)

    def _arrive(self, epoch: int, payload: tuple[Callable[[Any], None], Any]) -> None:
        if epoch == self._epoch and self.connected:
            handler, arg = payload
            handler(arg)

    def _deliver(self, epoch: int, items: list[Item]) -> None:
        sink = self._sink
        if epoch != self._epoch or not self.connected or sink is None:
            return
        now = self._clock.now_ns()
        for item in items:
            message = item(ts_init=now)
            if message is not None:
                sink(message)

    def _fail_pending(self, why: str) -> None:
        for future, what in self._pending.items():
            if not future.done():
                future.set_exception(VenueNotConnected(f"venue {self.name!r}: {why} before {what} answered"))

    # ------------------------------------------------------------------ exchange side

    def _listed(self) -> list[Instrument]:
        return [inst for inst in self._host.specs.instruments.values() if inst.venue == self.name]

    def _on_submit(self, command: SubmitOrder) -> None:
        self._emit(self._matcher.submit(command, self._clock.now_ns()))

    def _on_cancel(self, command: CancelOrder) -> None:
        self._emit(self._matcher.cancel(command, self._clock.now_ns()))

    def _on_amend(self, command: ReplaceOrder) -> None:
        self._emit(self._matcher.replace(command, self._clock.now_ns()))

    def _on_query(self, request: tuple[Callable[[], Any], asyncio.Future[Any]]) -> None:
        query, future = request
        result = query()

        def answer(ts_init: int) -> None:
            if not future.done():
                future.set_result(result)

        self._emit([answer])


__all__ = ["Host", "InProcessVenue", "latency_ranges"]
