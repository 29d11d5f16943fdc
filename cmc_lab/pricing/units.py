"""Pure pricing layer, conversion ratios: units, FX rates, hedge lot ratios, spread units from lots.

No IO, no engine, no threads. :mod:`cmc_lab.pricing.spreads` builds prices on top of this module (unit
and FX conversion of a price, cost terms, spread values, executable quotes) and re-exports its
public names. CNY and CNH count as the same money unless ``FxRates.cnh_cny_basis`` says not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from cmc_lab.core.instruments import TROY_OUNCE_GRAMS, Instrument

if TYPE_CHECKING:
    import numpy.typing as npt
    import xarray as xr

#: A price, rate or size: a float, or a numpy array / xarray DataArray of them (elementwise).
PriceLike: TypeAlias = "float | npt.NDArray[Any] | xr.DataArray"

# --------------------------------------------------------------------------- units

TROY_OUNCE_G = float(TROY_OUNCE_GRAMS)
POUND_G = 453.59237
BARREL_GAL = 42.0

#: unit -> (dimension, size in the dimension's base unit: grams for mass, barrels for volume)
UNITS: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "g": ("mass", 1.0),
        "kg": ("mass", 1000.0),
        "oz": ("mass", TROY_OUNCE_G),  # troy ounce
        "lb": ("mass", POUND_G),
        "t": ("mass", 1_000_000.0),  # metric tonne
        "bbl": ("volume", 1.0),
        "gal": ("volume", 1.0 / BARREL_GAL),  # US gallon
    }
)


def _known_units() -> str:
    by_dim: dict[str, list[str]] = {}
    for unit, (dim, _) in UNITS.items():
        by_dim.setdefault(dim, []).append(unit)
    return "; ".join(f"{dim}: {', '.join(units)}" for dim, units in by_dim.items())


def unit_factor(from_unit: str, to_unit: str) -> float:
    """How many ``to_unit`` make one ``from_unit``.

    Mass: g, kg, oz (troy ounce, 31.1034768 g), lb (453.59237 g), t (metric tonne).
    Volume: bbl, gal (1/42 bbl). Unknown or incompatible units raise ValueError.

    Examples
    --------
    >>> unit_factor("oz", "g")
    31.1034768
    >>> unit_factor("t", "kg")
    1000.0
    >>> unit_factor("bbl", "gal")
    42.0
    """
    unknown = [u for u in (from_unit, to_unit) if u not in UNITS]
    if unknown:
        names = " and ".join(dict.fromkeys(repr(u) for u in unknown))
        raise ValueError(f"unknown unit {names}; known units are {_known_units()}")
    (dim_from, base_from), (dim_to, base_to) = UNITS[from_unit], UNITS[to_unit]
    if dim_from != dim_to:
        raise ValueError(
            f"cannot convert {from_unit!r} ({dim_from}) to {to_unit!r} ({dim_to}); "
            f"known units are {_known_units()}"
        )
    return base_from / base_to


# --------------------------------------------------------------------------- currencies

_USD = "USD"
_CNY_LIKE = frozenset({"CNY", "CNH"})
_KNOWN_CURRENCIES = ("USD", "CNY", "CNH")


def _missing_rate(from_ccy: str, to_ccy: str) -> ValueError:
    unknown = next(c for c in (from_ccy, to_ccy) if c.upper() not in _KNOWN_CURRENCIES)
    return ValueError(
        f"missing FX rate USD{unknown.upper()} to convert {from_ccy} to {to_ccy}; FxRates holds "
        f"USDCNH only and converts between {', '.join(_KNOWN_CURRENCIES)} (CNY and CNH count as "
        "the same money, see cnh_cny_basis)"
    )


def needs_fx(from_ccy: str, to_ccy: str) -> bool:
    """Whether converting needs an FX rate; a ValueError names a rate FxRates lacks.

    Examples
    --------
    >>> needs_fx("CNH", "CNY"), needs_fx("USD", "CNY")
    (False, True)
    """
    f, t = from_ccy.upper(), to_ccy.upper()
    if f == t or {f, t} <= _CNY_LIKE:
        return False
    if f not in _KNOWN_CURRENCIES or t not in _KNOWN_CURRENCIES:
        raise _missing_rate(from_ccy, to_ccy)
    return True


@dataclass(frozen=True, slots=True)
class FxRates:
    """The FX rate(s) a conversion uses: USDCNH (CNH per USD), a float or an array.

    CNY and CNH are treated as the same money: USDCNY = USDCNH + ``cnh_cny_basis`` (CNY per
    USD, default 0). Set the basis when the onshore rate differs: a CNY price (SHFE, INE) then
    converts at USDCNY, a CNH amount at USDCNH. NaN rates propagate (a gap stays a gap).

    Examples
    --------
    >>> fx = FxRates(usdcnh=7.25)
    >>> fx.convert(100.0, "USD", "CNY")
    725.0
    >>> fx.convert(725.0, "CNH", "USD")
    100.0
    >>> FxRates(usdcnh=7.25, cnh_cny_basis=-0.01).usdcny
    7.24
    """

    usdcnh: PriceLike
    cnh_cny_basis: PriceLike = 0.0

    def __post_init__(self) -> None:
        for name in ("usdcnh", "cnh_cny_basis"):
            value = getattr(self, name)
            if isinstance(value, str | bool) or value is None:
                raise ValueError(f"FxRates.{name} = {value!r} is not a number; pass e.g. usdcnh=7.25")
        rate = self.usdcnh
        # A plain number is compared as it is (a NaN passes: gaps propagate); arrays through numpy.
        below = (
            rate <= 0
            if type(rate) is float or type(rate) is int
            else np.any(np.asarray(rate, dtype=float) <= 0)
        )
        if below:
            raise ValueError(f"FxRates.usdcnh must be above zero, got {self.usdcnh!r}")

    @property
    def usdcny(self) -> PriceLike:
        """The onshore rate: USDCNH plus the CNH/CNY basis."""
        return self.usdcnh + self.cnh_cny_basis

    def per_usd(self, currency: str) -> PriceLike:
        """Units of ``currency`` in one USD (1 for USD itself)."""
        ccy = currency.upper()
        if ccy == _USD:
            return 1.0
        if ccy == "CNH":
            return self.usdcnh
        if ccy == "CNY":
            return self.usdcny
        raise _missing_rate(_USD, currency)

    def convert(self, amount: PriceLike, from_ccy: str, to_ccy: str) -> PriceLike:
        """``amount`` of ``from_ccy`` expressed in ``to_ccy``."""
        if from_ccy.upper() == to_ccy.upper():
            return amount
        if not needs_fx(from_ccy, to_ccy) and _is_zero(self.cnh_cny_basis):
            return amount  # CNY <-> CNH at a zero basis
        return amount * self.per_usd(to_ccy) / self.per_usd(from_ccy)


def _is_zero(value: PriceLike) -> bool:
    return isinstance(value, int | float) and value == 0


def convert_money(amount: PriceLike, from_ccy: str, to_ccy: str, fx: FxRates | None = None) -> PriceLike:
    """``amount`` of ``from_ccy`` in ``to_ccy``; ``fx`` may be omitted between the same money."""
    if fx is not None:
        return fx.convert(amount, from_ccy, to_ccy)
    if needs_fx(from_ccy, to_ccy):
        raise ValueError(
            f"converting {from_ccy} to {to_ccy} needs the USDCNH rate; pass fx=FxRates(usdcnh=...)"
        )
    return amount


# --------------------------------------------------------------------------- lot ratios


@dataclass(frozen=True, slots=True)
class LotRatio:
    """``a_lots`` of instrument a against ``b_lots`` of instrument b, and what is left unhedged.

    ``residual`` is ``(a_lots * qty_a - b_lots * qty_b) / (b_lots * qty_b)`` (negative: the a
    side holds less than the b side); ``residual_lots`` is that excess quantity in a's lots,
    ``residual_qty`` in physical ``unit`` (a's lot unit).
    """

    a_lots: int
    b_lots: int
    residual: float
    residual_lots: float
    residual_qty: float
    unit: str

    def __repr__(self) -> str:
        return (
            f"LotRatio({self.a_lots}:{self.b_lots}, residual {self.residual:+.3%}, "
            f"{self.residual_lots:+.4g} lots = {self.residual_qty:+.6g} {self.unit})"
        )


def _lot_quantities(inst_a: Instrument, inst_b: Instrument) -> tuple[float, float]:
    try:
        factor = unit_factor(inst_b.lot_unit, inst_a.lot_unit)
    except ValueError as exc:
        raise ValueError(f"cannot compare lots of {inst_a.id} and {inst_b.id}: {exc}") from None
    return float(inst_a.lot_size), float(inst_b.lot_size) * factor


def exact_lot_ratio(inst_a: Instrument, inst_b: Instrument) -> float:
    """How many lots of ``inst_a`` hold the quantity of one lot of ``inst_b``.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> round(exact_lot_ratio(specs.instrument("SHFE.au"), specs.instrument("COMEX.GC")), 4)
    3.1103
    """
    qty_a, qty_b = _lot_quantities(inst_a, inst_b)
    return qty_b / qty_a


def _reduced_ratios(inst_a: Instrument, inst_b: Instrument, max_lots: int) -> list[LotRatio]:
    qty_a, qty_b = _lot_quantities(inst_a, inst_b)
    found = []
    for a in range(1, max_lots + 1):
        for b in range(1, max_lots + 1):
            if math.gcd(a, b) == 1:  # a multiple of a smaller pair has the same residual
                excess = a * qty_a - b * qty_b
                found.append(LotRatio(a, b, excess / (b * qty_b), excess / qty_a, excess, inst_a.lot_unit))
    return sorted(found, key=lambda r: (r.a_lots + r.b_lots, r.a_lots))


def lot_ratios(
    inst_a: Instrument, inst_b: Instrument, max_lots: int = 30, tolerance: float = 0.02
) -> list[LotRatio]:
    """Whole-lot hedge ratios ``a:b`` (both <= ``max_lots``) within ``tolerance``, smallest first.

    Quantities per lot come from ``lot_size`` and ``lot_unit``. Only reduced pairs are
    listed: 6:2 has the residual of 3:1, so only 3:1 appears.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> lot_ratios(specs.instrument("SHFE.au"), specs.instrument("COMEX.GC"), tolerance=0.001)
    [LotRatio(28:9, residual +0.025%, +0.006871 lots = +6.87088 g)]
    """
    if isinstance(max_lots, bool) or not isinstance(max_lots, int) or max_lots < 1:
        raise ValueError(f"max_lots = {max_lots!r} must be a whole number >= 1")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance = {tolerance!r} must be a finite fraction >= 0, e.g. 0.02 for 2 %")
    return [r for r in _reduced_ratios(inst_a, inst_b, max_lots) if abs(r.residual) <= tolerance]


def best_lot_ratio(
    inst_a: Instrument, inst_b: Instrument, max_lots: int = 30, tolerance: float = 0.02
) -> LotRatio:
    """The smallest whole-lot ratio within ``tolerance``; a ValueError naming the closest if none is.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> best_lot_ratio(specs.instrument("SHFE.au"), specs.instrument("COMEX.GC"), tolerance=0.04)
    LotRatio(3:1, residual -3.548%, -0.1103 lots = -110.348 g)
    """
    ratios = lot_ratios(inst_a, inst_b, max_lots, tolerance)
    if ratios:
        return ratios[0]
    closest = min(_reduced_ratios(inst_a, inst_b, max_lots), key=lambda r: abs(r.residual))
    raise ValueError(
        f"no lot ratio {inst_a.id}:{inst_b.id} with at most {max_lots} lots each is within "
        f"{tolerance:.2%}; the closest is {closest.a_lots}:{closest.b_lots} ({closest.residual:+.2%}); "
        "raise tolerance or max_lots"
    )


def spread_units(sizes: Sequence[PriceLike], lots: Sequence[int]) -> PriceLike:
    """Whole spread units available: the minimum over legs of ``size // lots`` (elementwise).

    Examples
    --------
    40 au lots and 9 GC lots at the top of book, 3 au per GC:

    >>> spread_units([40, 9], [3, 1])
    9
    """
    if len(sizes) == len(lots):  # plain ints (live quotes): the same floor division, without numpy
        least = None
        for size, n in zip(sizes, lots, strict=True):
            if type(size) is not int or type(n) is not int:
                break
            whole = size // n
            if least is None or whole < least:
                least = whole
        else:
            if least is not None:
                return least
    units = [np.floor_divide(size, n) for size, n in zip(sizes, lots, strict=True)]
    out = units[0]
    for value in units[1:]:
        out = np.minimum(out, value)
    if isinstance(out, np.generic | int | float):
        return int(out) if math.isfinite(out) else float(out)
    return out


__all__ = [
    "BARREL_GAL",
    "POUND_G",
    "TROY_OUNCE_G",
    "UNITS",
    "FxRates",
    "LotRatio",
    "PriceLike",
    "best_lot_ratio",
    "convert_money",
    "exact_lot_ratio",
    "lot_ratios",
    "needs_fx",
    "spread_units",
    "unit_factor",
]
