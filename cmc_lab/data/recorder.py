"""Quote recorder and quote stores: the engine thread appends to numpy buffers, a background thread
flushes full chunks to Zarr.

This module holds the data layer's only IO (store files) and its only thread (the flusher). It
never imports the engine: a :class:`Recorder` needs an object with ``on_quote(callback, remove)``
and an ``instruments`` table, which is what :class:`cmc_lab.engine.facade.Engine` offers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote
from cmc_lab.data.history import QUOTE_VARS, check_quotes, quotes_dataset

_TIME_ATTR = "cmc_time"  # the store keeps time as int64 ns since the epoch (UTC), exactly
_TIME_UNITS = "ns since 1970-01-01 UTC"


class RecorderError(RuntimeError):
    """A store the recorder cannot write (its data so far stays in ``rec.dataset()``)."""


class QuoteSource(Protocol):
    """What a recorder attaches to: the engine's quote hook, its instruments and their lookup."""

    def on_quote(self, callback: Callable[[Quote], None], remove: bool = False) -> None: ...

    @property
    def instruments(self) -> pd.DataFrame: ...

    def instrument(self, instrument_id: str) -> Instrument: ...


# --------------------------------------------------------------------------- stores


def open_quotes(path: str | Path) -> xr.Dataset:
    """Open a quote store written by :class:`Recorder` or :func:`save_quotes` (``.zarr`` or ``.nc``).

    Zarr opens lazily (dask, when installed). NetCDF needs a backend (``netCDF4`` or ``h5netcdf``).

    Examples
    --------
    >>> ds = open_quotes("quotes.zarr")   # doctest: +SKIP
    """
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"no quote store at {target}; record one with Recorder(eng, path=...)")
    lazy: dict[str, int] | None = {} if importlib.util.find_spec("dask") is not None else None
    if target.suffix == ".nc":
        ds = xr.open_dataset(target, chunks=lazy, decode_times=False)
    else:
        ds = xr.open_zarr(target, chunks=lazy, consolidated=False, decode_times=False)
    if _TIME_ATTR in ds.time.attrs:
        ds = ds.assign_coords(time=ds.time.values.astype(np.int64).astype("datetime64[ns]"))
    check_quotes(ds)
    return ds[[*QUOTE_VARS, *(v for v in ds.data_vars if v not in QUOTE_VARS)]]


def save_quotes(ds: xr.Dataset, path: str | Path, *, mode: str = "w-", chunk: int = 65_536) -> Path:
    """Write a quote Dataset to ``path``: Zarr for ``.zarr`` (appendable), NetCDF for ``.nc``.

    ``mode``: ``"w-"`` (default) refuses an existing store, ``"w"`` replaces it, ``"a"`` appends
    along time (Zarr only; instruments must match).

    Examples
    --------
    >>> save_quotes(synthetic_quotes(), "day.zarr", mode="w")   # doctest: +SKIP
    """
    check_quotes(ds)
    target = Path(path)
    if mode not in ("w-", "w", "a"):
        raise ValueError(f"mode {mode!r} must be 'w-' (new store), 'w' (replace) or 'a' (append)")
    encoded = _encode(ds)
    if target.suffix == ".nc":
        if mode == "a":
            raise ValueError("NetCDF files cannot be appended to; write to a .zarr store with mode='a'")
        if mode == "w-" and target.exists():
            raise FileExistsError(f"{target} exists; pass mode='w' to replace it")
        encoded.to_netcdf(target)
        return target
    if target.suffix != ".zarr":
        raise ValueError(f"quote store {str(target)!r} must end in .zarr (Zarr) or .nc (NetCDF)")
    if mode == "a" and target.exists():
        encoded.to_zarr(target, append_dim="time", zarr_format=2, consolidated=False)
        return target
    if mode == "w-" and target.exists():
        raise FileExistsError(f"{target} exists; pass mode='w' to replace it or mode='a' to append")
    rows = max(1, min(chunk, encoded.sizes["time"] or 1))
    encoding: dict[str, dict[str, Any]] = {
        str(name): {"chunks": (rows, encoded.sizes["instrument"])} for name in encoded.data_vars
    }
    encoding["time"] = {"chunks": (rows,)}
    encoded.to_zarr(target, mode="w", zarr_format=2, consolidated=False, encoding=encoding)
    return target


def _encode(ds: xr.Dataset) -> xr.Dataset:
    times = ds.time.values.astype("datetime64[ns]").astype(np.int64)
    out = ds.assign_coords(time=("time", times, {_TIME_ATTR: _TIME_UNITS}))
    out.attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float | bool)}
    return out


# --------------------------------------------------------------------------- recorder


