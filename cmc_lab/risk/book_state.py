"""The book as data: what a book checkpoint holds of capital and the daily counters, and putting it back.

Written at a clean close with a quiet book (no working order, no transfer in transit): per account
the trading P&L settled into cash and the fees in it, each position's FIFO lots (with their
exchange trading days, which decide close today), realized P&L and last mark; the SHFE/INE offset
books (long and short, today's and yesterday's lots, and the trading day they are of); the orders and
cancels per contract and exchange trading day, and the messages per account and trading day (a
checkpoint written before these were kept restores none). Cash is not stored: a reopen starts from the
accounts' opening cash, adds what was settled, and replays the transfers, exactly as a replay of
every fill would. Money as exact strings.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from decimal import Decimal
from typing import Any

from cmc_lab.risk.capital import Capital
from cmc_lab.risk.positions import Lot, Position
from cmc_lab.risk.pretrade import OrderActivity


class BookStateError(ValueError):
    """A checkpoint's book does not fit this engine (an unknown account or instrument, a bad number)."""


def book_state(capital: Capital, activity: OrderActivity) -> dict[str, Any]:
    """The book (see the module docstring) as JSON-ready data."""
    accounts = {}
    for name, acct in capital.accounts.items():
        positions = {
            iid: {
                "qty": pos.qty,
                "realized": str(pos.realized),
                "mark": None if pos.mark is None else str(pos.mark),
                "lots": [
                    [lot.qty, str(lot.px), None if lot.day is None else lot.day.isoformat()]
                    for lot in pos.lots
                ],
            }
            for iid, pos in acct.positions.items()
            if pos.qty or pos.realized
        }
        accounts[name] = {"settled": str(acct.settled), "fees": str(acct.fees), "positions": positions}
    return {
        "accounts": accounts,
        "orders": [[iid, day.isoformat(), n] for (iid, day), n in sorted(activity.orders.items())],
        "cancels": [[iid, day.isoformat(), n] for (iid, day), n in sorted(activity.cancels.items())],
        "messages": [[acct, day.isoformat(), n] for (acct, day), n in sorted(activity.day_messages.items())],
        "offsets": capital.offsets.state(),
    }


def restore_book(capital: Capital, activity: OrderActivity, state: dict[str, Any]) -> None:
    """Put a checkpoint's book into a fresh engine's capital and counters; :class:`BookStateError` if
    it does not fit (then nothing is half-restored: everything is checked before anything is set)."""
    try:
        accounts = {name: _account(capital, name, raw) for name, raw in state["accounts"].items()}
        orders = {(str(iid), date.fromisoformat(day)): int(n) for iid, day, n in state["orders"]}
        cancels = {(str(iid), date.fromisoformat(day)): int(n) for iid, day, n in state["cancels"]}
        messages = {(str(a), date.fromisoformat(day)): int(n) for a, day, n in state.get("messages", [])}
        offsets = capital.offsets.read(state.get("offsets", []))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise BookStateError(f"the checkpoint's book is unreadable: {exc!r}") from exc
    for name, (settled, fees, positions) in accounts.items():
        acct = capital.accounts[name]
        acct.cash += settled
        acct.settled += settled
        acct.fees += fees
        for pos in positions:
            capital.adopt_position(pos)
    activity.orders.update(orders)
    activity.cancels.update(cancels)
    activity.day_messages.update(messages)
    capital.offsets.books.update(offsets)


def _account(capital: Capital, name: str, raw: dict[str, Any]) -> tuple[Decimal, Decimal, list[Position]]:
    if name not in capital.accounts:
        raise BookStateError(f"account {name!r} of the checkpoint is not configured in this engine")
    positions = []
    for iid, p in raw["positions"].items():
        inst = capital.instruments.get(iid) or capital.recorded(iid)
        if inst is None:
            raise BookStateError(f"instrument {iid!r} of the checkpoint is not in this engine's specs")
        capital.know(inst)
        lots = deque(
            Lot(int(q), Decimal(px), None if day is None else date.fromisoformat(day))
            for q, px, day in p["lots"]
        )
        qty = int(p["qty"])
        direction = 1 if qty > 0 else -1
        if sum(lot.qty for lot in lots) * direction != qty:
            raise BookStateError(f"{name} {iid}: the checkpoint's lots do not add up to its {qty} lots")
        pos = Position(name, inst, qty=qty, cost=sum((lot.px * lot.qty for lot in lots), Decimal(0)))
        pos.realized = Decimal(p["realized"])
        pos.lots = lots
        if p["mark"] is not None:
            pos.mark = Decimal(p["mark"])
        positions.append(pos)
    return Decimal(raw["settled"]), Decimal(raw["fees"]), positions


__all__ = ["BookStateError", "book_state", "restore_book"]
