"""``eng.positions()``: the book's signed positions per account and contract, as a desk reads them.

One row per account and contract held (or closed with realized P&L): the signed lots and how a
trader says them, the FIFO average price of the open lots, the mark (last mid), unrealized and
realized P&L in the contract's currency (Decimal) and both in the base currency. Flat contracts
with nothing realized are left out; an empty book keeps the columns.
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
]


def position_table(capital: Capital, base: str) -> pd.DataFrame:
    """The book's positions (see the module docstring); ``base`` is the unified view's currency."""
    rows = []
    for pos in capital.positions():
        if not pos.qty and not pos.realized:
            continue
        currency = pos.instrument.currency
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
            }
        )
    rows.sort(key=lambda r: (r["account"], r["instrument"]))
    return Frame(pd.DataFrame(rows, columns=COLUMNS))


def _cents(amount: Decimal) -> Decimal:
    """Money to the cent, with no negative zero (a short marked at its own price has lost nothing)."""
    cents = amount.quantize(CENT)
    return cents if cents else abs(cents)


__all__ = ["COLUMNS", "position_table"]
