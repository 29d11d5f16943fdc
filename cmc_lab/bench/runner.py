"""Benchmarks behind ``cmc-lab bench``: each figure measured beside its reference in one run.

The figures and how to read them are in ``docs/benchmarks.md``. Latencies are wall time
(``perf_counter_ns``) over many repetitions, reported as p50 and p99; throughputs repeat a run
and report the median. The CPU time of the engine thread is given beside the wall time where a
shared machine makes the two differ (the engine's own work is the CPU figure).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from cmc_lab.bench.audit import audit_export_seconds
from cmc_lab.bench.journal import append_rate, raw_commit_latency, timeline_latency
from cmc_lab.bench.stats import percentiles


def machine() -> dict[str, Any]:
    """What the figures were measured on: interpreter, platform, cores, load and library versions."""
    versions = {}
    for name in ("cmc-lab", "numpy", "pandas", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1min": None if load is None else round(load, 2),
        "sqlite": sqlite3.sqlite_version,
        **versions,
    }


def _unlimited(eng: Any) -> None:
    """Benchmarks repeat one order thousands of times: lift the limits that exist to stop exactly that
    (position, message rate, duplicates, margin). The checks still run; their cost is measured apart."""
    limits = eng.limits
    limits.max_position = None
    limits.max_messages_per_s = None
    limits.max_messages_per_day = limits.message_warn_per_day = None
    limits.duplicate_window_s = None
    limits.max_working_orders = None
    limits.check_margin = False


def order_round_trip(n: int = 500, workdir: Path | None = None) -> dict[str, Any]:
    """Crossing IOC orders through engine, embedded exchange (no added latency) and journal.

    ``in_engine``: decision on the engine loop -> checks -> intent committed -> venue match ->
    fill journaled and applied. ``from_caller``: the same seen from a notebook thread through
    the synchronous API (adds two thread hand-offs).
    """
    from cmc_lab.core.model import Side, TimeInForce
    from cmc_lab.core.trading import OrderRequest
    from cmc_lab.engine.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        eng = connect("sim", seed=1, journal=Path(tmp) / "bench.sqlite", latency=0, quote_interval=0.05)
        try:
            _unlimited(eng)
            inst = eng.instrument("SHFE.au")
            high = inst.round_to_tick(inst.reference_price * Decimal("1.05"))
            req = OrderRequest(inst, Side.BUY, 1, high, "CN-FUT")

            async def one() -> int:
                t0 = time.perf_counter_ns()
                order = eng.router.submit_now(req, TimeInForce.IOC, "bench")
                await order._done
                return time.perf_counter_ns() - t0

            async def many(count: int) -> list[int]:
                return [await one() for _ in range(count)]

            warm = max(20, n // 10)
            eng.runtime.call(many(warm), timeout=60)
            in_engine = eng.runtime.call(many(n), timeout=120)
            caller = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                order = eng.submit("SHFE.au", "buy", 1, high, tif="IOC")
                order.wait(5)
                caller.append(time.perf_counter_ns() - t0)
        finally:
            eng.close()
    return {"in_engine": percentiles(in_engine), "from_caller": percentiles(caller)}


def _recording_submits(eng: Any, venue: str) -> list[tuple[str, int, int]]:
    """Wrap a venue's submit to stamp (client order id, exchange-clock ns, engine-thread CPU ns) as
    each order is handed over."""
    stamps: list[tuple[str, int, int]] = []
    target = eng.venues[venue]
    original = target.submit

    def submit(command: Any) -> None:
        stamps.append((command.client_order_id, eng.clock.now_ns(), time.thread_time_ns()))
        original(command)

    target.submit = submit
    return stamps


def _timed_commits(eng: Any) -> list[tuple[int, int, list[Any]]]:
    """Wrap the journal's append_many to record (wall ns, engine-thread CPU ns, rows) of each commit."""
    commits: list[tuple[int, int, list[Any]]] = []
    journal = eng.journal
    original = journal.append_many

    def append_many(rows: Any) -> int:
        rows = list(rows)
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        try:
            return original(rows)
        finally:
            commits.append((time.perf_counter_ns() - t0, time.thread_time_ns() - c0, rows))

    journal.append_many = append_many
    return commits


