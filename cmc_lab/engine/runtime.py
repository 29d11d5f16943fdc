"""The engine's runtime: one asyncio loop in one daemon thread, and blocking calls onto it.

Every state change happens on this loop, so heartbeats, quotes and fills keep flowing while a
notebook cell computes. A synchronous call hands a coroutine to the loop and waits (with a
timeout); its ``async`` twin awaits the same future. A blocking call from the loop's own thread
(a callback) raises instead of deadlocking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from cmc_lab.core.clock import Clock, VirtualClock
from cmc_lab.engine.errors import EngineClosed, EngineError

T = TypeVar("T")
_CLOSED = "this engine is closed; make a new one with cmc.connect(...)"


class Runtime:
    """The loop thread of one engine (the :class:`~cmc_lab.core.ports.Runner` port).

    ``errors`` keeps the last 200 problems that could not be raised to anyone (a user callback
    that raised, a background task that failed).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.errors: list[str] = []
        self.closed = False
        self.loop = clock.new_loop()
        self.thread = threading.Thread(target=self._run, name="cmc-engine", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        """Stop the loop and join its thread; calls after this raise :class:`EngineClosed`."""
        self.closed = True
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def call(self, coro: Coroutine[Any, Any, T], *, advance: bool = False, timeout: float = 10.0) -> T:
        """Run ``coro`` on the loop and wait for its result from the caller's thread.

        ``advance``: under the virtual clock, let market time run while waiting.
        """
        if self.closed:
            coro.close()
            raise EngineClosed(_CLOSED)
        if threading.current_thread() is self.thread:
            coro.close()
            raise EngineError(
                "a blocking engine call was made from the engine thread (a callback?); "
                "use the *_async method or schedule the work instead"
            )
        if advance:
            coro = self.clock.advance(coro)
        if isinstance(self.clock, VirtualClock):  # answer once the instant's ready work has run
            coro = self.clock.settle(coro)
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
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

    async def call_async(self, coro: Coroutine[Any, Any, T], *, advance: bool = False) -> T:
        """``await`` twin of :meth:`call`, for notebook cells (runs on the engine loop all the same)."""
        if self.closed:
            coro.close()
            raise EngineClosed(_CLOSED)
        if advance:
            coro = self.clock.advance(coro)
        if isinstance(self.clock, VirtualClock):  # answer once the instant's ready work has run
            coro = self.clock.settle(coro)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def report(self, errors: list[str]) -> None:
        """Keep problems nobody could be told about (a user callback raised, a task failed)."""
        if errors:
            self.errors.extend(errors)
            del self.errors[:-200]
