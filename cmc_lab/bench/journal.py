"""Journal benchmarks: append throughput against raw SQLite, commit latency, timeline lookups."""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from cmc_lab.bench.stats import percentiles, quantile
from cmc_lab.core.clock import SIM_START_NS
from cmc_lab.core.ids import venue_of
from cmc_lab.core.model import OrderFilled, Side, event_payload
from cmc_lab.journal import schema
from cmc_lab.journal.chain import GENESIS, encode_payload, row_hash
from cmc_lab.journal.rows import JournalRow
from cmc_lab.journal.store import Journal

_T0 = SIM_START_NS
_VENUES = ("COMEX.GC", "SHFE.au", "NYMEX.CL", "INE.sc")


def _fill_row(i: int, order: int) -> JournalRow:
    """An OrderFilled-like row: the payload the engine journals for a fill."""
    instrument = _VENUES[order % len(_VENUES)]
    order_id = f"C-1-{order:08d}"
    event = OrderFilled(
        ts_event=_T0 + i * 1_000,
        ts_init=_T0 + i * 1_000 + 250,
        client_order_id=order_id,
        instrument_id=instrument,
        venue_order_id=f"V-{order:09d}",
        trade_id=f"T-{i:010d}",
        side=Side.BUY if i % 2 else Side.SELL,
        last_px=Decimal(2650) + Decimal(i % 97) / 10,
        last_qty=1 + i % 5,
    )
    return JournalRow(
        "OrderFilled",
        event.ts_event,
        event.ts_init,
        i * 700,
        event_payload(event),
        order_id=order_id,
        ticket_id=f"TK-{order // 2:08d}" if order % 3 else None,
        venue=venue_of(instrument),
        instrument=instrument,
    )


def _stored(rows: list[JournalRow]) -> list[tuple[Any, ...]]:
    """The exact tuples the journal stores for ``rows`` (payload text and hash chain included)."""
    out: list[tuple[Any, ...]] = []
    prev = GENESIS
    for seq, (kind, ts_event, ts_init, mono, payload, order_id, ticket_id, venue, instrument) in enumerate(
        rows, 1
    ):
        text = encode_payload(payload)
        link = row_hash(
            seq, ts_event, ts_init, mono, kind, order_id, ticket_id, venue, instrument, text, prev
        )
        out.append(
            (seq, ts_event, ts_init, mono, kind, order_id, ticket_id, venue, instrument, text, prev, link)
        )
        prev = link
    return out


@contextmanager
def workdir(tmpdir: Path | None) -> Iterator[Path]:
    """``tmpdir`` if given, else a temporary folder removed afterwards: where a benchmark's files go."""
    if tmpdir is not None:
        yield Path(tmpdir)
        return
    with tempfile.TemporaryDirectory(prefix="cmc-journal-bench-") as name:
        yield Path(name)


Stopwatch = Callable[[], int]
"""Monotonic int nanoseconds (``time.perf_counter_ns``); a test passes one it drives itself."""


def _timed(stopwatch: Stopwatch, action: Callable[..., object], *args: Any) -> float:
    start = stopwatch()
    action(*args)
    return (stopwatch() - start) / 1e9


_RAW_INSERT = (
    f"INSERT INTO events ({', '.join(schema.EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(schema.EVENT_COLUMNS))})"
)


