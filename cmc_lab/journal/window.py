"""Journal window layer: points in time as int ns and ISO 8601 text, and the rows a time window covers.

A window runs from the first row whose ``ts_event`` is at or after ``since`` to the last row
whose ``ts_event`` is before ``until``, in journal order (one piece of the hash chain).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import time
from datetime import date, datetime
from numbers import Integral

import pandas as pd

from cmc_lab.core.clock import SIM_START_NS

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def to_ns(name: str, value: object) -> int | None:
    """A point in time as int ns since the epoch: from an int (ns), a datetime or date, or ISO text.

    A datetime without a time zone, and ISO text without an offset, are taken as UTC.

    Examples
    --------
    >>> to_ns("since", "2026-11-24T14:00:00Z")
    1795528800000000000
    >>> from datetime import UTC
    >>> to_ns("since", datetime(2026, 11, 24, 14, tzinfo=UTC)) == to_ns("since", 1795528800000000000)
    True
    """
    hint = (
        f"{name}={value!r} is not a time; pass ns since the epoch (an int), a datetime, or ISO 8601 "
        "text such as '2026-11-24T14:00:00Z'"
    )
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(hint)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, str):
        if not _ISO.fullmatch(value.strip()):
            raise ValueError(hint)
        try:
            stamp = pd.Timestamp(value.strip())
        except ValueError:
            raise ValueError(hint) from None
    elif isinstance(value, datetime):
        stamp = pd.Timestamp(value)
    elif isinstance(value, date):
        stamp = pd.Timestamp(value.isoformat())
    else:
        raise TypeError(hint)
    if stamp is pd.NaT:
        raise ValueError(hint)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


@functools.lru_cache(maxsize=4096)  # rows of one batch share their timestamps
def iso(ns: int | None) -> str:
    """ISO 8601 UTC text of int ns, all nine fractional digits: ``2026-11-24T14:00:00.101865313Z``."""
    if ns is None:
        return ""
    sec, frac = divmod(ns, 1_000_000_000)
    day, rem = divmod(sec, 86_400)
    hour, rem = divmod(rem, 3_600)
    return f"{_day(day)}T{hour:02d}:{rem // 60:02d}:{rem % 60:02d}.{frac:09d}Z"


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def window(
    conn: sqlite3.Connection, since_ns: int | None, until_ns: int | None, head_seq: int
) -> tuple[int, int]:
    """The seq range of the window: first row at or after ``since_ns`` to last row before ``until_ns``."""
    terms = [(t, v) for t, v in (("ts_event >= ?", since_ns), ("ts_event < ?", until_ns)) if v is not None]
    where = " AND ".join(["seq <= ?", *(t for t, _ in terms)])
    lo, hi = conn.execute(
        f"SELECT min(seq), max(seq) FROM events WHERE {where}", [head_seq, *(v for _, v in terms)]
    ).fetchone()
    return (1, 0) if lo is None else (lo, hi)


__all__ = ["iso", "to_ns", "window"]


class EmptyAuditWindow(UserWarning):
    """An audit pack's window holds no journal rows: the pack is intact but proves nothing."""


def empty_window_note(since_ns: int | None, until_ns: int | None, spans: tuple[int | None, ...]) -> str:
    """Why a window is empty, saying where the journal's rows are (and the simulated day)."""
    first, last = (spans or (None, None))[:2]
    held = (
        f"the journal's rows run from {iso(first)} to {iso(last)}"
        if first is not None
        else "the journal has no rows"
    )
    return (
        f"the window {iso(since_ns) or 'start'} to {iso(until_ns) or 'end'} holds no journal rows; "
        f"{held} (the embedded exchange simulates {iso(SIM_START_NS)[:10]} from "
        f"{iso(SIM_START_NS)[11:16]} UTC); pass since/until around them"
    )
