"""FIX mapping layer, client side: our commands to FIX 4.4 and the venue's answers to our events. Pure, no IO.

FIX Symbol (55) is our instrument symbol ("GC") and SecurityExchange (207) the venue
("COMEX"), so ``COMEX.GC`` is ``55=GC|207=COMEX``. TimeInForce: GFD is Day (59=0), IOC is 59=3.
Prices travel as exact decimal text and come back as ``Decimal``. The venue side (what the
served exchange reads and writes) is :mod:`cmc_lab.venues.fix.venue_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from cmc_lab.core.ids import split_instrument_id
from cmc_lab.core.model import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderState,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
)
from cmc_lab.venues.base import OrderStatusReport
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage

# Application tags.
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, CURRENCY, EXEC_ID, LAST_PX, LAST_QTY = 1, 6, 11, 14, 15, 17, 31, 32
ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE, ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL = (
    37,
    38,
    39,
    40,
    41,
    44,
    54,
    55,
)
TIME_IN_FORCE, TRANSACT_TIME, CXL_REJ_REASON, ORD_REJ_REASON, EXEC_TYPE, LEAVES_QTY = (
    59,
    60,
    102,
    103,
    150,
    151,
)
SECURITY_EXCHANGE, CXL_REJ_RESPONSE_TO, ORD_STATUS_REQ_ID, LIQUIDITY = 207, 434, 790, 851
TRD_MATCH_ID = 880  # the match both sides' fills share, where a venue sends it
SECURITY_TYPE, MATURITY_MONTH_YEAR = 167, 200  # a contract month's order says FUT and its month (YYYYMM)
MD_REQ_ID, SUBSCRIPTION, MARKET_DEPTH, MD_UPDATE_TYPE, NO_MD_ENTRY_TYPES = 262, 263, 264, 265, 267
NO_MD_ENTRIES, MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE, MD_ENTRY_DATE, MD_ENTRY_TIME = (
    268,
    269,
    270,
    271,
    272,
    273,
)
MD_UPDATE_ACTION, MD_REJ_REASON, NO_RELATED_SYM = 279, 281, 146
BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 379, 380
#: SHFE/INE offsets: PositionEffect (77) O open, C close; FIX 4.4 has no close-today value, so a close
#: names the lots it closes in CloseDay, a tag of our own in the bilateral range: T today, Y yesterday
#: (absent: a plain close, which SHFE and INE take as closing yesterday's lots). Venues that net send neither.
POSITION_EFFECT, CLOSE_DAY = 77, 20077
_OFFSET_TO_FIX = {
    "open": [(POSITION_EFFECT, "O")],
    "close": [(POSITION_EFFECT, "C")],
    "close_today": [(POSITION_EFFECT, "C"), (CLOSE_DAY, "T")],
    "close_yesterday": [(POSITION_EFFECT, "C"), (CLOSE_DAY, "Y")],
    "": [],
}
_FIX_TO_OFFSET = {tuple(v for _, v in fields): offset for offset, fields in _OFFSET_TO_FIX.items()}

SIDE_TO_FIX = {Side.BUY: "1", Side.SELL: "2"}
FIX_TO_SIDE = {v: k for k, v in SIDE_TO_FIX.items()}
TIF_TO_FIX = {TimeInForce.GFD: "0", TimeInForce.IOC: "3"}
FIX_TO_TIF = {v: k for k, v in TIF_TO_FIX.items()}
STATE_TO_ORD_STATUS = {
    OrderState.SUBMITTED: "A",
    OrderState.ACCEPTED: "0",
    OrderState.PARTIALLY_FILLED: "1",
    OrderState.FILLED: "2",
    OrderState.CANCELED: "4",
    OrderState.PENDING_CANCEL: "6",
    OrderState.REJECTED: "8",
    OrderState.EXPIRED: "C",
}
ORD_STATUS_TO_STATE = {
    "0": OrderState.ACCEPTED,
    "1": OrderState.PARTIALLY_FILLED,
    "2": OrderState.FILLED,
    "4": OrderState.CANCELED,
    "6": OrderState.PENDING_CANCEL,
    "8": OrderState.REJECTED,
    "A": OrderState.ACCEPTED,
    "C": OrderState.EXPIRED,
    "E": OrderState.ACCEPTED,
}
UNKNOWN_ORDER = "5"  # OrdRejReason / CxlRejReason 1 is "unknown order" for cancels
UNKNOWN_ORDER_TEXT = "unknown order"


def instrument_id(symbol: str, exchange: str) -> str:
    return f"{exchange}.{symbol}"


def price_text(value: Decimal) -> str:
    """A price as exact decimal text: ``2650`` or ``2650.10``, never an exponent."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


