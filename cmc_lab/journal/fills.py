"""The audit pack's fills as the book took them, with their fees (``fills.csv``), and each account's
realized P&L per contract gross and net of fees (``pnl.csv``): from the journal's ``FillBooked`` rows.

Money stays exact: the rows carry the booked Decimal text, and the sums are Decimal. Realized P&L
is in the contract's currency; a fee charged in another currency is listed but not netted (the
``realized_net`` cell is then empty, and ``fee_currency`` says why).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from cmc_lab.journal.window import iso

FILL_FIELDS = (
    "seq",
    "time_utc",
    "account",
    "instrument",
    "order_id",
    "trade_id",
    "ticket_id",
    "side",
    "offset",
    "qty",
    "px",
    "opened",
    "closed_today",
    "closed_yesterday",
    "realized",
    "fee",
    "fee_currency",
    "fee_detail",
    "fee_as_of",
    "cash",
)
PNL_FIELDS = (
    "account",
    "instrument",
    "fills",
    "lots_bought",
    "lots_sold",
    "realized_gross",
    "fees",
    "fee_currency",
    "realized_net",
)


class FillTable:
    """Collects ``FillBooked`` rows in journal order; :meth:`fills` and :meth:`pnl` are the two tables."""

    def __init__(self) -> None:
        self._fills: list[tuple[Any, ...]] = []
        self._sums: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, seq: int, ts_event: int, p: dict[str, Any]) -> None:
        """One booked fill (a ``FillBooked`` payload)."""
        self._fills.append((seq, iso(ts_event), *(p.get(k) for k in FILL_FIELDS[2:])))
        key = (str(p.get("account")), str(p.get("instrument")))
        s = self._sums.setdefault(
            key,
            {"fills": 0, "bought": 0, "sold": 0, "realized": Decimal(0), "fees": Decimal(0), "ccy": set()},
        )
        qty = int(p.get("qty") or 0)
        s["fills"] += 1
        s["bought" if p.get("side") == "buy" else "sold"] += qty
        s["realized"] += Decimal(str(p.get("realized") or "0"))
        s["fees"] += Decimal(str(p.get("fee") or "0"))
        if p.get("fee_currency"):
            s["ccy"].add(p["fee_currency"])

    def fills(self) -> list[tuple[Any, ...]]:
        return self._fills

    def pnl(self, currency_of: dict[str, str]) -> Iterator[tuple[Any, ...]]:
        """Per account and contract; ``currency_of`` maps a contract to the currency its P&L is in."""
        for (account, instrument), s in sorted(self._sums.items()):
            fee_ccy = ",".join(sorted(s["ccy"]))
            same = fee_ccy in ("", currency_of.get(instrument, fee_ccy))
            net = s["realized"] - s["fees"] if same else ""
            yield (
                account,
                instrument,
                s["fills"],
                s["bought"],
                s["sold"],
                s["realized"],
                s["fees"],
                fee_ccy,
                net,
            )


__all__ = ["FILL_FIELDS", "PNL_FIELDS", "FillTable"]
