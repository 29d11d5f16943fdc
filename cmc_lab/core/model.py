"""Domain model: instruments, sessions, orders, commands and events. Pure data, no IO.

Commands are verbs (``SubmitOrder``), events are past-tense facts (``OrderFilled``). Both are
frozen dataclasses. Money (order and fill prices) is ``Decimal``; quotes are floats because
they feed analytics, never the books. Timestamps are ``int`` nanoseconds since the epoch:
``ts_event`` is when it happened at its source, ``ts_init`` when this process saw it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    localcontext,
)
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

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _local_time(ts_ns: int, zone: ZoneInfo) -> datetime:
    # Exact to the microsecond (truncated): ts_ns / 1e9 as a float rounds to the nearest
    # microsecond, which puts a stamp just before a session's close at the close itself.
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    utc = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=ns // 1000)
    return utc.astimezone(zone)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _utc_offset(ts_ns: int, zone: ZoneInfo) -> timedelta | None:
    return _local_time(ts_ns, zone).utcoffset()


def _day_ranges(days: tuple[int, ...]) -> str:
    present = set(days)
    if len(present) == 7:
        return "daily"
    starts = sorted(d for d in present if (d - 1) % 7 not in present)
    parts = []
    for start in starts:
        end = start
        while (end + 1) % 7 in present:
            end = (end + 1) % 7
        parts.append(_DAY_NAMES[start] if end == start else f"{_DAY_NAMES[start]}-{_DAY_NAMES[end]}")
    return ",".join(parts)


# Remainders in this context are exact or trap: a trapped one takes the digit-by-digit path.
_EXACT = Context(prec=28, traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow])


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    # Exact, whatever the digits: Decimal division rounds to the context's 28 digits, which
    # would put 620.0200000000000000000000001 on a 0.02 grid.
    if not value.is_finite():
        return False
    try:
        return not _EXACT.remainder(value, step)
    except DecimalException:
        pass
    v = value.as_tuple()
    s = step.as_tuple()
    v_exp, s_exp = int(v.exponent), int(s.exponent)
    v_int = int("".join(map(str, v.digits)))
    s_int = int("".join(map(str, s.digits)))
    if v_exp >= s_exp:
        return v_int * pow(10, v_exp - s_exp, s_int) % s_int == 0
    shift = s_exp - v_exp
    if shift > len(v.digits):
        return v_int == 0
    return v_int % (s_int * 10**shift) == 0


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
    # is_open's last answer and the span it holds for, up to the next window boundary (every
    # quote of a spread asks): [(from_ns, until_ns, open)]; mutable inside the frozen object.
    _open: list[tuple[int, int, bool]] = dataclasses.field(
        default_factory=lambda: [(0, 0, False)], init=False, repr=False, compare=False
    )

    def session_at(self, ts_ns: int) -> SessionWindow | None:
        local = _local_time(ts_ns, ZoneInfo(self.timezone))
        for window in self.windows:
            if window.contains(local):
                return window
        return None

    def is_open(self, ts_ns: int) -> bool:
        since, until, answer = self._open[0]
        if since <= ts_ns < until:
            return answer
        return self._refresh(ts_ns)[2]

    def open_until(self, ts_ns: int) -> int | None:
        """While open at ``ts_ns``: an instant up to which it stays open (the next window
        boundary, or sooner); None when closed."""
        span = self._open[0]
        if not span[0] <= ts_ns < span[1]:
            span = self._refresh(ts_ns)
        return span[1] if span[2] else None

    def _refresh(self, ts_ns: int) -> tuple[int, int, bool]:
        span = (ts_ns, self._next_boundary(ts_ns), self.session_at(ts_ns) is not None)
        self._open[0] = span  # one assignment: a reader on another thread sees a whole span
        return span

    def _next_boundary(self, ts_ns: int) -> int:
        """The first instant after ``ts_ns`` at which ``session_at`` may change: a window opening or
        closing, a local midnight (weekday), or a change of the zone's UTC offset, whichever is first."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        times = {time(0), *(w.open for w in self.windows), *(w.close for w in self.windows)}
        best = None
        for day in range(3):
            date = local.date() + timedelta(days=day)
            for t in times:
                for fold in (0, 1):  # a wall time in the hour repeated when clocks go back comes twice
                    at = _ns(datetime.combine(date, t.replace(fold=fold), tzinfo=zone))
                    if at > ts_ns and (best is None or at < best):
                        best = at
        assert best is not None  # tomorrow's midnight is always a candidate
        offset = local.utcoffset()
        if _utc_offset(best, zone) == offset:
            return best
        low, high = ts_ns, best  # the offset changes in (low, high]: find where, to the microsecond
        while high - low > 1000:
            mid = (low + high) // 2
            if _utc_offset(mid, zone) == offset:
                low = mid
            else:
                high = mid
        return high - high % 1000

    def next_open(self, ts_ns: int) -> datetime | None:
        """The next moment (local time) a window opens, within a week; for error messages."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        # Compare instants, not wall clocks: aware datetimes sharing a tzinfo compare naively.
        now = local.timestamp()
        best: datetime | None = None
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            for window in self.windows:
                if date.weekday() not in window.days:
                    continue
                start = datetime.combine(date, window.open, tzinfo=zone)
                if start.timestamp() > now and (best is None or start.timestamp() < best.timestamp()):
                    best = start
        return best

    def describe(self) -> str:
        """The windows as ``night Mon-Fri 21:00-02:30+1; ...`` (+1: closes the next day), then the zone."""
        windows = "; ".join(
            f"{w.name} {_day_ranges(w.days)} {w.open:%H:%M}-{w.close:%H:%M}{'+1' if w.overnight else ''}"
            for w in self.windows
        )
        return f"{windows} ({self.timezone})"


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
        return _is_multiple(price, self.tick)

    def round_to_tick(self, price: Decimal | float) -> Decimal:
        """The nearest price on the tick grid; a price halfway between two ticks rounds away from zero."""
        value = Decimal(str(price))
        if not value.is_finite():
            raise ValueError(f"price {price!r} is not a finite number; cannot round it to a tick")
        ticks = (value / self.tick).to_integral_value(rounding=ROUND_HALF_UP)
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
    bid: str | None = None  # the top of book the decision saw, as exact text; None without a quote
    ask: str | None = None
    quote_ts: int = 0  # that quote's ts_event; 0 without a quote


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


#: A price more than 10**18 ticks away from zero is a typo, not an order.
_MAX_TICK_DIGITS = 18
#: A number as text in plain decimal notation with the digits 0-9 (``Decimal`` also reads '１_０').
PLAIN_DECIMAL = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*", re.ASCII)


def parse_price(value: object, instrument: Instrument) -> Decimal:
    """A limit price as Decimal on the instrument's tick grid, or a ValueError saying why."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"price {value!r} is not a number; pass e.g. price={instrument.tick * 100}")
    example = f"pass e.g. price={instrument.tick * 100}"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"price {value!r} is not a finite number; {example}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not a number; {example}") from None
    if not price.is_finite():
        raise ValueError(f"price {value!r} is not a finite number; {example}")
    if isinstance(value, str) and PLAIN_DECIMAL.fullmatch(value) is None:
        raise ValueError(
            f"price {value!r} is not a plain decimal number; write it with the digits 0-9 and a dot, "
            f"e.g. price='{instrument.tick * 100}'"
        )
    if price <= 0:
        raise ValueError(f"price {value!r} must be positive")
    tick = instrument.tick
    if price.adjusted() - tick.adjusted() > _MAX_TICK_DIGITS:
        raise ValueError(
            f"price {value!r} is out of range for {instrument.id} (tick {tick}); check for extra digits"
        )
    if not instrument.is_on_tick(price):
        with localcontext() as ctx:
            # Rounding the quotient down keeps its floor exact: at most 19 integer digits.
            ctx.prec = 40
            ctx.rounding = ROUND_FLOOR
            below = ((price / tick).to_integral_value() * tick).quantize(tick)
        above = (below + tick).quantize(tick)
        choices = f"use {below} or {above}" if below > 0 else f"use {above}, the lowest valid price"
        raise ValueError(f"price {price} is off the tick grid of {instrument.id} (tick {tick}); {choices}")
    return price


def parse_qty(value: object, instrument: Instrument) -> int:
    """A quantity in whole lots (numpy integers welcome), or a ValueError saying why."""
    if isinstance(value, str):
        raise ValueError(f"quantity {value!r} is text; pass a whole number of lots, e.g. qty=3")
    whole = "pass a whole number of lots, e.g. qty=3"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | float | Decimal):
        raise ValueError(f"quantity {value!r} is not a whole number of lots; {whole}")
    if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral_value()):
        raise ValueError(f"quantity {value!r} is not a whole number of lots; {whole}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ValueError(f"quantity {value!r} is not a whole number of lots; {whole}")
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
    fields = dataclasses.fields(cls)
    missing = [
        f.name
        for f in fields
        if f.name not in payload
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{kind} payload lacks field(s) {', '.join(missing)}: {payload!r}")
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.name not in payload:
            continue
        raw = value = payload[f.name]
        try:
            if f.type == "Decimal":
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


_register_events()

__all__ = [
    "EVENT_TYPES",
    "ORDER_TRANSITIONS",
    "PLAIN_DECIMAL",
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