class _Chunk:
    """Preallocated rows of one chunk; NaN where an instrument did not quote."""

    __slots__ = ("ask", "ask_size", "bid", "bid_size", "n", "times", "ts_event")

    def __init__(self, rows: int, k: int) -> None:
        self.times = np.empty(rows, dtype=np.int64)
        self.bid = np.full((rows, k), np.nan)
        self.ask = np.full((rows, k), np.nan)
        self.bid_size = np.full((rows, k), np.nan, dtype=np.float32)
        self.ask_size = np.full((rows, k), np.nan, dtype=np.float32)
        self.ts_event = np.zeros((rows, k), dtype=np.int64)
        self.n = 0

    def dataset(self, instruments: Sequence[str], attrs: dict[str, Any]) -> xr.Dataset:
        n = self.n
        values = {name: getattr(self, name)[:n].copy() for name in (*QUOTE_VARS, "ts_event")}
        return quotes_dataset(self.times[:n].copy(), instruments, values, attrs)

    def reset(self) -> None:
        n = self.n
        for name in QUOTE_VARS:
            getattr(self, name)[:n] = np.nan
        self.ts_event[:n] = 0
        self.n = 0


def _listed(engine: QuoteSource, instrument_id: str, known: list[str]) -> str:  # a product: its main month
    if instrument_id in known:
        return instrument_id
    try:
        return engine.instrument(instrument_id).id
    except ValueError:
        return instrument_id  # unknown: named with the others below


