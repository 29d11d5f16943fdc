"""``eng.positions()``: the book's signed positions per account and contract, as a desk reads them.

One row per account and contract held (or closed with realized P&L): the signed lots and how a
trader says them, the FIFO average price of the open lots, the mark (last mid), unrealized and
realized P&L in the contract's currency (Decimal) and both in the base currency; on SHFE and INE,
which keep long and short apart, the lots held long and short, opened today and before (the
trading day of ``now_ns``), elsewhere None; a contract month's last trading day, by which it must be
rolled or closed. Flat contracts with nothing realized or held are left
out; an empty book keeps the columns.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from cmc_lab.core.display import Frame, lots
from cmc_lab.core.fees import CENT
from cmc_lab.risk.capital import Capital

COLUMNS = [
    "account",
    "instrument",
    "position",
    "held",
    "avg_px",
    "mark",
    "currency",
    "unrealized",
    "realized",
    "unrealized_base",
    "realized_base",
    "long_today",
    "long_yesterday",
    "short_today",
    "short_yesterday",
    "last_trading_day",
]


def position_table(capital: Capital, base: str, now_ns: int) -> pd.DataFrame:
    """The book's positions (see the module docstring); ``base`` is the unified view's currency."""
    rows = []
    for pos in capital.positions():
        inst = pos.instrument
        book = capital.offsets.view(pos.account, inst, now_ns) if capital.offsets.keeps(inst) else None
        if not pos.qty and not pos.realized and not (book and (book.long.total or book.short.total)):
            continue
        currency = inst.currency
        rows.append(
            {
                "account": pos.account,
                "instrument": pos.instrument.id,
                "position": pos.qty,
                "held": lots(pos.qty),
                "avg_px": pos.avg_px if pos.qty else None,
                "mark": pos.mark,
                "currency": currency,
                "unrealized": _cents(pos.unrealized),
                "realized": _cents(pos.realized),
                "unrealized_base": _cents(capital.convert(pos.unrealized, currency, base)),
                "realized_base": _cents(capital.convert(pos.realized, currency, base)),
                "long_today": book and book.long.today,
                "long_yesterday": book and book.long.yesterday,
                "short_today": book and book.short.today,
                "short_yesterday": book and book.short.yesterday,
                "last_trading_day": inst.last_trading_day,
            }
        )
    rows.sort(key=lambda r: (r["account"], r["instrument"]))
    return Frame(pd.DataFrame(rows, columns=COLUMNS))


def _cents(amount: Decimal) -> Decimal:
    """Money to the cent, with no negative zero (a short marked at its own price has lost nothing)."""
    cents = amount.quantize(CENT)
    return cents if cents else abs(cents)


__all__ = ["COLUMNS", "position_table"]
