"""Domain model: instruments, sessions, orders, commands and events. Pure data, no IO.

Commands are verbs (``SubmitOrder``), events are past-tense facts (``OrderFilled``). Both are
frozen dataclasses. Money (order and fill prices) is ``Decimal``; quotes are floats because
they feed analytics, never the books. Timestamps are ``int`` nanoseconds since the epoch:
``ts_event`` is when it happened at its source, ``ts_init`` when this process saw it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

TROY_OUNCE_GRAMS = Decimal("31.1034768")


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
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"side {value!r} is not valid; use 'buy' or 'sell'") from None


class TimeInForce(StrEnum):
    GFD = "GFD"  # good for the trading day: rests in the book
    IOC = "IOC"  # immediate or cancel: the unfilled rest is cancelled at once

    @classmethod
    def parse(cls, value: str | TimeInForce) -> TimeInForce:
        try:
            return cls(str(value).upper())
        except ValueError:
            raise ValueError(f"time in force {value!r} is not valid; use 'GFD' or 'IOC'") from None


class MarginKind(StrEnum):
    PERCENT = "percent"  # share of notional (SHFE, INE)
    PER_LOT = "per_lot"  # fixed money per lot (CME, LME style)


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


# --------------------------------------------------------------------------- instruments


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One trading window in exchange local time, opening on the listed weekdays.

    A window whose close is not after its open runs past midnight (a night session): it
    opens on one of ``days`` and closes on the next calendar day.
    """

    name: str
    open: time
    close: time
    days: tuple[int, ...]  # 0 = Monday

    @property
    def overnight(self) -> bool:
        return self.close <= self.open

    def contains(self, local: datetime) -> bool:
        t = local.time()
        if not self.overnight:
            return local.weekday() in self.days and self.open <= t < self.close
        if t >= self.open:
            return local.weekday() in self.days
        if t < self.close:
            return (local - timedelta(days=1)).weekday() in self.days
        return False


@dataclass(frozen=True, slots=True)
class TradingHours:
    """The sessions of one instrument and the time zone they are written in."""

    timezone: str
    windows: tuple[SessionWindow, ...]

    def session_at(self, ts_ns: int) -> SessionWindow | None:
        local = datetime.fromtimestamp(ts_ns / 1e9, tz=ZoneInfo(self.timezone))
        for window in self.windows:
            if window.contains(local):
                return window
        return None

    def is_open(self, ts_ns: int) -> bool:
        return self.session_at(ts_ns) is not None

    def next_open(self, ts_ns: int) -> datetime | None:
        """The next moment (local time) a window opens, within a week; for error messages."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(ts_ns / 1e9, tz=zone)
        best: datetime | None = None
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            for window in self.windows:
                if date.weekday() not in window.days:
                    continue
                start = datetime.combine(date, window.open, tzinfo=zone)
                if start > local and (best is None or start < best):
                    best = start
        return best

    def describe(self) -> str:
        return "; ".join(
            f"{w.name} {w.open:%H:%M}-{w.close:%H:%M}" for w in self.windows
        ) + f" ({self.timezone})"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradeable contract (or the FX rate) and the facts needed to trade and convert it.

    ``lot_size`` is in ``lot_unit`` (1000 g for SHFE au); the price is quoted per
    ``price_unit`` in ``currency`` (CNY per g). ``margin_rate`` is a share of notional when
    ``margin_kind`` is percent, or money per lot in ``currency`` when per_lot.
    """

    venue: str
    symbol: str
    name: str
    currency: str
    lot_size: Decimal
    lot_unit: str
    price_unit: str
    tick: Decimal
    daily_limit: Decimal  # allowed move from the reference price, as a fraction
    margin_kind: MarginKind
    margin_rate: Decimal
    hours: TradingHours
    kind: str = "future"  # or "fx"
    reference_price: Decimal = Decimal(0)  # the sim's starting fair price
    max_order_qty: int = 500

    @property
    def id(self) -> str:
        return f"{self.venue}.{self.symbol}"

    @property
    def quote_unit(self) -> str:
        return f"{self.currency}/{self.price_unit}"

    @property
    def tradeable(self) -> bool:
        return self.kind != "fx"

    def is_on_tick(self, price: Decimal) -> bool:
        return (price / self.tick) == (price / self.tick).to_integral_value()

    def round_to_tick(self, price: Decimal | float) -> Decimal:
        ticks = (Decimal(str(price)) / self.tick).to_integral_value()
        return (ticks * self.tick).quantize(self.tick)

    def notional(self, price: Decimal, qty: int) -> Decimal:
        return price * self.lot_size * qty


