"""FIX mapping layer, reconciliation messages of both sides: mass order status and positions. Pure, no IO.

The initiator asks with OrderMassStatusRequest (35=AF, MassStatusReqType 7: every order) and
RequestForPositions (35=AN, PosReqType 0, one per Account). The acceptor answers the first with
one ExecutionReport (ExecType I) per working order, each carrying MassStatusReqID (584),
TotNumReports (911) and LastRptRequested (912=Y on the last); with no working order it sends one
report with OrderID ``NONE``, TotNumReports 0 and Text "no orders". It answers the second with a
RequestForPositionsAck (35=AO, TotalNumPosReports, PosReqResult 0 valid / 2 no positions) and
one PositionReport (35=AP) per instrument held, LongQty (704) and ShortQty (705) in one
PositionQty (702) entry of PosType ``TOT``.
"""

from __future__ import annotations

import math
from decimal import Decimal

from cmc_lab.core.ids import split_instrument_id
from cmc_lab.venues.base import OrderStatusReport, PositionReport
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage
from cmc_lab.venues.fix.mapping import (
    ACCOUNT,
    AVG_PX,
    CL_ORD_ID,
    CUM_QTY,
    EXEC_ID,
    EXEC_TYPE,
    FIX_TO_SIDE,
    LEAVES_QTY,
    ORD_STATUS,
    ORD_STATUS_TO_STATE,
    ORDER_ID,
    SECURITY_EXCHANGE,
    SIDE,
    SYMBOL,
    TRANSACT_TIME,
    event_time,
    instrument_id,
    lots,
    price_text,
)

ACCOUNT_TYPE, MASS_STATUS_REQ_ID, MASS_STATUS_REQ_TYPE, TOT_NUM_REPORTS, LAST_RPT_REQUESTED = (
    581,
    584,
    585,
    911,
    912,
)
NO_PARTY_IDS, PARTY_ID_SOURCE, PARTY_ID, PARTY_ROLE = 453, 447, 448, 452
NO_POSITIONS, POS_TYPE, LONG_QTY, SHORT_QTY = 702, 703, 704, 705
POS_REQ_ID, CLEARING_BUSINESS_DATE, POS_MAINT_RPT_ID, POS_REQ_TYPE = 710, 715, 721, 724
TOTAL_NUM_POS_REPORTS, POS_REQ_RESULT, POS_REQ_STATUS = 727, 728, 729
SETTL_PRICE, SETTL_PRICE_TYPE, PRIOR_SETTL_PRICE = 730, 731, 734

ALL_ORDERS = "7"  # MassStatusReqType: status for all orders
POSITIONS = "0"  # PosReqType: positions
VALID, NO_POSITIONS_FOUND, NOT_SUPPORTED = "0", "2", "4"  # PosReqResult
NO_ORDERS_TEXT = "no orders"
_CUSTOMER = "1"  # AccountType: account carried on customer side of the books


def _parties(account: str) -> list[tuple[int, object]]:
    """The Parties block the 4.4 position messages require: the account as a customer account (role 24)."""
    return [(NO_PARTY_IDS, 1), (PARTY_ID, account or "NONE"), (PARTY_ID_SOURCE, "D"), (PARTY_ROLE, 24)]


# --------------------------------------------------------------------------- initiator: outgoing


def mass_status_request(req_id: str) -> list[tuple[int, object]]:
    """OrderMassStatusRequest (35=AF) for every order of the session.

    Examples
    --------
    >>> mass_status_request("ms-1")
    [(584, 'ms-1'), (585, '7')]
    """
    return [(MASS_STATUS_REQ_ID, req_id), (MASS_STATUS_REQ_TYPE, ALL_ORDERS)]


def request_for_positions(
    req_id: str, account: str, business_date: str, transact_time: str
) -> list[tuple[int, object]]:
    """RequestForPositions (35=AN) of one account's positions (PosReqType 0), every field 4.4 requires."""
    return [
        (POS_REQ_ID, req_id),
        (POS_REQ_TYPE, POSITIONS),
        *_parties(account),
        (ACCOUNT, account),
        (ACCOUNT_TYPE, _CUSTOMER),
        (CLEARING_BUSINESS_DATE, business_date),
        (TRANSACT_TIME, transact_time),
    ]


# --------------------------------------------------------------------------- initiator: incoming


def order_working(msg: FixMessage, client_order_id: str) -> OrderStatusReport | None:
    """One ExecutionReport answering OrderMassStatusRequest as a report; None for the "no orders" report."""
    if msg.get(ORDER_ID) == "NONE" or msg.get(TOT_NUM_REPORTS) == "0":
        return None
    status = msg.require(ORD_STATUS)
    state = ORD_STATUS_TO_STATE.get(status)
    if state is None:
        raise FieldProblem(codec.VALUE_INCORRECT, ORD_STATUS, f"OrdStatus {status!r} is not one we map")
    side = FIX_TO_SIDE.get(msg.require(SIDE))
    if side is None:
        raise FieldProblem(codec.VALUE_INCORRECT, SIDE, f"Side {msg.get(SIDE)!r} is not 1 or 2")
    filled = lots(msg, CUM_QTY)
    return OrderStatusReport(
        client_order_id,
        msg.get(ORDER_ID),
        instrument_id(msg.require(SYMBOL), msg.get(SECURITY_EXCHANGE) or ""),
        state,
        filled,
        msg.decimal(AVG_PX) if filled and AVG_PX in msg else None,
        lots(msg, LEAVES_QTY),
        side,
        msg.get(ACCOUNT),
    )


