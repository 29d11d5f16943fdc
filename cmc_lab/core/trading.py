"""What may be sent: the request an order starts as, and the trading state (the kill switch)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side
from cmc_lab.core.offsets import Offset


class TradingState(StrEnum):
    """The kill switch: ACTIVE trades, REDUCING only closes, HALTED sends nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One limit order as asked for, validated, before it has a client order id."""

    instrument: Instrument
    side: Side
    qty: int
    price: Decimal
    account: str
    ticket_id: str | None = None
    offset: Offset | None = (
        None  # on a venue that keeps offsets; None: the engine chooses (core.offsets.plan)
    )
