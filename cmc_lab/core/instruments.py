"""Instruments: what a contract is (lot, unit, tick, limits, margin, hours), and order input checked on it.

Pure data, no IO. Money is ``Decimal``: :func:`parse_price` puts a price on the instrument's tick
grid exactly or says which prices are valid; :func:`parse_qty` takes whole lots up to the
instrument's largest order.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import (
    ROUND_CEILING,
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

from cmc_lab.core.hours import TradingHours

TROY_OUNCE_GRAMS = Decimal("31.1034768")


class MarginKind(StrEnum):
    PERCENT = "percent"  # share of notional (SHFE, INE)
    PER_LOT = "per_lot"  # fixed money per lot (CME, LME style)


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
class Instrument:
    """A tradeable contract (or the FX rate) and the facts needed to trade and convert it.

    ``lot_size`` is in ``lot_unit`` (1000 g for SHFE au); the price is quoted per
    ``price_unit`` in ``currency`` (CNY per g). ``margin_rate`` is a share of notional when
    ``margin_kind`` is percent, or money per lot in ``currency`` when per_lot. ``daily_limit`` is
    the day's allowed move from the previous settlement price (SHFE, INE, LME; 0: none) and
    ``price_band`` the exchange's band around the last price (CME, which has no daily limit);
    ``limits_source`` says where both come from.
    """

    venue: str
    symbol: str
    name: str
    currency: str
    lot_size: Decimal
    lot_unit: str
    price_unit: str
    tick: Decimal
    daily_limit: Decimal  # allowed move from the previous settlement, as a fraction (0: no daily limit)
    margin_kind: MarginKind
    margin_rate: Decimal
    hours: TradingHours
    kind: str = "future"  # or "fx"
    reference_price: Decimal = Decimal(0)  # the sim's starting fair price
    max_order_qty: int = 500
    price_band: Decimal = Decimal(0)  # the exchange's band around the last price, as a fraction (0: none)
    limits_source: str = ""
    product: str = ""  # a contract month's product ("SHFE.au" for SHFE.au2702); "" for a product itself
    last_trading_day: date | None = None  # a contract month's last trading day (core/months.py)
    #: ``VENUE.SYMBOL``, kept: every quote, check and order reads it
    id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.venue}.{self.symbol}")

    @property
    def product_id(self) -> str:
        """The product this contract is a month of (its own id for a product or an FX rate)."""
        return self.product or f"{self.venue}.{self.symbol}"

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

    def day_limits(self, settlement: Decimal) -> tuple[Decimal, Decimal] | None:
        """The limit prices of a trading day whose previous settlement is ``settlement``: the settlement
        ± ``daily_limit``, rounded inward to the tick grid (never below one tick); None without a limit.

        Examples
        --------
        >>> from cmc_lab.core.specs import load_specs
        >>> au = load_specs().instrument("SHFE.au")
        >>> au.day_limits(Decimal("950.00")) == (au.round_to_tick(950 * (1 - au.daily_limit) + 0.01),
        ...                                      au.round_to_tick(950 * (1 + au.daily_limit) - 0.01))
        True
        """
        if not self.daily_limit:
            return None
        tick = self.tick
        low = (settlement * (1 - self.daily_limit) / tick).to_integral_value(ROUND_CEILING) * tick
        high = (settlement * (1 + self.daily_limit) / tick).to_integral_value(ROUND_FLOOR) * tick
        return max(low, tick).quantize(tick), high.quantize(tick)


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


__all__ = ["PLAIN_DECIMAL", "TROY_OUNCE_GRAMS", "Instrument", "MarginKind", "parse_price", "parse_qty"]
