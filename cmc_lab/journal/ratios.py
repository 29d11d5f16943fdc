"""Journal ratios layer: order-to-trade and cancel ratios per contract per exchange trading day, from the journal rows.

A row counts toward its contract's exchange trading day (``TradingHours.trading_day``: SHFE's
Friday night session toward Monday, CME's evening toward the next day, a holiday toward the next
trading day), as the exchanges count them; a contract the specs do not know counts by UTC day.

>>> ratio_frame([("2026-11-24", "COMEX.GC", 4, 0, 2, 2, 3, 5)])[["order_to_trade", "cancel_ratio"]].values.tolist()
[[2.0, 0.5]]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.specs import load_specs
from cmc_lab.journal.store import Journal
from cmc_lab.journal.window import to_ns, window

_RATIOS = """
SELECT cmc_trading_day(instrument, ts_event) AS day, instrument,
       sum(kind = 'OrderSubmitted'), sum(kind = 'OrderDenied'), sum(kind = 'OrderCancelRequested'),
       sum(kind = 'OrderCanceled'), sum(kind = 'OrderFilled'),
       coalesce(sum(CASE WHEN kind = 'OrderFilled' THEN json_extract(payload, '$.last_qty') END), 0)
FROM events WHERE seq BETWEEN ? AND ? AND instrument IS NOT NULL AND kind LIKE 'Order%' {}
GROUP BY day, instrument ORDER BY day, instrument
"""


def day_function(instruments: Mapping[str, Instrument]) -> Callable[[str, int], str]:
    """``(instrument id, ts_event) -> ISO trading day``: the contract's exchange trading day, or the
    UTC day for a contract ``instruments`` does not know."""

    def day(instrument_id: str, ts_ns: int) -> str:
        inst = instruments.get(instrument_id)
        if inst is None:
            return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).date().isoformat()
        return inst.hours.trading_day(ts_ns).isoformat()

    return day


def ratio_rows(
    conn: sqlite3.Connection,
    lo: int,
    hi: int,
    since_ns: int | None,
    until_ns: int | None,
    instruments: Mapping[str, Instrument] | None = None,
) -> list[Any]:
    """Per (trading day, instrument), the counts of rows ``lo``..``hi`` whose ts_event is in [since, until).

    ``instruments`` (default: the shipped specs and ``$CMC_LAB_INSTRUMENTS``) give each contract's
    exchange calendar.
    """
    if instruments is None:
        instruments = load_specs().instruments
    conn.create_function("cmc_trading_day", 2, day_function(instruments), deterministic=True)
    terms = [
        (t, v) for t, v in (("AND ts_event >= ?", since_ns), ("AND ts_event < ?", until_ns)) if v is not None
    ]
    query = _RATIOS.format(" ".join(t for t, _ in terms))
    return conn.execute(query, [lo, hi, *(v for _, v in terms)]).fetchall()


def ratio_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Per (day, instrument) counts as a DataFrame with order-to-trade and cancel ratios."""
    columns = ["day", "instrument", "new_orders", "denied", "cancel_requests", "canceled", "trades"]
    frame = pd.DataFrame(rows, columns=[*columns, "traded_lots"])
    trades = frame["trades"].where(frame["trades"] > 0)
    new = frame["new_orders"].where(frame["new_orders"] > 0)
    frame["order_to_trade"] = (frame["new_orders"] + frame["cancel_requests"]) / trades
    frame["cancel_ratio"] = frame["cancel_requests"] / new
    return frame


def ratio_text(frame: pd.DataFrame) -> Iterator[list[Any]]:
    """The rows of :func:`ratio_frame` for ratios.csv: ratios to four places, empty when undefined."""
    for row in frame.itertuples(index=False):
        values = list(row)
        yield [*values[:-2], *("" if pd.isna(v) else f"{v:.4f}" for v in values[-2:])]


def ratios(
    journal: Journal,
    since: object = None,
    until: object = None,
    instruments: Mapping[str, Instrument] | None = None,
) -> pd.DataFrame:
    """Order-to-trade and cancel ratios per contract per exchange trading day of the window (as in the pack).

    ``day`` is the contract's exchange trading day (from ``instruments``, by default the shipped
    specs): SHFE's Friday night session counts toward Monday.

    ``new_orders`` counts orders that left for the venue (OrderSubmitted), ``denied`` those the
    pre-trade checks stopped, ``trades`` fills. ``order_to_trade`` is (new orders + cancel
    requests) / trades; ``cancel_ratio`` is cancel requests / new orders (NaN when undefined).

    Examples
    --------
    >>> ratios(eng.journal)                                     # doctest: +SKIP
    """
    since_ns, until_ns = to_ns("since", since), to_ns("until", until)
    with journal._reading() as conn:
        lo, hi = window(conn, since_ns, until_ns, journal._head(conn)[0])
        rows = ratio_rows(conn, lo, hi, since_ns, until_ns, instruments)
    return ratio_frame(rows)


__all__ = ["ratio_frame", "ratio_rows", "ratio_text", "ratios"]
