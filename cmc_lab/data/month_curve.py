"""The simulated market's later contract months, priced off the product's path.

The embedded exchange's product path (``SimMarket``) is the main month's fair price. A later month
trades at the main month times its carry premium (``contracts.toml``'s ``carry``: yearly, as the
cost of carry makes deferred gold dearer) plus its own calendar-spread noise, a mean-reverting
walk drawn from a generator of its own, so listing more months never changes the main months' path
(the same seed gives the same prices with or without them). Deferred months are thinner: wider
half spread, less size at the top. :class:`FairQuote` is where the simulated liquidity quotes an
instrument, product or month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cmc_lab.core.instruments import Instrument

_SPREAD_SD_TICKS = 3.0  # stationary sd of a calendar spread around its carry, in ticks
_SPREAD_HALF_LIFE = 60.0  # seconds
_STREAM = 0x6D6F6E7468  # the month noise's own generator stream ("month")


@dataclass(frozen=True, slots=True)
class FairQuote:
    """Where the simulated liquidity quotes one instrument: fair ``mid``, half spread, size at top."""

    mid: float
    half_spread_ticks: int
    top_size: int
    regime: str  # "normal" or "thin"


@dataclass(slots=True)
class _Month:
    product: str
    premium: float  # fair = product fair * premium + noise
    tick: float
    main: bool  # the main month is the product's own path
    noise: float = 0.0


class MonthCurve:
    """Fair quotes of every listed contract month from the product's fair quote, one step at a time."""

    def __init__(
        self,
        contracts: list[Instrument],
        products: dict[str, Instrument],
        main: set[str],
        seed: int,
        dt: float,
    ) -> None:
        self.months: dict[str, _Month] = {}
        for inst in contracts:
            base = float(products[inst.product].reference_price)
            premium = float(inst.reference_price) / base if base else 1.0
            self.months[inst.id] = _Month(inst.product, premium, float(inst.tick), inst.id in main)
        self._rng = np.random.Generator(np.random.PCG64([seed, _STREAM]))
        keep = math.exp(-math.log(2) * dt / _SPREAD_HALF_LIFE)
        self._keep = keep
        self._shock_sd = _SPREAD_SD_TICKS * math.sqrt(1 - keep * keep)

    def product_of(self, instrument_id: str) -> str:
        """The product path an id moves with (itself when it is no contract month)."""
        month = self.months.get(instrument_id)
        return month.product if month is not None else instrument_id

    def extend(self, quotes: dict[str, FairQuote], step: bool) -> dict[str, FairQuote]:
        """``quotes`` (by product, built fresh for each step) with a fair quote for every contract month
        added in place; ``step`` moves the noise."""
        draws = self._rng.standard_normal(len(self.months)) if step and self.months else None
        for k, (iid, month) in enumerate(self.months.items()):
            base = quotes[month.product]
            if month.main:
                quotes[iid] = base
                continue
            if draws is not None:
                month.noise = month.noise * self._keep + self._shock_sd * float(draws[k])
            mid = max(base.mid * month.premium + month.noise * month.tick, 2 * month.tick)
            quotes[iid] = FairQuote(mid, base.half_spread_ticks + 1, max(1, base.top_size // 2), base.regime)
        return quotes
