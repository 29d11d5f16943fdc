"""Journal rows layer: the row to append, the stored columns, a payload read back, the timeline frame (no IO)."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from functools import cache
from typing import Any, NamedTuple

import orjson
import pandas as pd

from cmc_lab.core.display import Frame
from cmc_lab.journal.chain import WIDTH
from cmc_lab.journal.errors import CorruptJournal
from cmc_lab.journal.schema import EVENT_COLUMNS

#: Columns of :meth:`Journal.timeline` and :meth:`Journal.tail` before the payload fields.
FRAME_COLUMNS = (
    "seq",
    "ts_event",
    "ts_init",
    "mono_ns",
    "kind",
    "order_id",
    "ticket_id",
    "venue",
    "instrument",
    "hop_ns",
    "elapsed_ns",
)
_INT_COLUMNS = frozenset({"seq", "ts_event", "ts_init", "mono_ns", "hop_ns", "elapsed_ns"})
_FRAME_NAMES = frozenset(FRAME_COLUMNS)
#: The stored columns in order, as SQL, and the statement that inserts one stored row.
ALL_COLUMNS = ", ".join(EVENT_COLUMNS)
INSERT = f"INSERT INTO events ({ALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


@cache
def insert_of(count: int) -> str:
    """The statement that inserts ``count`` stored rows (:data:`INSERT` for one); built once a count."""
    if count == 1:
        return INSERT
    return f"INSERT INTO events ({ALL_COLUMNS}) VALUES " + ", ".join([f"({', '.join('?' * WIDTH)})"] * count)


def inserts(flat: list[Any], most: int) -> Iterator[tuple[str, list[Any]]]:
    """Statements, each with its values, that insert stored rows given flat (twelve values a row).

    One multi-row ``INSERT ... VALUES (...), (...)`` of up to ``most`` rows rather than a statement
    a row: SQLite opens the table's and the indexes' cursors once for all its rows (the rowid is
    appended where the cursor stands) and the driver binds and steps once, about 1 µs a row less
    than executemany (docs/benchmarks.md, figure (c)). Counts are powers of two, so a connection
    prepares at most nine statements and its cache keeps them.

    Examples
    --------
    >>> [(sql.count("(?"), len(values)) for sql, values in inserts(list(range(36)), 256)]
    [(2, 24), (1, 12)]
    """
    rows, done = len(flat) // WIDTH, 0
    while done < rows:
        count = 1 << (min(rows - done, most).bit_length() - 1)
        if count == rows:
            yield insert_of(count), flat
        else:
            yield insert_of(count), flat[done * WIDTH : (done + count) * WIDTH]
        done += count


class JournalRow(NamedTuple):
    """One row to append; the fields and defaults of :meth:`Journal.append`'s arguments.

    Examples
    --------
    >>> JournalRow("OrderSubmitted", 10, 11, 5, {"qty": 1}, order_id="C-1-1").order_id
    'C-1-1'
    """

    kind: str
    ts_event: int
    ts_init: int
    mono_ns: int
    payload: dict[str, Any]
    order_id: str | None = None
    ticket_id: str | None = None
    venue: str | None = None
    instrument: str | None = None


_FLAT = frozenset({str, int, bool, type(None)})  # what orjson reads exactly


def read_payload(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row's payload; a damaged one is a CorruptJournal naming the row, not a JSON error.

    orjson reads the common case (a flat object of strings and ints: order events) three times
    faster. It reads an int beyond 64 bits as a float, so a result holding any float or nested
    value is read again by the standard parser, as is whatever orjson refuses (a lone surrogate
    escape): that parser decides.
    """
    try:
        payload = orjson.loads(row[9])
        if type(payload) is not dict or not _FLAT.issuperset(map(type, payload.values())):
            raise ValueError("not a flat object of exact values")
    except (TypeError, ValueError):
        try:
            payload = json.loads(row[9])
        except (TypeError, ValueError) as exc:
            payload = exc
    if not isinstance(payload, dict):
        raise CorruptJournal(
            f"journal row {row[0]} ({row[4]}) has a damaged payload ({payload!r:.80}); the file was edited "
            "or damaged: Journal(path, readonly=True).verify() names the first bad row"
        )
    return payload


def timeline_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Stored rows (the first ten columns) as a timeline: hop and elapsed ``mono_ns``, payload fields."""
    if not rows:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c in _INT_COLUMNS else object) for c in FRAME_COLUMNS}
        )
    payloads = [read_payload(row) for row in rows]
    keys: dict[str, None] = {}
    for payload in payloads:
        keys.update(dict.fromkeys(k for k in payload if k not in _FRAME_NAMES))
    first = prev = rows[0][3]
    records = []
    for row, payload in zip(rows, payloads, strict=True):
        mono = row[3]
        records.append((*row[:9], mono - prev, mono - first, *[payload.get(k) for k in keys]))
        prev = mono
    frame = pd.DataFrame(records, columns=[*FRAME_COLUMNS, *keys])
    for key in keys:  # a payload int (quote_ts ns, qty) missing from some rows stays exact: Int64, not float
        if frame[key].dtype == "float64":
            given = [p[key] for p in payloads if p.get(key) is not None]
            if given and all(type(v) is int for v in given):
                frame[key] = pd.array([p.get(key) for p in payloads], dtype="Int64")
    return Frame(frame)  # shows ms/µs and blanks in a notebook; the columns stay raw for code


def whole(name: str, value: object) -> int:
    """An int from any integer type (numpy's too, which sqlite3 would bind as a BLOB), else TypeError."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name}={value!r} is not a whole number; pass an int") from None


__all__ = [
    "ALL_COLUMNS",
    "FRAME_COLUMNS",
    "INSERT",
    "JournalRow",
    "inserts",
    "read_payload",
    "timeline_frame",
    "whole",
]
