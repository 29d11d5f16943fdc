"""The UI pump: applies coalesced engine snapshots to widgets at a fixed rate from its own thread.

Engine callbacks only append to buffers; the pump drains them at ``rate_hz`` (10 by default) and
sets traitlets or streams bokeh points. The kernel publishes widget messages from any thread,
so panels keep moving while a cell runs a long computation.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine

Job = Callable[[], None]


class Pump:
    def __init__(self, rate_hz: float = 10.0) -> None:
        if not 0 < rate_hz <= 60:
            raise ValueError(f"rate_hz must be in (0, 60], got {rate_hz}")
        self.period = 1.0 / rate_hz
        self.errors: list[str] = []
        self.ticks = 0
        self._jobs: list[Job] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmc-ui-pump", daemon=True)
        self._thread.start()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs.append(job)

    def remove(self, job: Job) -> None:
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                jobs = list(self._jobs)
            for job in jobs:
                try:
                    job()
                except Exception as exc:  # one broken panel must not stop the others
                    self.errors.append(f"{getattr(job, '__qualname__', job)}: {exc!r}")
                    del self.errors[:-50]
            self.ticks += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def pump_for(engine: Engine, rate_hz: float = 10.0) -> Pump:
    """The engine's UI pump, started on first use and stopped with the engine."""
    pump = _PUMPS.get(engine)
    if pump is None:
        pump = _PUMPS[engine] = Pump(rate_hz)
        engine.on_close(pump.close)
    return pump


_PUMPS: weakref.WeakKeyDictionary[Engine, Pump] = weakref.WeakKeyDictionary()
