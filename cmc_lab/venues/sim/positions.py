"""The venue's own position book: long and short lots per account and instrument, from its own fills.

It is the exchange's book, kept apart from the engine's; reconciliation compares the two. A fill
closes the opposite side first and opens with the rest (orders carry no open/close flag yet: the
automatic offset a CTP account applies). With a :class:`TradeLog` every trade is appended to a
JSON-lines file as it is booked, so the book outlives the process that ran the exchange, as a
real exchange's does, and a new exchange on the same file starts from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmc_lab.core.model import Side
from cmc_lab.venues.base import PositionReport


@dataclass(slots=True)
class Holding:
    """Lots one account holds in one instrument, long and short apart."""

    long_qty: int = 0
    short_qty: int = 0


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
        self.holdings: dict[tuple[str, str], Holding] = {}

    def __repr__(self) -> str:
        return f"PositionBook({self.venue}, {len(self.holdings)} positions)"

    def book(self, account: str, instrument_id: str, side: Side, qty: int, ts_event: int) -> None:
        """Book one trade: it closes the opposite side first, then opens with the rest; logged if kept."""
        self.apply(account, instrument_id, side, qty)
        if self.log is not None:
            self.log.append(
                {
                    "venue": self.venue,
                    "account": account,
                    "instrument_id": instrument_id,
                    "side": side.value,
                    "qty": qty,
                    "ts_event": ts_event,
                }
            )

    def apply(self, account: str, instrument_id: str, side: Side, qty: int) -> None:
        """Move the book by one trade without logging it (a trade read back from the log)."""
        key = (account, instrument_id)
        held = self.holdings.setdefault(key, Holding())
        if side is Side.BUY:
            closed = min(held.short_qty, qty)
            held.short_qty -= closed
            held.long_qty += qty - closed
        else:
            closed = min(held.long_qty, qty)
            held.long_qty -= closed
            held.short_qty += qty - closed
        if not held.long_qty and not held.short_qty:
            del self.holdings[key]

    def reports(self, ts_event: int) -> list[PositionReport]:
        """Every non-flat position, as of ``ts_event``."""
        return [
            PositionReport(account, iid, held.long_qty, held.short_qty, ts_event)
            for (account, iid), held in sorted(self.holdings.items())
        ]


__all__ = ["Holding", "PositionBook", "TradeLog", "trade_log_path"]
