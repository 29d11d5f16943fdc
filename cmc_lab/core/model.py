"""Domain model: sides, order states and their transition table, quotes, commands, events. Pure, no IO.

Commands are verbs (``SubmitOrder``), events are past-tense facts (``OrderFilled``). Both are
frozen dataclasses. Money (order and fill prices) is ``Decimal``; quotes are floats because
they feed analytics, never the books. Timestamps are ``int`` nanoseconds since the epoch:
``ts_event`` is when it happened at its source, ``ts_init`` when this process saw it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @classmethod
    def parse(cls, value: str | Side) -> Side:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"side {value!r} is not valid; use 'buy' or 'sell'") from None


class TimeInForce(StrEnum):
    GFD = "GFD"  # good for the trading day: rests in the book
    IOC = "IOC"  # immediate or cancel: the unfilled rest is cancelled at once

    @classmethod
    def parse(cls, value: str | TimeInForce) -> TimeInForce:
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise ValueError(f"time in force {value!r} is not valid; use 'GFD' or 'IOC'") from None


class OrderState(StrEnum):
    INITIALIZED = "INITIALIZED"
    DENIED = "DENIED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATES

    @property
    def is_working(self) -> bool:
        return self in (
            OrderState.SUBMITTED,
            OrderState.ACCEPTED,
            OrderState.PARTIALLY_FILLED,
            OrderState.PENDING_CANCEL,
        )


_TERMINAL_STATES = frozenset(
    {
        OrderState.DENIED,
        OrderState.FILLED,
        OrderState.CANCELED,
        OrderState.REJECTED,
        OrderState.EXPIRED,
    }
)


# --------------------------------------------------------------------------- market data


class Quote(NamedTuple):
    """Top of book of one instrument; floats because quotes feed analytics, not books.

    A named tuple rather than a frozen dataclass: every quote of every venue is one, and a tuple
    is built in a third of the time (immutable, hashable, fields by name all the same).
    """

    instrument_id: str
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    ts_event: int
    ts_init: int

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> float:
        return self.ask - self.bid

    def _repr_html_(self) -> str:
        when = datetime.fromtimestamp(self.ts_event / 1e9, tz=UTC).strftime("%H:%M:%S.%f")
        return (
            f"<table><tr><th>{self.instrument_id}</th><th>bid</th><th>ask</th><th>time (UTC)</th>"
            f"</tr><tr><td></td><td>{self.bid_size} @ {self.bid:g}</td>"
            f"<td>{self.ask:g} x {self.ask_size}</td><td>{when}</td></tr></table>"
        )


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    client_order_id: str
    instrument_id: str
    side: Side
    qty: int
    price: Decimal
    tif: TimeInForce
    account: str
    ts_init: int
    ticket_id: str | None = None
    offset: str = ""  # open / close / close_today / close_yesterday on venues that keep them (core.offsets)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    instrument_id: str
    ts_init: int
    venue_order_id: str | None = None


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Change a working order's total quantity and/or limit price (FIX OrderCancelReplaceRequest)."""

    client_order_id: str
    instrument_id: str
    qty: int
    price: Decimal
    ts_init: int
    venue_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every journaled fact. ``kind`` is the class name, used as the journal kind."""

    ts_event: int
    ts_init: int

    kind: ClassVar[str] = "Event"  # set to the class name for every subclass at import


@dataclass(frozen=True, slots=True)
class OrderEvent(Event):
    client_order_id: str
    instrument_id: str


@dataclass(frozen=True, slots=True)
class OrderInitialized(OrderEvent):
    """The decision to send an order, before any check."""

    side: Side
    qty: int
    price: Decimal
    tif: TimeInForce
    account: str
    ticket_id: str | None = None
    reason: str = ""
    bid: str | None = None  # the top of book the decision saw, as exact text; None without a quote
    ask: str | None = None
    quote_ts: int = 0  # that quote's ts_event; 0 without a quote
    trader: str = ""  # who is responsible for the order (a configured id), as a regulator asks
    algo: str = ""  # what made it: cmc_lab's version and the ticket, policy and trigger, or "manual"
    offset: str = ""  # SHFE/INE: open, close, close_today or close_yesterday; "" where the venue nets
    part_of: str = ""  # the first part's client order id when one order went out as several (one offset each)


@dataclass(frozen=True, slots=True)
class OrderDenied(OrderEvent):
    """A pre-trade check refused the order; nothing left for the venue."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderSubmitted(OrderEvent):
    """The intent, committed to the journal before the message leaves for the venue."""

    checks: str = ""  # the pre-trade checks it passed, comma separated


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    """A fill. ``match_id`` names the match at the venue (both sides' fills share it, where the venue
    says: the embedded exchange, FIX TrdMatchID 880); ``self_trade`` is the venue's word that the
    other side of the match was an order of the same account."""

    venue_order_id: str
    trade_id: str
    side: Side
    last_px: Decimal
    last_qty: int
    liquidity: str = "taker"  # or "maker"
    match_id: str = ""
    self_trade: bool = False