# --------------------------------------------------------------------------- initiator: outgoing


def new_order_single(
    cmd: SubmitOrder, account: str, currency: str, transact_time: str, maturity: str = ""
) -> list[tuple[int, object]]:
    """NewOrderSingle (35=D): a limit order, ClOrdID = our client order id; a contract month's order
    also says SecurityType FUT and its MaturityMonthYear (``maturity``, YYYYMM), as venues read futures.

    Examples
    --------
    >>> from cmc_lab.core.model import SubmitOrder, Side, TimeInForce
    >>> cmd = SubmitOrder("r1-000001", "COMEX.GC", Side.SELL, 1, Decimal("2650.1"), TimeInForce.IOC, "US-FUT", 0)
    >>> new_order_single(cmd, "US-FUT", "USD", "20261124-14:00:00.000")[:6]
    [(11, 'r1-000001'), (1, 'US-FUT'), (55, 'GC'), (207, 'COMEX'), (54, '2'), (60, '20261124-14:00:00.000')]
    """
    exchange, symbol = split_instrument_id(cmd.instrument_id)
    fields: list[tuple[int, object]] = [
        (CL_ORD_ID, cmd.client_order_id),
        (ACCOUNT, account),
        (SYMBOL, symbol),
        (SECURITY_EXCHANGE, exchange),
        (SECURITY_TYPE, "FUT" if maturity else ""),
        (MATURITY_MONTH_YEAR, maturity),
        (SIDE, SIDE_TO_FIX[cmd.side]),
        (TRANSACT_TIME, transact_time),
        (ORDER_QTY, cmd.qty),
        (ORD_TYPE, "2"),
        (PRICE, price_text(cmd.price)),
        (TIME_IN_FORCE, TIF_TO_FIX[cmd.tif]),
        (CURRENCY, currency),
        *offset_fields(cmd.offset),
    ]
    return [
        (tag, value) for tag, value in fields if value != ""
    ]  # no Account, Currency or maturity rather than an empty one


def offset_fields(offset: str) -> list[tuple[int, object]]:
    """The tags of an order's offset (:data:`POSITION_EFFECT`, :data:`CLOSE_DAY`); none where the venue nets.

    >>> offset_fields("close_today")
    [(77, 'C'), (20077, 'T')]
    """
    return list(_OFFSET_TO_FIX[offset])


def offset_of(msg: Mapping[int, str] | FixMessage) -> str:
    """The offset a NewOrderSingle carries ("" when it says none); ValueError naming the tag if unreadable."""
    effect, day = msg.get(POSITION_EFFECT), msg.get(CLOSE_DAY)
    if effect is None and day is None:  # most venues net: no offset
        return ""
    found = _FIX_TO_OFFSET.get(tuple(v for v in (effect, day) if v is not None))
    if found is None or (effect is None and day is not None):
        raise ValueError(
            f"PositionEffect (77) {effect!r} with CloseDay (20077) {day!r} is not an offset: send 77=O to open, "
            "77=C to close (20077=T today, Y yesterday)"
        )
    return found