# --------------------------------------------------------------------------- market data


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book of one instrument; floats because quotes feed analytics, not books."""

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


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    instrument_id: str
    ts_init: int
    venue_order_id: str | None = None


# --------------------------------------------------------------------------- events


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


@dataclass(frozen=True, slots=True)
class OrderDenied(OrderEvent):
    """A pre-trade check refused the order; nothing left for the venue."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderSubmitted(OrderEvent):
    """The intent, committed to the journal before the message leaves for the venue."""


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    venue_order_id: str
    trade_id: str
    side: Side
    last_px: Decimal
    last_qty: int
    liquidity: str = "taker"  # or "maker"


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


# --------------------------------------------------------------------------- validation


def parse_price(value: object, instrument: Instrument) -> Decimal:
    """A limit price as Decimal on the instrument's tick grid, or a ValueError saying why."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"price {value!r} is not a number; pass e.g. price={instrument.tick * 100}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"price {value!r} is not a finite number")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not a number") from None
    if not price.is_finite():
        raise ValueError(f"price {value!r} is not a finite number")
    if price <= 0:
        raise ValueError(f"price {value!r} must be positive")
    if not instrument.is_on_tick(price):
        below = (price / instrument.tick).to_integral_value(rounding="ROUND_FLOOR") * instrument.tick
        raise ValueError(
            f"price {price} is off the tick grid of {instrument.id} (tick {instrument.tick}); "
            f"use {below.quantize(instrument.tick)} or {(below + instrument.tick).quantize(instrument.tick)}"
        )
    return price


def parse_qty(value: object, instrument: Instrument) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"quantity {value!r} is not a whole number of lots")
    if isinstance(value, float | Decimal) and (not math.isfinite(value) or value != int(value)):
        raise ValueError(f"quantity {value!r} is not a whole number of lots")
    qty = int(value)
    if qty <= 0:
        raise ValueError(f"quantity must be at least 1 lot, got {value!r}")
    if qty > instrument.max_order_qty:
        raise ValueError(
            f"quantity {qty} is above the maximum order size of {instrument.id} "
            f"({instrument.max_order_qty} lots); split the order"
        )
    return qty


# --------------------------------------------------------------------------- serialisation


def event_payload(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-ready values; Decimal stays exact as a string."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, StrEnum):
            value = value.value
        out[f.name] = value
    return out


def event_from_payload(kind: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from its journal payload (the inverse of :func:`event_payload`)."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in payload:
            continue
        value = payload[f.name]
        if f.type in ("Decimal",):
            value = Decimal(value)
        elif f.type == "Side":
            value = Side(value)
        elif f.type == "TimeInForce":
            value = TimeInForce(value)
        kwargs[f.name] = value
    return cls(**kwargs)


_register_events()

__all__ = [
    "EVENT_TYPES",
    "ORDER_TRANSITIONS",
    "TROY_OUNCE_GRAMS",
    "CancelOrder",
    "Event",
    "IllegalTransition",
    "Instrument",
    "MarginKind",
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
    "OrderState",
    "OrderSubmitted",
    "Quote",
    "SessionWindow",
    "Side",
    "SubmitOrder",
    "TimeInForce",
    "TradingHours",
    "TradingStateChanged",
    "VenueConnected",
    "VenueDisconnected",
    "VenueEvent",
    "event_from_payload",
    "event_payload",
]
