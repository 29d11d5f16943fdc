"""Risk benchmarks for ``cmc-lab bench``: threshold crossing to action, pre-trade cost per order.

Both run an engine on the embedded exchange under the virtual clock with a journal file in a
temporary directory (journal rows are real SQLite commits, as in a session) and measure wall
time with ``perf_counter_ns``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cmc_lab.bench.stats import percentiles
from cmc_lab.core.model import Side
from cmc_lab.core.trading import OrderRequest


def threshold_action_latency(n: int = 500, workdir: Path | None = None) -> dict[str, Any]:
    """Wall time from a threshold crossing detected to its action sent, p50/p99 in µs.

    One GC lot is held in US-FUT; each round raises the GC margin rate (utilisation 0.9, past
    the act level 0.8) and lowers it again (cleared). Detection to action covers journaling the
    crossing and its alert, then the action itself: ``block`` (trading REDUCING, journaled) and
    ``transfer`` (funds from CN-FUT requested and in transit, journaled). After each transfer
    round the money goes back, so every round starts from the same state.

    Examples
    --------
    >>> threshold_action_latency(20)["transfer"]["n"]   # doctest: +SKIP
    20
    """
    from cmc_lab.engine.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        return _threshold_action_latency(connect, n, Path(tmp) / "bench.sqlite")


def _threshold_action_latency(connect: Any, n: int, journal: Path) -> dict[str, Any]:
    eng = connect("sim", seed=1, clock="virtual", latency=0, journal=journal, accounts={"US-FUT": 20_000})
    try:
        eng.set_margin_rate("COMEX.GC", 8_000, kind="per_lot")  # the rounds below move a per-lot rate
        ask = eng.quote("COMEX.GC").ask
        order = eng.submit("COMEX.GC", "buy", 1, price=round(ask + 1.0, 1))
        order.wait(5)
        high, low = Decimal(18_000), Decimal(8_000)
        monitor = eng.risk
        monitor.transfers.delay_s = 0.0
        results: dict[str, Any] = {}
        for action in ("block", "transfer"):
            rule = eng.thresholds.add(
                "margin_utilisation", act=0.8, action=action, scope="US-FUT", min_interval_ms=0, target=0.6
            )
            first = len(eng.thresholds.action_records())

            async def rounds(count: int, action: str = action) -> None:
                for _ in range(count):
                    await monitor.set_margin_rate("COMEX.GC", high, None, None)
                    await monitor.set_margin_rate("COMEX.GC", low, None, None)
                    if action == "transfer":
                        await _settle()
                        moved = list(monitor.transfers.transfers.values())[-1]
                        monitor.transfers.request(
                            "US-FUT", "CN-FUT", moved.credit, "USD", reason="bench: back"
                        )
                        await _settle()

            eng.runtime.call(rounds(max(5, n // 10)), timeout=600)
            warm = len(eng.thresholds.action_records())
            eng.runtime.call(rounds(n), timeout=600)
            records = eng.thresholds.action_records()[max(first, warm) :]
            results[action] = percentiles([a.cpu_ns for a in records if a.action == action and a.ok])
            eng.thresholds.remove(rule)
    finally:
        eng.close()
    return results


async def _settle() -> None:
    for _ in range(3):  # the zero-delay credit runs on the next loop turns
        await asyncio.sleep(0)


def pretrade_cost(n: int = 10_000, workdir: Path | None = None) -> dict[str, Any]:
    """Wall time of the full pre-trade check list for one order, and of each check, in µs.

    The book is not empty: a filled position and five resting orders on the same contract, so
    the position, duplicate and self-match checks have something to scan.

    Examples
    --------
    >>> pretrade_cost(1000)["per_order"]["n"]   # doctest: +SKIP
    1000
    """
    from cmc_lab.engine.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        return _pretrade_cost(connect, n, Path(tmp) / "bench.sqlite")


def _pretrade_cost(connect: Any, n: int, journal: Path) -> dict[str, Any]:
    eng = connect("sim", seed=1, clock="virtual", latency=0, journal=journal)
    try:
        inst = eng.instrument("SHFE.au")
        quote = eng.quote("SHFE.au")
        eng.submit("SHFE.au", "buy", 2, price=inst.round_to_tick(quote.ask + 0.2)).wait(5)
        for i in range(5):
            eng.submit("SHFE.au", "buy", 1, price=inst.round_to_tick(quote.bid - 1.0 - i))
        price = inst.round_to_tick(quote.bid - 0.5)
        req = OrderRequest(inst, Side.BUY, 1, price, "CN-FUT")

        async def measure() -> tuple[list[int], dict[str, float], str | None]:
            reason, _ = eng.checks.run(req, eng)
            samples = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                eng.checks.run(req, eng)
                samples.append(time.perf_counter_ns() - t0)
            per_check = {}
            for name, check in eng.checks.checks:
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    check(req, eng)
                per_check[name] = (time.perf_counter_ns() - t0) / n / 1e3
            return samples, per_check, reason

        samples, per_check, reason = eng.runtime.call(measure(), timeout=600)
    finally:
        eng.close()
    if reason is not None:
        raise RuntimeError(f"the benchmark order was denied, so not every check ran: {reason}")
    return {
        "per_order": {**percentiles(samples), "mean_us": sum(samples) / len(samples) / 1e3},
        "checks": len(per_check),
        "per_check_us": per_check,
    }
