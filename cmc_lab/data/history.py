"""Research helpers on quote Datasets, pure: as-of alignment, spread series, rolling z, half-life, sessions.

A quote Dataset (:mod:`cmc_lab.data.layout`) has dims ``time x instrument``; a row holds the
instruments that quoted at that moment and NaN for the others, so "the quote at t" is always an
as-of lookup: the last row at or before t where that instrument quoted. Nothing here looks ahead.

The spread helpers call :func:`cmc_lab.pricing.spreads.spread_quote`, the function the live spread calls,
so a number computed here is the number the engine would have seen. No IO, no engine, no threads
(stores are read and written by :mod:`cmc_lab.data.recorder`). The layout's names and
:func:`~cmc_lab.data.synthetic.synthetic_quotes` are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from cmc_lab.core.hours import TradingHours
from cmc_lab.core.ids import USDCNH_ID, symbol_of
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.data.layout import (
    DTYPES,
    QUOTE_VARS,
    QuoteDataError,
    TimesLike,
    check_quotes,
    duration_ns,
    quote_columns,
    quotes_dataset,
    time_ns,
)
from cmc_lab.data.synthetic import synthetic_quotes
from cmc_lab.pricing.spreads import CostTerms, SpreadDef, import_costs, spread_quote
from cmc_lab.pricing.units import FxRates, best_lot_ratio

Series: TypeAlias = "xr.DataArray | pd.Series"


# --------------------------------------------------------------------------- as-of alignment


def asof(
    ds: xr.Dataset,
    times: TimesLike,
    *,
    instruments: Sequence[str] | None = None,
    max_age: str | pd.Timedelta | float | None = None,
) -> xr.Dataset:
    """Each instrument's last quote at or before each of ``times``: an as-of join, no look-ahead.

    A quote seen exactly at ``t`` counts as known at ``t``; one seen a nanosecond later does not.
    ``max_age`` (e.g. ``"3s"``) blanks quotes older than that, as the live spread's staleness
    check refuses them. The result adds ``age`` (seconds since the quote was seen).

    Examples
    --------
    >>> ds = synthetic_quotes(days=1, rate_hz=2, seed=1, start="2026-11-24 14:00", day_length="10s")
    >>> at = asof(ds, ds.time.values[[3, 7]], instruments=["SHFE.au", "COMEX.GC"])
    >>> at.bid.shape
    (2, 2)
    """
    check_quotes(ds)
    ids = list(instruments) if instruments is not None else ds.instrument.values.tolist()
    check_quotes(ds, ids)
    limit = duration_ns(max_age, "max_age")
    at = time_ns(times)
    src = time_ns(ds)
    cols = quote_columns(ds, ids)
    out = {name: np.full((at.size, len(ids)), np.nan, dtype=DTYPES[name]) for name in QUOTE_VARS}
    age = np.full((at.size, len(ids)), np.nan)
    for j in range(len(ids)):
        rows = np.flatnonzero(np.isfinite(cols["bid"][:, j]))
        if not rows.size:
            continue
        pos = np.searchsorted(src[rows], at, side="right") - 1
        ok = pos >= 0
        if limit is not None:
            ok &= (at - src[rows[np.maximum(pos, 0)]]) <= limit
        picked = rows[pos[ok]]
        for name in QUOTE_VARS:
            out[name][ok, j] = cols[name][picked, j]
        age[ok, j] = (at[ok] - src[picked]) / 1e9
    result = quotes_dataset(at, ids, out, ds.attrs)
    result["age"] = (("time", "instrument"), age)
    return result


def align(
    ds: xr.Dataset,
    instruments: Sequence[str],
    *,
    on: str | TimesLike | None = None,
    max_age: str | pd.Timedelta | float | None = None,
) -> xr.Dataset:
    """Quotes of two or more instruments (e.g. two venues' legs and FX) side by side, as of each moment.

    ``on`` picks the moments: None, every row where any of ``instruments`` quoted (what the live
    desk sees: it recomputes on each leg's quote); an instrument id, that instrument's quotes
    only; a pandas frequency (``"1s"``), a regular grid; or explicit times.

    Examples
    --------
    >>> ds = synthetic_quotes(days=1, rate_hz=2, seed=1, start="2026-11-24 14:00", day_length="10s")
    >>> both = align(ds, ["SHFE.au", "COMEX.GC"], on="1s")
    >>> both.sizes["time"], both.sizes["instrument"]
    (10, 2)
    """
    ids = list(instruments)
    check_quotes(ds, ids)
    ds = ds[list(QUOTE_VARS)].sel(instrument=ids)
    if any(getattr(v.data, "chunks", None) is not None for v in ds.data_vars.values()):
        ds = ds.compute()  # once, not once per use below
    if isinstance(on, str) and on in ids:
        bid = ds.bid.sel(instrument=on).values
        times: TimesLike = ds.time.values[np.isfinite(bid)]
    elif isinstance(on, str):
        src = ds.time.values
        if not src.size:
            times = src
        else:
            try:
                times = pd.date_range(pd.Timestamp(src[0]).ceil(on), pd.Timestamp(src[-1]), freq=on)
            except ValueError:
                raise ValueError(
                    f"on = {on!r} is neither one of the instruments ({', '.join(ids)}) nor a pandas "
                    "frequency such as '1s' or '100ms'"
                ) from None
    elif on is None:
        bid = ds.bid.sel(instrument=ids).values
        times = ds.time.values[np.isfinite(bid).any(axis=1)]
    else:
        times = on
    return asof(ds, times, instruments=ids, max_age=max_age)


# --------------------------------------------------------------------------- spreads


def spread_def(
    legs: Mapping[str, float] | SpreadDef,
    *,
    specs: Specs | None = None,
    name: str | None = None,
    kind: str = "diff",
    costs: Mapping[str, CostTerms] | None = None,
    formula: str | None = None,
    lots: Mapping[str, int] | None = None,
    ratio_tolerance: float = 0.04,
) -> tuple[SpreadDef, dict[str, int]]:
    """The :class:`~cmc_lab.pricing.spreads.SpreadDef` and lots that ``eng.spread(name, legs)`` would build.

    Same defaults as the live desk: copper against LME carries the import-parity terms, and lots
    are the smallest whole ratio of equal physical quantity within ``ratio_tolerance``.

    Examples
    --------
    >>> defn, lots = spread_def({"SHFE.au": 1, "COMEX.GC": -1})
    >>> defn.unit, lots
    ('CNY/g', {'SHFE.au': 3, 'COMEX.GC': 1})
    """
    if isinstance(legs, SpreadDef):
        defn = legs
    else:
        specs = specs or load_specs()
        ids = list(legs)
        months = {
            i: _month(specs, i) for i in ids
        }  # a recorded contract month (SHFE.au2702) is its product's
        instruments = {**specs.instruments, **{m.id: m for m in months.values() if m is not None}}
        if costs is None:  # the live desk's default: VAT, bonded premium, by product
            product = {i: m.product_id if m is not None else i for i, m in months.items()}
            by_product = import_costs(product.values(), specs.import_terms)
            costs = {i: by_product[p] for i, p in product.items() if p in by_product}
        label = name or "_".join(symbol_of(i) for i in ids)
        defn = SpreadDef.from_ids(label, legs, instruments, kind=kind, costs=costs, formula=formula)  # type: ignore[arg-type]
    if lots is not None:
        return defn, dict(lots)
    return defn, _default_lots(defn, ratio_tolerance)


def _default_lots(defn: SpreadDef, tolerance: float) -> dict[str, int]:
    # The rule of cmc_lab.execution.spread.default_lots (test_history checks they agree).
    if len(defn.instruments) != 2:
        return dict.fromkeys(defn.ids, 1)
    first, second = defn.instruments
    try:
        ratio = best_lot_ratio(first, second, tolerance=tolerance)
    except ValueError:
        return dict.fromkeys(defn.ids, 1)
    return {first.id: ratio.a_lots, second.id: ratio.b_lots}


def needs_fx(defn: SpreadDef) -> bool:
    """Whether the spread's legs trade in different money (CNY and CNH count as one)."""
    return len({i.currency.replace("CNH", "CNY") for i in defn.instruments}) > 1


def spread_series(
    ds: xr.Dataset,
    legs: Mapping[str, float] | SpreadDef,
    *,
    on: str | TimesLike | None = None,
    max_age: str | pd.Timedelta | float | None = None,
    specs: Specs | None = None,
    name: str | None = None,
    kind: str = "diff",
    costs: Mapping[str, CostTerms] | None = None,
    formula: str | None = None,
    lots: Mapping[str, int] | None = None,
) -> xr.Dataset:
    """Executable ``bid``/``ask``, ``mid`` and sizes (spread units) of a spread over recorded quotes.

    Legs and FX are aligned as of each moment (:func:`align`; ``on`` and ``max_age`` as there),
    FX at the USD/CNH mid, then priced by :func:`cmc_lab.pricing.spreads.spread_quote`, the function the
    live spread uses. Values are in the first leg's units (CNY/g for au - GC); NaN where a leg
    (or FX) had no quote yet or its quote was older than ``max_age``.

    Examples
    --------
    >>> ds = synthetic_quotes(days=1, rate_hz=2, seed=1, start="2026-11-24 14:00", day_length="60s")
    >>> sp = spread_series(ds, {"SHFE.au": 1, "COMEX.GC": -1})
    >>> sp.attrs["unit"], bool((sp.ask >= sp.bid).all())
    ('CNY/g', True)
    """
    defn, chosen = spread_def(
        legs, specs=specs, name=name, kind=kind, costs=costs, formula=formula, lots=lots
    )
    fx_leg = needs_fx(defn)
    ids = list(defn.ids) + ([USDCNH_ID] if fx_leg else [])
    aligned = align(ds, ids, on=on, max_age=max_age)
    books = {
        iid: tuple(aligned[v].sel(instrument=iid).values.astype(np.float64) for v in QUOTE_VARS)
        for iid in defn.ids
    }
    fx = None
    if fx_leg:
        fx_mid = (
            aligned.bid.sel(instrument=USDCNH_ID).values + aligned.ask.sel(instrument=USDCNH_ID).values
        ) / 2
        fx = FxRates(usdcnh=fx_mid)
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = spread_quote(defn, books, fx, chosen)  # type: ignore[arg-type]
    dims = ("time",)
    out = xr.Dataset(
        {
            "bid": (dims, np.asarray(sq.bid, dtype=np.float64)),
            "ask": (dims, np.asarray(sq.ask, dtype=np.float64)),
            "mid": (dims, np.asarray(sq.mid, dtype=np.float64)),
            "bid_size": (dims, np.asarray(sq.bid_size, dtype=np.float64)),
            "ask_size": (dims, np.asarray(sq.ask_size, dtype=np.float64)),
        },
        coords={"time": aligned.time.values},
        attrs={
            "spread": defn.name,
            "unit": defn.unit,
            "legs": ", ".join(f"{w:+g} {i}" for i, w in zip(defn.ids, defn.weights, strict=True)),
            "lots": ":".join(str(chosen[i]) for i in defn.ids),
        },
    )
    if fx is not None:
        out["fx"] = (dims, np.asarray(fx.usdcnh, dtype=np.float64))
    return out


# --------------------------------------------------------------------------- statistics


def _as_series(x: Series, what: str) -> pd.Series:
    if isinstance(x, pd.Series):
        series = x
    elif isinstance(x, xr.DataArray) and x.dims == ("time",):
        series = x.to_series()
    else:
        raise ValueError(
            f"{what} takes a pandas Series with a DatetimeIndex or a DataArray along 'time', "
            f"e.g. spread_series(...).mid; got {type(x).__name__}"
        )
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError(f"{what} needs a time index (DatetimeIndex); got {type(series.index).__name__}")
    return series.astype(np.float64)


def _like(x: Series, values: pd.Series, name: str) -> Series:
    if isinstance(x, xr.DataArray):
        return xr.DataArray(values.to_numpy(), coords={"time": x.time.values}, dims=("time",), name=name)
    return values.rename(name)


def rolling_z(x: Series, window: int | str = 300, min_periods: int = 30) -> Series:
    """Rolling z-score of ``x`` over the last ``window`` values (or a duration such as ``"5min"``).

    With a count window this is the live spread's z (:class:`cmc_lab.execution.trigger.RollingZ`,
    population standard deviation, 0 on a flat window), so ``when="z > 2"`` reads the same number
    in a replay as here. NaN values (a leg not quotable) are skipped, as the live z skips them.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.Series([1.0, 2.0, 3.0, 10.0], index=pd.date_range("2026-11-24", periods=4, freq="s"))
    >>> round(float(rolling_z(s, window=4, min_periods=2).iloc[-1]), 3)
    1.697
    """
    series = _as_series(x, "rolling_z")
    if isinstance(window, int) and (isinstance(window, bool) or window < 2):
        raise ValueError(f"window = {window!r} must be at least 2 values (or a duration like '5min')")
    if isinstance(min_periods, bool) or not isinstance(min_periods, int) or min_periods < 1:
        raise ValueError(f"min_periods = {min_periods!r} must be a whole number >= 1")
    valid = series.dropna()
    roll = valid.rolling(window, min_periods=min_periods)
    mean = roll.mean()
    std = roll.std(ddof=0)
    flat = std <= 1e-9 * np.maximum(1.0, mean.abs())
    z = ((valid - mean) / std).where(~flat, 0.0).where(mean.notna())
    return _like(x, z.reindex(series.index), "z")


def half_life(x: Series, freq: str | None = None) -> pd.Timedelta:
    """Mean-reversion half-life of ``x`` from an AR(1) fit ``x[t] = a + b x[t-1] + e``: ``-ln 2 / ln b`` steps.

    ``freq`` (e.g. ``"1s"``) first samples ``x`` on a regular grid, as of each step (the last
    value at or before it); without it the steps are the median spacing of ``x``. NaT when the
    fit does not revert (``b`` outside (0, 1)).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> v = np.zeros(20_000)
    >>> for i in range(1, v.size):
    ...     v[i] = 0.9 * v[i - 1] + rng.standard_normal()
    >>> s = pd.Series(v, index=pd.date_range("2026-11-24", periods=v.size, freq="s"))
    >>> round(half_life(s).total_seconds(), 1)   # the process's own: ln 2 / -ln 0.9 = 6.58 s
    6.3
    """
    series = _as_series(x, "half_life")
    if freq is not None:
        series = series.dropna().resample(freq).last().ffill()
    series = series.dropna()
    if series.size < 3:
        return pd.Timedelta("NaT")
    values = series.to_numpy()
    index = pd.DatetimeIndex(series.index)
    step = (
        pd.Timedelta(freq)
        if freq is not None
        else pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))))
    )
    prev, nxt = values[:-1], values[1:]
    var = np.var(prev)
    if not var > 0:
        return pd.Timedelta("NaT")
    b = float(np.mean((prev - prev.mean()) * (nxt - nxt.mean())) / var)
    if not 0 < b < 1:
        return pd.Timedelta("NaT")
    return pd.Timedelta(seconds=-math.log(2) / math.log(b) * step.total_seconds())