def position_held(msg: FixMessage) -> PositionReport:
    """A PositionReport (35=AP) as our report: LongQty and ShortQty summed over its PositionQty entries."""
    long_qty = short_qty = 0
    for entry in msg.group(NO_POSITIONS):
        for tag, value in ((LONG_QTY, entry.get(LONG_QTY)), (SHORT_QTY, entry.get(SHORT_QTY))):
            number = Decimal(value) if value else Decimal(0)
            if number != number.to_integral_value() or number < 0:
                raise FieldProblem(
                    codec.VALUE_INCORRECT, tag, f"tag {tag} must be whole lots >= 0, got {value}"
                )
        long_qty += int(Decimal(entry.get(LONG_QTY) or 0))
        short_qty += int(Decimal(entry.get(SHORT_QTY) or 0))
    return PositionReport(
        msg.require(ACCOUNT),
        instrument_id(msg.require(SYMBOL), msg.get(SECURITY_EXCHANGE) or ""),
        long_qty,
        short_qty,
        event_time(msg),
    )


# --------------------------------------------------------------------------- acceptor: outgoing


def numbered(req_id: str, total: int, last: bool) -> list[tuple[int, object]]:
    """What an ExecutionReport adds when it answers OrderMassStatusRequest ``req_id`` (one of ``total``)."""
    return [
        (MASS_STATUS_REQ_ID, req_id),
        (TOT_NUM_REPORTS, total),
        (LAST_RPT_REQUESTED, "Y" if last else "N"),
    ]


def no_orders_report(req_id: str, exec_id: str, transact_time: str) -> list[tuple[int, object]]:
    """The one ExecutionReport that says no order of the session works: OrderID NONE, TotNumReports 0."""
    return [
        (ORDER_ID, "NONE"),
        (CL_ORD_ID, "NONE"),
        *numbered(req_id, 0, True),
        (EXEC_ID, exec_id),
        (EXEC_TYPE, "I"),
        (ORD_STATUS, "0"),
        (SYMBOL, "[N/A]"),
        (SIDE, "1"),
        (LEAVES_QTY, 0),
        (CUM_QTY, 0),
        (AVG_PX, 0),
        (TRANSACT_TIME, transact_time),
        (codec.TEXT, NO_ORDERS_TEXT),
    ]


def positions_ack(msg: FixMessage, report_id: str, count: int, refused: str = "") -> list[tuple[int, object]]:
    """RequestForPositionsAck (35=AO) of request ``msg``: ``count`` reports follow, or why it is refused."""
    account = msg.get(ACCOUNT) or ""
    result = NOT_SUPPORTED if refused else VALID if count else NO_POSITIONS_FOUND
    fields: list[tuple[int, object]] = [
        (POS_MAINT_RPT_ID, report_id),
        (POS_REQ_ID, msg.get(POS_REQ_ID) or ""),
        (TOTAL_NUM_POS_REPORTS, count),
        (POS_REQ_RESULT, result),
        (POS_REQ_STATUS, "2" if refused else "0"),
        *_parties(account),
        (ACCOUNT, account or "NONE"),
        (ACCOUNT_TYPE, msg.get(ACCOUNT_TYPE) or _CUSTOMER),
    ]
    if refused:
        fields.append((codec.TEXT, refused))
    return fields


def position_report(
    req_id: str, report_id: str, count: int, report: PositionReport, settle: float, business_date: str
) -> list[tuple[int, object]]:
    """PositionReport (35=AP) of one account's lots in one instrument (one of ``count``)."""
    exchange, symbol = split_instrument_id(report.instrument_id)
    price = price_text(Decimal(str(settle)) if math.isfinite(settle) and settle > 0 else Decimal(0))
    return [
        (POS_MAINT_RPT_ID, report_id),
        (POS_REQ_ID, req_id),
        (TOTAL_NUM_POS_REPORTS, count),
        (POS_REQ_RESULT, VALID),
        (CLEARING_BUSINESS_DATE, business_date),
        *_parties(report.account),
        (ACCOUNT, report.account),
        (ACCOUNT_TYPE, _CUSTOMER),
        (SYMBOL, symbol),
        (SECURITY_EXCHANGE, exchange),
        (SETTL_PRICE, price),
        (SETTL_PRICE_TYPE, "2"),  # theoretical: the served exchange's mid, not a settlement
        (PRIOR_SETTL_PRICE, price),
        (NO_POSITIONS, 1),
        (POS_TYPE, "TOT"),
        (LONG_QTY, report.long_qty),
        (SHORT_QTY, report.short_qty),
    ]


def business_date(ts_ns: int) -> str:
    """ClearingBusinessDate (715) of a time: its UTC date as YYYYMMDD."""
    return codec.format_timestamp(ts_ns)[:8]


__all__ = [
    "business_date",
    "mass_status_request",
    "no_orders_report",
    "numbered",
    "order_working",
    "position_held",
    "position_report",
    "positions_ack",
    "request_for_positions",
]
