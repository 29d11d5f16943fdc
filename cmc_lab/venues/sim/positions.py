"""The venue's own position book: long and short lots per account and instrument, from its own fills.

It is the exchange's book, kept apart from the engine's; reconciliation compares the two. Each
account's lots are an :class:`~cmc_lab.core.offsets.OffsetBook`, long and short apart, today's
and yesterday's by the exchange trading day. On SHFE and INE a fill moves it by its order's offset
(the matcher has refused a close of more than is held before the order reached the book); on a
venue that nets, and for a trade booked without one, a fill closes the opposite side first and opens
with the rest. With a :class:`TradeLog` every trade is appended to a JSON-lines file as it is booked
(with its offset and trading day), so the book outlives the process that ran the exchange, as a
real exchange's does, and a new exchange on the same file starts from it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from cmc_lab.core.model import Side
from cmc_lab.core.offsets import Offset, OffsetBook, plan
from cmc_lab.venues.base import PositionReport


def trade_log_path(journal: str | Path) -> Path:
    """Where the embedded exchange of an engine journaling to ``journal`` keeps its trades (beside it)."""
    return Path(f"{journal}.sim-book.jsonl")


class TradeLog:
    """Trades of the embedded exchange, one JSON line each, appended as they are booked.

    Examples
    --------
    >>> log = TradeLog("run.sqlite.sim-book.jsonl")   # doctest: +SKIP
    >>> log.trades()                                  # doctest: +SKIP
    [{'venue': 'COMEX', 'account': 'US-FUT', 'instrument_id': 'COMEX.GC', 'side': 'buy', 'qty': 2, ...}]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TradeLog({str(self.path)!r})"

    def append(self, trade: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(trade, sort_keys=True) + "\n")

    def trades(self) -> list[dict[str, Any]]:
        """Every trade logged so far; a torn last line (a process killed mid-write) is left out."""
        if not self.path.is_file():
            return []
        complete = self.path.read_text(encoding="utf-8").split("\n")[:-1]  # a torn line has no newline
        trades = []
        for number, line in enumerate(complete, start=1):
            trade = _trade(line)
            if trade is None:
                raise ValueError(
                    f"{self.path} line {number} is not a trade the embedded exchange wrote: {line[:80]!r}; "
                    "move the file aside to start the exchange's book empty"
                )
            trades.append(trade)
        return trades


def _trade(line: str) -> dict[str, Any] | None:
    try:
        trade = json.loads(line)
        Side(trade["side"])
        Offset(trade.get("offset", "open"))
        date.fromisoformat(trade.get("day", "2000-01-01"))
        names = (trade["venue"], trade["account"], trade["instrument_id"])
        qty = trade["qty"]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(n, str) and n for n in names) or type(qty) is not int or qty < 1:
        return None
    return dict(trade)


class PositionBook:
    """Positions of every account on one venue, as the venue books them (exchange side, no IO but the log)."""

    def __init__(self, venue: str, log: TradeLog | None = None) -> None:
        self.venue = venue
        self.log = log
        self.holdings: dict[tuple[str, str], OffsetBook] = {}

    def __repr__(self) -> str:
        return f"PositionBook({self.venue}, {len(self.holdings)} positions)"

    def book(
        self,
        account: str,
        instrument_id: str,
        side: Side,
        qty: int,
        ts_event: int,
        offset: Offset | None = None,
        day: date | None = None,
    ) -> None:
        """Book one trade with its order's offset on trading day ``day`` (none: closes the opposite
        side first, then opens with the rest); logged if kept."""
        self.apply(account, instrument_id, side, qty, offset, day)
        if self.log is not None:
            trade = {
                "venue": self.venue,
                "account": account,
                "instrument_id": instrument_id,
                "side": side.value,
                "qty": qty,
                "ts_event": ts_event,
            }
            if offset is not None:
                trade["offset"] = offset.value
            if day is not None:
                trade["day"] = day.isoformat()
            self.log.append(trade)

    def replay(self, trade: dict[str, Any]) -> None:
        """Move the book by a trade read back from the log (not logged again)."""
        offset = trade.get("offset")
        day = trade.get("day")
        self.apply(
            trade["account"], trade["instrument_id"], Side(trade["side"]), trade["qty"],
            None if offset is None else Offset(offset), None if day is None else date.fromisoformat(day),
        )  # fmt: skip

    def apply(
        self,
        account: str,
        instrument_id: str,
        side: Side,
        qty: int,
        offset: Offset | None = None,
        day: date | None = None,
    ) -> None:
        """Move the book by one trade without logging it."""
        key = (account, instrument_id)
        held = self.holdings.setdefault(key, OffsetBook()).on(day)
        sent_as = offset is not None and held.check(side, offset, qty) is None
        for part, n in [(offset, qty)] if offset is not None and sent_as else plan(held, side, qty):
            held.apply(side, part, n)
        if not held.long.total and not held.short.total:
            del self.holdings[key]

    def check(
        self, account: str, instrument_id: str, side: Side, offset: Offset, qty: int, day: date
    ) -> str | None:
        """Why the venue refuses an order of ``qty`` with ``offset`` (None if its book can take it)."""
        held = self.holdings.get((account, instrument_id))
        return (held.copy() if held is not None else OffsetBook()).on(day).check(side, offset, qty)

    def reports(self, ts_event: int) -> list[PositionReport]:
        """Every non-flat position, as of ``ts_event``."""
        return [
            PositionReport(account, iid, held.long.total, held.short.total, ts_event)
            for (account, iid), held in sorted(self.holdings.items())
        ]


__all__ = ["PositionBook", "TradeLog", "trade_log_path"]
