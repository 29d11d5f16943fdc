"""The UI pump: applies coalesced engine snapshots to widgets at a fixed rate from its own thread.

Engine callbacks only append to buffers; the pump drains them, each job at its own rate
(the pump's ``rate_hz``, 10 by default, unless the job asks for another), and sets traitlets or
streams bokeh points. The kernel publishes widget messages from any thread, so panels keep
moving while a cell runs a long computation.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine

Job = Callable[[], None]
MAX_RATE_HZ = 60.0


def check_rate(rate_hz: float) -> float:
    """``rate_hz`` as a float, or a ValueError saying the allowed range."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float) or not 0 < rate_hz <= MAX_RATE_HZ:
        raise ValueError(
            f"rate_hz must be a number of refreshes per second in (0, {MAX_RATE_HZ:g}], got {rate_hz!r}"
        )
    return float(rate_hz)


@dataclass
class _Entry:
    job: Job
    period: float
    due: float


class Pump:
    """Runs UI jobs, each every ``1 / rate`` seconds, in one daemon thread.

    ``clock`` (monotonic seconds) and ``start=False`` let a test step the pump by hand with
    :meth:`run_due` on a clock it moves itself. ``ticks`` counts the passes that ran jobs;
    ``errors`` keeps the last 50 exceptions of broken jobs (a broken panel never stops the others).

    Examples
    --------
    >>> now = [0.0]
    >>> pump = Pump(4, clock=lambda: now[0], start=False)
    >>> pump.add(lambda: None)
    >>> pump.run_due(), pump.ticks
    (0.25, 1)
    """

    def __init__(
        self, rate_hz: float = 10.0, *, clock: Callable[[], float] = time.monotonic, start: bool = True
    ) -> None:
        self.period = 1.0 / check_rate(rate_hz)
        self.errors: list[str] = []
        self.ticks = 0
        self._clock = clock
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="cmc-ui-pump", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """True while the pump's thread runs its jobs."""
        return self._thread is not None and self._thread.is_alive()

    def add(self, job: Job, rate_hz: float | None = None) -> None:
        """Run ``job`` from the next pass on, every ``1 / rate_hz`` seconds (default: the pump's rate)."""
        period = self.period if rate_hz is None else 1.0 / check_rate(rate_hz)
        with self._lock:
            self._entries.append(_Entry(job, period, self._clock()))
        self._wake.set()

    def remove(self, job: Job) -> None:
        with self._lock:
            self._entries = [e for e in self._entries if e.job != job]

    def run_due(self) -> float:
        """Run every job whose time has come; returns the seconds until the next one is due."""
        now = self._clock()
        with self._lock:
            due = [e for e in self._entries if e.due <= now]
        for entry in due:
            try:
                entry.job()
            except Exception as exc:  # one broken panel must not stop the others
                self.errors.append(f"{getattr(entry.job, '__qualname__', entry.job)}: {exc!r}")
                del self.errors[:-50]
            entry.due += entry.period
            if entry.due <= now:  # fell behind: skip the missed refreshes instead of bursting
                entry.due = now + entry.period
        if due:
            self.ticks += 1
        with self._lock:
            next_due = min((e.due for e in self._entries), default=now + self.period)
        return max(0.0, next_due - self._clock())

    def _run(self) -> None:
        while not self._stopped:
            wait = self.run_due()
            if self._wake.wait(wait):
                self._wake.clear()

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def pump_for(engine: Engine, rate_hz: float = 10.0) -> Pump:
    """The engine's UI pump, started on first use and stopped with the engine.

    ``rate_hz`` is the pump's default job rate, used when the pump is made; a job that wants
    another rate passes it to :meth:`Pump.add`.
    """
    pump = _PUMPS.get(engine)
    if pump is None:
        pump = _PUMPS[engine] = Pump(rate_hz)
        engine.on_close(pump.close)
    return pump


_PUMPS: weakref.WeakKeyDictionary[Engine, Pump] = weakref.WeakKeyDictionary()