def session_labels(times: TimesLike, hours: TradingHours | Instrument) -> np.ndarray:
    """The trading-session window name (``"night"``, ``"day-1"``, ...) at each time, or ``"closed"``.

    Sessions open and close on whole minutes, so each distinct minute is looked up once.
    """
    trading = hours.hours if isinstance(hours, Instrument) else hours
    ns = time_ns(times)
    minutes, inverse = np.unique(ns // 60_000_000_000, return_inverse=True)
    names = []
    for minute in minutes.tolist():
        window = trading.session_at(minute * 60_000_000_000)
        names.append(window.name if window is not None else "closed")
    return np.asarray(names, dtype=object)[inverse]


def distribution(
    x: Series,
    hours: TradingHours | Instrument,
    *,
    tz: str | None = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
) -> pd.DataFrame:
    """Distribution of ``x`` by trading session and hour: count, mean, std and quantiles.

    ``hours`` is an instrument (its sessions; usually the spread's first leg) or its
    ``TradingHours``; the hour is local to ``tz`` (default: the sessions' own time zone).

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> ds = synthetic_quotes(days=1, rate_hz=1, seed=1, start="2026-11-24 14:00", day_length="2h")
    >>> sp = spread_series(ds, {"SHFE.au": 1, "COMEX.GC": -1})
    >>> table = distribution(sp.mid, load_specs().instrument("SHFE.au"))
    >>> list(table.index.names), "p50" in table.columns
    (['session', 'hour'], True)
    """
    series = _as_series(x, "distribution").dropna()
    trading = hours.hours if isinstance(hours, Instrument) else hours
    zone = tz or trading.timezone
    index = pd.DatetimeIndex(series.index)
    local = index.tz_localize("UTC") if index.tz is None else index
    frame = pd.DataFrame(
        {
            "session": session_labels(index, trading),
            "hour": local.tz_convert(zone).hour,
            "value": series.to_numpy(),
        }
    )
    grouped = frame.groupby(["session", "hour"])["value"]
    table = grouped.agg(["count", "mean", "std"])
    for q in quantiles:
        table[f"p{round(q * 100):g}"] = grouped.quantile(q)
    table.attrs["tz"] = zone
    return table


def _month(specs: Specs, instrument_id: str) -> Instrument | None:
    """A contract month the specs list or can work out from its product's rules; None otherwise."""
    try:
        return specs.instrument(instrument_id)
    except KeyError:
        return None


__all__ = [
    "QUOTE_VARS",
    "QuoteDataError",
    "align",
    "asof",
    "check_quotes",
    "distribution",
    "half_life",
    "needs_fx",
    "quote_columns",
    "quotes_dataset",
    "rolling_z",
    "session_labels",
    "spread_def",
    "spread_series",
    "synthetic_quotes",
    "time_ns",
]