def cancel_request(
    cl_ord_id: str,
    orig_cl_ord_id: str,
    instrument: str,
    side: Side,
    qty: int,
    order_id: str | None,
    transact_time: str,
) -> list[tuple[int, object]]:
    """OrderCancelRequest (35=F) for the order now known as ``orig_cl_ord_id``."""
    exchange, symbol = split_instrument_id(instrument)
    fields: list[tuple[int, object]] = [(ORIG_CL_ORD_ID, orig_cl_ord_id), (CL_ORD_ID, cl_ord_id)]
    if order_id:
        fields.append((ORDER_ID, order_id))
    return [
        *fields,
        (SYMBOL, symbol),
        (SECURITY_EXCHANGE, exchange),
        (SIDE, SIDE_TO_FIX[side]),
        (TRANSACT_TIME, transact_time),
        (ORDER_QTY, qty),
    ]


def replace_request(
    cl_ord_id: str,
    orig_cl_ord_id: str,
    order: SubmitOrder,
    qty: int,
    price: Decimal,
    account: str,
    currency: str,
    transact_time: str,
) -> list[tuple[int, object]]:
    """OrderCancelReplaceRequest (35=G): the order with a new quantity (total, filled included) and price."""
    exchange, symbol = split_instrument_id(order.instrument_id)
    fields: list[tuple[int, object]] = [
        (ORIG_CL_ORD_ID, orig_cl_ord_id),
        (CL_ORD_ID, cl_ord_id),
        (ACCOUNT, account),
        (SYMBOL, symbol),
        (SECURITY_EXCHANGE, exchange),
        (SIDE, SIDE_TO_FIX[order.side]),
        (TRANSACT_TIME, transact_time),
        (ORDER_QTY, qty),
        (ORD_TYPE, "2"),
        (PRICE, price_text(price)),
        (TIME_IN_FORCE, TIF_TO_FIX[order.tif]),
        (CURRENCY, currency),
    ]
    return [(tag, value) for tag, value in fields if value != ""]


def status_request(
    cl_ord_id: str, req_id: str, instrument: str, side: Side | None
) -> list[tuple[int, object]]:
    """OrderStatusRequest (35=H); Symbol ``[N/A]`` and Side buy stand in when the order is not known here."""
    exchange, symbol = split_instrument_id(instrument) if instrument else ("", "[N/A]")
    fields: list[tuple[int, object]] = [(CL_ORD_ID, cl_ord_id), (ORD_STATUS_REQ_ID, req_id), (SYMBOL, symbol)]
    if exchange:
        fields.append((SECURITY_EXCHANGE, exchange))
    return [*fields, (SIDE, SIDE_TO_FIX[side or Side.BUY])]


def market_data_request(
    req_id: str, instruments: list[str], subscribe: bool = True
) -> list[tuple[int, object]]:
    """MarketDataRequest (35=V): top of book (depth 1), bid and offer, snapshot then incremental updates."""
    fields: list[tuple[int, object]] = [
        (MD_REQ_ID, req_id),
        (SUBSCRIPTION, "1" if subscribe else "2"),
        (MARKET_DEPTH, 1),
        (MD_UPDATE_TYPE, 1),
        (NO_MD_ENTRY_TYPES, 2),
        (MD_ENTRY_TYPE, "0"),
        (MD_ENTRY_TYPE, "1"),
        (NO_RELATED_SYM, len(instruments)),
    ]
    for iid in instruments:
        exchange, symbol = split_instrument_id(iid)
        fields += [(SYMBOL, symbol), (SECURITY_EXCHANGE, exchange)]
    return fields


# --------------------------------------------------------------------------- initiator: incoming


def event_time(msg: FixMessage) -> int:
    """TransactTime (60) if present, else SendingTime (52), as int ns."""
    for tag in (TRANSACT_TIME, codec.SENDING_TIME):
        value = msg.get(tag)
        if value:
            try:
                return codec.parse_timestamp(value)
            except ValueError:
                continue
    raise FieldProblem(
        codec.INCORRECT_FORMAT, TRANSACT_TIME, "TransactTime (60) and SendingTime (52) unreadable"
    )


