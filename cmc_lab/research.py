"""Research on recorded quotes: replay a trigger and hedge tickets through the engine, sweep parameters with dask.

:func:`run_replay` plays a quote Dataset through a real :class:`~cmc_lab.engine.facade.Engine` on the
virtual clock (as fast as the CPU allows) with :class:`~cmc_lab.venues.replay.ReplayFeed` venues:
the same spread, trigger, pre-trade checks, hedge tickets, journal and fill model as a live
session, so a research result and a live ticket come from one code path. :func:`sweep` runs
many such replays (trigger level x policy x latency x data slice) on a dask cluster: a local one
by default, or ``client=`` an existing :class:`dask.distributed.Client` or a scheduler address.
"""

from __future__ import annotations

import itertools
import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.ids import USDCNH_ID
from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.data.history import check_quotes, needs_fx, spread_def, time_ns
from cmc_lab.data.recorder import open_quotes
from cmc_lab.engine.facade import Engine
from cmc_lab.execution.hedge import HedgeTicket, TicketState
from cmc_lab.execution.spread import Spread
from cmc_lab.journal import Journal
from cmc_lab.pricing.spreads import spread_value
from cmc_lab.pricing.units import FxRates, convert_money
from cmc_lab.venues.replay import ReplayFeed, ReplayVenue, first_time_ns

#: The gold spread, the default subject of a replay.
AU_GC = {"SHFE.au": 1.0, "COMEX.GC": -1.0}

Latency = float | tuple[float, float] | Mapping[str, tuple[float, float]] | None


def _latency(latency_ms: Latency, venues: Sequence[str]) -> float | Mapping[str, tuple[float, float]] | None:
    """A number or ``{venue: (lo, hi)}`` for the feed; a ``(lo, hi)`` pair applies to every venue."""
    if isinstance(latency_ms, tuple):
        if len(latency_ms) != 2:
            raise ValueError(
                f"latency_ms = {latency_ms!r}: give one number, (low_ms, high_ms) or {{venue: (lo, hi)}}"
            )
        return dict.fromkeys(venues, (float(latency_ms[0]), float(latency_ms[1])))
    return latency_ms


def replay_engine(
    data: xr.Dataset | str | Path,
    *,
    instruments: Sequence[str] | None = None,
    latency_ms: Latency = None,
    seed: int = 7,
    journal: str | Path | None = None,
    specs: Specs | None = None,
    accounts: Mapping[str, Any] | None = None,
) -> Engine:
    """An engine whose venues replay ``data`` on the virtual clock, starting at its first quote.

    Only the venues of ``instruments`` (default: all the data holds) are connected. ``latency_ms``
    is the one-way latency of orders and answers: None for each venue's own, a number, a
    ``(low, high)`` range for every venue, or ``{"COMEX": (60, 120)}``. Time moves only while you
    wait (``eng.sleep``, ``ticket.wait``).

    Examples
    --------
    >>> from cmc_lab.data import synthetic_quotes
    >>> ds = synthetic_quotes(rate_hz=10, start="2026-11-24 14:00", day_length="1min")
    >>> eng = replay_engine(ds, instruments=["SHFE.au", "COMEX.GC", "FX.USDCNH"], latency_ms=0)
    >>> sorted(eng.venues)
    ['COMEX', 'FX', 'SHFE']
    >>> eng.close()
    """
    ds = check_quotes(open_quotes(data) if isinstance(data, str | Path) else data)
    specs = specs or load_specs()
    clock = VirtualClock(first_time_ns(ds))
    latency = _latency(latency_ms, list(specs.venues))
    feed = ReplayFeed(ds, specs, clock, latency=latency, seed=seed, instruments=instruments)
    names = list(dict.fromkeys(specs.instruments[i].venue for i in feed.ids))
    store = Journal(journal if journal is not None else ":memory:")
    try:
        return Engine(
            {name: feed.venue(name) for name in names},
            specs=specs,
            journal=store,
            clock=clock,
            label="replay",
            accounts=accounts,
        )
    except BaseException:
        store.close()
        raise


