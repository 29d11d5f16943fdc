"""Benchmarks behind ``cmc-lab bench``: each figure measured beside its reference in one run."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cmc_lab.journal.bench import append_rate


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50 / p99 / max of nanosecond samples, in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(ordered),
        "p50_us": statistics.median(ordered) / 1e3,
        "p99_us": p99 / 1e3,
        "max_us": ordered[-1] / 1e3,
    }


def order_round_trip(n: int = 500, workdir: Path | None = None) -> dict[str, Any]:
    """Crossing IOC orders through engine, embedded exchange (no added latency) and journal.

    ``in_engine``: decision on the engine loop -> checks -> intent committed -> venue match ->
    fill journaled and applied. ``from_caller``: the same seen from a notebook thread through
    the synchronous API (adds two thread hand-offs).
    """
    from cmc_lab.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        eng = connect("sim", seed=1, journal=Path(tmp) / "bench.sqlite", latency=0, quote_interval=0.05)
        try:
            inst = eng.instrument("SHFE.au")
            high = inst.round_to_tick(inst.reference_price * Decimal("1.05"))
            from cmc_lab.model import Side, TimeInForce
            from cmc_lab.risk.pretrade import OrderRequest

            req = OrderRequest(inst, Side.BUY, 1, high, "CN-FUT")

            async def one() -> int:
                t0 = time.perf_counter_ns()
                order = eng._submit_now(req, TimeInForce.IOC, "bench")
                await order._done
                return time.perf_counter_ns() - t0

            async def many(count: int) -> list[int]:
                return [await one() for _ in range(count)]

            warm = max(20, n // 10)
            eng._call(many(warm), timeout=60)
            in_engine = eng._call(many(n), timeout=120)
            caller = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                order = eng.submit("SHFE.au", "buy", 1, high, tif="IOC")
                order.wait(5)
                caller.append(time.perf_counter_ns() - t0)
        finally:
            eng.close()
    return {"in_engine": percentiles(in_engine), "from_caller": percentiles(caller)}


def run(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every benchmark; ``quick`` shrinks the sizes to a smoke test that proves each runs."""
    say = progress or (lambda _msg: None)
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    say("order round trip ...")
    results["order_round_trip"] = order_round_trip(n=100 if quick else 1000)
    say("journal appends vs raw executemany ...")
    results["journal_append"] = append_rate(5_000 if quick else 100_000)
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a readable fixed-width table."""
    lines = [
        "cmc-lab bench" + (" (quick)" if results.get("quick") else ""),
        "machine: " + ", ".join(f"{k}={v}" for k, v in results["machine"].items()),
        "",
        f"{'figure':<58}{'p50':>12}{'p99':>12}",
    ]
    rt = results.get("order_round_trip")
    if rt:
        for key, label in (
            ("in_engine", "order round trip, in engine (µs)"),
            ("from_caller", "order round trip, from notebook thread (µs)"),
        ):
            lines.append(f"{label:<58}{rt[key]['p50_us']:>12.1f}{rt[key]['p99_us']:>12.1f}")
    ja = results.get("journal_append")
    if ja:
        lines += [
            "",
            f"{'journal appends/s (hash chain)':<58}{ja['journal_rows_per_s']:>12,.0f}",
            f"{'raw sqlite3 executemany rows/s':<58}{ja['raw_rows_per_s']:>12,.0f}",
            f"{'ratio (target >= 0.60)':<58}{ja['ratio']:>12.2f}",
        ]
    return "\n".join(lines)
