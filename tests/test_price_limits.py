"""Price limits as the exchanges set them: each trading day's from the previous settlement (SHFE,
INE, LME), a dynamic band for CME; a replay at today's price levels trades (issue 14)."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import xarray as xr
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.data.synthetic import synthetic_quotes
from cmc_lab.engine.errors import OpenExposureWarning
from cmc_lab.journal import Journal
from cmc_lab.research import run_replay

#: 2025-2026 levels: SHFE au about 950 CNY/g, COMEX GC about 4,100 USD/oz (the shipped specs' reference
#: prices, where the simulated market starts, are about 40 % below them).
LEVELS = {"SHFE.au": 950.0 / 620.0, "COMEX.GC": 4100.0 / 2650.0}


def at_todays_levels(ds: xr.Dataset) -> xr.Dataset:
    """The quotes scaled to today's levels, each on its contract's tick grid, the spread kept open."""
    ticks = {"SHFE.au": 0.02, "COMEX.GC": 0.10}
    out = ds.copy()
    for iid, factor in LEVELS.items():
        tick = ticks[iid]
        for side, snap in (("bid", np.floor), ("ask", np.ceil)):
            scaled = snap(ds[side].sel(instrument=iid).values * factor / tick - 1e-9 * (side == "ask")) * tick
            out[side].loc[{"instrument": iid}] = np.round(scaled, 2)
    return out


def test_a_replay_at_todays_price_levels_hedges_and_fills(tmp_path: Path) -> None:
    ds = at_todays_levels(synthetic_quotes(rate_hz=5.0, seed=7, start="2026-11-24 14:00", day_length="20min"))
    ds = ds.sel(instrument=["SHFE.au", "COMEX.GC", "FX.USDCNH"])
    assert (
        float(ds.bid.sel(instrument="SHFE.au")[0]) > 900
        and float(ds.bid.sel(instrument="COMEX.GC")[0]) > 4000
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenExposureWarning)
        tickets = run_replay(
            ds, when="z <= -{level}", level=1.5, repeat=5, journal=tmp_path / "replay.sqlite"
        )
    assert len(tickets) >= 1
    assert set(tickets["state"]) == {"FILLED"}, tickets[["state", "reason"]]
    denied = list(Journal(tmp_path / "replay.sqlite", readonly=True).rows(kinds=["OrderDenied"]))
    assert (
        denied == []
    )  # no order refused for its price level (it was: "outside the daily limits [570.40, 669.60]")


def test_the_embedded_exchange_settles_each_trading_day_and_publishes_the_next_days_limits() -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", quote_interval=30.0)
    try:
        eng.sleep(1.0)
        first = eng.market.limits[AU]
        assert (
            first.trading_day == "2026-11-25"
        )  # 22:00 in Shanghai: the night session counts toward the next day
        assert first.settlement == Decimal("945.00") and (first.low, first.high) == (
            Decimal("803.26"),
            Decimal("1086.74"),
        )
        eng.sleep(23 * 3600.0)  # past 20:00 Shanghai on the 25th: the night session of the 26th
        day = eng.market.limits[AU]
        assert day.trading_day == "2026-11-26" and day.settlement != first.settlement
        au = eng.instrument("SHFE.au")
        assert (day.low, day.high) == au.day_limits(day.settlement)
        published = [
            r["payload"] for r in eng.journal.rows(kinds=["PriceLimitsPublished"]) if r["instrument"] == AU
        ]
        assert [p["trading_day"] for p in published] == ["2026-11-25", "2026-11-26"]
        outside = eng.submit("SHFE.au", "buy", 1, price=day.high + au.tick)
        assert (
            outside.state is cmc.OrderState.DENIED and f"for trading day {day.trading_day}" in outside.reason
        )
        assert GC not in eng.market.limits  # CME: no daily limit, a dynamic band instead
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenExposureWarning)
            eng.close()
