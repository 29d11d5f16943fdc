"""Journal records layer: one order as its journal rows describe it, its slippage and summary (no IO).

Shared by receipts (one order or ticket) and the audit pack (every order of a window): an
:class:`OrderRecord` takes the journal rows of one order in order and keeps the order-record
fields, its checks, running state, fills and money, and the monotonic time of each step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import ORDER_TRANSITIONS, OrderState

#: What each journal kind is in an order's life: the ``step`` column of a receipt.
STEPS = {
    "HedgeCreated": "ticket created",
    "HedgeDecision": "decision",
    "HedgeChase": "re-order",
    "HedgeUnwind": "unwind",
    "HedgeOrderSent": "sent",
    "HedgeTimeout": "timeout",
    "HedgeWait": "wait",
    "HedgeHold": "hold",
    "HedgeStop": "stop",
    "HedgeReconcile": "reconcile",
    "OrderInitialized": "intent",
    "OrderSubmitted": "checks passed",
    "OrderDenied": "checks denied",
    "OrderAccepted": "ack",
    "OrderRejected": "rejected",
    "OrderFilled": "fill",
    "OrderCancelRequested": "cancel request",
    "OrderCanceled": "canceled",
    "OrderCancelRejected": "cancel rejected",
    "OrderExpired": "expired",
    "DuplicateFillIgnored": "duplicate fill ignored",
}
TERMINAL = frozenset(s.value for s in OrderState if s.is_terminal)
VENUE_ANSWERS = frozenset(
    {"OrderAccepted", "OrderRejected", "OrderFilled", "OrderCanceled", "OrderCancelRejected", "OrderExpired"}
)


@dataclass(slots=True)
class OrderRecord:
    """One order as its journal rows describe it so far; :meth:`apply` each row in journal order.

    Shared by receipts and the audit export: the static fields of the order record (ids,
    instrument, side, price, quantity, time in force, account), its decision and checks, and the
    running state, filled quantity and money.
    """

    client_order_id: str
    instrument: str | None = None
    side: str | None = None
    qty: int | None = None
    price: str | None = None
    tif: str | None = None
    account: str | None = None
    ticket_id: str | None = None
    reason: str = ""
    trader: str = ""
    algo: str = ""
    bid: str | None = None
    ask: str | None = None
    quote_ts: int = 0
    purpose: str = "manual"
    checks: str = ""
    denial: str = ""
    venue_order_id: str | None = None
    state: str = OrderState.INITIALIZED.value
    cum_qty: int = 0
    money: Decimal = Decimal(0)
    fills: int = 0
    anomalies: int = 0
    decision_seq: int | None = None
    decision: str = ""
    last_reason: str = ""
    marks: dict[str, int] = field(default_factory=dict)  # kind -> mono_ns of its first row
    last_mono: int | None = None
    venue_lag_ns: int | None = None

    def apply(self, kind: str, payload: Mapping[str, Any], mono_ns: int, ts_event: int, ts_init: int) -> None:
        """Take one journal row of this order (``kind`` and its decoded payload)."""
        if kind == "OrderInitialized":
            self.instrument = payload.get("instrument_id")
            self.side = payload.get("side")
            self.qty = payload.get("qty")
            self.price = payload.get("price")
            self.tif = payload.get("tif")
            self.account = payload.get("account")
            self.ticket_id = payload.get("ticket_id") or self.ticket_id
            self.reason = payload.get("reason") or ""
            self.trader, self.algo = payload.get("trader") or "", payload.get("algo") or ""
            self.bid, self.ask = payload.get("bid"), payload.get("ask")
            self.quote_ts = payload.get("quote_ts") or 0
        elif kind == "HedgeOrderSent":
            self.purpose = payload.get("purpose") or self.purpose
            return
        elif kind == "OrderSubmitted":
            self.checks = payload.get("checks") or ""
        elif kind == "OrderDenied":
            self.denial = payload.get("reason") or ""
        elif kind == "OrderAccepted":
            self.venue_order_id = payload.get("venue_order_id") or self.venue_order_id
        elif kind == "OrderFilled":
            qty = int(payload.get("last_qty") or 0)
            self.cum_qty += qty
            self.money += Decimal(payload.get("last_px") or 0) * qty
            self.fills += 1
            self.venue_order_id = payload.get("venue_order_id") or self.venue_order_id
        if "reason" in payload and kind != "OrderInitialized":
            self.last_reason = payload.get("reason") or ""
        if kind in VENUE_ANSWERS:
            lag = ts_init - ts_event
            self.venue_lag_ns = lag if self.venue_lag_ns is None else max(lag, self.venue_lag_ns)
        self.marks.setdefault(kind, mono_ns)
        self.last_mono = mono_ns
        self.state = self._next(kind)

    def _next(self, kind: str) -> str:
        state = OrderState(self.state)
        target = ORDER_TRANSITIONS.get((state, kind))
        if target is None:
            if kind.startswith("Order") and kind != "OrderInitialized":
                self.anomalies += 1
            return self.state
        if kind == "OrderFilled" and self.qty is not None and self.cum_qty >= self.qty:
            return OrderState.FILLED.value
        if kind == "OrderCancelRejected" and state is OrderState.PENDING_CANCEL and self.cum_qty:
            return OrderState.PARTIALLY_FILLED.value
        return target.value

    @property
    def leaves_qty(self) -> int | None:
        if self.qty is None:
            return None
        return 0 if self.state in TERMINAL else max(self.qty - self.cum_qty, 0)

    @property
    def avg_px(self) -> Decimal | None:
        return self.money / self.cum_qty if self.cum_qty else None

    @property
    def touch(self) -> str | None:
        """The decision's touch on this order's side: the ask it saw to buy, the bid to sell."""
        return self.ask if self.side == "buy" else self.bid if self.side == "sell" else None

    def latency(self, start: str, end: str) -> int | None:
        """``mono_ns`` from the first ``start`` row to the first ``end`` row; None across a restart."""
        if start in self.marks and end in self.marks and self.marks[end] >= self.marks[start]:
            return self.marks[end] - self.marks[start]
        return None


def slippage(
    px: Decimal | None, reference: Decimal | str | None, side: str | None, qty: int, inst: Instrument | None
) -> tuple[float | None, Decimal | None]:
    """Slippage of a price against a reference: ``(ticks, money)``, positive = worse for ``side``.

    Money is in the instrument's currency (price difference x lot size x lots), exact.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> gc = load_specs().instruments["COMEX.GC"]
    >>> slippage(Decimal("2650.20"), "2650.10", "buy", 2, gc)
    (1.0, Decimal('20.00'))
    """
    if px is None or reference is None or side not in ("buy", "sell") or inst is None:
        return None, None
    worse = (px - Decimal(reference)) * (1 if side == "buy" else -1)
    money = worse * inst.lot_size * qty
    return float(worse / inst.tick), money if money else money.copy_abs()  # never "-0.00"


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def step_of(kind: str, payload: Mapping[str, Any], record: OrderRecord | None) -> str:
    """The ``step`` of a journal row in an order's or ticket's life (see :data:`STEPS`)."""
    if kind == "OrderFilled" and record is not None:
        return "fill" if record.leaves_qty == 0 else "partial fill"
    if kind == "HedgeStateChanged":
        return f"ticket {payload.get('to', '?')}"
    return STEPS.get(kind, kind)


def reference(record: OrderRecord, leg_px: Mapping[str, tuple[str, str]]) -> tuple[str | None, str]:
    """The price a fill's slippage is measured against, and its name.

    An order of a ticket: the leg's decision price (``leg_px``: instrument -> (leg side,
    price) from the ticket's ``HedgeDecision``); an unwind (the leg's opposite side) has none.
    A plain order: the touch its decision saw (ask to buy, bid to sell), else its limit price.
    """
    leg = leg_px.get(record.instrument or "")
    if record.ticket_id and leg is not None:
        if leg[0] != record.side:
            return None, "unwind"
        return leg[1], "decision price"
    if record.touch is not None:
        return record.touch, "decision ask" if record.side == "buy" else "decision bid"
    return record.price, "limit price"


def order_summary(
    record: OrderRecord, leg_px: Mapping[str, tuple[str, str]], inst: Instrument | None
) -> dict[str, Any]:
    """One order's record: ids, the order-record fields, checks, outcome, slippage, hop latency."""
    r = record
    ref, label = reference(r, leg_px)
    ticks, money = slippage(r.avg_px, ref, r.side, r.cum_qty, inst)
    return {
        "client_order_id": r.client_order_id,
        "venue_order_id": r.venue_order_id,
        "ticket_id": r.ticket_id,
        "purpose": r.purpose,
        "instrument": r.instrument,
        "side": r.side,
        "order_type": "LIMIT",
        "qty": r.qty,
        "price": decimal_or_none(r.price),
        "tif": r.tif,
        "account": r.account,
        "trader": r.trader or None,
        "algo": r.algo or None,
        "checks": f"DENIED: {r.denial}" if r.denial else r.checks,
        "state": r.state,
        "filled": r.cum_qty,
        "fills": r.fills,
        "avg_px": r.avg_px,
        "decision_bid": decimal_or_none(r.bid),
        "decision_ask": decimal_or_none(r.ask),
        "slippage_ref": label if ref is not None else None,
        "slippage_ticks": ticks,
        "slippage": money,
        "currency": inst.currency if inst else None,
        "intent_to_ack_ns": r.latency("OrderInitialized", "OrderAccepted"),
        "intent_to_first_fill_ns": r.latency("OrderInitialized", "OrderFilled"),
        "intent_to_done_ns": done_latency(r),
        "venue_lag_ns": r.venue_lag_ns,
        "reason": r.denial or r.last_reason,
    }


def done_latency(record: OrderRecord) -> int | None:
    start = record.marks.get("OrderInitialized")
    if record.state not in TERMINAL or start is None or record.last_mono is None or record.last_mono < start:
        return None
    return record.last_mono - start


__all__ = [
    "STEPS",
    "TERMINAL",
    "VENUE_ANSWERS",
    "OrderRecord",
    "decimal_or_none",
    "done_latency",
    "order_summary",
    "reference",
    "slippage",
    "step_of",
]