def hedge_latency(n: int = 300, workdir: Path | None = None) -> dict[str, Any]:
    """Quote arrives -> trigger fires -> both legs checked -> both intents committed -> both handed
    to the venues (embedded exchange, no added latency, journal on); and a leg's reject arriving ->
    the chase re-order handed to the venue.

    Beside the decision: the engine thread's CPU time over the same span, the commit of the
    decision's rows (the ticket's decision and both intents, one transaction) on its own, and
    the floor under that commit: raw SQLite committing the same rows, serialised and hashed
    beforehand, into a database of the journal's schema (:func:`raw_commit_latency`).
    """
    from cmc_lab.core.model import Quote
    from cmc_lab.engine.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        eng = connect("sim", seed=3, journal=Path(tmp) / "bench.sqlite", latency=0, quote_interval=0.05)
        try:
            _unlimited(eng)
            eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
            comex = _recording_submits(eng, "COMEX")
            commits = _timed_commits(eng)
            cpu: list[int] = []
            intent: list[tuple[int, int, list[Any]]] = []

            async def decision_once() -> int:
                ticket = await eng.desk.start(
                    *eng.desk.prepare("au_gc", "buy", 3, "ask < 1000000", "chase", {})
                )
                last = eng.market.quotes[eng.instrument("SHFE.au").id]
                now = eng.clock.now_ns()
                quote = Quote(last.instrument_id, last.bid, last.ask, last.bid_size, last.ask_size, now, now)
                before, committed = len(comex), len(commits)
                c0 = time.thread_time_ns()
                eng.inbox.receive(quote)
                if len(comex) <= before:
                    await ticket._done
                    return -1
                _, handed, cpu_handed = comex[before]
                cpu.append(cpu_handed - c0)
                intent.append(commits[committed])
                await ticket._done
                return handed - now

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
                orders = ticket.legs[1].orders  # the rejected order, then its re-order (then any more)
                if not rejects or len(orders) < 2:
                    return -1
                chase = [t for cid, t, _ in comex if cid == orders[1].client_order_id]
                return chase[0] - rejects[0] if chase else -1

            async def many(fn: Any, count: int) -> list[int]:
                return [v for v in [await fn() for _ in range(count)] if v >= 0]

            eng.runtime.call(many(decision_once, 20), timeout=60)
            cpu.clear()
            intent.clear()
            decision = eng.runtime.call(many(decision_once, n), timeout=300)
            reorder = eng.runtime.call(many(reject_once, n), timeout=300)
        finally:
            eng.close()
        decision_rows = intent[-1][2] if intent else []
        floor = raw_commit_latency(decision_rows, n=n, tmpdir=Path(tmp)) if decision_rows else None
    span = percentiles(decision)
    return {
        "decision_to_both_legs_sent": span,
        # issue 18's figure: the span over the floor measured in this run (goal p50 1.5, p99 2)
        "decision_over_floor": {
            "p50": span["p50_us"] / floor["p50_us"] if floor and floor["p50_us"] else None,
            "p99": span["p99_us"] / floor["p99_us"] if floor and floor["p99_us"] else None,
        },
        "decision_cpu": percentiles(cpu),
        "decision_commit": {
            **percentiles([wall for wall, _, _ in intent]),
            "rows": statistics.median([len(rows) for _, _, rows in intent]) if intent else 0,
        },
        "decision_commit_raw_sqlite": floor,
        "reject_to_reorder": percentiles(reorder),
    }


