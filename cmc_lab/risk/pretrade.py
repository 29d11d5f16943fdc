"""Pre-trade checks: every order passes them before it leaves; a failure is a readable denial.

Each check is a plain function ``check(request, ctx) -> reason | None`` that reads engine state
through ``ctx`` (the engine) and ``ctx.risk`` (limits, order activity, capital); none raises and
none changes state. :class:`~cmc_lab.risk.limits.RiskLimits` holds the editable limits
(``eng.limits``) and :class:`OrderActivity` the order and cancel counters the checks need, fed
from the engine loop.

No control that exists to limit risk may trap a leg: an order that only reduces a position
(:func:`reduction`) passes the kill switch, REDUCING, the caps and the rate limits
(:data:`RISK_CONTROLS`), and the check it passed that way is journaled as its exemption
(``trading_state: exempt (reduces short 3 SHFE.au in CN-FUT)``). The checks of what can be sent
at all (venue up, session open, tick, daily limits, price band, no trade with ourselves) hold for
every order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from cmc_lab.core.hours import TradingHours
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import PriceLimitsPublished, Side
from cmc_lab.core.offsets import Offset
from cmc_lab.core.ports import AlertSink
from cmc_lab.core.trading import OrderRequest, TradingState
from cmc_lab.risk.capital import Capital
from cmc_lab.risk.limits import COMPLIANCE, RiskLimits

if TYPE_CHECKING:
    from cmc_lab.core.order import Order

SECOND_NS = 1_000_000_000
#: A float screen passes an order only this far inside a limit; nearer, the exact Decimal figure decides.
_INSIDE = 1 - 1e-9
_HFT_DAY = COMPLIANCE.thresholds.per_day


# --------------------------------------------------------------------------- activity


@dataclass(slots=True)
class _Working:
    order: Order
    ts_submitted: int
    key: tuple[Any, ...]


class OrderActivity:
    """Working orders, messages per second, messages per account and trading day, and orders and
    cancels per contract and trading day (engine loop).

    With ``limits`` and ``alerts``, an account's messages reaching ``limits.message_warn_per_day``
    on a trading day raise one warning alert, before ``max_messages_per_day`` denies its new orders.
    """

    def __init__(self, limits: RiskLimits | None = None, alerts: AlertSink | None = None) -> None:
        self.working: dict[str, dict[str, _Working]] = {}  # instrument -> client order id -> order
        self.working_count = 0
        self.messages: deque[int] = deque()
        self.cancels: dict[tuple[str, date], int] = {}
        self.orders: dict[tuple[str, date], int] = {}
        self.day_messages: dict[tuple[str, date], int] = {}  # (account, trading day) -> orders + cancels
        self.limits, self.alerts = limits, alerts

    def on_submitted(self, order: Order, now: int) -> int:
        """An order left; returns its count on this contract today."""
        inst = order.instrument
        self.working.setdefault(inst.id, {})[order.client_order_id] = _Working(order, now, _key(order))
        self.working_count += 1
        key = (inst.id, trading_day(inst.hours, now))
        self.orders[key] = self.orders.get(key, 0) + 1
        self._message(order, key[1], now)
        return self.orders[key]

    def on_cancel_requested(self, order: Order, now: int) -> int:
        """A cancel left; returns the cancel count of its contract today."""
        inst = order.instrument
        key = (inst.id, trading_day(inst.hours, now))
        self.cancels[key] = self.cancels.get(key, 0) + 1
        self._message(order, key[1], now)
        return self.cancels[key]

    def _message(self, order: Order, day: date, now: int) -> None:
        self.messages.append(now)
        key = (order.account, day)
        count = self.day_messages[key] = self.day_messages.get(key, 0) + 1
        limits = self.limits
        if limits is None or self.alerts is None or count != limits.message_warn_per_day:
            return
        self.alerts.alert(
            "pretrade",
            "warning",
            f"{order.account}: {count} orders and cancels this trading day ({day}); its new orders are denied "
            f"at {limits.max_messages_per_day} ({_HFT_DAY:,} a day makes an account high-frequency)",
            details={"value": count, "threshold": count, "account": order.account, "day": day.isoformat()},
        )

    def messages_today(self, account: str, inst: Instrument, now: int) -> int:
        """Orders and cancels of ``account`` on ``inst``'s exchange trading day of ``now``."""
        return self.day_messages.get((account, trading_day(inst.hours, now)), 0)

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


