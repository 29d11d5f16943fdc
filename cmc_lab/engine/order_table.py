"""``eng.orders()``: one row per order of the session, and the time-in-force parser the facade uses."""

from __future__ import annotations

import pandas as pd

from cmc_lab.core.model import TimeInForce
from cmc_lab.core.order import Order
from cmc_lab.engine.errors import InvalidOrder


def orders_frame(orders: list[Order]) -> pd.DataFrame:
    """One row per order: id, instrument, side, offset (SHFE/INE), qty, price, state, filled, average
    price, ticket."""
    rows = [
        {
            "client_order_id": o.client_order_id,
            "instrument": o.instrument_id,
            "side": o.side.value,
            "offset": o.offset,
            "qty": o.qty,
            "price": o.price,
            "state": o.state.value,
            "filled": o.filled_qty,
            "avg_px": o.avg_px,
            "ticket": o.ticket_id,
            "reason": o.reason,
        }
        for o in orders
    ]
    return pd.DataFrame(rows, columns=list(ORDER_COLUMNS))


#: The columns of :func:`orders_frame`, there even when no order is.
ORDER_COLUMNS = (
    "client_order_id",
    "instrument",
    "side",
    "offset",
    "qty",
    "price",
    "state",
    "filled",
    "avg_px",
    "ticket",
    "reason",
)


def parse_tif(tif: str | TimeInForce) -> TimeInForce:
    try:
        return TimeInForce.parse(tif)
    except ValueError as exc:
        raise InvalidOrder(str(exc)) from None
