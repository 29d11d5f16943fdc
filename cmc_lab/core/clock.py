"""Clocks: real time for notebooks, virtual time that runs as fast as the CPU for tests.

Both give ``now_ns()`` (exchange time, int ns since the epoch) and ``mono_ns()`` (a monotonic
stamp for latency per hop) and make the asyncio loop the engine thread runs.

The virtual clock's loop jumps straight to its next timer instead of sleeping, but only while
somebody waits on it (:meth:`VirtualClock.advance`): between two calls of a test the market
stands still, so a scripted test sees the same quotes and fills on every run.
"""

from __future__ import annotations

import asyncio
import inspect
import selectors
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

#: Where the embedded exchange's clock starts by default: Tuesday 2026-11-24 22:00 in
#: Shanghai (SHFE/INE night session), 08:00 in Chicago (Globex), 14:00 in London (LME).
SIM_START_NS = int(datetime(2026, 11, 24, 14, 0, tzinfo=UTC).timestamp()) * 1_000_000_000


class RealClock:
    """Wall-clock time; with ``start_ns`` the exchange time starts there and runs at real speed."""

    virtual = False

    def __init__(self, start_ns: int | None = None) -> None:
        self._start_ns = start_ns
        self._mono0 = time.perf_counter_ns()

    def now_ns(self) -> int:
        if self._start_ns is None:
            return time.time_ns()
        return self._start_ns + (time.perf_counter_ns() - self._mono0)

    def mono_ns(self) -> int:
        return time.perf_counter_ns()

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    async def advance(self, awaitable: Awaitable[T]) -> T:
        return await awaitable

    def __repr__(self) -> str:
        return "RealClock()" if self._start_ns is None else "RealClock(anchored)"


#: At most this many loop turns a virtual call waits for the work ready at its instant (a callback
#: that reschedules itself forever must not hang the caller).
_SETTLE_TURNS = 1000

#: The longest a virtual loop runs jumps (VirtualTimeLoop.jump_to) without polling real IO, in ns.
_POLL_EVERY_NS = 1_000_000


class _VirtualSelector(selectors.DefaultSelector):
    """Polls real IO without blocking; when idle, moves the loop's virtual time instead."""

    loop: VirtualTimeLoop | None = None
    polled_ns = 0  # perf_counter_ns of the last real poll

    def select(self, timeout: float | None = None) -> list[Any]:
        self.polled_ns = time.perf_counter_ns()
        if timeout is not None and timeout <= 0:
            return super().select(0)
        ready = super().select(0)
        loop = self.loop
        if ready or loop is None:
            return ready
        if timeout is not None and loop.advancing > 0:
            loop.virtual_now += timeout
            return []
        # Paused (or nothing scheduled): wait for real IO or a call from another thread.
        return super().select(None)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual seconds since the clock started."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self.virtual_now = 0.0
        self.advancing = 0

    def time(self) -> float:
        return self.virtual_now

    def jump_to(self, when: float) -> bool:
        """Move virtual time to ``when`` now, if the loop would get there next anyway; else False.

        For a producer of timed events (a replay's tape) that would otherwise schedule one timer
        per event: the loop's turn, its real-IO poll and the timer cost more than the event. The
        jump is refused while time is paused, when a callback is ready, when a timer is due before
        ``when``, or when real IO has not been polled for a millisecond, so the order of events is
        exactly the loop's own and threads and sockets are still heard.
        """
        if self.advancing <= 0 or self._ready or when < self.virtual_now:  # type: ignore[attr-defined]
            return False
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if scheduled and scheduled[0].when() <= when:
            return False
        selector = self._selector  # type: ignore[attr-defined]
        if time.perf_counter_ns() - selector.polled_ns > _POLL_EVERY_NS:
            return False
        self.virtual_now = when
        return True


class VirtualClock:
    """Virtual time starting at ``start_ns``; time passes only inside :meth:`advance`."""

    virtual = True

    def __init__(self, start_ns: int = SIM_START_NS) -> None:
        self._start_ns = start_ns
        self._loop: VirtualTimeLoop | None = None

    def new_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = VirtualTimeLoop()
        return self._loop

    def now_ns(self) -> int:
        loop = self._loop  # mono_ns() written out: a replay reads the time for every quote
        return self._start_ns + (0 if loop is None else round(loop.virtual_now * 1e9))

    def mono_ns(self) -> int:
        return 0 if self._loop is None else round(self._loop.virtual_now * 1e9)

    async def advance(self, awaitable: Awaitable[T]) -> T:
        """Let virtual time run until ``awaitable`` completes (must run on the clock's loop)."""
        loop = self._loop
        if loop is None or asyncio.get_running_loop() is not loop:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: spare the caller a RuntimeWarning
            raise RuntimeError(
                "clock.advance() must run on the clock's own loop, made by clock.new_loop(); "
                "on any other loop virtual time would never move"
            )
        loop.advancing += 1
        try:
            return await awaitable
        finally:
            loop.advancing -= 1

    async def settle(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, then let the loop run what is ready at this instant before answering.

        Between two calls virtual time stands still, but callbacks already due at this instant (an
        answer with no latency, quotes emitted by the step that just ran) still run on the loop's
        thread. A call returns only once they have, so the caller's next call starts from the same
        state on every run: before, which of the two ran first was up to the threads, and with it
        the order of a venue's latency draws (a seeded scenario gave two different days).
        """
        result = await awaitable
        loop = self._loop
        for _ in range(_SETTLE_TURNS):
            if loop is None or not loop._ready:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0)
        return result

    def __repr__(self) -> str:
        return f"VirtualClock(t+{self.mono_ns() / 1e9:.3f}s)"


Clock = RealClock | VirtualClock


def make_clock(kind: str, start_ns: int | None = SIM_START_NS) -> Clock:
    """``"real"`` (anchored at ``start_ns`` unless None) or ``"virtual"``."""
    if kind == "real":
        return RealClock(start_ns)
    if kind == "virtual":
        return VirtualClock(SIM_START_NS if start_ns is None else start_ns)
    raise ValueError(f"clock {kind!r} is not known; use 'real' (notebooks) or 'virtual' (tests)")
