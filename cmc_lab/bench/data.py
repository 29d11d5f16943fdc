"""Research benchmarks for ``cmc-lab bench``: replay events per second through the engine, sweep wall time.

Both replay synthetic quotes (:func:`~cmc_lab.data.synthetic.synthetic_quotes`, 10 quotes a second
per instrument, as the 30-day reference set) through the full engine: a spread, an armed trigger,
pre-trade checks, hedge tickets and a journal file. The engine-level modules are imported inside
the functions, as the other ``bench`` modules do, so the data layer itself never loads the engine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from cmc_lab.core.ids import USDCNH_ID
from cmc_lab.data.synthetic import synthetic_quotes

#: The sweep benchmark's grid: trigger level x policy x one-way latency (8 points).
BENCH_GRID: dict[str, list[Any]] = {
    "level": [1.5, 2.5],
    "policy": ["chase", "unwind"],
    "latency_ms": [0, 100],
}


def replay_events_per_second(minutes: float = 10.0, rate_hz: float = 10.0, seed: int = 7) -> dict[str, Any]:
    """Quotes replayed per second of wall time through the whole engine, with and without a trigger.

    ``armed``: the gold spread (SHFE au, COMEX GC, USD/CNH) defined and a repeating trigger armed,
    so every quote recomputes the spread and feeds the trigger, and tickets fire and fill.
    ``quotes_only``: the same quotes into an engine with no spread (venue, book and risk hooks).
    """
    from cmc_lab.research import run_replay

    ds = synthetic_quotes(rate_hz=rate_hz, seed=seed, start="2026-11-24 14:00", day_length=f"{minutes}min")
    armed = run_replay(ds, when="z <= -{level}", level=2.0, repeat=100, latency_ms=None, seed=seed)
    stats = armed.attrs["replay"]
    return {
        "minutes": minutes,
        "rate_hz": rate_hz,
        "armed": {
            "quotes": stats["quotes"],
            "tickets": len(armed),
            "wall_s": stats["wall_s"],
            "events_per_s": stats["events_per_s"],
        },
        "quotes_only": quotes_only_rate(ds, seed),
    }


def quotes_only_rate(ds: Any, seed: int = 7) -> dict[str, Any]:
    """The gold spread's quotes (SHFE au, COMEX GC, USD/CNH) replayed through an engine with no
    spread: quotes, wall seconds and quotes per second of wall time."""
    from cmc_lab.research import replay_engine

    eng = replay_engine(ds, instruments=["SHFE.au", "COMEX.GC", USDCNH_ID], seed=seed)
    try:
        feed = eng.venues["SHFE"].feed  # type: ignore[attr-defined]
        wall = time.perf_counter()
        eng.sleep((feed.end_ns - eng.now_ns()) / 1e9 + 1.0)
        wall = time.perf_counter() - wall
    finally:
        eng.close()
    return {"quotes": feed.quotes, "wall_s": wall, "events_per_s": feed.quotes / wall if wall else 0.0}


def sweep_wall_time(
    workers: Sequence[int] = (1, 2),
    minutes: float = 20.0,
    slices: int = 4,
    rate_hz: float = 10.0,
    seed: int = 7,
    grid: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Wall time of one sweep (:data:`BENCH_GRID` x ``slices`` pieces of the data) per worker count.

    Each count gets a fresh ``LocalCluster`` of single-threaded worker processes, warmed (imports
    done) before the clock starts; the time covers shipping the data, every replay and gathering.
    """
    from distributed import Client, LocalCluster

    from cmc_lab.research import sweep

    if not workers:
        raise ValueError("workers must list at least one worker count, e.g. (1, 2)")
    grid = grid or BENCH_GRID
    ds = synthetic_quotes(rate_hz=rate_hz, seed=seed, start="2026-11-24 14:00", day_length=f"{minutes}min")
    walls: dict[int, float] = {}
    tasks = events = 0
    for n in workers:
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(_warm)
            started = time.perf_counter()
            result = sweep(grid, ds, client=client, split=slices, when="z <= -{level}", repeat=100, seed=seed)
            walls[n] = time.perf_counter() - started
            tasks = result.tasks
            events = int(result.summary["events"].sum())
    base = walls[min(walls)]
    return {
        "cpus": os.cpu_count(),
        "grid_points": len(result.summary),
        "slices": slices,
        "tasks": tasks,
        "events": events,
        "wall_s": walls,
        "speedup": {n: base / w for n, w in walls.items()},
    }


def _warm() -> None:
    import cmc_lab.research  # noqa: F401  (imports done before the clock starts)


def run(quick: bool = False) -> dict[str, Any]:
    """Both research benchmarks; ``quick`` shrinks them to a smoke test that proves each runs."""
    if quick:
        small: dict[str, list[Any]] = {"level": [1.5, 2.5], "latency_ms": [0, 100]}
        return {
            "replay": replay_events_per_second(minutes=2.0),
            "sweep": sweep_wall_time(minutes=4.0, slices=2, grid=small),
        }
    return {"replay": replay_events_per_second(), "sweep": sweep_wall_time()}


def table_lines(results: dict[str, Any]) -> list[str]:
    """The research figures as lines of ``cmc-lab bench``'s table."""
    replay, sweep = results["replay"], results["sweep"]
    lines = [
        f"{'replay through the engine, spread + trigger armed (quotes/s)':<58}{replay['armed']['events_per_s']:>12,.0f}",
        f"{'replay through the engine, quotes only (quotes/s)':<58}{replay['quotes_only']['events_per_s']:>12,.0f}",
    ]
    for n, wall in sweep["wall_s"].items():
        label = f"sweep {sweep['tasks']} tasks, {n} worker(s) (s; speedup)"
        lines.append(f"{label:<58}{wall:>12.2f}{sweep['speedup'][n]:>12.2f}")
    return lines


__all__ = [
    "BENCH_GRID",
    "quotes_only_rate",
    "replay_events_per_second",
    "run",
    "sweep_wall_time",
    "table_lines",
]