def trading_day(hours: TradingHours, ts_ns: int) -> date:
    """The exchange trading day ``ts_ns`` belongs to (:meth:`TradingHours.trading_day`): SHFE's night
    session counts toward the next trading day (Friday night toward Monday), CME's day starts at
    17:00 Chicago the evening before, a holiday rolls to the next trading day.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> au = load_specs().instrument("SHFE.au")   # night session opens 21:00 Shanghai
    >>> ts = 1_795_527_000 * 10**9                # 2026-11-24 13:30 UTC, 21:30 in Shanghai
    >>> trading_day(au.hours, ts)
    datetime.date(2026, 11, 25)
    """
    return hours.trading_day(ts_ns)


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

    def reference_mid(self, inst: Instrument) -> float: ...

    def day_limits(self, inst: Instrument) -> PriceLimitsPublished | None: ...


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


def reduction(req: OrderRequest, ctx: CheckContext) -> str | None:
    """What the order reduces ("short 3 SHFE.au in CN-FUT"), or None when it would add exposure.

    Decided from the account's signed position and the working orders on the order's side: the
    order and those orders together must not close more than is held. An order that opens (SHFE,
    INE: offset ``open``) adds a position whatever the net, and is never exempt. An order above the
    exchange's own maximum size is never exempt (the exchange would refuse it anyway).
    """
    risk = ctx.risk
    inst = req.instrument
    pos = risk.capital.position(req.account, inst.id)
    if pos * req.side.sign >= 0 or req.qty > inst.max_order_qty or req.offset is Offset.OPEN:
        return None
    pending = risk.activity.working_leaves(req.account, inst.id, req.side)
    if req.qty + pending > abs(pos):
        return None
    held = f"{'long' if pos > 0 else 'short'} {abs(pos)} {inst.id} in {req.account}"
    return f"reduces {held}" + (f" with {pending} more working" if pending else "")


def check_trading_state(req: OrderRequest, ctx: CheckContext) -> str | None:
    if ctx.trading_state is TradingState.HALTED:
        why = getattr(ctx, "halt_reason", None) or "kill switch"
        return (
            f"trading is HALTED ({why}): only orders that reduce a position pass, and {_what(req)} would "
            "not; call eng.rearm() to resume"
        )
    if ctx.trading_state is TradingState.REDUCING:
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
    when = f"; next opens {nxt:%a %Y-%m-%d %H:%M} {hours.timezone}" if nxt else ""
    why = hours.calendar_reason(now)
    if why is not None:
        return f"{req.instrument.id} session is closed: {why}{when}"
    return f"{req.instrument.id} session is closed ({hours.describe()}){when}"


def check_tick(req: OrderRequest, ctx: CheckContext) -> str | None:
    if not req.instrument.is_on_tick(req.price):
        return f"price {req.price} is off the tick grid of {req.instrument.id} (tick {req.instrument.tick})"
    return None


def check_daily_limits(req: OrderRequest, ctx: CheckContext) -> str | None:
    """The exchange's own price limits: the trading day's limits from the previous settlement, as the
    venue published them (SHFE, INE, LME), or CME's dynamic band around the last price. A venue
    that published no limits (a replay of recorded quotes) is not second-guessed: it enforces its own.
    """
    inst = req.instrument
    if inst.daily_limit:
        day = ctx.risk.day_limits(inst)
        if day is None or day.low is None or day.high is None or day.low <= req.price <= day.high:
            return None
        return (
            f"price {req.price} is outside the limits of {inst.id} for trading day {day.trading_day}: "
            f"[{day.low}, {day.high}], the previous settlement {day.settlement} ± {inst.daily_limit:.0%} ({day.source})"
        )
    if inst.price_band:
        ref, source = ctx.risk.reference_price(inst)
        if ref and abs(req.price / ref - 1) > inst.price_band:
            return (
                f"price {req.price} is beyond {inst.id}'s dynamic price fluctuation limit: ±{inst.price_band:.0%} "
                f"around {ref} ({source}); the exchange would halt trading there"
            )
    return None


