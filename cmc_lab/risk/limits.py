"""Risk limits: the editable limits the pre-trade checks enforce (``eng.limits``), checked as set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from cmc_lab.core.compliance import load_compliance
from cmc_lab.core.instruments import Instrument
from cmc_lab.risk.account_terms import to_money

#: ``core/compliance.toml``: the defaults of the message and cancel caps derive from it (below the
#: programmatic-trading and abnormal-trading thresholds they guard).
COMPLIANCE = load_compliance()
CAPS = COMPLIANCE.caps

_INT_LIMITS = {
    "max_order_qty": 1,
    "max_position": 0,
    "max_working_orders": 0,
    "max_messages_per_s": 1,
    "message_warn_per_day": 1,
    "max_messages_per_day": 1,
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
        Orders plus cancels sent in any one second, every account together. Default 240: below the
        300/s at which an account counts as high-frequency (``core/compliance.toml``).
    message_warn_per_day, max_messages_per_day
        Orders plus cancels per account per exchange trading day: an alert at the first, new orders
        of that account denied at the second. Defaults 15,000 and 18,000: below the 20,000 a day at
        which an account counts as high-frequency. Cancels are never blocked by a cap, and an order
        that only reduces a position passes it (its exemption journaled).
    duplicate_window_s
        An order identical (instrument, side, qty, price, account, ticket) to one still working
        and sent less than this long ago is a duplicate.
    cancel_warn_per_day, max_cancels_per_day
        Cancels per contract per trading day: an alert at the first, new orders on that contract
        denied at the second. Defaults 400 and 480: SHFE and INE treat 500 as abnormal trading.
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
    max_messages_per_s: int | None = CAPS.messages_per_s
    message_warn_per_day: int | None = CAPS.message_warn_per_day
    max_messages_per_day: int | None = CAPS.messages_per_day
    duplicate_window_s: float | None = 1.0
    cancel_warn_per_day: int | None = CAPS.cancel_warn_per_day
    max_cancels_per_day: int | None = CAPS.cancels_per_day
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
        for warn_name, most_name in (
            ("cancel_warn_per_day", "max_cancels_per_day"),
            ("message_warn_per_day", "max_messages_per_day"),
        ):
            warn, most = getattr(self, warn_name, None), getattr(self, most_name, None)
            if warn is not None and most is not None and warn >= most:
                raise ValueError(
                    f"{warn_name} ({warn}) must be below {most_name} ({most}): the warning comes first"
                )

    def set(self, instrument_id: str, **limits: Any) -> None:
        """Limits for one instrument over the global ones (a value of None removes the override); a
        product's (``SHFE.au``) hold for each of its months unless a month has its own."""
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

    def get(self, name: str, inst: Instrument) -> Any:
        """The limit for ``inst``: its own, else its product's (a limit set on SHFE.au holds for every
        month of it), else the global one."""
        for key in (inst.id, inst.product):
            own = self.per_instrument.get(key)
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
