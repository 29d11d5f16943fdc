"""FIX mapping layer, venue side: what the served exchange reads (orders, market data requests) and writes.

Pure, no IO. The same tag conventions as :mod:`cmc_lab.venues.fix.mapping`: Symbol (55) is our
instrument symbol, SecurityExchange (207) the venue, prices exact decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cmc_lab.core.ids import split_instrument_id, symbol_of
from cmc_lab.core.model import OrderState, Quote, Side, TimeInForce
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage
from cmc_lab.venues.fix.mapping import (
    ACCOUNT,
    AVG_PX,
    CL_ORD_ID,
    CUM_QTY,
    CURRENCY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EXEC_ID,
    EXEC_TYPE,
    FIX_TO_SIDE,
    FIX_TO_TIF,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    LIQUIDITY,
    MARKET_DEPTH,
    MD_ENTRY_DATE,
    MD_ENTRY_PX,
    MD_ENTRY_SIZE,
    MD_ENTRY_TIME,
    MD_ENTRY_TYPE,
    MD_REQ_ID,
    MD_UPDATE_ACTION,
    NO_MD_ENTRIES,
    NO_MD_ENTRY_TYPES,
    NO_RELATED_SYM,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_STATUS_REQ_ID,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRICE,
    SECURITY_EXCHANGE,
    SIDE,
    SIDE_TO_FIX,
    STATE_TO_ORD_STATUS,
    SUBSCRIPTION,
    SYMBOL,
    TIF_TO_FIX,
    TIME_IN_FORCE,
    TRANSACT_TIME,
    UNKNOWN_ORDER,
    UNKNOWN_ORDER_TEXT,
    instrument_id,
    offset_of,
    price_text,
)


class OrderRefused(ValueError):
    """A well-formed order the venue will not take: answered with an ExecutionReport Rejected."""

    def __init__(self, text: str, reason: str = "99") -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason  # OrdRejReason (103)


@dataclass(slots=True)
class FixOrder:
    """What the acceptor knows of one order it was sent, across replaces (OrderID stays)."""

    cl_ord_id: str  # the current ClOrdID (the last replace's)
    instrument: str
    side: Side
    qty: int
    price: Decimal
    tif: TimeInForce
    account: str
    currency: str
    order_id: str = "NONE"
    state: OrderState = OrderState.SUBMITTED
    cum_qty: int = 0
    notional: Decimal = Decimal(0)
    chain: list[str] = field(default_factory=list)  # every ClOrdID this order has had
    offset: str = ""  # SHFE/INE: open, close, close_today, close_yesterday (77 and 20077)
    #: the terms fields of its reports (:func:`_terms`) and the values they were written from
    terms: tuple[tuple[object, ...], tuple[tuple[int, object], ...]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def avg_px(self) -> Decimal:
        return self.notional / self.cum_qty if self.cum_qty else Decimal(0)

    @property
    def leaves_qty(self) -> int:
        return 0 if self.state.is_terminal else max(self.qty - self.cum_qty, 0)


def parse_new_order(msg: FixMessage, currencies: dict[str, str], default_account: str = "") -> FixOrder:
    """A NewOrderSingle (35=D) as a :class:`FixOrder`; FieldProblem for malformed, OrderRefused for unacceptable.

    ``currencies`` maps each instrument id the venue lists to its currency.
    """
    cl_ord_id = msg.require(CL_ORD_ID)
    symbol = msg.require(SYMBOL)
    side = FIX_TO_SIDE.get(msg.require(SIDE))
    qty = msg.decimal(ORDER_QTY)
    ord_type = msg.require(ORD_TYPE)
    exchange = msg.get(SECURITY_EXCHANGE)
    if exchange is None:
        matches = [iid for iid in currencies if symbol_of(iid) == symbol]
        if len(matches) != 1:
            raise OrderRefused(f"Symbol {symbol!r} needs SecurityExchange (207) to name its venue", "1")
        iid = matches[0]
    else:
        iid = instrument_id(symbol, exchange)
    if side is None:
        raise OrderRefused(f"Side {msg.get(SIDE)!r} is not supported; use 1 (buy) or 2 (sell)")
    if ord_type != "2":
        raise OrderRefused(f"OrdType {ord_type!r} is not supported; send limit orders (40=2)")
    price = msg.decimal(PRICE)
    tif = FIX_TO_TIF.get(msg.get(TIME_IN_FORCE) or "0")
    if tif is None:
        raise OrderRefused(f"TimeInForce {msg.get(TIME_IN_FORCE)!r} is not supported; use 0 (Day) or 3 (IOC)")
    if iid not in currencies:
        raise OrderRefused(f"unknown instrument {symbol} on {exchange}", "1")
    currency = msg.get(CURRENCY) or currencies[iid]
    if currency != currencies[iid]:
        raise OrderRefused(f"Currency {currency} does not match {iid}, which trades in {currencies[iid]}")
    if qty != qty.to_integral_value() or qty <= 0:
        raise OrderRefused(f"OrderQty {qty} must be a whole number of lots above zero", "13")
    if price <= 0:
        raise OrderRefused(f"Price {price} must be above zero")
    account = msg.get(ACCOUNT) or default_account
    try:
        offset = offset_of(msg)
    except ValueError as exc:
        raise OrderRefused(str(exc)) from None
    order = FixOrder(cl_ord_id, iid, side, int(qty), price, tif, account, currency, chain=[cl_ord_id])
    order.offset = offset
    return order


def execution_report(
    order: FixOrder,
    exec_type: str,
    exec_id: str,
    transact_time: str,
    *,
    cl_ord_id: str | None = None,
    orig_cl_ord_id: str | None = None,
    last_px: Decimal | None = None,
    last_qty: int | None = None,
    liquidity: str | None = None,
    text: str | None = None,
    ord_rej_reason: str | None = None,
    status_req_id: str | None = None,
    extra: list[tuple[int, object]] | None = None,
) -> list[tuple[int, object]]:
    """An ExecutionReport (35=8) body for ``order`` as it stands after this execution; ``extra`` fields appended."""
    fields: list[tuple[int, object]] = [
        (ORDER_ID, order.order_id),
        (CL_ORD_ID, cl_ord_id or order.cl_ord_id),
    ]
    if orig_cl_ord_id:
        fields.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    if status_req_id:
        fields.append((ORD_STATUS_REQ_ID, status_req_id))
    fields += [
        (EXEC_ID, exec_id),
        (EXEC_TYPE, exec_type),
        (ORD_STATUS, STATE_TO_ORD_STATUS.get(order.state, "0")),
    ]
    if ord_rej_reason:
        fields.append((ORD_REJ_REASON, ord_rej_reason))
    if order.account:
        fields.append((ACCOUNT, order.account))
    fields += _terms(order)
    if last_px is not None and last_qty is not None:
        fields += [(LAST_QTY, last_qty), (LAST_PX, price_text(last_px))]
        if liquidity:
            fields.append((LIQUIDITY, "1" if liquidity == "maker" else "2"))
    fields += [
        (LEAVES_QTY, order.leaves_qty),
        (CUM_QTY, order.cum_qty),
        (AVG_PX, price_text(order.avg_px)),
        (TRANSACT_TIME, transact_time),
    ]
    if text:
        fields.append((codec.TEXT, text))
    return fields + (extra or [])


def _terms(order: FixOrder) -> tuple[tuple[int, object], ...]:
    """Symbol (55) to Currency (15) of ``order``'s reports, written once and again only when a replace
    changes them (every report of an order repeats them; the price is compared by identity, since
    2650.1 and 2650.10 are equal but written differently)."""
    cached = order.terms
    if cached is not None:
        instrument, side, qty, price, tif, currency = cached[0]
        if (
            price is order.price and qty == order.qty and instrument == order.instrument
            and side is order.side and tif is order.tif and currency == order.currency
        ):  # fmt: skip
            return cached[1]
    exchange, symbol = split_instrument_id(order.instrument)
    terms: tuple[tuple[int, object], ...] = (
        (SYMBOL, symbol),
        (SECURITY_EXCHANGE, exchange),
        (SIDE, SIDE_TO_FIX[order.side]),
        (ORDER_QTY, order.qty),
        (ORD_TYPE, "2"),
        (PRICE, price_text(order.price)),
        (TIME_IN_FORCE, TIF_TO_FIX[order.tif]),
    )
    if order.currency:  # unknown for an order refused before its instrument was found: no empty tag
        terms += ((CURRENCY, order.currency),)
    order.terms = ((order.instrument, order.side, order.qty, order.price, order.tif, order.currency), terms)
    return terms


def unknown_order_report(
    cl_ord_id: str, exec_id: str, transact_time: str, status_req_id: str | None
) -> list[tuple[int, object]]:
    """The answer to an OrderStatusRequest for an order the venue never saw: OrdStatus Rejected, OrdRejReason 5."""
    fields: list[tuple[int, object]] = [(ORDER_ID, "NONE"), (CL_ORD_ID, cl_ord_id)]
    if status_req_id:
        fields.append((ORD_STATUS_REQ_ID, status_req_id))
    return [
        *fields,
        (EXEC_ID, exec_id),
        (EXEC_TYPE, "I"),
        (ORD_STATUS, "8"),
        (ORD_REJ_REASON, UNKNOWN_ORDER),
        (LEAVES_QTY, 0),
        (CUM_QTY, 0),
        (AVG_PX, 0),
        (TRANSACT_TIME, transact_time),
        (codec.TEXT, UNKNOWN_ORDER_TEXT),
    ]


def cancel_reject(
    cl_ord_id: str,
    orig_cl_ord_id: str,
    order: FixOrder | None,
    response_to: str,
    reason: str,
    text: str,
    transact_time: str,
) -> list[tuple[int, object]]:
    """OrderCancelReject (35=9): ``response_to`` 1 for a cancel, 2 for a replace; ``reason`` CxlRejReason."""
    return [
        (ORDER_ID, order.order_id if order is not None else "NONE"),
        (CL_ORD_ID, cl_ord_id),
        (ORIG_CL_ORD_ID, orig_cl_ord_id),
        (ORD_STATUS, STATE_TO_ORD_STATUS.get(order.state, "8") if order is not None else "8"),
        (CXL_REJ_RESPONSE_TO, response_to),
        (CXL_REJ_REASON, reason),
        (TRANSACT_TIME, transact_time),
        (codec.TEXT, text),
    ]


def parse_market_data_request(msg: FixMessage) -> tuple[str, str, list[tuple[str, str | None]]]:
    """MarketDataRequest (35=V) as (MDReqID, SubscriptionRequestType, [(Symbol, SecurityExchange)])."""
    req_id = msg.require(MD_REQ_ID)
    kind = msg.require(SUBSCRIPTION)
    if kind not in ("0", "1", "2"):
        raise FieldProblem(
            codec.VALUE_INCORRECT, SUBSCRIPTION, f"SubscriptionRequestType {kind!r} is not 0, 1 or 2"
        )
    msg.require(MARKET_DEPTH)
    msg.group(NO_MD_ENTRY_TYPES)
    symbols = [(e[SYMBOL], e.get(SECURITY_EXCHANGE)) for e in msg.group(NO_RELATED_SYM)]
    if not symbols:
        raise FieldProblem(
            codec.REQUIRED_TAG_MISSING, NO_RELATED_SYM, "NoRelatedSym (146) must list a symbol"
        )
    return req_id, kind, symbols


def market_data_snapshot(req_id: str, quote: Quote | None, instrument: str) -> list[tuple[int, object]]:
    """MarketDataSnapshotFullRefresh (35=W) of one instrument's top of book (no entries when no quote)."""
    exchange, symbol = split_instrument_id(instrument)
    fields: list[tuple[int, object]] = [(MD_REQ_ID, req_id), (SYMBOL, symbol), (SECURITY_EXCHANGE, exchange)]
    if quote is None:
        return [*fields, (NO_MD_ENTRIES, 0)]
    date, time_of_day = codec.format_date_time(quote.ts_event)
    return [
        *fields,
        (NO_MD_ENTRIES, 2),
        *_entry("0", quote.bid, quote.bid_size, date, time_of_day),
        *_entry("1", quote.ask, quote.ask_size, date, time_of_day),
    ]


