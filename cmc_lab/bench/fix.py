"""FIX benchmarks for ``cmc-lab bench``: order and reconciliation round trips, message rate, against a served exchange.

Both start ``cmc-lab venue serve --fix 127.0.0.1:0`` in a subprocess (a free loopback port),
drive a :class:`~cmc_lab.venues.fix.gateway.FixVenue` on a private event loop, and stop the
subprocess whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from cmc_lab.bench.echo import tcp_round_trip
from cmc_lab.bench.stats import percentiles
from cmc_lab.core.clock import RealClock
from cmc_lab.core.listing import list_months
from cmc_lab.core.model import (
    Event,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
)
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.fix.gateway import FixVenue, fix_venues

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
VENUE, PRODUCT = "COMEX", "COMEX.GC"


@contextmanager
def served_exchange(
    *extra: str, env: Mapping[str, str] | None = None, timeout: float = 20.0
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``(port, process)`` of a served exchange on 127.0.0.1; terminated (then killed) on exit.

    ``extra`` are more ``cmc-lab venue serve`` options; ``env`` is added to this process's environment.
    """
    command = ["-m", "cmc_lab.cli", "venue", "serve", "--fix", "127.0.0.1:0", *extra]
    with _peer(command, env, timeout) as peer:
        yield peer


@contextmanager
def _peer(
    args: list[str], env: Mapping[str, str] | None, timeout: float
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """A Python subprocess that prints ``listening on 127.0.0.1:PORT``: its port and process."""
    command = [sys.executable, *args]
    environment = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environment)
        try:
            port = _read_port(proc, timeout, errors)
            yield port, proc
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


def _read_port(proc: subprocess.Popen[str], timeout: float, errors: IO[str]) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        found = _LISTENING.search(line)
        if found:
            return int(found.group(1))
        if not line and proc.poll() is not None:
            break
    errors.seek(0)
    raise RuntimeError(f"the peer process did not start: {line.strip()} {errors.read().strip()[-2000:]}")


class _Driver:
    """A FixVenue on its own loop; ``order()`` sends one crossing IOC and waits for its final report.

    Its sequence store is a file beside ``journal`` (saved on every message), as in a real session.
    """

    def __init__(self, port: int, journal: Path) -> None:
        address = f"fix://127.0.0.1:{port}?sender=CLIENT1&target=EXECUTOR&heartbeat=5"
        self.clock = RealClock()
        self.specs = list_months(load_specs(), self.clock.now_ns())  # the months the served exchange lists
        self.instrument = self.specs.instrument(PRODUCT).id
        self.venue: FixVenue = fix_venues({VENUE: address}, self.specs, self.clock, journal)[VENUE]
        self.loop = asyncio.new_event_loop()
        inst = self.specs.instrument(PRODUCT)
        self.price = inst.round_to_tick(inst.reference_price * (1 + inst.price_band / 2))
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._n = 0
        self.loop.run_until_complete(self.venue.connect(self._sink))

    def _sink(self, message: Event | Quote) -> None:
        if isinstance(message, OrderFilled | OrderCanceled | OrderRejected):
            future = self._waiting.get(message.client_order_id)
            done = not isinstance(message, OrderFilled) or message.last_qty >= 1
            if future is not None and done and not future.done():
                future.set_result(None)

    async def order(self) -> int:
        self._n += 1
        cid = f"bench-{self._n}"
        future = self.loop.create_future()
        self._waiting[cid] = future
        # The harness's timeout, armed before the clock starts and awaited as the echo floor awaits
        # its read: asyncio.wait_for would add a loop turn (a done callback, then the wake-up) that
        # the floor does not pay, 15-25 µs of the p50.
        timeout = self.loop.call_later(10, future.cancel)
        t0 = time.perf_counter_ns()
        self.venue.submit(
            SubmitOrder(
                cid,
                self.instrument,
                Side.BUY,
                1,
                Decimal(self.price),
                TimeInForce.IOC,
                "US-FUT",
                time.time_ns(),
            )
        )
        try:
            await future
            elapsed = time.perf_counter_ns() - t0
        except asyncio.CancelledError:
            if not future.cancelled():  # this task was cancelled, not the order timed out
                raise
            raise TimeoutError(f"no final ExecutionReport for {cid} within 10 s") from None
        finally:
            timeout.cancel()
            del self._waiting[cid]
        return elapsed

    def close(self) -> None:
        self.loop.run_until_complete(self.venue.disconnect())
        self.loop.close()


def _with_driver(run: Callable[[_Driver], dict[str, Any]]) -> dict[str, Any]:
    with served_exchange("--quote-interval", "0.05") as (port, _), tempfile.TemporaryDirectory() as tmp:
        driver = _Driver(port, Path(tmp) / "bench.sqlite")  # sequence numbers on disk, as in a session
        try:
            return run(driver)
        finally:
            driver.close()