@dataclass(frozen=True, slots=True)
class OrderCancelRequested(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderCanceled(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderCancelRejected(OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderReplaceRequested(OrderEvent):
    """A replace on its way to the venue (pending replace): the new total quantity and limit price."""

    qty: int
    price: Decimal
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderReplaced(OrderEvent):
    """The venue replaced the order: it now works ``qty`` in total (fills included) at ``price``."""

    qty: int
    price: Decimal
    venue_order_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderReplaceRejected(OrderEvent):
    """The replace was refused (by a check or the venue); the order works on as it was."""

    reason: str


@dataclass(frozen=True, slots=True)
class VenueEvent(Event):
    venue: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VenueConnected(VenueEvent):
    pass


@dataclass(frozen=True, slots=True)
class VenueDisconnected(VenueEvent):
    pass


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    """The kill switch: ACTIVE, REDUCING or HALTED, with who asked and why."""

    state: str
    reason: str
    who: str = "user"


@dataclass(frozen=True, slots=True)
class PriceLimitsPublished(Event):
    """A venue's settlement price of the last trading day and the price limits of ``trading_day``.

    ``low``/``high`` are the day's limit prices (the settlement ± the contract's limit percentage,
    inside the tick grid); None when the contract has no daily limit (CME products: price banding
    around the last price instead). ``source`` says who set them and how.
    """

    venue: str
    instrument_id: str
    trading_day: str  # ISO date
    settlement: Decimal
    low: Decimal | None
    high: Decimal | None
    source: str


EVENT_TYPES: dict[str, type[Event]] = {}


def _register_events() -> None:
    # Walk module globals, not Event.__subclasses__(): slots dataclasses replace the class
    # object, and the subclass list still holds the pre-decoration ones.
    for obj in list(globals().values()):
        if isinstance(obj, type) and issubclass(obj, Event):
            obj.kind = obj.__name__
            EVENT_TYPES[obj.__name__] = obj


# --------------------------------------------------------------------------- state machine

S = OrderState

#: ``(state, event kind) -> next state``. A pair not in the table is an illegal transition.
ORDER_TRANSITIONS: dict[tuple[OrderState, str], OrderState] = {
    (S.INITIALIZED, "OrderDenied"): S.DENIED,
    (S.INITIALIZED, "OrderSubmitted"): S.SUBMITTED,
    (S.SUBMITTED, "OrderAccepted"): S.ACCEPTED,
    (S.SUBMITTED, "OrderRejected"): S.REJECTED,
    (S.SUBMITTED, "OrderFilled"): S.PARTIALLY_FILLED,  # fill before ack (ack lost or late)
    (S.SUBMITTED, "OrderCancelRequested"): S.PENDING_CANCEL,
    (S.SUBMITTED, "OrderCanceled"): S.CANCELED,
    (S.SUBMITTED, "OrderExpired"): S.EXPIRED,
    (S.ACCEPTED, "OrderFilled"): S.PARTIALLY_FILLED,
    (S.ACCEPTED, "OrderCancelRequested"): S.PENDING_CANCEL,
    (S.ACCEPTED, "OrderCanceled"): S.CANCELED,
    (S.ACCEPTED, "OrderExpired"): S.EXPIRED,
    (S.PARTIALLY_FILLED, "OrderAccepted"): S.PARTIALLY_FILLED,  # late ack
    (S.PARTIALLY_FILLED, "OrderFilled"): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, "OrderCancelRequested"): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, "OrderCanceled"): S.CANCELED,
    (S.PARTIALLY_FILLED, "OrderExpired"): S.EXPIRED,
    (S.PENDING_CANCEL, "OrderAccepted"): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, "OrderFilled"): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, "OrderCanceled"): S.CANCELED,
    (S.PENDING_CANCEL, "OrderCancelRejected"): S.ACCEPTED,
    (S.PENDING_CANCEL, "OrderExpired"): S.EXPIRED,
    (S.PENDING_CANCEL, "OrderRejected"): S.REJECTED,
    (S.ACCEPTED, "OrderCancelRejected"): S.ACCEPTED,
    (S.PARTIALLY_FILLED, "OrderCancelRejected"): S.PARTIALLY_FILLED,
    # a replace leaves the state as it is; its answer may come after a cancel was asked
    **{
        (state, kind): state
        for state in (S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL)
        for kind in ("OrderReplaceRequested", "OrderReplaced", "OrderReplaceRejected")
    },
}


