"""Research: replaying triggers and hedge tickets through the engine, per-ticket slippage, dask sweeps."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from cmc_lab.bench.data import replay_events_per_second, sweep_wall_time
from cmc_lab.data import quotes_dataset, synthetic_quotes
from cmc_lab.pricing import TROY_OUNCE_G
from cmc_lab.research import run_replay, slices, sweep

T0 = pd.Timestamp("2026-11-24 14:00").value
MS = 1_000_000


@pytest.fixture(scope="module")
def ten_minutes() -> xr.Dataset:
    return synthetic_quotes(rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="10min")


def gold_drop() -> xr.Dataset:
    """au 620.00/620.02, GC 2649.9/2650.0, USDCNH 7.25/7.2501 every 10 ms; at 1.02 s GC drops a tick."""
    n = 300
    ones = np.ones(n)
    gc_bid = np.where(np.arange(n) >= 102, 2649.8, 2649.9)
    bid = np.column_stack([620.0 * ones, gc_bid, 7.25 * ones])
    ask = np.column_stack([620.02 * ones, gc_bid + 0.1, 7.2501 * ones])
    sizes = np.full((n, 3), 50.0)
    return quotes_dataset(
        T0 + 10 * MS * np.arange(n),
        ["SHFE.au", "COMEX.GC", "FX.USDCNH"],
        {"bid": bid, "ask": ask, "bid_size": sizes, "ask_size": sizes},
    )


def test_run_replay_gives_one_row_per_fired_ticket_with_slippage(ten_minutes: xr.Dataset) -> None:
    tickets = run_replay(ten_minutes, when="z <= -{level}", level=1.5, latency_ms=None, repeat=5)
    assert 1 <= len(tickets) <= 5
    assert tickets["n"].tolist() == list(range(1, len(tickets) + 1))
    assert set(tickets["state"]) <= {"FILLED", "UNWOUND", "BROKEN", "DENIED"}
    filled = tickets[tickets.state == "FILLED"]
    np.testing.assert_allclose(filled.slippage, filled.executed_px - filled.decision_px)
    assert {"SHFE.au slippage_ticks", "COMEX.GC slippage_ticks", "slippage_cny"} <= set(tickets.columns)
    stats = tickets.attrs["replay"]
    assert stats["when"] == "z <= -1.5" and stats["quotes"] == 3 * 6000 and stats["events_per_s"] > 0


def test_run_replay_is_deterministic_by_seed(ten_minutes: xr.Dataset) -> None:
    a = run_replay(ten_minutes, when="z >= 1.5", side="sell", repeat=3, seed=3)
    b = run_replay(ten_minutes, when="z >= 1.5", side="sell", repeat=3, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_latency_costs_the_tick_the_market_moved_while_the_orders_travelled() -> None:
    ds = gold_drop()
    fast = run_replay(ds, when="ask <= 10", dwell_ms=990, latency_ms=0, repeat=1, tail_s=2)
    slow = run_replay(ds, when="ask <= 10", dwell_ms=990, latency_ms=50, repeat=1, tail_s=2)
    assert fast.state.tolist() == slow.state.tolist() == ["FILLED"]
    assert fast.fired_at[0] == slow.fired_at[0] == pd.Timestamp(T0 + 1000 * MS)
    assert fast.slippage[0] == pytest.approx(0.0)
    fx = (7.25 + 7.2501) / 2
    assert slow.slippage[0] == pytest.approx(0.1 * fx / TROY_OUNCE_G)  # one GC tick, in CNY/g
    assert slow["COMEX.GC slippage_ticks"][0] == 1.0
    assert slow.slippage_cny[0] == pytest.approx(0.1 * 100 * fx)  # 0.1 USD/oz on 100 oz
    assert slow.time_to_hedged_ms[0] == pytest.approx(100.0)


def test_run_replay_level_template_errors_say_what_to_pass(ten_minutes: xr.Dataset) -> None:
    with pytest.raises(ValueError, match="pass level="):
        run_replay(ten_minutes, when="z <= -{level}")
    with pytest.raises(ValueError, match=r"no \{level\}"):
        run_replay(ten_minutes, when="z <= -2", level=2.0)


def test_slices_by_period_count_or_whole() -> None:
    ds = synthetic_quotes(days=2, rate_hz=1, start="2026-11-24 14:00", day_length="10min", lazy=False)
    assert [p.sizes["time"] for p in slices(ds, "1D")] == [600, 600]
    assert [p.sizes["time"] for p in slices(ds, 3)] == [400, 400, 400]
    assert len(slices(ds, None)) == 1
    with pytest.raises(ValueError, match="split"):
        slices(ds, 0)


def test_sweep_on_a_local_cluster_matches_the_same_replays_run_one_by_one(ten_minutes: xr.Dataset) -> None:
    grid = {"level": [1.5, 2.0], "latency_ms": [0, 100]}
    result = sweep(grid, ten_minutes, workers=2, processes=False, split=2, when="z <= -{level}", repeat=4)
    assert result.tasks == 8 and result.workers == 2
    assert list(result.summary.index.names) == ["level", "latency_ms"]
    assert result.summary["tickets"].sum() == len(result.tickets)
    assert result.summary["events"].tolist() == [3 * 6000] * 4
    second_half = slices(ten_minutes.sel(instrument=["SHFE.au", "COMEX.GC", "FX.USDCNH"]), 2)[1]
    alone = run_replay(second_half, when="z <= -{level}", level=2.0, latency_ms=100, repeat=4)
    mine = result.tickets.query("level == 2.0 and latency_ms == 100 and slice == 1")
    pd.testing.assert_frame_equal(mine[alone.columns].reset_index(drop=True), alone)
    grid_view = result.to_xarray()
    assert dict(grid_view.sizes) == {"level": 2, "latency_ms": 2}


def test_sweep_on_a_cluster_given_by_address(ten_minutes: xr.Dataset) -> None:
    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        result = sweep(
            {"policy": ["chase", "unwind"]},
            ten_minutes,
            client=cluster.scheduler_address,
            split=None,
            when="z <= -2",
            repeat=2,
        )
        with Client(cluster) as client:  # the cluster outlives the sweep's own client
            assert len(client.scheduler_info()["workers"]) == 1
    assert result.tasks == 2 and list(result.summary.index) == ["chase", "unwind"]


def test_sweep_refuses_a_grid_it_cannot_run(ten_minutes: xr.Dataset) -> None:
    with pytest.raises(ValueError, match="non-empty lists"):
        sweep({"level": []}, ten_minutes)
    with pytest.raises(ValueError, match="both in the grid and fixed"):
        sweep({"level": [1.0]}, ten_minutes, level=2.0)
    with pytest.raises(ValueError, match="pass level="):
        sweep({"policy": ["chase"]}, ten_minutes, when="z <= -{level}")


def test_bench_measures_replay_events_per_second_and_sweep_wall_time() -> None:
    replay = replay_events_per_second(minutes=0.5)
    assert replay["armed"]["quotes"] == 3 * 300 and replay["armed"]["events_per_s"] > 0
    assert replay["quotes_only"]["events_per_s"] > 0
    timed = sweep_wall_time(workers=(1,), minutes=1.0, slices=1, grid={"level": [2.0]})
    assert timed["tasks"] == 1 and timed["wall_s"][1] > 0 and timed["speedup"][1] == 1.0