def market_data_incremental(req_id: str, quote: Quote) -> list[tuple[int, object]]:
    """MarketDataIncrementalRefresh (35=X): the new bid and offer of one instrument."""
    exchange, symbol = split_instrument_id(quote.instrument_id)
    date, time_of_day = codec.format_date_time(quote.ts_event)
    ids: list[tuple[int, object]] = [(SYMBOL, symbol), (SECURITY_EXCHANGE, exchange)]
    bid = _entry("0", quote.bid, quote.bid_size, date, time_of_day)
    ask = _entry("1", quote.ask, quote.ask_size, date, time_of_day)
    return [
        (MD_REQ_ID, req_id),
        (NO_MD_ENTRIES, 2),
        (MD_UPDATE_ACTION, "1"),
        bid[0],
        *ids,
        *bid[1:],
        (MD_UPDATE_ACTION, "1"),
        ask[0],
        *ids,
        *ask[1:],
    ]


def _entry(kind: str, px: float, size: int, date: str, time_of_day: str) -> list[tuple[int, object]]:
    return [
        (MD_ENTRY_TYPE, kind),
        (MD_ENTRY_PX, repr(px)),
        (MD_ENTRY_SIZE, size),
        (MD_ENTRY_DATE, date),
        (MD_ENTRY_TIME, time_of_day),
    ]