def _raw_database(path: Path) -> sqlite3.Connection:
    """A fresh WAL database with the journal's schema, configured as the journal's writer is."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # as the journal's writer: no checkpoint in a commit
    for _, step in schema.MIGRATIONS:
        step(Database(conn))
    return conn


def raw_commit_latency(rows: list[JournalRow], n: int = 1000, tmpdir: Path | None = None) -> dict[str, float]:
    """The floor under any committed write of ``rows``: raw ``BEGIN IMMEDIATE; executemany; COMMIT``
    of them, already serialised and hashed, ``n`` times into a fresh database of the journal's
    schema; p50, p99 and max in microseconds (:func:`~cmc_lab.bench.stats.percentiles`).

    Examples
    --------
    >>> sorted(raw_commit_latency([_fill_row(i, 0) for i in range(3)], n=5))
    ['max_us', 'n', 'p50_us', 'p99_us']
    """
    batch = len(rows)
    stored = _stored([rows[i % batch] for i in range(batch * n)])
    samples: list[int] = []
    with workdir(tmpdir) as work:
        conn = _raw_database(work / "raw-commit.sqlite")
        try:
            for start in range(0, len(stored), batch):
                t0 = time.perf_counter_ns()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_RAW_INSERT, stored[start : start + batch])
                conn.execute("COMMIT")
                samples.append(time.perf_counter_ns() - t0)
        finally:
            conn.close()
    return percentiles(samples)


def _raw_insert(path: Path, stored: list[tuple[Any, ...]], stopwatch: Stopwatch) -> float:
    """Seconds for one raw executemany of ``stored`` into a fresh WAL database of the same schema."""
    conn = _raw_database(path)
    try:
        insert = _RAW_INSERT

        def run() -> None:
            conn.execute("BEGIN")
            conn.executemany(insert, stored)
            conn.execute("COMMIT")

        return _timed(stopwatch, run)
    finally:
        conn.close()


def append_rate(
    n_rows: int = 50_000, tmpdir: Path | None = None, stopwatch: Stopwatch = time.perf_counter_ns
) -> dict[str, float]:
    """Rows per second of ``Journal.append_many`` (hash chain included) against raw executemany.

    Both write the same ``n_rows`` OrderFilled-like rows in one transaction into a fresh WAL
    database (``synchronous=NORMAL``) with the same schema and indexes; the raw side gets the
    rows already serialised and hashed. Each side runs three times, raw first (files
    ``raw-N.sqlite`` and ``journal-N.sqlite`` in ``tmpdir``); the rates are ``n_rows`` over the
    median time of each side, ``ratio`` is the journal's rate over the raw one.

    Examples
    --------
    >>> sorted(append_rate(200))
    ['journal_rows_per_s', 'ratio', 'raw_rows_per_s']
    """
    rows = [_fill_row(i, i // 10) for i in range(n_rows)]
    raw_s: list[float] = []
    journal_s: list[float] = []
    with workdir(tmpdir) as work:
        for attempt in range(3):
            # Built afresh each time, as the journal builds its tuples: objects allocated just
            # before the insert are read at a different speed than long-lived ones.
            raw_s.append(_raw_insert(work / f"raw-{attempt}.sqlite", _stored(rows), stopwatch))
            with Journal(work / f"journal-{attempt}.sqlite") as journal:
                journal_s.append(_timed(stopwatch, journal.append_many, rows))
    raw = n_rows / statistics.median(raw_s)
    journaled = n_rows / statistics.median(journal_s)
    return {"journal_rows_per_s": journaled, "raw_rows_per_s": raw, "ratio": journaled / raw}


def append_latency(
    n: int = 2000, tmpdir: Path | None = None, stopwatch: Stopwatch = time.perf_counter_ns
) -> dict[str, float]:
    """Latency of ``n`` single committed ``Journal.append`` calls (into ``latency.sqlite`` in
    ``tmpdir``), p50, p99 and max in microseconds.

    Examples
    --------
    >>> sorted(append_latency(20))
    ['max_us', 'n', 'p50_us', 'p99_us']
    """
    rows = [_fill_row(i, i // 10) for i in range(n)]
    samples: list[int] = []
    with workdir(tmpdir) as work, Journal(work / "latency.sqlite") as journal:
        for row in rows:
            start = stopwatch()
            journal.append(
                row.kind,
                ts_event=row.ts_event,
                ts_init=row.ts_init,
                mono_ns=row.mono_ns,
                payload=row.payload,
                order_id=row.order_id,
                ticket_id=row.ticket_id,
                venue=row.venue,
                instrument=row.instrument,
            )
            samples.append(stopwatch() - start)
    return percentiles(samples)


def _order_of(i: int, window: int) -> int:
    """Orders live side by side: each window of events holds window/10 orders of 10 events."""
    per_window = window // 10
    return (i // window) * per_window + i % per_window


def _lean_row(i: int, window: int) -> JournalRow:
    order = _order_of(i, window)
    instrument = _VENUES[order % len(_VENUES)]
    payload = {
        "client_order_id": f"C-1-{order:08d}",
        "instrument_id": instrument,
        "trade_id": f"T-{i:010d}",
        "last_px": f"{2650 + i % 97 / 10:.1f}",
        "last_qty": 1 + i % 5,
    }
    return JournalRow(
        "OrderFilled",
        _T0 + i * 1_000,
        _T0 + i * 1_000 + 250,
        i * 700,
        payload,
        f"C-1-{order:08d}",
        f"TK-{order // 2:08d}" if order % 3 else None,
        venue_of(instrument),
        instrument,
    )


def timeline_latency(
    n_events: int,
    n_lookups: int = 200,
    tmpdir: Path | None = None,
    seed: int = 7,
    stopwatch: Stopwatch = time.perf_counter_ns,
) -> dict[str, float]:
    """Build a journal of ``n_events`` over ``n_events / 10`` orders (``timeline.sqlite`` in
    ``tmpdir``), then time ``timeline(order)``.

    Returns p50 and p99 in milliseconds of ``n_lookups`` lookups of random order ids, the
    mean number of events a lookup found, and the seconds the build took (``append_many`` in
    batches of 50,000).

    Examples
    --------
    >>> sorted(timeline_latency(2_000, n_lookups=5))
    ['build_s', 'events_per_lookup', 'n_events', 'p50_ms', 'p99_ms']
    """
    rng = random.Random(seed)
    window = max(10, min(10_000, n_events - n_events % 10))
    samples: list[float] = []
    with workdir(tmpdir) as work, Journal(work / "timeline.sqlite") as journal:
        start = stopwatch()
        for first in range(0, n_events, 50_000):
            journal.append_many(_lean_row(i, window) for i in range(first, min(first + 50_000, n_events)))
        build_s = (stopwatch() - start) / 1e9
        found = 0
        for _ in range(n_lookups):
            order_id = f"C-1-{_order_of(rng.randrange(n_events), window):08d}"
            start = stopwatch()
            found += len(journal.timeline(order_id))
            samples.append((stopwatch() - start) / 1e9)
    return {
        "n_events": n_events,
        "events_per_lookup": found / n_lookups,
        "p50_ms": quantile(samples, 0.5) * 1e3,
        "p99_ms": quantile(samples, 0.99) * 1e3,
        "build_s": build_s,
    }
