"""Quote Datasets: layout, as-of alignment, spread series, rolling z, half-life, sessions, synthetic quotes."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.model import Quote
from cmc_lab.core.specs import load_specs
from cmc_lab.data import (
    QuoteDataError,
    align,
    asof,
    distribution,
    half_life,
    quotes_dataset,
    rolling_z,
    spread_def,
    spread_series,
    synthetic_quotes,
)
from cmc_lab.data import synthetic as synthetic_module
from cmc_lab.data.synthetic import day_seed
from cmc_lab.execution.spread import default_lots
from cmc_lab.execution.trigger import RollingZ
from cmc_lab.pricing import COPPER_IMPORT_PARITY, TROY_OUNCE_G
from cmc_lab.venues.sim.exchange import SimExchange

T0 = pd.Timestamp("2026-11-24 14:00").value
S = 1_000_000_000


@pytest.fixture(scope="module")
def ten_minutes() -> xr.Dataset:
    return synthetic_quotes(rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="10min")


def two_instruments() -> xr.Dataset:
    """A quotes at 0 s and 10 s, B at 5 s only."""
    nan = np.nan
    return quotes_dataset(
        np.array([T0, T0 + 5 * S, T0 + 10 * S]),
        ["SHFE.au", "COMEX.GC"],
        {
            "bid": np.array([[620.0, nan], [nan, 2650.0], [621.0, nan]]),
            "ask": np.array([[620.02, nan], [nan, 2650.1], [621.02, nan]]),
            "bid_size": np.array([[10, nan], [nan, 4], [11, nan]]),
            "ask_size": np.array([[12, nan], [nan, 5], [13, nan]]),
        },
    )


# ------------------------------------------------------------------ as-of


def test_asof_takes_the_last_quote_at_or_before_each_time_and_never_a_later_one() -> None:
    ds = two_instruments()
    at = asof(ds, np.array([T0 - 1, T0, T0 + 9 * S, T0 + 10 * S - 1, T0 + 10 * S]))
    au = at.bid.sel(instrument="SHFE.au").values
    assert np.isnan(au[0])
    assert au.tolist()[1:] == [620.0, 620.0, 620.0, 621.0]
    gc = at.bid.sel(instrument="COMEX.GC").values
    assert np.isnan(gc[:2]).all() and gc[2:].tolist() == [2650.0] * 3
    assert at.age.sel(instrument="SHFE.au").values[2] == pytest.approx(9.0)


def test_asof_max_age_blanks_quotes_older_than_the_limit() -> None:
    at = asof(two_instruments(), np.array([T0 + 2 * S, T0 + 4 * S]), max_age="3s")
    au = at.bid.sel(instrument="SHFE.au").values
    assert au[0] == 620.0 and np.isnan(au[1])


def test_align_on_the_union_of_updates_one_instrument_or_a_grid() -> None:
    ds = two_instruments()
    assert align(ds, ["SHFE.au", "COMEX.GC"]).sizes["time"] == 3
    assert align(ds, ["SHFE.au", "COMEX.GC"], on="COMEX.GC").time.values.tolist() == [T0 + 5 * S]
    grid = align(ds, ["SHFE.au", "COMEX.GC"], on="2s")
    assert grid.sizes["time"] == 6
    with pytest.raises(ValueError, match="neither one of the instruments"):
        align(ds, ["SHFE.au"], on="bogus")


def test_helpers_name_what_a_dataset_lacks() -> None:
    with pytest.raises(QuoteDataError, match=r"no quotes for LME\.CA"):
        asof(two_instruments(), [T0], instruments=["LME.CA"])
    with pytest.raises(QuoteDataError, match="expected an xarray Dataset"):
        asof(pd.DataFrame(), [T0])  # type: ignore[arg-type]
    with pytest.raises(QuoteDataError, match="needs dims"):
        asof(xr.Dataset({"bid": ("x", [1.0])}), [T0])


# ------------------------------------------------------------------ spreads


def test_spread_series_is_the_gold_spread_in_cny_per_gram_through_usdcnh() -> None:
    nan = np.nan
    ds = quotes_dataset(
        np.array([T0, T0 + S]),
        ["SHFE.au", "COMEX.GC", "FX.USDCNH"],
        {
            "bid": np.array([[620.0, 2650.0, 7.25], [nan, 2651.0, nan]]),
            "ask": np.array([[620.02, 2650.1, 7.2502], [nan, 2651.1, nan]]),
            "bid_size": np.array([[30, 9, 50], [nan, 9, nan]]),
            "ask_size": np.array([[30, 9, 50], [nan, 9, nan]]),
        },
    )
    sp = spread_series(ds, {"SHFE.au": 1, "COMEX.GC": -1})
    fx = 7.2501
    assert sp.attrs["unit"] == "CNY/g" and sp.attrs["lots"] == "3:1"
    assert sp.bid.values[0] == pytest.approx(620.0 - 2650.1 * fx / TROY_OUNCE_G)
    assert sp.ask.values[1] == pytest.approx(620.02 - 2651.0 * fx / TROY_OUNCE_G)
    assert sp.bid_size.values.tolist() == [9, 9]  # 30 au // 3 = 10, 9 GC // 1 = 9
    assert sp.fx.values.tolist() == [pytest.approx(fx)] * 2


def test_spread_def_uses_the_live_desks_defaults_for_costs_and_lots() -> None:
    specs = load_specs()
    copper, lots = spread_def({"SHFE.cu": 1, "LME.CA": -1}, specs=specs)
    assert copper.costs == {"LME.CA": COPPER_IMPORT_PARITY}
    for legs in (
        {"SHFE.au": 1, "COMEX.GC": -1},
        {"SHFE.ag": 1, "COMEX.SI": -1},
        {"SHFE.cu": 1, "LME.CA": -1},
    ):
        defn, lots = spread_def(legs, specs=specs)
        assert lots == default_lots(defn, 0.04)


# ------------------------------------------------------------------ statistics


def test_rolling_z_with_a_count_window_is_the_live_spreads_z() -> None:
    rng = np.random.default_rng(3)
    values = np.cumsum(rng.standard_normal(400))
    series = pd.Series(values, index=pd.date_range("2026-11-24", periods=400, freq="100ms"))
    live = RollingZ(window=50, min_samples=10)
    expected = [live.update(v) for v in values]
    got = rolling_z(series, window=50, min_periods=10)
    assert np.isnan(got.iloc[:9]).all()
    np.testing.assert_allclose(
        got.iloc[9:].to_numpy(), np.array(expected[9:], dtype=float), rtol=1e-6, atol=1e-9
    )


def test_rolling_z_keeps_the_type_and_skips_gaps(ten_minutes: xr.Dataset) -> None:
    mid = spread_series(ten_minutes, {"SHFE.au": 1, "COMEX.GC": -1}).mid
    z = rolling_z(mid, window="1min")
    assert isinstance(z, xr.DataArray) and z.dims == ("time",) and z.name == "z"
    assert float(np.nanmax(np.abs(z.values))) < 10


def test_half_life_recovers_the_market_models_two_minute_spread_reversion() -> None:
    ds = synthetic_quotes(rate_hz=2, seed=11, start="2026-11-24 14:00", day_length="3h")
    mid = spread_series(ds, {"SHFE.au": 1, "COMEX.GC": -1}).mid
    estimate = half_life(mid, freq="1s").total_seconds()
    assert 60 < estimate < 240  # SimMarket's cross-market spread: an OU with a 120 s half-life


def test_half_life_of_a_random_walk_is_nat() -> None:
    walk = pd.Series(np.arange(100.0), index=pd.date_range("2026-11-24", periods=100, freq="s"))
    assert pd.isna(half_life(walk))


def test_distribution_by_session_and_local_hour() -> None:
    specs = load_specs()
    ds = synthetic_quotes(rate_hz=0.2, seed=7, start="2026-11-24 00:00", day_length="24h")
    sp = spread_series(ds, {"SHFE.au": 1, "COMEX.GC": -1}, max_age="10s")
    table = distribution(sp.mid, specs.instrument("SHFE.au"))
    sessions = set(table.index.get_level_values("session"))
    assert {"day-1", "day-2", "day-3", "night"} <= sessions
    assert (table.loc["night"].index.isin([21, 22, 23, 0, 1, 2])).all()  # Asia/Shanghai hours
    assert table["count"].sum() == np.isfinite(sp.mid.values).sum()
    assert (table["p5"] <= table["p95"]).all()


# ------------------------------------------------------------------ synthetic quotes


def test_synthetic_quotes_are_what_the_embedded_exchange_publishes() -> None:
    specs = load_specs()
    ds = synthetic_quotes(rate_hz=10, seed=5, start="2026-11-24 14:00", day_length="5s")
    clock = VirtualClock(int(ds.time.values[0].astype(np.int64)) - S // 10)
    loop = clock.new_loop()
    exchange = SimExchange(specs, clock, seed=day_seed(5, 0), quote_interval=0.1, latency=0)
    seen: list[Quote] = []

    async def run() -> None:
        for venue in exchange.venues.values():
            await venue.connect(lambda m: seen.append(m) if isinstance(m, Quote) else None)
        await clock.advance(asyncio.sleep(5.05))

    loop.run_until_complete(run())
    loop.close()
    times = ds.time.values.astype(np.int64).tolist()
    checked = 0
    for quote in seen:
        if quote.ts_event not in times:
            continue  # the snapshot at connect
        row = ds.isel(time=times.index(quote.ts_event)).sel(instrument=quote.instrument_id)
        assert (float(row.bid), float(row.ask)) == pytest.approx((quote.bid, quote.ask), abs=1e-9)
        assert (int(row.bid_size), int(row.ask_size)) == (quote.bid_size, quote.ask_size)
        checked += 1
    assert checked == 50 * 10


def test_synthetic_quotes_are_deterministic_by_seed_and_mask_closed_sessions() -> None:
    a = synthetic_quotes(rate_hz=1, seed=3, start="2026-11-24 06:00", day_length="30min")
    b = synthetic_quotes(rate_hz=1, seed=3, start="2026-11-24 06:00", day_length="30min")
    c = synthetic_quotes(rate_hz=1, seed=4, start="2026-11-24 06:00", day_length="30min")
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.bid.sel(instrument="COMEX.GC"), c.bid.sel(instrument="COMEX.GC"))
    # 06:00 UTC is 14:00 in Shanghai (day-3 session, until 15:00) and the night of Chicago.
    assert a.bid.sel(instrument="SHFE.au").notnull().all()
    late = synthetic_quotes(rate_hz=1, seed=3, start="2026-11-24 07:30", day_length="30min")
    assert late.bid.sel(instrument="SHFE.au").isnull().all()  # 15:30 Shanghai: closed


def test_synthetic_days_are_lazy_weekday_chunks_made_independently() -> None:
    lazy = synthetic_quotes(days=3, rate_hz=1, seed=9, start="2026-11-27 14:00", day_length="10min")
    assert lazy.bid.chunks is not None and lazy.bid.chunks[0] == (600, 600, 600)
    days = pd.DatetimeIndex(lazy.time.values).normalize().unique()
    assert [d.day_name() for d in days] == ["Friday", "Monday", "Tuesday"]
    monday = synthetic_quotes(
        days=3, rate_hz=1, seed=9, start="2026-11-27 14:00", day_length="10min", lazy=False
    )
    xr.testing.assert_equal(lazy.isel(time=slice(600, 1200)).compute(), monday.isel(time=slice(600, 1200)))


def test_thirty_days_at_ten_hertz_is_a_lazy_dataset_of_day_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    make_day = synthetic_module._synthetic_day

    def counted(*args: Any) -> Any:
        made.append(args[2])  # the day's index
        return make_day(*args)

    monkeypatch.setattr(synthetic_module, "_synthetic_day", counted)
    ds = synthetic_quotes(days=30, rate_hz=10, seed=7)
    assert made == [], "a day was made before anybody read it"
    assert ds.sizes == {"time": 30 * 864_000, "instrument": 10}
    assert ds.bid.chunks[0] == (864_000,) * 30  # one day made at a time, only when read
    assert ds.bid.data.nbytes / 1e9 > 1.5  # what it would take eagerly (prices alone)
    small = synthetic_quotes(days=3, rate_hz=1, seed=7, start="2026-11-24 14:00", day_length="10s")
    small.bid.isel(time=-1).values  # noqa: B018 - reading is the point
    assert made == [2], "reading the last row makes its day, and only that one"


def test_synthetic_quotes_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="days"):
        synthetic_quotes(days=0)
    with pytest.raises(ValueError, match="rate_hz"):
        synthetic_quotes(rate_hz=0)
    with pytest.raises(ValueError, match="shorter than one quote"):
        synthetic_quotes(rate_hz=1, day_length="100ms")
