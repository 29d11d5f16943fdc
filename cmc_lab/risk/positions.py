"""Positions: net lots of one instrument in one account, kept as FIFO lots, marked to the last mid.

State layer under :mod:`cmc_lab.risk.capital`, which owns the positions and settles what their
fills realize. Money is ``Decimal``; a quote's float mid becomes a mark through
``Decimal(str(mid))``, worked out only when read.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote, Side

ZERO = Decimal(0)


@dataclass(slots=True)
class Lot:
    """Lots opened by one fill and still open: how many, at what price, on which trading day."""

    qty: int
    px: Decimal
    day: date | None


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to a position: lots opened, lots closed (opened today or before), P&L."""

    opened: int
    closed_today: int
    closed_yesterday: int
    realized: Decimal


@dataclass(slots=True)
class Position:
    """Net lots of one instrument in one account, kept as FIFO lots; realized P&L and the mark.

    P&L is per lot, first in first out: a closing fill closes the oldest open lots first and
    realizes ``(close - open) x lots x lot size`` against each lot's own price, exactly (Decimal).
    ``cost`` is the sum of open lots' prices times their lots, so ``avg_px = cost / |qty|`` and
    unrealized P&L is ``(mark x |qty| - cost) x lot size``, signed by the side held. Each lot keeps
    its exchange trading day, which tells SHFE's close-today fills from close-yesterday ones.
    ``mark`` (the last mid, or the first fill's price) is exact money; a quote's mid is turned
    into it when first read, as most quotes are never looked at.
    """

    account: str
    instrument: Instrument
    qty: int = 0
    cost: Decimal = ZERO
    realized: Decimal = ZERO
    mark_ts: int = 0
    lots: deque[Lot] = field(default_factory=deque)
    _marked: Quote | Decimal | None = None
    _mark_cache: tuple[Quote | None, Decimal | None] = field(default=(None, None), repr=False, compare=False)

    @property
    def mark(self) -> Decimal | None:
        mid, self._mark_cache = lazy_mid(self._marked, self._mark_cache)
        return mid

    @mark.setter
    def mark(self, value: Decimal | None) -> None:
        self._marked = value

    def mark_on(self, quote: Quote) -> None:
        """Mark at ``quote``'s mid (one side of it has a price)."""
        self._marked, self.mark_ts = quote, quote.ts_event

    @property
    def avg_px(self) -> Decimal:
        """The average price of the open lots (zero when flat)."""
        return self.cost / abs(self.qty) if self.qty else ZERO

    def apply_fill(self, side: Side, px: Decimal, qty: int, day: date | None = None) -> FillEffect:
        """Apply a fill on trading day ``day``: close the oldest opposite lots, open the rest.

        Returns the lots it opened and closed and the P&L it realized (instrument currency).
        """
        direction = 1 if self.qty > 0 else -1
        left = qty
        realized = ZERO
        today = yesterday = 0
        if self.qty and (self.qty > 0) != (side is Side.BUY):
            lot_size = self.instrument.lot_size
            while left and self.lots:
                lot = self.lots[0]
                n = min(left, lot.qty)
                realized += (px - lot.px) * n * lot_size * direction
                self.cost -= lot.px * n
                if day is not None and lot.day == day:
                    today += n
                else:
                    yesterday += n
                left -= n
                lot.qty -= n
                if not lot.qty:
                    self.lots.popleft()
            self.qty -= direction * (qty - left)
        if left:
            self.lots.append(Lot(left, px, day))
            self.cost += px * left
            self.qty += side.sign * left
        self.realized += realized
        if self.mark is None:
            self.mark = px
        return FillEffect(left, today, yesterday, realized)

    @property
    def price(self) -> Decimal:
        return self.mark if self.mark is not None else self.avg_px

    @property
    def unrealized(self) -> Decimal:
        if not self.qty:
            return ZERO
        sign = 1 if self.qty > 0 else -1
        return (self.price * abs(self.qty) - self.cost) * sign * self.instrument.lot_size

    @property
    def notional(self) -> Decimal:
        return self.price * self.instrument.lot_size * abs(self.qty)


def priced(quote: Quote) -> bool:
    """Whether :func:`_mid` has a price to give (a positive, finite bid or ask)."""
    return 0.0 < quote.bid < math.inf or 0.0 < quote.ask < math.inf


def _mid(quote: Quote) -> Decimal | None:
    bid, ask = quote.bid, quote.ask
    ok_bid, ok_ask = bid > 0 and math.isfinite(bid), ask > 0 and math.isfinite(ask)
    if ok_bid and ok_ask:
        low = Decimal(str(bid))
        return low + (Decimal(str(ask)) - low) / 2
    if ok_bid or ok_ask:
        return Decimal(str(bid if ok_bid else ask))
    return None


MidCache = tuple[Quote | None, Decimal | None]


def lazy_mid(held: Quote | Decimal | None, cache: MidCache) -> tuple[Decimal | None, MidCache]:
    """The Decimal mid of a held quote (a held Decimal or None as is), and the cache to keep.

    Quotes are stored as they come and turned into a Decimal only when a figure is read: most
    quotes are never looked at. ``cache`` is the (quote, mid) of the last conversion.
    """
    if not isinstance(held, Quote):
        return held, cache
    if cache[0] is not held:
        cache = (held, _mid(held))
    return cache[1], cache