def _number(msg: FixMessage, tag: int) -> Decimal:
    try:
        return msg.decimal(tag)
    except FieldProblem:
        return Decimal(0)


def refused_order(msg: FixMessage, currencies: dict[str, str]) -> FixOrder:
    """A rejected order's echo: whatever of it could be read."""
    symbol = msg.get(SYMBOL) or "[N/A]"
    exchange = msg.get(SECURITY_EXCHANGE) or ""
    side = FIX_TO_SIDE.get(msg.get(SIDE) or "", Side.BUY)
    qty = int(_number(msg, ORDER_QTY))
    price = _number(msg, PRICE)
    tif = FIX_TO_TIF.get(msg.get(TIME_IN_FORCE) or "0", TimeInForce.GFD)
    iid = instrument_id(symbol, exchange)
    return FixOrder(
        msg.get(CL_ORD_ID) or "", iid, side, qty, price, tif, msg.get(ACCOUNT) or "",
        msg.get(CURRENCY) or currencies.get(iid, ""),
    )  # fmt: skip


__all__ = [
    "FixOrder",
    "OrderRefused",
    "cancel_reject",
    "execution_report",
    "market_data_incremental",
    "market_data_snapshot",
    "parse_market_data_request",
    "parse_new_order",
    "refused_order",
    "unknown_order_report",
]