class Recorder:
    """Records every quote an engine hears (FX included) into a ``time x instrument`` Dataset.

    On the engine thread a quote costs a few array writes into a preallocated chunk; when a chunk
    of ``chunk`` rows is full it goes to a background thread (``cmc-recorder``) that appends it to
    the Zarr store at ``path`` (or keeps it in memory when ``path`` is None), so the engine never
    waits for a disk. A row is one moment (the quote's ``ts_init``): quotes seen at the same
    nanosecond share a row, other instruments are NaN there; ``ts_event`` keeps the venue's stamp.

    ``instruments`` records only those (a product id, ``SHFE.au``, records its main month).
    ``mode`` as in :func:`save_quotes`. :meth:`dataset` gives everything so far (flushed chunks,
    chunks in flight and the rows being filled); :meth:`close` detaches, flushes and waits. The
    recorder closes itself when the engine closes.

    Examples
    --------
    >>> import cmc_lab as cmc
    >>> eng = cmc.connect("sim", seed=7, clock="virtual")
    >>> rec = Recorder(eng)
    >>> eng.sleep(2.0)
    >>> ds = rec.close()
    >>> ds.sizes["instrument"], ds.sizes["time"] > 0
    (17, True)
    >>> eng.close()
    """

    _store_lock = threading.Lock()  # one store write or open at a time, across recorders

    def __init__(
        self,
        engine: QuoteSource,
        path: str | Path | None = None,
        *,
        instruments: Sequence[str] | None = None,
        chunk: int = 65_536,
        mode: str = "w-",
    ) -> None:
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk = {chunk!r} must be a whole number of rows >= 1")
        if mode not in ("w-", "w", "a"):
            raise ValueError(f"mode {mode!r} must be 'w-' (new store), 'w' (replace) or 'a' (append)")
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            if self.path.suffix != ".zarr":
                raise ValueError(
                    f"the recorder streams to Zarr: name the store '*.zarr', not {str(self.path)!r} "
                    "(for NetCDF, save_quotes(rec.close(), 'quotes.nc') afterwards)"
                )
            if mode == "w-" and self.path.exists():
                raise FileExistsError(
                    f"{self.path} exists; pass mode='w' to replace it or mode='a' to append to it"
                )
        known = list(engine.instruments.index)
        ids = [_listed(engine, i, known) for i in instruments] if instruments is not None else known
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"unknown instrument {', '.join(unknown)}; this engine has {', '.join(known)}")
        self._base_rows = 0  # rows already in the store when appending to it
        if self.path is not None and mode == "a" and self.path.exists():
            existing = open_quotes(self.path)
            if list(existing.instrument.values) != ids:
                raise ValueError(
                    f"{self.path} holds {', '.join(existing.instrument.values)}; to append, record the "
                    "same instruments in the same order (instruments=...), or start a new store"
                )
            self._base_rows = existing.sizes["time"]
        self.instruments = ids
        self.chunk = chunk
        self.quotes = 0
        self.error: str | None = None
        self._mode = mode
        self._engine = engine
        self._attrs: dict[str, Any] = {"source": f"recorder on {engine!r}"}
        self._col = {iid: j for j, iid in enumerate(ids)}
        self._lock = threading.Lock()  # the chunk being filled (engine thread vs readers)
        self._state = threading.Lock()  # pending / written / memory (flusher vs readers)
        self._active = _Chunk(chunk, len(ids))
        self._row_t = -1
        self._row_mask = 0
        self._pending: list[_Chunk] = []
        self._memory: list[xr.Dataset] = []
        self._written = 0
        self._free: queue.SimpleQueue[_Chunk] = queue.SimpleQueue()
        self._queue: queue.SimpleQueue[_Chunk | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._flush_loop, name="cmc-recorder", daemon=True)
        self._thread.start()
        engine.on_quote(self._on_quote)
        on_close = getattr(engine, "on_close", None)
        if on_close is not None:
            on_close(self._on_engine_close)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        state = "closed" if self._closed else "recording"
        return f"Recorder({where}, {len(self.instruments)} instruments, {self.quotes} quotes, {state})"

    @property
    def rows(self) -> int:
        """Rows recorded so far (flushed, in flight and being filled)."""
        with self._state:
            flushed = self._written + sum(ds.sizes["time"] for ds in self._memory)
            flushed += sum(c.n for c in self._pending)
        return flushed + self._active.n

    # ------------------------------------------------------------------ engine thread

    def _on_quote(self, quote: Quote) -> None:
        j = self._col.get(quote.instrument_id)
        if j is None:
            return
        with self._lock:
            if self._closed:
                return
            c = self._active
            bit = 1 << j
            t = quote.ts_init
            if c.n == 0 or t != self._row_t or self._row_mask & bit:
                if c.n == self.chunk:
                    c = self._swap()
                t = max(t, self._row_t + 1)  # times stay unique and increasing
                c.times[c.n] = t
                c.n += 1
                self._row_t = t
                self._row_mask = 0
            r = c.n - 1
            self._row_mask |= bit
            c.bid[r, j] = quote.bid
            c.ask[r, j] = quote.ask
            c.bid_size[r, j] = quote.bid_size
            c.ask_size[r, j] = quote.ask_size
            c.ts_event[r, j] = quote.ts_event
            self.quotes += 1

    def _swap(self) -> _Chunk:
        full = self._active
        with self._state:
            self._pending.append(full)
        self._queue.put(full)
        try:
            self._active = self._free.get_nowait()
        except queue.Empty:
            self._active = _Chunk(self.chunk, len(self.instruments))
        return self._active

    # ------------------------------------------------------------------ flusher thread

    def _flush_loop(self) -> None:
        while True:
            c = self._queue.get()
            if c is None:
                return
            ds = c.dataset(self.instruments, self._attrs)
            stored = self.path is not None and self.error is None and self._write(ds)
            with self._state:
                self._pending.remove(c)
                if stored:
                    self._written += ds.sizes["time"]
                else:
                    self._memory.append(ds)
            c.reset()
            self._free.put(c)

    def _write(self, ds: xr.Dataset) -> bool:
        assert self.path is not None
        mode = "a" if self._written or self._base_rows else "w"
        try:
            with self._store_lock:
                save_quotes(ds, self.path, mode=mode, chunk=self.chunk)
        except Exception as exc:  # keep recording in memory; close() says what happened
            self.error = f"writing {self.path} failed: {exc!r}"
            return False
        return True

    # ------------------------------------------------------------------ reading and closing

    def dataset(self) -> xr.Dataset:
        """Everything recorded so far as one Dataset (the store's part lazily, when there is one)."""
        with self._lock:
            tail = self._active.dataset(self.instruments, self._attrs)
        with self._state:
            parts = [c.dataset(self.instruments, self._attrs) for c in self._pending]
            memory = list(self._memory)
            written = self._written
            if written or self._base_rows:
                with self._store_lock:
                    assert self.path is not None
                    stored = open_quotes(self.path)
                memory.insert(0, stored.isel(time=slice(0, self._base_rows + written)))
        pieces = [*memory, *parts, tail]
        pieces = [p for p in pieces if p.sizes["time"]] or [tail]
        if len(pieces) == 1:
            return pieces[0]
        out = xr.concat(
            pieces, dim="time", data_vars="all", coords="minimal", compat="override", join="exact"
        )
        out.attrs = dict(self._attrs)
        return out

    def close(self) -> xr.Dataset:
        """Stop recording, flush the rows left to the store and wait; returns the whole Dataset.

        Raises :class:`RecorderError` if the store could not be written (the data is still in
        :meth:`dataset`, in memory).
        """
        if not self._closed:
            with contextlib.suppress(Exception):  # the engine may be closed already
                self._engine.on_quote(self._on_quote, remove=True)
            with self._lock:
                self._closed = True
                last = self._active
                if last.n:
                    with self._state:
                        self._pending.append(last)
                    self._queue.put(last)
                    self._active = _Chunk(1, len(self.instruments))
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise RecorderError(f"{self.error}; the quotes are kept in memory: rec.dataset()")
        return self.dataset()

    def _on_engine_close(self) -> None:
        with contextlib.suppress(RecorderError):
            self.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["QuoteSource", "Recorder", "RecorderError", "open_quotes", "save_quotes"]
