"""Synthetic quotes from the embedded exchange's market model, one trading day at a time. Pure.

Each row steps :class:`cmc_lab.data.market.SimMarket` (the pure market model of the embedded
exchange) and quotes what the exchange would publish for it; days are independent paths, so a
month of data is made lazily, one day per dask chunk, and researched in any order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from cmc_lab.core.hours import TradingHours
from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.data.layout import DTYPES, QUOTE_VARS, duration_ns, quotes_dataset
from cmc_lab.data.market import SimMarket


def synthetic_quotes(
    days: int = 1,
    rate_hz: float = 10.0,
    seed: int = 7,
    *,
    start: str | pd.Timestamp = "2026-11-23",
    day_length: str | pd.Timedelta = "24h",
    specs: Specs | None = None,
    lazy: bool | None = None,
) -> xr.Dataset:
    """Quotes of every instrument for ``days`` trading days, from the embedded exchange's market model.

    Each row steps :class:`cmc_lab.data.market.SimMarket` by ``1 / rate_hz`` seconds and quotes
    what the embedded exchange would publish: the top of its simulated book around the fair price
    (the same rounding to ticks, spread and size). An instrument whose session is closed does not
    quote (NaN). Trading days are the weekdays from ``start``; each covers ``day_length`` from
    ``start``'s time of day and is its own path, seeded by ``(seed, day)``, starting at the
    reference prices: days can be made (and researched) independently and in any order.

    ``lazy`` (default: more than one day) backs the variables with dask, one chunk per day, each
    made only when read: 30 days at 10 Hz for 9 instruments fit in the memory of one day.

    Examples
    --------
    >>> ds = synthetic_quotes(days=1, rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="1min")
    >>> ds.sizes["time"], ds.sizes["instrument"]
    (600, 9)
    >>> float(ds.bid.sel(instrument="COMEX.GC")[0]) > 0
    True
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days = {days!r} must be a whole number of trading days >= 1")
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float) or not 0 < rate_hz <= 1000:
        raise ValueError(f"rate_hz = {rate_hz!r} must be a number of quotes per second in (0, 1000]")
    specs = specs or load_specs()
    length_ns = duration_ns(day_length, "day_length") or 0
    n_rows = round(length_ns / 1e9 * rate_hz)
    if n_rows < 1:
        raise ValueError(f"day_length = {day_length!r} is shorter than one quote at {rate_hz:g} Hz")
    if length_ns > 86_400 * 10**9:
        raise ValueError(f"day_length = {day_length!r} is longer than a day; ask for more days instead")
    starts = _trading_days(start, days)
    step_ns = round(1e9 / rate_hz)
    ids = list(specs.instruments)
    attrs = {
        "source": "synthetic (cmc_lab.data.market.SimMarket)",
        "seed": seed,
        "rate_hz": float(rate_hz),
        "days": days,
        "day_length": str(pd.Timedelta(length_ns)),
    }
    times = np.concatenate([s + step_ns * np.arange(1, n_rows + 1, dtype=np.int64) for s in starts])
    if not (days > 1 if lazy is None else lazy):
        parts = [_synthetic_day(specs, seed, d, s, n_rows, 1 / rate_hz) for d, s in enumerate(starts)]
        return quotes_dataset(
            times, ids, {v: np.concatenate([p[v] for p in parts]) for v in QUOTE_VARS}, attrs
        )
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError(
            "more than one synthetic day is made lazily with dask: pip install 'cmc-lab[dask]', "
            "or pass lazy=False to make every day now"
        ) from None

    made = [
        dask.delayed(_synthetic_day, pure=True)(specs, seed, d, s, n_rows, 1 / rate_hz)
        for d, s in enumerate(starts)
    ]
    data_vars = {
        v: (
            ("time", "instrument"),
            da.concatenate(
                [da.from_delayed(day[v], shape=(n_rows, len(ids)), dtype=DTYPES[v]) for day in made]
            ),
        )
        for v in QUOTE_VARS
    }
    coords = {"time": times.astype("datetime64[ns]"), "instrument": np.asarray(ids, dtype=str)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _trading_days(start: str | pd.Timestamp, days: int) -> list[int]:
    first = pd.Timestamp(start)
    if first.tzinfo is not None:
        first = first.tz_convert("UTC").tz_localize(None)
    out: list[int] = []
    day = first
    while len(out) < days:
        if day.weekday() < 5:
            out.append(int(day.as_unit("ns").value))
        day += pd.Timedelta(days=1)
    return out


def day_seed(seed: int, day: int) -> int:
    """The market seed of trading day ``day`` (0-based) of ``synthetic_quotes(seed=seed)``.

    ``SimExchange(specs, clock, seed=day_seed(seed, day))`` replays that day's market live.
    """
    return int(np.random.SeedSequence([seed, day]).generate_state(1, dtype=np.uint64)[0])


def _synthetic_day(
    specs: Specs, seed: int, day: int, start_ns: int, n_rows: int, dt: float
) -> dict[str, np.ndarray]:
    market = SimMarket(specs, day_seed(seed, day), dt=dt)
    n = len(market.ids)
    mid = np.empty((n_rows, n))
    half = np.empty((n_rows, n), dtype=np.int64)
    size = np.empty((n_rows, n), dtype=np.float32)
    for row in range(n_rows):
        fair = list(market.step().values())
        mid[row] = [q.mid for q in fair]
        half[row] = [q.half_spread_ticks for q in fair]
        size[row] = [q.top_size for q in fair]
    instruments = [specs.instruments[i] for i in market.ids]
    ticks = np.array([float(i.tick) for i in instruments])
    # The embedded exchange's requote (cmc_lab.venues.sim.matching.Matcher.requote), top level only.
    bid_t = np.maximum(1, np.ceil(mid / ticks - half))
    ask_t = np.maximum(bid_t + 1, np.floor(mid / ticks + half))
    bid = np.empty_like(mid)
    ask = np.empty_like(mid)
    for j, inst in enumerate(instruments):
        decimals = max(0, -int(inst.tick.normalize().as_tuple().exponent))
        bid[:, j] = np.round(bid_t[:, j] * ticks[j], decimals)
        ask[:, j] = np.round(ask_t[:, j] * ticks[j], decimals)
    times = start_ns + round(dt * 1e9) * np.arange(1, n_rows + 1, dtype=np.int64)
    closed = ~np.column_stack([_open_mask(times, inst.hours) for inst in instruments])
    bid[closed] = ask[closed] = np.nan
    size[closed] = np.nan
    order = [market.ids.index(i) for i in specs.instruments]
    return {
        "bid": bid[:, order],
        "ask": ask[:, order],
        "bid_size": size[:, order],
        "ask_size": size[:, order].copy(),
    }


def _open_mask(times: np.ndarray, hours: TradingHours) -> np.ndarray:
    minutes, inverse = np.unique(times // 60_000_000_000, return_inverse=True)
    is_open = np.array([hours.is_open(m * 60_000_000_000) for m in minutes.tolist()], dtype=bool)
    return is_open[inverse]


__all__ = ["day_seed", "synthetic_quotes"]
