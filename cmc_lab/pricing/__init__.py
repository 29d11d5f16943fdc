"""Pricing: spread math (units, FX, import terms, executable prices, the spread kernel); pure.

The names users import live here: ``from cmc_lab.pricing import SpreadDef, FxRates, spread_quote``.
Modules inside cmc_lab import from the submodules (:mod:`cmc_lab.pricing.spreads`,
:mod:`cmc_lab.pricing.units`), never from this package, so no import cycle runs through it.
"""

from cmc_lab.pricing.spreads import (
    COPPER_IMPORT_PARITY,
    CostTerms,
    SpreadDef,
    SpreadQuote,
    convert_price,
    landed_price,
    spread_quote,
    spread_series,
    spread_value,
)
from cmc_lab.pricing.units import (
    BARREL_GAL,
    POUND_G,
    TROY_OUNCE_G,
    UNITS,
    FxRates,
    LotRatio,
    PriceLike,
    best_lot_ratio,
    convert_money,
    exact_lot_ratio,
    lot_ratios,
    needs_fx,
    spread_units,
    unit_factor,
)

__all__ = [
    "BARREL_GAL",
    "COPPER_IMPORT_PARITY",
    "POUND_G",
    "TROY_OUNCE_G",
    "UNITS",
    "CostTerms",
    "FxRates",
    "LotRatio",
    "PriceLike",
    "SpreadDef",
    "SpreadQuote",
    "best_lot_ratio",
    "convert_money",
    "convert_price",
    "exact_lot_ratio",
    "landed_price",
    "lot_ratios",
    "needs_fx",
    "spread_quote",
    "spread_series",
    "spread_units",
    "spread_value",
    "unit_factor",
]
