"""Execution benchmarks for ``cmc-lab bench``: how many quotes the engine absorbs with spreads live.

The engine runs on the embedded exchange under the virtual clock, so the market stands still
while the benchmark feeds its own quotes: nothing but the fed quotes reaches the engine.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cmc_lab.core.ids import USDCNH_ID
from cmc_lab.core.model import Quote

#: The ten spreads of the quote benchmark: (name, legs, kind, trigger that never fires).
SPREADS: tuple[tuple[str, dict[str, float], str, str], ...] = (
    ("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}, "diff", "ask <= -1e9"),
    ("ag_si", {"SHFE.ag": 1, "COMEX.SI": -1}, "diff", "bid >= 1e9"),
    ("cu_lme", {"SHFE.cu": 1, "LME.CA": -1}, "diff", "mid <= -1e9"),
    ("sc_cl", {"INE.sc": 1, "NYMEX.CL": -1}, "diff", "z >= 1e9"),
    ("au_gc_r", {"SHFE.au": 1, "COMEX.GC": -1}, "ratio", "ratio <= -1"),
    ("ag_si_r", {"SHFE.ag": 1, "COMEX.SI": -1}, "ratio", "ask <= -1"),
    ("cu_lme_r", {"SHFE.cu": 1, "LME.CA": -1}, "ratio", "bid >= 1e9"),
    ("sc_cl_r", {"INE.sc": 1, "NYMEX.CL": -1}, "ratio", "z <= -1e9"),
    ("au_ag", {"SHFE.au": 1, "SHFE.ag": -1}, "ratio", "mid >= 1e9"),
    ("gc_si", {"COMEX.GC": 1, "COMEX.SI": -1}, "ratio", "ask >= 1e9"),
)


def quote_stream(eng: Any, n: int, seed: int = 11) -> list[Quote]:
    """``n`` quotes round-robin over every leg of :data:`SPREADS` (the months the products stand for)
    and FX, prices walking a tick at a time.

    Stamped with the engine's (virtual, standing) clock, so none is ever stale.
    """
    rng = random.Random(seed)
    ids = sorted({eng.instrument(iid).id for _, legs, _, _ in SPREADS for iid in legs} | {USDCNH_ID})
    now = eng.clock.now_ns()
    books = {}
    for iid in ids:
        q = eng.quote(iid)
        books[iid] = [q.bid, q.ask, float(eng.instrument(iid).tick)]
    out = []
    for i in range(n):
        iid = ids[i % len(ids)]
        book = books[iid]
        step = rng.choice((-1, 0, 1)) * book[2]
        book[0] += step
        book[1] += step
        out.append(Quote(iid, book[0], book[1], rng.randint(5, 60), rng.randint(5, 60), now, now))
    return out


def quote_rate(n: int = 200_000, repeats: int = 5, workdir: Path | None = None) -> dict[str, Any]:
    """Quotes per second ``Engine._on_venue_message`` absorbs, with the ten spreads of :data:`SPREADS`
    and an armed trigger on each (``spreads``), beside the same stream into an engine without
    spreads (``reference``). Each side runs ``repeats`` times; the median, lowest and highest rate
    are reported, by the wall clock and by the engine thread's CPU time (``cpu_median_per_s``: what
    one core does when the machine is not shared). The quotes are built before the clock starts
    (the venue's work, not the engine's).

    Examples
    --------
    >>> quote_rate(2_000, repeats=1)["spreads"]["median_per_s"] > 0   # doctest: +SKIP
    True
    """
    from cmc_lab.engine.connect import connect

    results: dict[str, Any] = {"n": n, "repeats": repeats, "spreads_live": len(SPREADS)}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for label, with_spreads in (("reference", False), ("spreads", True)):
            eng = connect("sim", seed=5, clock="virtual", latency=0, journal=Path(tmp) / f"{label}.sqlite")
            try:
                if with_spreads:
                    for name, legs, kind, when in SPREADS:
                        sp = eng.spread(name, legs=legs, kind=kind)
                        eng.hedge(name, "buy", sp.lots[sp.leg_ids[0]], when=when)
                quotes = quote_stream(eng, n)

                async def absorb(
                    stream: list[Quote] = quotes, on: Any = eng.inbox.receive
                ) -> tuple[int, int]:
                    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                    for quote in stream:
                        on(quote)
                    return time.perf_counter_ns() - t0, time.thread_time_ns() - c0

                eng.runtime.call(absorb(quotes[: max(1, n // 10)]), timeout=600)
                runs = [eng.runtime.call(absorb(), timeout=600) for _ in range(repeats)]
                rates = [n / (wall / 1e9) for wall, _ in runs]
                cpu_rates = [n / (cpu / 1e9) for _, cpu in runs]
                if with_spreads:
                    fired = [t.ticket_id for t in eng.desk.tickets.values() if t.state.value != "ARMED"]
                    if fired:
                        raise RuntimeError(
                            f"a benchmark trigger fired ({', '.join(fired)}); no order may leave"
                        )
            finally:
                eng.close()
            results[label] = {
                "median_per_s": statistics.median(rates),
                "min_per_s": min(rates),
                "max_per_s": max(rates),
                "us_per_quote": 1e6 / statistics.median(rates),
                "cpu_median_per_s": statistics.median(cpu_rates),
            }
    return results