def execution_report_event(
    msg: FixMessage, client_order_id: str, instrument: str, ts_init: int
) -> OrderEvent | None:
    """The event an ExecutionReport (35=8) means for the order ``client_order_id`` (our id); None if none.

    New -> OrderAccepted, Trade (F) -> OrderFilled (TrdMatchID 880 as its ``match_id`` where a venue
    sends it; FIX 4.4's ExecutionReport does not define it, so the served exchange does not, and
    no field says the other side was ours), Canceled -> OrderCanceled, Rejected ->
    OrderRejected, Expired -> OrderExpired. Status (I), Replaced (5) and pending states carry
    no event of their own.
    """
    exec_type = msg.require(EXEC_TYPE)
    ts = event_time(msg)
    text = msg.get(codec.TEXT) or ""
    if exec_type == "0":
        return OrderAccepted(ts, ts_init, client_order_id, instrument, msg.require(ORDER_ID))
    if exec_type == "F":
        side = FIX_TO_SIDE.get(msg.require(SIDE))
        if side is None:
            raise FieldProblem(codec.VALUE_INCORRECT, SIDE, f"Side {msg.get(SIDE)!r} is not 1 or 2")
        liquidity = {"1": "maker", "2": "taker"}.get(msg.get(LIQUIDITY) or "", "taker")
        return OrderFilled(
            ts,
            ts_init,
            client_order_id,
            instrument,
            msg.require(ORDER_ID),
            msg.require(EXEC_ID),
            side,
            msg.decimal(LAST_PX),
            lots(msg, LAST_QTY),
            liquidity,
            msg.get(TRD_MATCH_ID) or "",
        )
    if exec_type == "4":
        return OrderCanceled(ts, ts_init, client_order_id, instrument, text or "canceled")
    if exec_type == "8":
        return OrderRejected(ts, ts_init, client_order_id, instrument, text or "rejected by the venue")
    if exec_type == "C":
        return OrderExpired(ts, ts_init, client_order_id, instrument, text or "expired")
    return None


def cancel_reject_event(
    msg: FixMessage, client_order_id: str, instrument: str, ts_init: int
) -> OrderCancelRejected:
    """OrderCancelReject (35=9) of a cancel as OrderCancelRejected with the venue's Text."""
    reason = msg.get(codec.TEXT) or {"0": "too late to cancel", "1": "unknown order"}.get(
        msg.get(CXL_REJ_REASON) or "", "cancel rejected"
    )
    ts = event_time(msg)
    return OrderCancelRejected(ts, ts_init, client_order_id, instrument, reason)


def status_report(msg: FixMessage, client_order_id: str, instrument: str) -> OrderStatusReport | None:
    """An ExecutionReport answering OrderStatusRequest as a report; None when the venue does not know the order."""
    status = msg.require(ORD_STATUS)
    if status == "8" and (
        msg.get(ORD_REJ_REASON) == UNKNOWN_ORDER or (msg.get(codec.TEXT) or "").startswith(UNKNOWN_ORDER_TEXT)
    ):
        return None
    state = ORD_STATUS_TO_STATE.get(status)
    if state is None:
        raise FieldProblem(codec.VALUE_INCORRECT, ORD_STATUS, f"OrdStatus {status!r} is not one we map")
    filled = lots(msg, CUM_QTY)
    avg = msg.decimal(AVG_PX) if filled and AVG_PX in msg else None
    return OrderStatusReport(
        client_order_id,
        msg.get(ORDER_ID) if msg.get(ORDER_ID) not in (None, "NONE") else None,
        instrument,
        state,
        filled,
        avg,
        lots(msg, LEAVES_QTY),
    )