def _rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_day(hours: float = 4.0, samples: int = 16, workdir: Path | None = None) -> dict[str, Any]:
    """Resident size over ``hours`` of market time at 100 quotes/s per instrument.

    The engine runs on the embedded exchange under the virtual clock (``quote_interval=0.01``),
    with the ten spreads of :data:`cmc_lab.bench.quotes.SPREADS` and an armed trigger on each,
    journal on. RSS and the number of live Python objects are sampled ``samples`` times after a
    full collection; ``second_half_growth`` is the RSS change from the middle sample to the last,
    as a share of the middle one. Run it in a fresh process (``run`` does) or the memory earlier
    work left in the allocator hides any growth.
    """
    from cmc_lab.bench.quotes import SPREADS
    from cmc_lab.engine.connect import connect

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        eng = connect("sim", seed=5, clock="virtual", quote_interval=0.01, journal=Path(tmp) / "day.sqlite")
        try:
            for name, legs, kind, when in SPREADS:
                sp = eng.spread(name, legs=legs, kind=kind)
                eng.hedge(name, "buy", sp.lots[sp.leg_ids[0]], when=when)
            quotes = [0]
            eng.on_quote(lambda _q: quotes.__setitem__(0, quotes[0] + 1))
            step = hours * 3600 / samples
            trace: list[dict[str, float]] = []
            wall = time.perf_counter()
            for i in range(samples + 1):
                if i:
                    eng.sleep(step)
                gc.collect()
                trace.append(
                    {
                        "market_h": i * step / 3600,
                        "rss_mb": _rss_bytes() / 2**20,
                        "objects": len(gc.get_objects()),
                        "quotes": quotes[0],
                    }
                )
            wall = time.perf_counter() - wall
            errors = list(eng.errors)
        finally:
            eng.close()
    middle, last = trace[samples // 2]["rss_mb"], trace[-1]["rss_mb"]
    return {
        "hours": hours,
        "quotes": quotes[0],
        "wall_s": wall,
        "rss_start_mb": trace[0]["rss_mb"],
        "rss_middle_mb": middle,
        "rss_end_mb": last,
        "second_half_growth": (last - middle) / middle,
        "objects_middle": trace[samples // 2]["objects"],
        "objects_end": trace[-1]["objects"],
        "trace": trace,
        "engine_errors": errors[-3:],
    }


def _fresh_process(name: str, **kwargs: Any) -> dict[str, Any]:
    """``name(**kwargs)`` of this module run in a new interpreter; its JSON result."""
    code = f"import json, cmc_lab.bench.runner as b; print(json.dumps(b.{name}(**{kwargs!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"benchmark {name} failed in its own process:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(
    quick: bool = False, progress: Callable[[str], None] | None = None, peer: str | None = None
) -> dict[str, Any]:
    """Every benchmark; ``quick`` shrinks the sizes to a smoke test that proves each runs (~30 s).

    ``peer``: the Python of an environment with nautilus_trader (``scripts/peer/setup.sh``): the
    gold-spread replay is then also run through it and our figure given as a ratio of theirs.
    """
    from cmc_lab.bench.data import replay_events_per_second
    from cmc_lab.bench.quotes import quote_rate
    from cmc_lab.bench.risk import pretrade_cost, threshold_action_latency
    from cmc_lab.bench.startup import startup_seconds

    say = progress or (lambda _msg: None)
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    say("order round trip ...")
    results["order_round_trip"] = order_round_trip(n=100 if quick else 1000)
    say("(a)(b) hedge: decision to both legs sent, reject to re-order ...")
    results["hedge"] = hedge_latency(n=50 if quick else 1000)
    say("(b) threshold crossing to action, pre-trade check cost ...")
    results["threshold_action"] = threshold_action_latency(n=50 if quick else 500)
    results["pretrade"] = pretrade_cost(n=1_000 if quick else 10_000)
    say("(c) journal appends vs raw executemany ...")
    results["journal_append"] = append_rate(5_000 if quick else 100_000)
    say("audit pack export of a day ...")
    results["audit_export"] = audit_export_seconds(10_000 if quick else 100_000)
    say("(d) timeline lookups in a large journal ...")
    results["timeline"] = timeline_latency(100_000 if quick else 5_000_000, n_lookups=100 if quick else 500)
    say("start-up on a journal with a long history ...")
    results["startup"] = startup_seconds(100_000 if quick else 1_000_000)
    say("(e) quotes absorbed with 10 spreads and triggers live ...")
    results["quote_rate"] = quote_rate(n=20_000 if quick else 300_000, repeats=3 if quick else 5)
    say("(f) replay through the full engine ...")
    results["replay"] = replay_events_per_second(minutes=1.0 if quick else 60.0)
    if peer:
        from cmc_lab.bench.peer import compare

        say("(f) the same replay through nautilus_trader (peer) ...")
        results["peer"] = compare(peer, minutes=5.0 if quick else 60.0)
    say("(g) memory over a simulated trading day (a fresh process) ...")
    results["memory"] = _fresh_process(
        "memory_day", hours=1 / 60 if quick else 4.0, samples=4 if quick else 16
    )
    say("FIX order and reconciliation round trips and message rate over loopback (served exchange) ...")
    from cmc_lab.bench.fix import fix_messages_per_second, fix_reconcile_round_trip, fix_round_trip

    results["fix"] = {
        "round_trip": fix_round_trip(100 if quick else 2_000),
        "throughput": fix_messages_per_second(1.0 if quick else 5.0),
        "reconcile": fix_reconcile_round_trip(20 if quick else 500),
    }
    say("dask sweep wall time with 1 and 2 workers ...")
    from cmc_lab.bench.data import sweep_wall_time

    results["sweep"] = sweep_wall_time(minutes=2.0 if quick else 20.0, slices=2 if quick else 4)
    results["machine"]["load_1min_after"] = machine()["load_1min"]
    return results


def _row(label: str, *values: str) -> str:
    return f"{label:<62}" + "".join(f"{v:>14}" for v in values)


def table(results: dict[str, Any]) -> str:
    """The results as a readable fixed-width table (targets from the benchmark issue in brackets)."""
    m = results["machine"]
    lines = [
        "cmc-lab bench" + (" (quick: smoke sizes, not figures)" if results.get("quick") else ""),
        "machine: " + ", ".join(f"{k}={v}" for k, v in m.items()),
        "",
        _row("latency", "p50 µs", "p99 µs"),
    ]

    def lat(label: str, fig: dict[str, Any] | None) -> None:
        if fig:
            lines.append(_row(label, f"{fig['p50_us']:.1f}", f"{fig['p99_us']:.1f}"))

    rt = results.get("order_round_trip") or {}
    lat("order round trip, in engine", rt.get("in_engine"))
    lat("order round trip, from a notebook thread", rt.get("from_caller"))
    hedge = results.get("hedge") or {}
    lat(
        "(a) quote -> trigger -> checks -> intents -> both sent",
        hedge.get("decision_to_both_legs_sent"),
    )
    lat("    engine-thread CPU over the same span", hedge.get("decision_cpu"))
    lat("    of which: commit of the decision's rows", hedge.get("decision_commit"))
    lat("    floor: raw SQLite commit of those rows, pre-hashed", hedge.get("decision_commit_raw_sqlite"))
    over = hedge.get("decision_over_floor") or {}
    if over.get("p50") is not None and over.get("p99") is not None:
        lines.append(
            _row("    (a) over the floor, ratio [1.50/2.00]", f"{over['p50']:.2f}", f"{over['p99']:.2f}")
        )
    lat("(b) leg reject received -> chase re-order sent [p99 1000]", hedge.get("reject_to_reorder"))
    for key, fig in (results.get("threshold_action") or {}).items():
        lat(f"(b) threshold crossed -> {key} action sent [p99 1000]", fig)
    pt = results.get("pretrade")
    if pt:
        lat(f"pre-trade checks per order, {pt['checks']} checks", pt["per_order"])
    tl = results.get("timeline")
    if tl:
        label = f"(d) timeline(order) in {tl['n_events']:,} events, DataFrame [p99 2000]"
        lines.append(_row(label, f"{tl['p50_ms'] * 1e3:.1f}", f"{tl['p99_ms'] * 1e3:.1f}"))
    su = results.get("startup")
    if su:
        lines.append(
            f"start-up on {su['n_events']:,} journaled events: {su['open_s']:.2f} s replaying them "
            f"(verify {su['verify_s']:.2f} s, book rebuilt {su['rebuild_s']:.2f} s); "
            f"{su['open_from_checkpoint_s']:.2f} s from the book checkpoint ({su['speedup']:.1f}x)"
        )
    lines += ["", _row("throughput", "median/s", "reference/s", "ratio")]

    def rate(label: str, ours: float, reference: float, digits: int = 2) -> None:
        ratio = f"{ours / reference:.{digits}f}" if reference else "-"
        lines.append(_row(label, f"{ours:,.0f}", f"{reference:,.0f}", ratio))

    ja = results.get("journal_append")
    if ja:
        rate(
            "(c) journal appends (hash chain) vs raw executemany [0.75]",
            ja["journal_rows_per_s"],
            ja["raw_rows_per_s"],
        )
    qr = results.get("quote_rate")
    if qr:
        sp, ref = qr["spreads"], qr["reference"]
        rate(
            "(e) quotes absorbed, 10 spreads + triggers [200,000]", sp["median_per_s"], ref["median_per_s"], 3
        )
        rate("    by engine-thread CPU time", sp["cpu_median_per_s"], ref["cpu_median_per_s"], 3)
    rp = results.get("replay")
    if rp:
        rate(
            "(f) replay: quote events through the engine (spread armed)",
            rp["armed"]["events_per_s"],
            rp["quotes_only"]["events_per_s"],
        )
    peer = results.get("peer")
    if peer:
        for what, label in (("armed", "spread + trigger armed"), ("quotes_only", "quotes only")):
            fig = peer[what]
            rate(
                f"    vs nautilus_trader, {label} [2.00]",
                fig["cmc_lab"]["quotes_per_s"],
                fig["nautilus_trader"]["quotes_per_s"],
            )
    ae = results.get("audit_export")
    if ae:
        lines += [
            "",
            _row("audit pack of a journal day", "export s", "verify s", "pack MB"),
            _row(
                f"    {ae['n_events']:,} events",
                f"{ae['export_s']:.2f}",
                f"{ae['verify_s']:.2f}",
                f"{ae['pack_bytes'] / 2**20:.1f}",
            ),
        ]
    mem = results.get("memory")
    if mem:
        lines += [
            "",
            _row("(g) memory over a simulated day", "start MB", "middle MB", "end MB", "growth"),
            _row(
                f"    {mem['hours']:g} h market, {mem['quotes']:,} quotes, RSS [growth < 5 %]",
                f"{mem['rss_start_mb']:.1f}",
                f"{mem['rss_middle_mb']:.1f}",
                f"{mem['rss_end_mb']:.1f}",
                f"{mem['second_half_growth']:+.1%}",
            ),
            _row(
                "    live Python objects",
                f"{mem['trace'][0]['objects']:,}",
                f"{mem['objects_middle']:,}",
                f"{mem['objects_end']:,}",
                f"{(mem['objects_end'] - mem['objects_middle']) / mem['objects_middle']:+.1%}",
            ),
        ]
    fix = results.get("fix")
    if fix:
        rt, tp = fix["round_trip"], fix["throughput"]
        lines += [
            "",
            f"{'FIX NewOrderSingle -> ExecutionReport, loopback (µs)':<68}{rt['p50_us']:>12.1f}{rt['p99_us']:>14.1f}",
            f"{'  loopback TCP round trip, same bytes, asyncio both ends (µs)':<68}"
            f"{rt['tcp_p50_us']:>12.1f}{rt['tcp_p99_us']:>14.1f}",
            f"{'  FIX over TCP, p50 [4.00]':<68}{rt['ratio_p50']:>12.2f}",
            f"{'FIX messages/s (orders/s) with 64 orders in flight':<68}"
            f"{tp['messages_per_second']:>12,.0f}{tp['orders_per_second']:>14,.0f}",
        ]
        rec = fix.get("reconcile")
        if rec:
            label = "FIX reconcile: positions + mass status, loopback (µs)"
            lines.append(f"{label:<68}{rec['p50_us']:>12.1f}{rec['p99_us']:>14.1f}")
    sweep = results.get("sweep")
    if sweep:
        walls = ", ".join(f"{w} worker(s) {t:.2f} s" for w, t in sweep["wall_s"].items())
        lines += ["", f"dask sweep of {sweep['tasks']} replay tasks: {walls}"]
    return "\n".join(lines)
