"""The quote Dataset layout: dims ``time x instrument``, NaN where an instrument did not quote. Pure.

``bid``, ``ask`` (float64) and ``bid_size``, ``ask_size`` (float32, lots); a recording adds
``ts_event`` (int64 ns, the venue's stamp). ``time`` is when the quotes were seen, increasing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

QUOTE_VARS = ("bid", "ask", "bid_size", "ask_size")
#: dtype of each quote variable.
DTYPES = {"bid": np.float64, "ask": np.float64, "bid_size": np.float32, "ask_size": np.float32}

#: Times accepted by the helpers: a DatetimeIndex, datetime64 or int ns array, or a DataArray of them.
TimesLike: TypeAlias = "pd.DatetimeIndex | np.ndarray | xr.DataArray | Sequence[Any]"


class QuoteDataError(ValueError):
    """A Dataset that is not a quote Dataset, or lacks an instrument a helper was asked for."""


def quotes_dataset(
    times_ns: np.ndarray,
    instruments: Sequence[str],
    values: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a quote Dataset from ``(time, instrument)`` arrays (``values`` keyed by variable).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 100_000_000])
    >>> ds = quotes_dataset(t, ["COMEX.GC"], {"bid": np.array([[2650.0], [np.nan]]),
    ...     "ask": np.array([[2650.1], [np.nan]]), "bid_size": np.array([[5], [np.nan]]),
    ...     "ask_size": np.array([[7], [np.nan]])})
    >>> ds.bid.sizes["time"], ds.instrument.values.tolist()
    (2, ['COMEX.GC'])
    """
    data_vars = {}
    for name, array in values.items():
        dtype = DTYPES.get(name, np.asarray(array).dtype)
        data_vars[name] = (("time", "instrument"), np.asarray(array, dtype=dtype))
    coords = {
        "time": np.asarray(times_ns, dtype=np.int64).astype("datetime64[ns]"),
        "instrument": np.asarray(list(instruments), dtype=str),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))


def check_quotes(ds: object, instruments: Iterable[str] = ()) -> xr.Dataset:
    """``ds`` if it is a quote Dataset holding ``instruments``; else a QuoteDataError saying what is missing."""
    if not isinstance(ds, xr.Dataset):
        raise QuoteDataError(
            f"expected an xarray Dataset of quotes, got {type(ds).__name__}; make one with "
            "Recorder(eng).dataset(), open_quotes(path) or synthetic_quotes(...)"
        )
    missing = [v for v in QUOTE_VARS if v not in ds.data_vars]
    if missing or set(ds.dims) != {"time", "instrument"}:
        raise QuoteDataError(
            f"not a quote Dataset: it needs dims (time, instrument) and variables {', '.join(QUOTE_VARS)}; "
            f"it has dims {tuple(ds.dims)} and variables {', '.join(map(str, ds.data_vars)) or 'none'}"
        )
    have = set(ds.instrument.values.tolist())
    unknown = [i for i in instruments if i not in have]
    if unknown:
        raise QuoteDataError(
            f"no quotes for {', '.join(unknown)} in this Dataset; it holds {', '.join(sorted(have))}"
        )
    return ds


def time_ns(times: TimesLike | xr.Dataset) -> np.ndarray:
    """Times as int64 nanoseconds since the epoch (UTC); naive datetimes count as UTC."""
    if isinstance(times, xr.Dataset):
        times = times.time
    if isinstance(times, xr.DataArray):
        times = times.values
    if isinstance(times, pd.DatetimeIndex):
        index = times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times
        return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    array = np.asarray(times)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    return np.asarray(pd.DatetimeIndex(array).as_unit("ns").asi8, dtype=np.int64)


def quote_columns(ds: xr.Dataset, instruments: Sequence[str]) -> dict[str, np.ndarray]:
    """The quote variables of ``instruments`` as numpy ``(time, k)`` arrays (a lazy Dataset is computed once)."""
    sub = ds[list(QUOTE_VARS)].sel(instrument=list(instruments))
    if any(getattr(v.data, "chunks", None) is not None for v in sub.data_vars.values()):
        sub = sub.compute()
    return {name: np.asarray(sub[name].values) for name in QUOTE_VARS}


def duration_ns(value: str | pd.Timedelta | float | None, what: str) -> int | None:
    """A duration (``"3s"``, a Timedelta, or seconds) in ns; None stays None; a ValueError names ``what``."""
    if value is None:
        return None
    try:
        delta = pd.Timedelta(value) if not isinstance(value, int | float) else pd.Timedelta(seconds=value)
    except ValueError:
        raise ValueError(
            f"{what} = {value!r} is not a duration; use e.g. '3s', '500ms' or 3.0 (seconds)"
        ) from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{what} = {value!r} must be a positive duration")
    return int(delta.value)


__all__ = [
    "DTYPES",
    "QUOTE_VARS",
    "QuoteDataError",
    "TimesLike",
    "check_quotes",
    "duration_ns",
    "quote_columns",
    "quotes_dataset",
    "time_ns",
]