class IllegalTransition(ValueError):
    """An event that the order's current state cannot take (a late or duplicated report)."""


def next_state(state: OrderState, event: OrderEvent, filled: int, qty: int) -> OrderState:
    """The state after ``event``; ``filled`` counts the event's own fill already.

    A fill that completes the quantity moves to FILLED whatever the intermediate state.
    """
    target = ORDER_TRANSITIONS.get((state, event.kind))
    if target is None:
        raise IllegalTransition(f"order in state {state} cannot take {event.kind}")
    if event.kind == "OrderFilled" and filled >= qty:
        return S.FILLED
    if event.kind == "OrderCancelRejected" and state is S.PENDING_CANCEL and filled:
        return S.PARTIALLY_FILLED
    return target


# --------------------------------------------------------------------------- serialisation


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN = frozenset({str, int, float, bool, type(None)})


def event_payload(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-ready values; Decimal stays exact as a string."""
    cls = type(event)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(event))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(event, name)
        if type(value) not in _PLAIN:
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, StrEnum):
                value = value.value
        out[name] = value
    return out


def event_from_payload(kind: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from its journal payload (the inverse of :func:`event_payload`)."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    fields, required = _fields_of(cls)
    missing = [name for name in required if name not in payload]
    if missing:
        raise ValueError(f"{kind} payload lacks field(s) {', '.join(missing)}: {payload!r}")
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.name not in payload:
            continue
        raw = value = payload[f.name]
        try:
            if f.type == "Decimal" or (f.type == "Decimal | None" and raw is not None):
                value = Decimal(str(raw))
                if not value.is_finite():
                    raise InvalidOperation
            elif f.type == "Side":
                value = Side(raw)
            elif f.type == "TimeInForce":
                value = TimeInForce(raw)
        except (InvalidOperation, ValueError):
            raise ValueError(f"{kind} payload field {f.name} = {raw!r} is not a valid {f.type}") from None
        kwargs[f.name] = value
    return cls(**kwargs)


def _fields_of(cls: type[Event]) -> tuple[tuple[dataclasses.Field[Any], ...], tuple[str, ...]]:
    """An event class's fields and the names a payload must have (read once per class: restarts
    rebuild every event of the journal through :func:`event_from_payload`)."""
    known = _FIELDS.get(cls)
    if known is None:
        fields = dataclasses.fields(cls)
        required = tuple(
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        known = _FIELDS[cls] = (fields, required)
    return known


_FIELDS: dict[type[Event], tuple[tuple[dataclasses.Field[Any], ...], tuple[str, ...]]] = {}


_register_events()

__all__ = [
    "EVENT_TYPES",
    "ORDER_TRANSITIONS",
    "CancelOrder",
    "Event",
    "IllegalTransition",
    "OrderAccepted",
    "OrderCancelRejected",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderDenied",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderInitialized",
    "OrderRejected",
    "OrderReplaceRejected",
    "OrderReplaceRequested",
    "OrderReplaced",
    "OrderState",
    "OrderSubmitted",
    "Quote",
    "ReplaceOrder",
    "Side",
    "SubmitOrder",
    "TimeInForce",
    "TradingStateChanged",
    "VenueConnected",
    "VenueDisconnected",
    "VenueEvent",
    "event_from_payload",
    "event_payload",
]