def fix_round_trip(n: int = 500) -> dict[str, Any]:
    """NewOrderSingle out -> final ExecutionReport in, over loopback TCP: p50/p99/max in µs, and the floor.

    The floor is the loopback TCP round trip of the same byte counts between two asyncio-streams
    processes (:mod:`cmc_lab.bench.echo`), measured just before in the same run;
    ``tcp_p50_us``/``tcp_p99_us`` and ``ratio_p50`` (FIX over TCP) say how much of the FIX round
    trip is FIX: both sessions' parsing, checks, sequence store and order mapping, and the matching.

    Examples
    --------
    >>> fix_round_trip(50)["ratio_p50"] > 1     # doctest: +SKIP
    True
    """
    with _peer(["-m", "cmc_lab.bench.echo"], None, 20.0) as (port, _):
        tcp = tcp_round_trip(port, n)

    def run(driver: _Driver) -> dict[str, Any]:
        async def many(count: int) -> list[int]:
            return [await driver.order() for _ in range(count)]

        driver.loop.run_until_complete(many(max(20, n // 10)))
        result: dict[str, Any] = percentiles(driver.loop.run_until_complete(many(n)))
        result["what"] = (
            "FIX NewOrderSingle -> ExecutionReport (IOC, crossing), loopback TCP, served exchange"
        )
        return result

    result = _with_driver(run)
    result.update(tcp_p50_us=tcp["p50_us"], tcp_p99_us=tcp["p99_us"], tcp_what=tcp["what"])
    result["ratio_p50"] = result["p50_us"] / tcp["p50_us"]
    return result


def fix_reconcile_round_trip(n: int = 200, working: int = 5) -> dict[str, Any]:
    """Positions (35=AN -> AO, AP) and working orders (35=AF -> ExecutionReports 150=I) asked together,
    as ``eng.reconcile()`` asks one venue, until both whole answers are in: p50/p99/max in µs.

    The session holds a position and ``working`` resting orders, so each answer carries reports.

    Examples
    --------
    >>> fix_reconcile_round_trip(20)["p50_us"] > 0     # doctest: +SKIP
    True
    """

    def run(driver: _Driver) -> dict[str, Any]:
        venue = driver.venue

        async def prepare() -> None:
            await driver.order()  # a crossing IOC: the account holds a position
            inst = driver.specs.instrument(PRODUCT)
            low = inst.round_to_tick(inst.reference_price * (1 - inst.price_band / 2))  # rests below any bid
            for i in range(working):
                venue.submit(
                    SubmitOrder(
                        f"rest-{i}", inst.id, Side.BUY, 1, low, TimeInForce.GFD, "US-FUT", time.time_ns()
                    )
                )
            while len(await venue.working_orders()) < working:
                await asyncio.sleep(0.01)

        async def once() -> int:
            t0 = time.perf_counter_ns()
            held, orders = await asyncio.gather(venue.positions(), venue.working_orders())
            elapsed = time.perf_counter_ns() - t0
            if not held or len(orders) < working:
                raise RuntimeError(
                    f"the reconcile answer lost reports: {len(held)} positions, {len(orders)} orders"
                )
            return elapsed

        async def many(count: int) -> list[int]:
            return [await once() for _ in range(count)]

        driver.loop.run_until_complete(prepare())
        driver.loop.run_until_complete(many(max(10, n // 10)))
        result: dict[str, Any] = percentiles(driver.loop.run_until_complete(many(n)))
        result["what"] = (
            f"FIX RequestForPositions + OrderMassStatusRequest ({working} working orders) -> whole answers, "
            "loopback TCP, served exchange"
        )
        return result

    return _with_driver(run)


def fix_messages_per_second(seconds: float = 2.0, window: int = 64) -> dict[str, Any]:
    """FIX messages in and out per second with ``window`` orders in flight for ``seconds``."""

    def run(driver: _Driver) -> dict[str, Any]:
        stats = driver.venue.session.stats

        async def flow() -> dict[str, Any]:
            before = stats["in"] + stats["out"]
            orders = 0
            t0 = time.perf_counter()
            end = t0 + seconds

            async def worker() -> None:
                nonlocal orders
                while time.perf_counter() < end:
                    await driver.order()
                    orders += 1

            await asyncio.gather(*(worker() for _ in range(window)))
            elapsed = time.perf_counter() - t0
            messages = stats["in"] + stats["out"] - before
            return {
                "seconds": round(elapsed, 3),
                "messages": messages,
                "messages_per_second": messages / elapsed,
                "orders_per_second": orders / elapsed,
                "window": window,
            }

        return driver.loop.run_until_complete(flow())

    return _with_driver(run)


__all__ = ["fix_messages_per_second", "fix_reconcile_round_trip", "fix_round_trip", "served_exchange"]
