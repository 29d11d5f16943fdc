"""The quote recorder: engine-thread buffers, background flushes to Zarr, the Dataset so far, stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.data import recorder as recorder_module
from cmc_lab.data import synthetic_quotes
from cmc_lab.data.recorder import Recorder, RecorderError, open_quotes, save_quotes

Make = Callable[..., cmc.Engine]


def test_recorder_captures_every_quote_of_every_instrument_fx_included(make_engine: Make) -> None:
    eng = make_engine()
    rec = Recorder(eng)
    eng.sleep(20)
    ds = rec.close()
    assert set(ds.instrument.values) == set(eng.instruments.index)
    assert "FX.USDCNH" in ds.instrument.values
    assert rec.quotes == int(ds.bid.notnull().sum())
    times = ds.time.values.astype(np.int64)
    assert (np.diff(times) > 0).all()
    for iid in (AU, GC, "FX.USDCNH"):
        column = ds.sel(instrument=iid)
        last = column.isel(time=np.flatnonzero(column.bid.notnull().values)[-1])
        quote = eng.quote(iid)
        assert (float(last.bid), float(last.ask), int(last.bid_size)) == (
            quote.bid,
            quote.ask,
            quote.bid_size,
        )
        assert int(last.ts_event) == quote.ts_event


def test_chunks_flush_to_zarr_and_the_dataset_so_far_includes_the_unflushed_rows(
    make_engine: Make, tmp_path: Path
) -> None:
    eng = make_engine()
    path = tmp_path / "quotes.zarr"
    rec = Recorder(eng, path, chunk=64)
    eng.sleep(30)
    so_far = rec.dataset()
    assert so_far.sizes["time"] == rec.rows > 64
    assert path.exists()
    eng.sleep(10)
    final = rec.close()
    stored = open_quotes(path)
    assert stored.sizes["time"] == final.sizes["time"] > so_far.sizes["time"]
    xr.testing.assert_equal(
        stored[["bid", "ask", "bid_size", "ask_size", "ts_event"]].load(), final.load()[list(stored)]
    )
    xr.testing.assert_equal(final.isel(time=slice(0, so_far.sizes["time"])).load(), so_far.load())


def test_a_stuck_store_never_stalls_the_engine(make_engine: Make, tmp_path: Path, monkeypatch: Any) -> None:
    real_save = recorder_module.save_quotes
    gate = threading.Event()
    stuck = threading.Event()
    savers: list[threading.Thread] = []

    def stuck_save(*args: Any, **kwargs: Any) -> Path:
        savers.append(threading.current_thread())
        stuck.set()
        gate.wait(30)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "save_quotes", stuck_save)
    eng = make_engine()
    rec = Recorder(eng, tmp_path / "slow.zarr", chunk=32)
    eng.sleep(60)  # dozens of full chunks while the store does not answer
    assert stuck.wait(10), "the recorder never tried to save a full chunk"
    assert rec.rows > 32 * 40, "the market stopped while the store hung"
    assert eng.runtime.thread not in savers and threading.current_thread() not in savers, (
        "the store is written from the engine's or the caller's thread"
    )
    gate.set()
    ds = rec.close()
    assert open_quotes(tmp_path / "slow.zarr").sizes["time"] == ds.sizes["time"] == rec.rows


def test_a_failing_store_keeps_the_quotes_in_memory_and_close_says_so(
    make_engine: Make, tmp_path: Path, monkeypatch: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(recorder_module, "save_quotes", broken)
    eng = make_engine()
    rec = Recorder(eng, tmp_path / "broken.zarr", chunk=16)
    eng.sleep(10)
    with pytest.raises(RecorderError, match=r"disk full.*rec.dataset\(\)"):
        rec.close()
    assert rec.dataset().sizes["time"] == rec.rows > 16


def test_closing_the_engine_flushes_the_recorder(make_engine: Make, tmp_path: Path) -> None:
    eng = make_engine()
    rec = Recorder(eng, tmp_path / "q.zarr")
    eng.sleep(5)
    eng.close()
    assert "closed" in repr(rec)
    assert open_quotes(tmp_path / "q.zarr").sizes["time"] == rec.rows > 0


def test_recorder_appends_to_a_store_with_mode_a(make_engine: Make, tmp_path: Path) -> None:
    path = tmp_path / "q.zarr"
    eng = make_engine()
    first = Recorder(eng, path, instruments=["SHFE.au", "COMEX.GC"])
    eng.sleep(5)
    n = first.close().sizes["time"]
    second = Recorder(eng, path, instruments=["SHFE.au", "COMEX.GC"], mode="a")
    eng.sleep(5)
    both = second.close()
    assert list(both.instrument.values) == [AU, GC]  # a product records its main month
    assert both.sizes["time"] == open_quotes(path).sizes["time"] > n
    assert (np.diff(both.time.values.astype(np.int64)) > 0).all()


def test_recorder_refuses_bad_stores_and_instruments(make_engine: Make, tmp_path: Path) -> None:
    eng = make_engine()
    (tmp_path / "old.zarr").mkdir()
    with pytest.raises(FileExistsError, match="mode='w'"):
        Recorder(eng, tmp_path / "old.zarr")
    with pytest.raises(ValueError, match=r"streams to Zarr.*save_quotes"):
        Recorder(eng, tmp_path / "quotes.nc")
    with pytest.raises(ValueError, match=r"unknown instrument NYSE\.IBM"):
        Recorder(eng, instruments=["NYSE.IBM"])
    with pytest.raises(ValueError, match="chunk"):
        Recorder(eng, chunk=0)


def test_save_and_open_quotes_round_trip_exact_times(tmp_path: Path) -> None:
    ds = synthetic_quotes(rate_hz=10, start="2026-11-24 14:00:00.123456789", day_length="3s")
    save_quotes(ds, tmp_path / "s.zarr")
    back = open_quotes(tmp_path / "s.zarr").load()
    xr.testing.assert_equal(back[list(ds.data_vars)], ds)
    with pytest.raises(FileExistsError):
        save_quotes(ds, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match=r"\.zarr.*\.nc"):
        save_quotes(ds, tmp_path / "s.parquet")
    with pytest.raises(FileNotFoundError, match="record one"):
        open_quotes(tmp_path / "missing.zarr")
