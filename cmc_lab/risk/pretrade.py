"""Pre-trade checks: every order passes them before it leaves; a failure is a readable denial.

Each check is a plain function ``check(request, ctx) -> reason | None`` that reads engine state
through ``ctx`` (the engine) and ``ctx.risk`` (limits, order activity, capital); none raises and
none changes state. :class:`RiskLimits` holds the editable limits (``eng.limits``) and
:class:`OrderActivity` the order and cancel counters the checks need, fed from the engine loop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from cmc_lab.core.hours import TradingHours
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side
from cmc_lab.core.trading import OrderRequest, TradingState
from cmc_lab.risk.capital import Capital, to_money

if TYPE_CHECKING:
    from cmc_lab.core.order import Order

SECOND_NS = 1_000_000_000


# --------------------------------------------------------------------------- limits

_INT_LIMITS = {
    "max_order_qty": 1,
    "max_position": 0,
    "max_working_orders": 0,
    "max_messages_per_s": 1,
    "cancel_warn_per_day": 1,
    "max_cancels_per_day": 1,
}
_PER_INSTRUMENT = ("price_band", "max_order_qty", "max_order_notional", "max_position", "max_cancels_per_day")


@dataclass
class RiskLimits:
    """The limits the pre-trade checks enforce; edit them live at ``eng.limits`` (None: no limit).

    Attributes
    ----------
    price_band
        Largest distance of a limit price from the reference price (the last quote's mid, or the
        instrument's reference price before the first quote), as a fraction: 0.05 is ±5 %.
    max_order_qty
        Lots per order; None uses each instrument's ``max_order_qty`` from the specs.
    max_order_notional
        Notional per order in the base currency (CNY).
    max_position
        Net lots per instrument and account, counting working orders on the same side.
    max_working_orders
        Orders working at once, across venues.
    max_messages_per_s
        Orders plus cancels sent in any one second.
    duplicate_window_s
        An order identical (instrument, side, qty, price, account, ticket) to one still working
        and sent less than this long ago is a duplicate.
    cancel_warn_per_day, max_cancels_per_day
        Cancels per contract per trading day: an alert at the first, new orders on that contract
        denied at the second. SHFE, DCE and ZCE treat 500 as abnormal trading.
    check_margin
        Deny an order whose initial margin is above the account's available funds.

    Examples
    --------
    >>> limits = RiskLimits()
    >>> limits.max_position = 50
    >>> limits.set("COMEX.GC", max_position=10)
    >>> limits.get("max_position", "COMEX.GC"), limits.get("max_position", "SHFE.au")
    (10, 50)
    >>> limits.max_position = -1
    Traceback (most recent call last):
    ...
    ValueError: max_position = -1 must be a whole number >= 0, or None for no limit
    """

    price_band: float | None = 0.08
    max_order_qty: int | None = None
    max_order_notional: Decimal | None = Decimal("200000000")
    max_position: int | None = 500
    max_working_orders: int | None = 200
    max_messages_per_s: int | None = 500
    duplicate_window_s: float | None = 1.0
    cancel_warn_per_day: int | None = 400
    max_cancels_per_day: int | None = 480
    check_margin: bool = True
    per_instrument: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "per_instrument":
            value = _limit_value(name, value)
        old = getattr(self, name, _UNSET)
        object.__setattr__(self, name, value)
        if getattr(self, "per_instrument", _UNSET) is _UNSET:
            return
        try:
            self._cross_check()
        except ValueError:
            object.__setattr__(self, name, old)
            raise

    def _cross_check(self) -> None:
        warn, most = self.cancel_warn_per_day, self.max_cancels_per_day
        if warn is not None and most is not None and warn >= most:
            raise ValueError(
                f"cancel_warn_per_day ({warn}) must be below max_cancels_per_day ({most}): the warning "
                "comes first"
            )

    def set(self, instrument_id: str, **limits: Any) -> None:
        """Limits for one instrument over the global ones (a value of None removes the override)."""
        unknown = sorted(set(limits) - set(_PER_INSTRUMENT))
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} cannot be set per instrument; per-instrument limits: {', '.join(_PER_INSTRUMENT)}"
            )
        own = self.per_instrument.setdefault(instrument_id, {})
        for name, value in limits.items():
            if value is None:
                own.pop(name, None)
            else:
                own[name] = _limit_value(name, value)

    def get(self, name: str, instrument_id: str) -> Any:
        own = self.per_instrument.get(instrument_id)
        if own and name in own:
            return own[name]
        return getattr(self, name)


_UNSET = object()


def _limit_value(name: str, value: Any) -> Any:
    known = {f.name for f in fields(RiskLimits)}
    if name not in known:
        raise ValueError(f"RiskLimits has no limit {name!r}; limits: {', '.join(sorted(known))}")
    if name == "check_margin":
        if not isinstance(value, bool):
            raise ValueError(f"check_margin = {value!r} must be True or False")
        return value
    if value is None:
        return None
    if name in _INT_LIMITS:
        least = _INT_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} = {value!r} must be a whole number >= {least}, or None for no limit")
        return value
    if name == "max_order_notional":
        money = to_money(value, name)
        if money <= 0:
            raise ValueError(f"{name} = {value!r} must be above zero (base currency), or None for no limit")
        return money
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} = {value!r} must be a number, or None for no limit")
    if name == "price_band" and not 0 < value < 1:
        raise ValueError(f"price_band = {value!r} must be a fraction above 0 and below 1: 0.05 is ±5 %")
    if value < 0:
        raise ValueError(f"{name} = {value!r} must be >= 0 seconds, or None for no limit")
    return float(value)


# --------------------------------------------------------------------------- activity


@dataclass(slots=True)
class _Working:
    order: Order
    ts_submitted: int
    key: tuple[Any, ...]


class OrderActivity:
    """Working orders, messages per second and counts per contract and trading day (engine loop)."""

    def __init__(self) -> None:
        self.working: dict[str, dict[str, _Working]] = {}  # instrument -> client order id -> order
        self.working_count = 0
        self.messages: deque[int] = deque()
        self.cancels: dict[tuple[str, date], int] = {}
        self.orders: dict[tuple[str, date], int] = {}

    def on_submitted(self, order: Order, now: int) -> int:
        """An order left; returns its count on this contract today."""
        inst = order.instrument
        self.working.setdefault(inst.id, {})[order.client_order_id] = _Working(order, now, _key(order))
        self.working_count += 1
        self.messages.append(now)
        key = (inst.id, trading_day(inst.hours, now))
        self.orders[key] = self.orders.get(key, 0) + 1
        return self.orders[key]

    def on_cancel_requested(self, order: Order, now: int) -> int:
        """A cancel left; returns the cancel count of its contract today."""
        self.messages.append(now)
        inst = order.instrument
        key = (inst.id, trading_day(inst.hours, now))
        self.cancels[key] = self.cancels.get(key, 0) + 1
        return self.cancels[key]

    def on_done(self, order: Order) -> None:
        mine = self.working.get(order.instrument_id)
        if mine is not None and mine.pop(order.client_order_id, None) is not None:
            self.working_count -= 1

    def submitted_at(self, order: Order) -> int | None:
        w = self.working.get(order.instrument_id, {}).get(order.client_order_id)
        return w.ts_submitted if w is not None else None

    def messages_last_second(self, now: int) -> int:
        cutoff = now - SECOND_NS
        while self.messages and self.messages[0] <= cutoff:
            self.messages.popleft()
        return len(self.messages)

    def cancels_today(self, inst: Instrument, now: int) -> int:
        return self.cancels.get((inst.id, trading_day(inst.hours, now)), 0)

    def orders_today(self, inst: Instrument, now: int) -> int:
        return self.orders.get((inst.id, trading_day(inst.hours, now)), 0)

    def working_leaves(self, account: str, instrument_id: str, side: Side) -> int:
        return sum(
            w.order.leaves_qty
            for w in self.working.get(instrument_id, {}).values()
            if w.order.side is side and w.order.account == account
        )

    def orders_in(self, instrument_id: str | None = None, account: str | None = None) -> list[Order]:
        groups = self.working.values() if instrument_id is None else [self.working.get(instrument_id, {})]
        return [w.order for g in groups for w in g.values() if account is None or w.order.account == account]

    def duplicate_of(self, req: OrderRequest, now: int, window_ns: int) -> Order | None:
        key = (req.side, req.qty, req.price, req.account, req.ticket_id)
        for w in self.working.get(req.instrument.id, {}).values():
            if w.key == key and now - w.ts_submitted < window_ns and not w.order.done:
                return w.order
        return None

    def self_match(self, req: OrderRequest) -> Order | None:
        for w in self.working.get(req.instrument.id, {}).values():
            o = w.order
            if o.side is req.side or o.done:
                continue
            if (req.side is Side.BUY and o.price <= req.price) or (
                req.side is Side.SELL and o.price >= req.price
            ):
                return o
        return None


def _key(order: Order) -> tuple[Any, ...]:
    return (order.side, order.qty, order.price, order.account, order.ticket_id)


# Per hours object: (the hours, zone, shift) and (the hours, [start, end) ns of a trading day, the day).
# Each entry holds its hours, so their id cannot be freed and reused by other hours while cached
# (an id alone was: new hours at a freed address read the old ones' day). Looked up by id and
# checked with ``is``: hashing TradingHours (a dataclass hash over every window) costs four
# times the whole cached answer, and this runs on every order and cancel.
_DAY_SHIFT: dict[int, tuple[TradingHours, ZoneInfo, timedelta]] = {}
_DAY_CACHE: dict[int, tuple[TradingHours, int, int, date]] = {}


def trading_day(hours: TradingHours, ts_ns: int) -> date:
    """The trading day ``ts_ns`` belongs to: a night session counts toward the next day.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> au = load_specs().instrument("SHFE.au")   # night session opens 21:00 Shanghai
    >>> ts = int(datetime(2026, 11, 24, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()) * 10**9
    >>> trading_day(au.hours, ts)                 # 21:30 in Shanghai on the 24th
    datetime.date(2026, 11, 25)
    """
    key = id(hours)
    cached = _DAY_CACHE.get(key)
    if cached is not None and cached[0] is hours and cached[1] <= ts_ns < cached[2]:
        return cached[3]
    shifted = _DAY_SHIFT.get(key)
    if shifted is None or shifted[0] is not hours:
        opens = [w.open for w in hours.windows if w.overnight]
        shift = timedelta()
        if opens:
            first = min(opens)
            shift = timedelta(days=1) - timedelta(hours=first.hour, minutes=first.minute)
        shifted = _DAY_SHIFT[key] = (hours, ZoneInfo(hours.timezone), shift)
    _, zone, shift = shifted
    day = (datetime.fromtimestamp(ts_ns / 1e9, tz=zone) + shift).date()
    start = datetime.combine(day, time(), tzinfo=zone) - shift
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone) - shift
    _DAY_CACHE[key] = (hours, int(start.timestamp()) * SECOND_NS, int(end.timestamp()) * SECOND_NS, day)
    return day


# --------------------------------------------------------------------------- context


class RiskContext(Protocol):
    """What the checks read beyond the engine: limits, order activity, capital."""

    @property
    def limits(self) -> RiskLimits: ...

    @property
    def activity(self) -> OrderActivity: ...

    @property
    def capital(self) -> Capital: ...

    def known(self, instrument_id: str) -> bool: ...

    def reference_price(self, inst: Instrument) -> tuple[Decimal, str]: ...


class CheckContext(Protocol):
    """What the checks may read of the engine."""

    trading_state: TradingState

    @property
    def risk(self) -> RiskContext: ...

    def now_ns(self) -> int: ...

    def venue_connected(self, venue: str) -> bool: ...


Check = Callable[[OrderRequest, CheckContext], str | None]


def _what(req: OrderRequest) -> str:
    return f"{req.side.value} {req.qty} {req.instrument.id} @ {req.price}"


def reduces_position(req: OrderRequest, ctx: CheckContext) -> bool:
    """True when the order (with the working orders on its side) only closes part of a position."""
    risk = ctx.risk
    pos = risk.capital.position(req.account, req.instrument.id)
    if pos * req.side.sign >= 0:
        return False
    pending = risk.activity.working_leaves(req.account, req.instrument.id, req.side)
    return req.qty + pending <= abs(pos)


def check_trading_state(req: OrderRequest, ctx: CheckContext) -> str | None:
    if ctx.trading_state is TradingState.HALTED:
        why = getattr(ctx, "halt_reason", None) or "kill switch"
        return f"trading is HALTED ({why}); call eng.rearm() to resume"
    if ctx.trading_state is TradingState.REDUCING and not reduces_position(req, ctx):
        pos = ctx.risk.capital.position(req.account, req.instrument.id)
        return (
            f"trading is REDUCING: only orders that reduce a position are accepted, and {_what(req)} "
            f"would not (position {pos:+d} lots in {req.account}); see eng.alerts(), eng.rearm() resumes"
        )
    return None


def check_tradeable(req: OrderRequest, ctx: CheckContext) -> str | None:
    if not ctx.risk.known(req.instrument.id):
        return f"{req.instrument.id} is not traded on this engine's venues; connect its venue first"
    if not req.instrument.tradeable:
        return f"{req.instrument.id} is a {req.instrument.kind} rate, not a tradeable contract"
    return None


def check_venue_connected(req: OrderRequest, ctx: CheckContext) -> str | None:
    if not ctx.venue_connected(req.instrument.venue):
        return f"venue {req.instrument.venue!r} is not connected; wait for it to reconnect"
    return None


def check_session_open(req: OrderRequest, ctx: CheckContext) -> str | None:
    hours = req.instrument.hours
    now = ctx.now_ns()
    if hours.is_open(now):
        return None
    nxt = hours.next_open(now)
    when = f"; next opens {nxt:%a %H:%M} {hours.timezone}" if nxt else ""
    return f"{req.instrument.id} session is closed ({hours.describe()}){when}"


def check_tick(req: OrderRequest, ctx: CheckContext) -> str | None:
    if not req.instrument.is_on_tick(req.price):
        return f"price {req.price} is off the tick grid of {req.instrument.id} (tick {req.instrument.tick})"
    return None


def check_daily_limits(req: OrderRequest, ctx: CheckContext) -> str | None:
    inst = req.instrument
    ref = inst.reference_price
    if not ref or not inst.daily_limit:
        return None
    low, high = ref * (1 - inst.daily_limit), ref * (1 + inst.daily_limit)
    if not low <= req.price <= high:
        return (
            f"price {req.price} is outside the daily limits of {inst.id} "
            f"[{low.quantize(inst.tick)}, {high.quantize(inst.tick)}]"
        )
    return None


def check_price_band(req: OrderRequest, ctx: CheckContext) -> str | None:
    band = ctx.risk.limits.get("price_band", req.instrument.id)
    if band is None:
        return None
    ref, source = ctx.risk.reference_price(req.instrument)
    if not ref:
        return None
    away = float(req.price / ref - 1)
    if abs(away) <= band:
        return None
    return (
        f"price {req.price} is {away:+.2%} from the reference {ref} ({source}), outside the ±{band:.1%} "
        f"band; check the price or widen eng.limits.price_band"
    )


def check_order_qty(req: OrderRequest, ctx: CheckContext) -> str | None:
    inst = req.instrument
    limit = ctx.risk.limits.get("max_order_qty", inst.id) or inst.max_order_qty
    if req.qty > limit:
        return (
            f"{req.qty} lots is above the maximum order size of {limit} lots for {inst.id}; split the order"
        )
    return None


def check_notional(req: OrderRequest, ctx: CheckContext) -> str | None:
    limit = ctx.risk.limits.get("max_order_notional", req.instrument.id)
    if limit is None:
        return None
    cap = ctx.risk.capital
    inst = req.instrument
    notional = cap.to_base(inst.notional(req.price, req.qty), inst.currency)
    if notional <= limit:
        return None
    return (
        f"notional {notional:,.0f} {cap.base} of {_what(req)} is above the maximum order notional "
        f"{limit:,.0f} {cap.base} (eng.limits.max_order_notional)"
    )


def check_position(req: OrderRequest, ctx: CheckContext) -> str | None:
    risk = ctx.risk
    limit = risk.limits.get("max_position", req.instrument.id)
    if limit is None:
        return None
    pos = risk.capital.position(req.account, req.instrument.id)
    pending = risk.activity.working_leaves(req.account, req.instrument.id, req.side)
    after = pos + req.side.sign * (req.qty + pending)
    if abs(after) <= limit or abs(after) <= abs(pos):
        return None
    return (
        f"{_what(req)} would take the position in {req.account} to {after:+d} lots (now {pos:+d}, "
        f"{pending} more working), above the maximum of {limit} lots (eng.limits.max_position)"
    )


def check_working_orders(req: OrderRequest, ctx: CheckContext) -> str | None:
    limit = ctx.risk.limits.max_working_orders
    count = ctx.risk.activity.working_count
    if limit is None or count < limit:
        return None
    return f"{count} orders are working, the maximum is {limit}; cancel some (eng.limits.max_working_orders)"


def check_message_rate(req: OrderRequest, ctx: CheckContext) -> str | None:
    limit = ctx.risk.limits.max_messages_per_s
    if limit is None:
        return None
    sent = ctx.risk.activity.messages_last_second(ctx.now_ns())
    if sent < limit:
        return None
    return (
        f"{sent} orders and cancels went out in the last second, the maximum is {limit}/s; "
        "slow down (eng.limits.max_messages_per_s)"
    )


def check_duplicate(req: OrderRequest, ctx: CheckContext) -> str | None:
    window = ctx.risk.limits.duplicate_window_s
    if not window:
        return None
    twin = ctx.risk.activity.duplicate_of(req, ctx.now_ns(), int(window * SECOND_NS))
    if twin is None:
        return None
    return (
        f"{_what(req)} duplicates order {twin.client_order_id}, still {twin.state.value}, sent less than "
        f"{window:g} s ago; change price or size if you mean a second order"
    )


def check_self_match(req: OrderRequest, ctx: CheckContext) -> str | None:
    other = ctx.risk.activity.self_match(req)
    if other is None:
        return None
    return (
        f"{_what(req)} would trade against our own resting {other.side.value} {other.client_order_id} "
        f"@ {other.price}; cancel it first"
    )


def check_cancel_count(req: OrderRequest, ctx: CheckContext) -> str | None:
    inst = req.instrument
    limit = ctx.risk.limits.get("max_cancels_per_day", inst.id)
    if limit is None:
        return None
    count = ctx.risk.activity.cancels_today(inst, ctx.now_ns())
    if count < limit:
        return None
    return (
        f"{count} cancels on {inst.id} this trading day reached the limit of {limit} (exchanges treat 500 "
        "as abnormal trading); no new orders on it until the next trading day"
    )


def check_margin(req: OrderRequest, ctx: CheckContext) -> str | None:
    risk = ctx.risk
    cap = risk.capital
    if req.account not in cap.accounts:
        return f"account {req.account!r} is not known; accounts: {', '.join(cap.accounts)}"
    if not risk.limits.check_margin or reduces_position(req, ctx):
        return None
    pos = cap.position(req.account, req.instrument.id)
    opening = req.qty if pos * req.side.sign >= 0 else max(0, req.qty - abs(pos))
    need = cap.order_margin(req.account, req.instrument, opening, req.price)
    f = cap.figures(req.account)
    if need <= f.available:
        return None
    return (
        f"{_what(req)} needs {need:,.2f} {f.currency} initial margin; {req.account} has {f.available:,.2f} "
        f"available (equity {f.equity:,.2f}, margin {f.initial_margin:,.2f}, held by orders "
        f"{f.reserved:,.2f}); transfer funds with eng.transfer(...) or trade smaller"
    )


DEFAULT_CHECKS: tuple[tuple[str, Check], ...] = (
    ("trading_state", check_trading_state),
    ("tradeable", check_tradeable),
    ("venue_connected", check_venue_connected),
    ("session_open", check_session_open),
    ("tick", check_tick),
    ("daily_limits", check_daily_limits),
    ("price_band", check_price_band),
    ("order_qty", check_order_qty),
    ("notional", check_notional),
    ("position", check_position),
    ("working_orders", check_working_orders),
    ("message_rate", check_message_rate),
    ("duplicate", check_duplicate),
    ("self_match", check_self_match),
    ("cancel_count", check_cancel_count),
    ("margin", check_margin),
)


class PreTradeChecks:
    """An ordered list of named checks; the first failure denies the order.

    Examples
    --------
    >>> checks = PreTradeChecks()
    >>> [name for name, _ in checks.checks][:2]
    ['trading_state', 'tradeable']
    """

    def __init__(self, checks: tuple[tuple[str, Check], ...] = DEFAULT_CHECKS) -> None:
        self.checks: list[tuple[str, Check]] = list(checks)

    def run(self, req: OrderRequest, ctx: CheckContext) -> tuple[str | None, tuple[str, ...]]:
        """``(reason, passed)``: reason is None when every check passed."""
        passed: list[str] = []
        for name, check in self.checks:
            reason = check(req, ctx)
            if reason is not None:
                return f"{name}: {reason}", tuple(passed)
            passed.append(name)
        return None, tuple(passed)