def lots(msg: FixMessage, tag: int) -> int:
    """A quantity field as a whole number of lots, or a FieldProblem."""
    value = msg.decimal(tag)
    if value != value.to_integral_value() or value < 0:
        raise FieldProblem(
            codec.VALUE_INCORRECT, tag, f"tag {tag} must be a whole number of lots, got {value}"
        )
    return int(value)


@dataclass(slots=True)
class TopOfBook:
    """The last bid and offer heard for one instrument, merged from snapshots and increments."""

    bid: float = 0.0
    ask: float = 0.0
    bid_size: int = 0
    ask_size: int = 0

    def quote(self, instrument: str, ts_event: int, ts_init: int) -> Quote | None:
        if not (self.bid > 0 and self.ask > 0):
            return None
        return Quote(instrument, self.bid, self.ask, self.bid_size, self.ask_size, ts_event, ts_init)


def market_data_quotes(msg: FixMessage, books: dict[str, TopOfBook], ts_init: int) -> list[Quote]:
    """Apply a snapshot (35=W) or incremental refresh (35=X) to ``books``; the quotes that changed."""
    sent = event_time(msg)
    changed: dict[str, int] = {}
    if msg.msg_type == "W":
        iid = instrument_id(msg.require(SYMBOL), msg.get(SECURITY_EXCHANGE) or "")
        books[iid] = TopOfBook()
        changed[iid] = sent
    for entry in msg.group(NO_MD_ENTRIES):
        if msg.msg_type == "X":
            symbol = entry.get(SYMBOL)
            if symbol is None:
                raise FieldProblem(codec.REQUIRED_TAG_MISSING, SYMBOL, "Symbol (55) missing in an MD entry")
            iid = instrument_id(symbol, entry.get(SECURITY_EXCHANGE, ""))
        book = books.setdefault(iid, TopOfBook())
        kind = entry.get(MD_ENTRY_TYPE)
        deleted = entry.get(MD_UPDATE_ACTION) == "2"
        px = 0.0 if deleted else float(_entry_decimal(entry, MD_ENTRY_PX))
        size = 0 if deleted else int(_entry_decimal(entry, MD_ENTRY_SIZE))
        if kind == "0":
            book.bid, book.bid_size = px, size
        elif kind == "1":
            book.ask, book.ask_size = px, size
        else:
            continue
        ts = sent
        if MD_ENTRY_DATE in entry and MD_ENTRY_TIME in entry:
            try:
                ts = codec.parse_date_time(entry[MD_ENTRY_DATE], entry[MD_ENTRY_TIME])
            except ValueError:
                raise FieldProblem(
                    codec.INCORRECT_FORMAT, MD_ENTRY_TIME, "MDEntryDate/Time unreadable"
                ) from None
        changed[iid] = max(changed.get(iid, ts), ts)
    quotes = []
    for iid, ts in changed.items():
        quote = books[iid].quote(iid, ts, ts_init)
        if quote is not None:
            quotes.append(quote)
    return quotes


def _entry_decimal(entry: dict[int, str], tag: int) -> Decimal:
    value = entry.get(tag)
    try:
        number = Decimal(value) if value is not None else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or number < 0 or (number and number.adjusted() > 15):
        raise FieldProblem(
            codec.INCORRECT_FORMAT, tag, f"tag {tag} must be a non-negative number, got {value!r}"
        )
    return number


__all__ = [
    "FIX_TO_SIDE",
    "FIX_TO_TIF",
    "SIDE_TO_FIX",
    "STATE_TO_ORD_STATUS",
    "TIF_TO_FIX",
    "TopOfBook",
    "cancel_reject_event",
    "cancel_request",
    "event_time",
    "execution_report_event",
    "instrument_id",
    "lots",
    "market_data_quotes",
    "market_data_request",
    "new_order_single",
    "offset_fields",
    "offset_of",
    "price_text",
    "replace_request",
    "status_report",
    "status_request",
]