def check_price_band(req: OrderRequest, ctx: CheckContext) -> str | None:
    band = ctx.risk.limits.get("price_band", req.instrument)
    if band is None:
        return None
    screen = ctx.risk.reference_mid(req.instrument)  # floats: well inside the band needs no exact figure
    if screen > 0 and abs(float(req.price) / screen - 1) < band * _INSIDE:
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
    limit = ctx.risk.limits.get("max_order_qty", inst) or inst.max_order_qty
    if req.qty > limit:
        return (
            f"{req.qty} lots is above the maximum order size of {limit} lots for {inst.id}; split the order"
        )
    return None


def check_notional(req: OrderRequest, ctx: CheckContext) -> str | None:
    limit = ctx.risk.limits.get("max_order_notional", req.instrument)
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
    limit = risk.limits.get("max_position", req.instrument)
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
    """Orders and cancels per second (every account) and per account per exchange trading day, kept
    below the programmatic-trading high-frequency thresholds (``core/compliance.toml``)."""
    limits, activity = ctx.risk.limits, ctx.risk.activity
    per_s, per_day = limits.max_messages_per_s, limits.max_messages_per_day
    if per_s is not None:
        sent = activity.messages_last_second(ctx.now_ns())
        if sent >= per_s:
            return (
                f"{sent} orders and cancels went out in the last second, the maximum is {per_s}/s; "
                "slow down (eng.limits.max_messages_per_s)"
            )
    if per_day is not None:
        today = activity.messages_today(req.account, req.instrument, ctx.now_ns())
        if today >= per_day:
            return (
                f"{req.account} sent {today} orders and cancels this trading day, the maximum is {per_day} "
                f"({_HFT_DAY:,} makes an account high-frequency); only orders that reduce a position and cancels "
                "pass until the next trading day (eng.limits.max_messages_per_day)"
            )
    return None


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
    limit = ctx.risk.limits.get("max_cancels_per_day", inst)
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
    if not risk.limits.check_margin:
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


#: The controls that exist to limit risk: an order that only reduces a position passes each of
#: them, with its exemption journaled. The others say what can be sent at all and hold for all.
RISK_CONTROLS = frozenset(
    {
        "trading_state",
        "order_qty",
        "notional",
        "position",
        "working_orders",
        "message_rate",
        "duplicate",
        "cancel_count",
        "margin",
    }
)


class PreTradeChecks:
    """An ordered list of named checks; the first failure denies the order.

    A failed check named in ``exempt`` (default :data:`RISK_CONTROLS`) does not deny an order that
    only reduces a position: it is passed as ``"name: exempt (reduces ...)"`` instead, which the
    router journals in ``OrderSubmitted`` with the other checks passed.

    Examples
    --------
    >>> checks = PreTradeChecks()
    >>> [name for name, _ in checks.checks][:2]
    ['trading_state', 'tradeable']
    >>> "self_match" in checks.exempt, "cancel_count" in checks.exempt
    (False, True)
    """

    def __init__(
        self,
        checks: tuple[tuple[str, Check], ...] = DEFAULT_CHECKS,
        exempt: frozenset[str] = RISK_CONTROLS,
    ) -> None:
        self.checks: list[tuple[str, Check]] = list(checks)
        self.exempt = exempt

    def run(self, req: OrderRequest, ctx: CheckContext) -> tuple[str | None, tuple[str, ...]]:
        """``(reason, passed)``: reason is None when every check passed (exemptions included)."""
        passed: list[str] = []
        reduces: str | None = None
        for name, check in self.checks:
            reason = check(req, ctx)
            if reason is not None:
                if name in self.exempt:
                    reduces = reduces or reduction(req, ctx)
                    if reduces is not None:
                        passed.append(f"{name}: exempt ({reduces})")
                        continue
                return f"{name}: {reason}", tuple(passed)
            passed.append(name)
        return None, tuple(passed)
