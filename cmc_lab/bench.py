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


def _unlimited(eng: Any) -> None:
    """Benchmarks repeat one order thousands of times: lift the limits that exist to stop exactly that
    (position, message rate, duplicates, margin). The checks still run; their cost is measured apart."""
    limits = eng.limits
    limits.max_position = None
    limits.max_messages_per_s = None
    limits.duplicate_window_s = None
    limits.max_working_orders = None
    limits.check_margin = False


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
            _unlimited(eng)
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


def _recording_submits(eng: Any, venue: str) -> list[tuple[str, int]]:
    """Wrap a venue's submit to stamp (client order id, exchange-clock ns) as each order is handed over."""
    stamps: list[tuple[str, int]] = []
    target = eng.venues[venue]
    original = target.submit

    def submit(command: Any) -> None:
        stamps.append((command.client_order_id, eng.clock.now_ns()))
        original(command)

    target.submit = submit
    return stamps


def hedge_latency(n: int = 300, workdir: Path | None = None) -> dict[str, Any]:
    """Quote arrives -> trigger fires -> both legs checked -> both intents committed -> both handed
    to the venues (embedded exchange, no added latency, journal on); and a leg's reject arriving ->
    the chase re-order handed to the venue.
    """
    from cmc_lab.connect import connect
    from cmc_lab.model import Quote

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        eng = connect("sim", seed=3, journal=Path(tmp) / "bench.sqlite", latency=0, quote_interval=0.05)
        try:
            _unlimited(eng)
            eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
            comex = _recording_submits(eng, "COMEX")

            async def decision_once() -> int:
                ticket = await eng.desk.start(
                    *eng.desk.prepare("au_gc", "buy", 3, "ask < 1000000", "chase", {})
                )
                last = eng._quotes["SHFE.au"]
                now = eng.clock.now_ns()
                quote = Quote(last.instrument_id, last.bid, last.ask, last.bid_size, last.ask_size, now, now)
                before = len(comex)
                eng._on_venue_message(quote)
                handed = comex[before][1] if len(comex) > before else None
                await ticket._done
                return (handed - now) if handed is not None else -1

            async def reject_once() -> int:
                comex_venue: Any = eng.venues["COMEX"]
                comex_venue.inject("reject", times=1)
                rejects: list[int] = []

                def on_event(event: Any) -> None:
                    if event.kind == "OrderRejected":
                        rejects.append(event.ts_init)

                eng.on_event(on_event)
                try:
                    ticket = await eng.desk.start(*eng.desk.prepare("au_gc", "buy", 3, None, "chase", {}))
                    await ticket._done
                finally:
                    eng.on_event(on_event, remove=True)
                chase = [
                    t
                    for cid, t in comex
                    if ticket.legs[1].orders and cid == ticket.legs[1].orders[-1].client_order_id
                ]
                if not rejects or not chase or len(ticket.legs[1].orders) < 2:
                    return -1
                return chase[0] - rejects[0]

            async def many(fn: Any, count: int) -> list[int]:
                return [v for v in [await fn() for _ in range(count)] if v >= 0]

            eng._call(many(decision_once, 20), timeout=60)
            decision = eng._call(many(decision_once, n), timeout=300)
            reorder = eng._call(many(reject_once, max(20, n // 3)), timeout=300)
        finally:
            eng.close()
    return {"decision_to_both_legs_sent": percentiles(decision), "reject_to_reorder": percentiles(reorder)}


def run(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every benchmark; ``quick`` shrinks the sizes to a smoke test that proves each runs."""
    say = progress or (lambda _msg: None)
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    say("order round trip ...")
    results["order_round_trip"] = order_round_trip(n=100 if quick else 1000)
    say("hedge: decision to both legs sent, reject to re-order ...")
    results["hedge"] = hedge_latency(n=50 if quick else 500)
    say("threshold crossing to action, pre-trade check cost ...")
    from cmc_lab.risk.bench import pretrade_cost, threshold_action_latency

    results["threshold_action"] = threshold_action_latency(n=50 if quick else 500)
    results["pretrade"] = pretrade_cost(n=1_000 if quick else 10_000)
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
    hedge = results.get("hedge")
    if hedge:
        for key, label in (
            ("decision_to_both_legs_sent", "quote -> trigger -> checks -> intents -> both legs sent (µs)"),
            ("reject_to_reorder", "leg reject received -> chase re-order sent (µs)"),
        ):
            lines.append(f"{label:<58}{hedge[key]['p50_us']:>12.1f}{hedge[key]['p99_us']:>12.1f}")
    ta = results.get("threshold_action")
    if ta:
        for key in ("block", "transfer"):
            label = f"threshold crossed -> {key} action sent (µs)"
            lines.append(f"{label:<58}{ta[key]['p50_us']:>12.1f}{ta[key]['p99_us']:>12.1f}")
    pt = results.get("pretrade")
    if pt:
        label = f"pre-trade checks per order, {pt['checks']} checks (µs)"
        lines.append(f"{label:<58}{pt['per_order']['p50_us']:>12.1f}{pt['per_order']['p99_us']:>12.1f}")
    ja = results.get("journal_append")
    if ja:
        lines += [
            "",
            f"{'journal appends/s (hash chain)':<58}{ja['journal_rows_per_s']:>12,.0f}",
            f"{'raw sqlite3 executemany rows/s':<58}{ja['raw_rows_per_s']:>12,.0f}",
            f"{'ratio (target >= 0.60)':<58}{ja['ratio']:>12.2f}",
        ]
    return "\n".join(lines)
