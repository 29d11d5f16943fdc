"""Pre-trade checks: every order passes them before it leaves; a failure is a readable denial."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from cmc_lab.model import Instrument, Side


class TradingState(StrEnum):
    """The kill switch: ACTIVE trades, REDUCING only closes, HALTED sends nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    instrument: Instrument
    side: Side
    qty: int
    price: Decimal
    account: str
    ticket_id: str | None = None


class CheckContext(Protocol):
    """What the checks may read of the engine."""

    trading_state: TradingState

    def now_ns(self) -> int: ...

    def venue_connected(self, venue: str) -> bool: ...


Check = Callable[[OrderRequest, CheckContext], str | None]


def check_trading_state(req: OrderRequest, ctx: CheckContext) -> str | None:
    if ctx.trading_state is TradingState.HALTED:
        return "trading is HALTED (kill switch); call eng.rearm() to resume"
    return None


def check_tradeable(req: OrderRequest, ctx: CheckContext) -> str | None:
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


DEFAULT_CHECKS: tuple[tuple[str, Check], ...] = (
    ("trading_state", check_trading_state),
    ("tradeable", check_tradeable),
    ("venue_connected", check_venue_connected),
    ("session_open", check_session_open),
    ("tick", check_tick),
    ("daily_limits", check_daily_limits),
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