def _feed_of(eng: Engine) -> ReplayFeed:
    venue = next(iter(eng.venues.values()))
    if not isinstance(venue, ReplayVenue):
        raise TypeError(f"{eng!r} does not replay recorded quotes; make it with replay_engine(data)")
    return venue.feed


def run_replay(
    data: xr.Dataset | str | Path,
    legs: Mapping[str, float] | None = None,
    *,
    when: str = "z <= -2",
    level: float | None = None,
    side: str = "buy",
    qty: int | None = None,
    policy: str = "chase",
    latency_ms: Latency = None,
    repeat: int = 100,
    dwell_ms: float = 0.0,
    hysteresis: float = 0.0,
    name: str = "spread",
    kind: str = "diff",
    lots: Mapping[str, int] | None = None,
    seed: int = 7,
    tail_s: float = 30.0,
    journal: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Replay ``data`` through the engine with one armed trigger; one row per ticket it fired.

    The spread ``legs`` (default SHFE au against COMEX GC) is defined as ``eng.spread`` would,
    then ``eng.hedge(spread, side, qty, when=..., policy=..., repeat=...)`` waits ARMED while
    the data plays; each fire is a hedge ticket. ``when`` may hold ``{level}``, filled from
    ``level`` (``when="z <= -{level}", level=2`` reads ``z <= -2``), so sweeps vary the level.
    Other ``options`` go to :class:`~cmc_lab.execution.hedge.HedgePolicy` (``mode``, ``tif``,
    ``allowance_ticks``, ``chase_ticks``, ...). After the last quote the engine runs ``tail_s``
    more seconds for tickets in flight. ``journal`` keeps the session's journal (receipts);
    by default it lives in a temporary directory.

    Columns: ``n`` (fire number), ``ticket``, ``fired_at``, ``state``, ``reason``, ``side``,
    ``units``, ``attempts``, ``decision_bid``, ``decision_ask``, ``decision_px`` (the side's
    executable price when it fired), ``executed_px`` (the spread at the legs' average fills),
    ``slippage`` (spread units, positive = worse than decided), ``slippage_cny`` (every leg's
    slippage money in CNY at the decision's FX), ``hedged_units``, ``naked_lots``,
    ``time_between_legs_ms``, ``time_to_hedged_ms``, and per leg ``<leg> slippage_ticks``.
    ``frame.attrs["replay"]`` has the run's figures (quotes played, wall time, events/s).

    Examples
    --------
    >>> from cmc_lab.data import synthetic_quotes
    >>> ds = synthetic_quotes(rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="10min")
    >>> tickets = run_replay(ds, when="z <= -{level}", level=1.5, latency_ms=0, repeat=3)
    >>> len(tickets) <= 3, "slippage" in tickets.columns
    (True, True)
    """
    ds = check_quotes(open_quotes(data) if isinstance(data, str | Path) else data)
    legs = dict(legs or AU_GC)
    condition = _condition(when, level)
    specs = load_specs()
    defn, _ = spread_def(legs, specs=specs, name=name, kind=kind, lots=lots)
    played = list(defn.ids) + ([USDCNH_ID] if needs_fx(defn) else [])
    with tempfile.TemporaryDirectory(prefix="cmc-replay-") as tmp:
        where = journal if journal is not None else Path(tmp) / "replay.sqlite"
        eng = replay_engine(
            ds, instruments=played, latency_ms=latency_ms, seed=seed, journal=where, specs=specs
        )
        try:
            sp = eng.spread(name, legs, kind, lots=lots)
            units = qty if qty is not None else sp.lots[sp.leg_ids[0]]
            first = eng.hedge(
                sp,
                side,
                units,
                when=condition,
                policy=policy,
                repeat=repeat,
                dwell_ms=dwell_ms,
                hysteresis=hysteresis,
                **options,
            )
            feed = _feed_of(eng)
            wall = time.perf_counter()
            eng.sleep(max(0.0, (feed.end_ns - eng.now_ns()) / 1e9) + tail_s)
            wall = time.perf_counter() - wall
            frame = ticket_frame(first.series, sp, eng)
        finally:
            eng.close()
    frame.attrs["replay"] = {
        "spread": sp.name,
        "unit": sp.unit,
        "when": condition,
        "policy": policy,
        "rows": feed.rows,
        "quotes": feed.quotes,
        "wall_s": wall,
        "events_per_s": feed.quotes / wall if wall > 0 else math.nan,
        "start": pd.Timestamp(feed.start_ns),
        "end": pd.Timestamp(feed.end_ns),
    }
    return frame


def _condition(when: str, level: float | None) -> str:
    if "{level}" in when:
        if level is None:
            raise ValueError(f"when = {when!r} has a {{level}} to fill; pass level=..., e.g. level=2.0")
        return when.replace("{level}", f"{level:g}")
    if level is not None:
        raise ValueError(f"level = {level!r} is given but when = {when!r} has no {{level}} to put it in")
    return when


_FRAME_COLUMNS = [
    "n",
    "ticket",
    "fired_at",
    "state",
    "reason",
    "side",
    "units",
    "attempts",
    "decision_bid",
    "decision_ask",
    "decision_px",
    "executed_px",
    "slippage",
    "slippage_cny",
    "hedged_units",
    "naked_lots",
    "time_between_legs_ms",
    "time_to_hedged_ms",
]


def ticket_frame(tickets: Sequence[HedgeTicket], spread: Spread, eng: Engine) -> pd.DataFrame:
    """One row per ticket that fired: its outcome, decision and executed spread prices, slippage."""
    waiting = {TicketState.NEW.value, TicketState.ARMED.value, TicketState.DISARMED.value}
    offset = eng.clock.now_ns() - eng.clock.mono_ns()  # clock mono ns -> exchange time ns
    legs = list(spread.leg_ids)
    rows = []
    for n, t in enumerate(tickets, start=1):
        fired = [mono for mono, state, _ in t.history if state == TicketState.CHECKING.value]
        if not fired or t.state.value in waiting:
            continue
        rep = t.report()
        snap = t.decision
        fx = FxRates(usdcnh=snap.fx) if snap is not None and snap.fx else None
        decision_px = None if snap is None else (snap.ask if t.side.value == "buy" else snap.bid)
        fills = {leg: figures["avg_px"] for leg, figures in rep["legs"].items()}
        executed = None
        if decision_px is not None and all(px is not None for px in fills.values()):
            prices = {leg: float(px) for leg, px in fills.items()}
            executed = float(spread_value(spread.defn, prices, fx))
        money = [
            float(convert_money(float(f["slippage_money"]), f["currency"], "CNY", fx))
            for f in rep["legs"].values()
            if f["slippage_money"] is not None
        ]
        row: dict[str, Any] = {
            "n": n,
            "ticket": t.ticket_id,
            "fired_at": pd.Timestamp(snap.ts_ns if snap is not None else offset + fired[0]),
            "state": t.state.value,
            "reason": t.reason,
            "side": t.side.value,
            "units": t.units,
            "attempts": t.attempts,
            "decision_bid": rep["decision_bid"],
            "decision_ask": rep["decision_ask"],
            "decision_px": decision_px,
            "executed_px": executed,
            "slippage": None if executed is None else (executed - decision_px) * t.side.sign,  # type: ignore[operator]
            "slippage_cny": sum(money) if money else None,
            "hedged_units": rep["hedged_units"],
            "naked_lots": sum(abs(v) for v in rep["naked_lots"].values()),
            "time_between_legs_ms": _ms(rep["time_between_legs_ns"]),
            "time_to_hedged_ms": _ms(rep["time_to_hedged_ns"]),
        }
        for leg in legs:
            row[f"{leg} slippage_ticks"] = rep["legs"][leg]["slippage_ticks"]
        rows.append(row)
    columns = _FRAME_COLUMNS + [f"{leg} slippage_ticks" for leg in legs]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("decision_bid", "decision_ask", "decision_px", "executed_px", "slippage", "slippage_cny"):
        frame[column] = frame[column].astype(float)
    return frame


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6


# --------------------------------------------------------------------------- sweeps


@dataclass
class SweepResult:
    """What :func:`sweep` returns: every ticket of every run, a summary per grid point, timing.

    ``tickets`` has the grid's columns, ``slice`` (which piece of the data) and the columns of
    :func:`run_replay`; ``summary`` one row per grid point (index: the grid's keys) with
    ``tickets``, ``filled``, ``fill_rate``, ``slippage_mean``, ``slippage_p50``, ``slippage_p95``,
    ``slippage_cny_mean``, ``time_to_hedged_ms_p50`` and ``events`` (quotes replayed).
    :meth:`to_xarray` gives the summary with one dimension per grid key.
    """

    tickets: pd.DataFrame
    summary: pd.DataFrame
    wall_s: float
    workers: int
    tasks: int

    def to_xarray(self) -> xr.Dataset:
        return self.summary.to_xarray()

    def __repr__(self) -> str:
        return (
            f"SweepResult({len(self.summary)} grid points, {self.tasks} tasks, {len(self.tickets)} tickets, "
            f"{self.workers} workers, {self.wall_s:.1f} s)"
        )

    def _repr_html_(self) -> str:
        return f"<p><b>{self!r}</b></p>" + self.summary.to_html(float_format=lambda v: f"{v:.4g}")


def slices(data: xr.Dataset, split: str | int | None = "1D") -> list[xr.Dataset]:
    """Pieces of ``data`` replayed independently: by period (``"1D"``: per day), into ``n`` equal
    runs of rows, or whole (None). Each piece is its own engine: triggers and z-scores start afresh.
    """
    check_quotes(data)
    if split is None:
        return [data]
    times = time_ns(data)
    if isinstance(split, bool) or (isinstance(split, int) and split < 1):
        raise ValueError(f"split = {split!r} must be a pandas frequency such as '1D', a count >= 1, or None")
    if isinstance(split, int):
        bounds = np.linspace(0, times.size, split + 1).round().astype(int)
    else:
        try:
            period = pd.Timedelta(split).value
        except ValueError:
            raise ValueError(f"split = {split!r} is not a duration such as '1D' or '30min'") from None
        starts = np.flatnonzero(np.diff(times // period, prepend=times[0] // period - 1))
        bounds = np.append(starts, times.size)
    return [data.isel(time=slice(a, b)) for a, b in itertools.pairwise(bounds.tolist()) if b > a]


def _sweep_task(
    params: dict[str, Any], point: dict[str, Any], piece: int, data: xr.Dataset
) -> tuple[pd.DataFrame, int]:
    data = data.load(scheduler="sync") if _is_lazy(data) else data
    frame = run_replay(data, **params)
    labels = {k: [v if isinstance(v, int | float | str) else str(v)] * len(frame) for k, v in point.items()}
    return frame.assign(slice=piece, **labels), int(frame.attrs["replay"]["quotes"])


def _is_lazy(data: xr.Dataset) -> bool:
    return any(getattr(v.data, "chunks", None) is not None for v in data.data_vars.values())


def sweep(
    grid: Mapping[str, Sequence[Any]],
    data: xr.Dataset | str | Path,
    *,
    client: Any = None,
    workers: int = 2,
    processes: bool = True,
    split: str | int | None = "1D",
    progress: bool = False,
    **fixed: Any,
) -> SweepResult:
    """Run :func:`run_replay` for every point of ``grid`` on every slice of ``data``, in parallel with dask.

    ``grid`` maps :func:`run_replay` arguments to the values to try, e.g. ``{"level": [1.5, 2],
    "policy": ["chase", "unwind"], "latency_ms": [0, 100]}``; ``fixed`` holds the others
    (``when="z <= -{level}"``, ``legs=...``). Each (grid point, slice) is one task: an independent
    virtual-clock engine. Only the instruments the spreads need (legs and FX) are shipped. ``client`` is None (a ``LocalCluster`` of ``workers`` processes, one
    thread each, closed afterwards), a scheduler address (``"tcp://host:8786"``) or a
    ``dask.distributed.Client``. Slices (:func:`slices`, by ``split``) of a lazy Dataset (a
    store, or :func:`~cmc_lab.data.synthetic_quotes` over several days) are computed on the
    workers, once each, not shipped from here.

    Examples
    --------
    >>> from cmc_lab.data import synthetic_quotes
    >>> ds = synthetic_quotes(rate_hz=10, start="2026-11-24 14:00", day_length="10min")
    >>> result = sweep({"level": [1.5, 2.0], "policy": ["chase", "unwind"]}, ds,
    ...                when="z <= -{level}", latency_ms=0)    # doctest: +SKIP
    >>> result.summary                                         # doctest: +SKIP
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("sweep runs on dask.distributed; install it: pip install 'cmc-lab[dask]'") from None

    if (
        not isinstance(grid, Mapping)
        or not grid
        or any(isinstance(v, str) or not len(v) for v in grid.values())
    ):
        raise ValueError("grid must map run_replay arguments to non-empty lists, e.g. {'level': [1.5, 2.0]}")
    clash = sorted(set(grid) & set(fixed))
    if clash:
        raise ValueError(f"{', '.join(clash)} is both in the grid and fixed; give it in one place")
    ds = check_quotes(open_quotes(data) if isinstance(data, str | Path) else data)
    keys = list(grid)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    needed: set[str] = set()
    for point in points:
        params = {**fixed, **point}
        _condition(str(params.get("when", "z <= -2")), params.get("level"))
        defn, _ = spread_def(dict(params.get("legs") or AU_GC), kind=params.get("kind", "diff"))
        needed.update([*defn.ids, *([USDCNH_ID] if needs_fx(defn) else [])])
    check_quotes(ds, sorted(needed))
    pieces = slices(ds.sel(instrument=[i for i in ds.instrument.values.tolist() if i in needed]), split)
    cluster = None
    own = client is None or isinstance(client, str)
    if client is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    elif isinstance(client, str):
        client = Client(client)
    try:
        started = time.perf_counter()
        # In-memory pieces go to every worker (any task can run anywhere); lazy ones are made on
        # one worker each and their tasks follow them (balanced once there are more pieces than workers).
        shipped = [client.compute(p) if _is_lazy(p) else client.scatter(p, broadcast=True) for p in pieces]
        futures = [
            client.submit(_sweep_task, {**fixed, **point}, point, i, shipped[i], pure=False)
            for point in points
            for i in range(len(pieces))
        ]
        if progress:
            from tqdm.auto import tqdm

            for _ in tqdm(as_completed(futures), total=len(futures), desc="sweep"):
                pass
        results = client.gather(futures)
        wall = time.perf_counter() - started
        n_workers = len(client.scheduler_info()["workers"])
    finally:
        if own:
            client.close()
        if cluster is not None:
            cluster.close()
    frames = [frame for frame, _ in results]
    tickets = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    summary = _summary(points, keys, results, len(pieces))
    return SweepResult(tickets, summary, wall, n_workers, len(futures))


def _summary(
    points: list[dict[str, Any]], keys: list[str], results: list[tuple[pd.DataFrame, int]], n: int
) -> pd.DataFrame:
    rows = []
    for p, point in enumerate(points):
        mine = pd.concat([frame for frame, _ in results[p * n : (p + 1) * n]], ignore_index=True)
        filled = mine[mine["state"] == TicketState.FILLED.value]
        slip = mine["slippage"].dropna()
        rows.append(
            {
                **point,
                "tickets": len(mine),
                "filled": len(filled),
                "fill_rate": len(filled) / len(mine) if len(mine) else math.nan,
                "slippage_mean": slip.mean() if len(slip) else math.nan,
                "slippage_p50": slip.median() if len(slip) else math.nan,
                "slippage_p95": slip.quantile(0.95) if len(slip) else math.nan,
                "slippage_cny_mean": mine["slippage_cny"].mean() if len(mine) else math.nan,
                "time_to_hedged_ms_p50": mine["time_to_hedged_ms"].astype(float).median()
                if len(mine)
                else math.nan,
                "events": sum(events for _, events in results[p * n : (p + 1) * n]),
            }
        )
    return pd.DataFrame(rows).set_index(keys)


__all__ = ["AU_GC", "SweepResult", "replay_engine", "run_replay", "slices", "sweep", "ticket_frame"]
