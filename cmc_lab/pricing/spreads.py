"""Pure pricing layer: FX, import parity, spread values and executable spread quotes.

No IO, no engine, no threads. Live spreads, replay and research all call these functions, so
the number a research notebook computes from recorded quotes is the number the engine would
have traded on. Every price argument may be a Python float, a numpy array or an xarray
DataArray: the maths is elementwise (arrays broadcast, DataArrays align on their coordinates).
Units, FX rates and lot ratios live in :mod:`cmc_lab.pricing.units`; :mod:`cmc_lab.pricing`
gathers the public names of both.

Money conventions: CNY (onshore) and CNH (offshore) are treated as the same money unless
``FxRates.cnh_cny_basis`` says otherwise; the one FX rate held is USDCNH. A spread's value is
expressed in its first leg's currency per its first leg's price unit (CNY/g for au - GC).
Ratio spreads assume positive (landed) leg prices: buy = ask1 / bid2 only holds then.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import numpy as np

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote
from cmc_lab.pricing.formula import FX_NAMES, formula_leg_names, parse_formula
from cmc_lab.pricing.kernel import SpreadKernel
from cmc_lab.pricing.units import FxRates, PriceLike, convert_money, needs_fx, spread_units, unit_factor


def convert_price(
    price: PriceLike, from_inst: Instrument, to_inst: Instrument, fx: FxRates | None = None
) -> PriceLike:
    """A price of ``from_inst`` (its currency per its price unit) in ``to_inst``'s currency and unit.

    ``fx`` may be omitted when both are in the same money (CNY and CNH count as one).

    Examples
    --------
    COMEX gold at 2650 USD/oz in SHFE au's CNY/g, at USDCNH 7.25 (= 2650 * 7.25 / 31.1034768):

    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> gc, au = specs.instrument("COMEX.GC"), specs.instrument("SHFE.au")
    >>> round(convert_price(2650.0, gc, au, FxRates(usdcnh=7.25)), 4)
    617.6962
    """
    factor = unit_factor(from_inst.price_unit, to_inst.price_unit)
    return convert_money(price, from_inst.currency, to_inst.currency, fx) / factor


# --------------------------------------------------------------------------- cost terms


@dataclass(frozen=True, slots=True)
class CostTerms:
    """What it costs to bring one leg's price to the first leg's market (import parity).

    ``landed = (price + premium) -> FX and units -> * (1 + vat) + fixed``

    ``premium`` is in the leg's own currency per its price unit (added before FX), ``vat`` is
    multiplicative after FX (0.13 = 13 %), ``fixed`` is in the first leg's currency per its
    unit (added last). Frozen: edit with ``dataclasses.replace(terms, premium=95.0)``.

    Examples
    --------
    >>> import dataclasses
    >>> dataclasses.replace(COPPER_IMPORT_PARITY, premium=95.0)
    CostTerms(premium=95.0, vat=0.13, fixed=0.0)
    """

    premium: float = 0.0
    vat: float = 0.0
    fixed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("premium", "vat", "fixed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"CostTerms.{name} = {value!r} must be a finite number")
        if self.vat <= -1:
            raise ValueError(f"CostTerms.vat = {self.vat!r} must be above -1 (0.13 means 13 %)")

    @property
    def is_zero(self) -> bool:
        return self.premium == 0 and self.vat == 0 and self.fixed == 0


def import_costs(ids: Iterable[str], terms: Mapping[tuple[str, str], Any]) -> dict[str, CostTerms]:
    """The landing terms of each overseas leg whose domestic twin is also a leg (``Specs.import_terms``):
    VAT and bonded premium applied by default, as the domestic price includes them.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> import_costs(["SHFE.ag", "COMEX.SI"], load_specs().import_terms)
    {'COMEX.SI': CostTerms(premium=0.0, vat=0.13, fixed=0.0)}
    """
    legs = set(ids)
    return {
        overseas: CostTerms(premium=float(t.premium), vat=float(t.vat))
        for (domestic, overseas), t in terms.items()
        if domestic in legs and overseas in legs and (t.vat or t.premium)
    }


#: Copper import parity: ``cu - (LME + 80 USD/t bonded premium) * USDCNY * 1.13`` (as ``terms.toml`` ships it).
COPPER_IMPORT_PARITY = CostTerms(premium=80.0, vat=0.13, fixed=0.0)


def landed_price(
    price: PriceLike,
    from_inst: Instrument,
    to_inst: Instrument,
    fx: FxRates | None = None,
    costs: CostTerms | None = None,
) -> PriceLike:
    """``from_inst``'s price brought to ``to_inst``'s market: converted, plus the cost terms.

    Examples
    --------
    LME copper at 9200 USD/t landed in Shanghai (CNY/t), premium 80, VAT 13 %, USDCNH 7.25:

    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> lme, cu = specs.instrument("LME.CA"), specs.instrument("SHFE.cu")
    >>> round(landed_price(9200.0, lme, cu, FxRates(usdcnh=7.25), COPPER_IMPORT_PARITY), 2)
    76026.4
    """
    if costs is None or costs.is_zero:
        return convert_price(price, from_inst, to_inst, fx)
    converted = convert_price(price + costs.premium, from_inst, to_inst, fx)
    return converted * (1 + costs.vat) + costs.fixed


# --------------------------------------------------------------------------- spread definitions


@dataclass(frozen=True, slots=True)
class SpreadDef:
    """A spread between two or more instruments, valued in its first leg's currency and unit.

    ``kind="diff"``: ``sum(weight_i * landed_price_i)`` (first leg usually +1, hedge -1).
    ``kind="ratio"``: ``landed p1 / landed p2``; weights must be (+, -): buying the ratio buys
    the first leg and sells the second. ``costs`` maps a leg id to its :class:`CostTerms`.

    ``formula`` replaces the built-in value with an expression over the legs' raw prices by
    symbol (``au``) or ``VENUE_symbol`` (``SHFE_au``) and ``USDCNH`` / ``USDCNY``, e.g.
    ``"au - GC * USDCNH / 31.1034768"``. The weights' signs still say which side each leg
    trades on, so the formula must rise with positive-weight legs and fall with negative ones.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> SpreadDef.from_ids("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}, specs.instruments)
    SpreadDef('au_gc': +1 SHFE.au -1 COMEX.GC, diff in CNY/g)
    """

    name: str
    legs: tuple[tuple[Instrument, float], ...]
    kind: Literal["diff", "ratio"] = "diff"
    costs: Mapping[str, CostTerms] = field(default_factory=dict)
    formula: str | None = None
    _kernel: SpreadKernel | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"spread {self.name!r}"
        if not isinstance(self.name, str) or not self.name or any(c.isspace() for c in self.name):
            raise ValueError(
                f"spread name {self.name!r} must be one word without spaces, e.g. 'au_gc' "
                "(%cmc hedge NAME ... reads one word)"
            )
        if isinstance(self.legs, Mapping) or not isinstance(self.legs, Sequence):
            raise ValueError(
                f"{where}: legs must be a sequence of (Instrument, weight) pairs; "
                "to name legs by id use SpreadDef.from_ids(name, {'SHFE.au': 1, 'COMEX.GC': -1}, instruments)"
            )
        legs = tuple(_leg(item, where) for item in self.legs)
        object.__setattr__(self, "legs", legs)
        if len(legs) < 2:
            raise ValueError(f"{where} has {len(legs)} leg(s); a spread needs at least 2 legs")
        ids = [inst.id for inst, _ in legs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"{where}: leg {', '.join(duplicates)} appears more than once")
        if self.kind not in ("diff", "ratio"):
            raise ValueError(f"{where}: kind {self.kind!r} must be 'diff' or 'ratio'")
        if self.kind == "ratio" and len(legs) != 2:
            raise ValueError(f"{where}: a ratio spread needs exactly 2 legs, got {len(legs)}")
        if self.kind == "ratio" and not (legs[0][1] > 0 > legs[1][1]):
            raise ValueError(
                f"{where}: a ratio spread buys its first leg and sells its second; "
                f"give weights like +1 and -1, got {legs[0][1]:g} and {legs[1][1]:g}"
            )
        first = legs[0][0]
        for inst, _ in legs[1:]:
            try:
                unit_factor(inst.price_unit, first.price_unit)
                unit_factor(inst.lot_unit, first.lot_unit)
                needs_fx(inst.currency, first.currency)
            except ValueError as exc:
                raise ValueError(
                    f"{where}: leg {inst.id} ({inst.quote_unit}, lots in {inst.lot_unit}) cannot be "
                    f"converted to the first leg {first.id} ({first.quote_unit}): {exc}"
                ) from None
        costs = dict(self.costs)
        for leg_id, terms in costs.items():
            if leg_id not in ids:
                raise ValueError(f"{where}: costs for {leg_id!r}, which is not a leg; legs: {', '.join(ids)}")
            if not isinstance(terms, CostTerms):
                raise ValueError(f"{where}: costs[{leg_id!r}] = {terms!r} is not a CostTerms")
        object.__setattr__(self, "costs", MappingProxyType(costs))
        tree, names = (None, None) if self.formula is None else self._parse_formula(where)
        leg_costs = [costs.get(inst.id) for inst, _ in legs]
        kernel = SpreadKernel(
            self.name,
            self.kind,
            self.weights,
            [inst.currency for inst, _ in legs],
            [inst.price_unit for inst, _ in legs],
            [None if c is None or c.is_zero else (c.premium, c.vat, c.fixed) for c in leg_costs],
            self.formula,
            tree,
            names,
        )
        object.__setattr__(self, "_kernel", kernel)

    def _parse_formula(self, where: str) -> tuple[ast.expr, dict[str, int]]:
        if not isinstance(self.formula, str) or not self.formula.strip():
            raise ValueError(f"{where}: formula {self.formula!r} must be a non-empty string")
        if self.costs:
            raise ValueError(
                f"{where}: costs apply to the built-in diff and ratio; write them into the formula"
            )
        names = formula_leg_names(self.instruments)
        tree, used = parse_formula(self.formula, [*names, *FX_NAMES])
        used_legs = {names[name] for name in used if name in names}
        unused = [inst.id for i, inst in enumerate(self.instruments) if i not in used_legs]
        if unused:
            raise ValueError(
                f"{where}: formula {self.formula!r} does not use leg(s) {', '.join(unused)}; "
                f"leg names: {', '.join(names)}"
            )
        return tree, names

    @classmethod
    def from_ids(
        cls,
        name: str,
        legs: Mapping[str, float],
        instruments: Mapping[str, Instrument],
        kind: Literal["diff", "ratio"] = "diff",
        costs: Mapping[str, CostTerms] | None = None,
        formula: str | None = None,
    ) -> SpreadDef:
        """A spread with legs given by id, ``{"SHFE.au": 1, "COMEX.GC": -1}``, found in ``instruments``."""
        resolved = []
        for leg_id, weight in legs.items():
            if leg_id not in instruments:
                raise ValueError(
                    f"spread {name!r}: unknown instrument {leg_id!r}; known: {', '.join(sorted(instruments))}"
                )
            resolved.append((instruments[leg_id], weight))
        return cls(name, tuple(resolved), kind, dict(costs or {}), formula)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(inst.id for inst, _ in self.legs)

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        return tuple(inst for inst, _ in self.legs)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(weight for _, weight in self.legs)

    @property
    def kernel(self) -> SpreadKernel:
        """The spread's arithmetic resolved once: what every spread function evaluates through."""
        return self._kernel  # type: ignore[return-value]  # set by __post_init__

    @property
    def unit(self) -> str:
        """The unit of the spread's value: the first leg's quote unit (``CNY/g``), or ``ratio``."""
        return "ratio" if self.kind == "ratio" and self.formula is None else self.legs[0][0].quote_unit

    def __repr__(self) -> str:
        legs = " ".join(f"{weight:+g} {inst.id}" for inst, weight in self.legs)
        how = f"formula {self.formula!r}" if self.formula else self.kind
        return f"SpreadDef({self.name!r}: {legs}, {how} in {self.legs[0][0].quote_unit})"


def _leg(item: object, where: str) -> tuple[Instrument, float]:
    if not isinstance(item, Sequence) or len(item) != 2 or not isinstance(item[0], Instrument):
        raise ValueError(f"{where}: leg {item!r} must be an (Instrument, weight) pair")
    inst, weight = item
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise ValueError(f"{where}: weight of {inst.id} = {weight!r} must be a finite number")
    if weight == 0:
        raise ValueError(f"{where}: weight of {inst.id} is zero; drop the leg or give it a weight like -1")
    return inst, float(weight)


def _fx_args(fx: FxRates | None) -> tuple[PriceLike | None, PriceLike]:
    return (None, 0.0) if fx is None else (fx.usdcnh, fx.cnh_cny_basis)


# --------------------------------------------------------------------------- spread values


def spread_value(defn: SpreadDef, prices: Mapping[str, PriceLike], fx: FxRates | None = None) -> PriceLike:
    """The spread's value at one price per leg (``prices`` keyed by leg id), in the first leg's units.

    Examples
    --------
    The gold spread ``au - GC * USDCNH / 31.1034768`` in CNY/g:

    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> au_gc = SpreadDef.from_ids("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}, specs.instruments)
    >>> round(spread_value(au_gc, {"SHFE.au": 620.0, "COMEX.GC": 2650.0}, FxRates(usdcnh=7.25)), 4)
    2.3038
    """
    missing = [leg_id for leg_id in defn.ids if leg_id not in prices]
    if missing:
        raise ValueError(f"spread {defn.name!r}: no price for leg(s) {', '.join(missing)}")
    return defn.kernel.value([prices[leg_id] for leg_id in defn.ids], *_fx_args(fx))


def _executable(
    defn: SpreadDef, bids: Mapping[str, PriceLike], asks: Mapping[str, PriceLike], fx: FxRates | None
) -> tuple[PriceLike, PriceLike, PriceLike]:
    for leg_id in defn.ids:
        if leg_id not in bids or leg_id not in asks:
            raise ValueError(f"spread {defn.name!r}: no bid/ask for leg {leg_id}")
    ids = defn.ids
    return defn.kernel.executable([bids[i] for i in ids], [asks[i] for i in ids], *_fx_args(fx))


@dataclass(frozen=True, slots=True)
class SpreadQuote:
    """Executable top of book of a spread, in the first leg's units.

    ``bid`` is what selling one spread unit gets, ``ask`` what buying one costs, ``mid`` their
    midpoint; sizes are whole spread units available at the top of every leg's book.
    """

    bid: PriceLike
    ask: PriceLike
    mid: PriceLike
    bid_size: PriceLike
    ask_size: PriceLike


BookLike: TypeAlias = "Quote | tuple[PriceLike, PriceLike, PriceLike, PriceLike]"


def spread_quote(
    defn: SpreadDef,
    quotes: Mapping[str, BookLike],
    fx: FxRates | None = None,
    lots: Mapping[str, int] | None = None,
) -> SpreadQuote:
    """Executable bid/ask/mid and sizes of a spread from each leg's top of book.

    ``quotes`` maps a leg id to a :class:`~cmc_lab.core.model.Quote` or ``(bid, ask, bid_size,
    ask_size)`` (sizes in lots). FX converts at ``fx`` (pass the mid). ``lots`` is how many lots
    of each leg make one spread unit (default 1 each, e.g. ``{"SHFE.au": 28, "COMEX.GC": 9}``
    from :func:`~cmc_lab.pricing.units.best_lot_ratio`); a size is the minimum over legs of ``size // lots``.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> au_gc = SpreadDef.from_ids("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}, specs.instruments)
    >>> books = {"SHFE.au": (619.98, 620.02, 40, 35), "COMEX.GC": (2649.9, 2650.1, 12, 9)}
    >>> q = spread_quote(au_gc, books, FxRates(usdcnh=7.25), lots={"SHFE.au": 3, "COMEX.GC": 1})
    >>> round(q.bid, 3), round(q.ask, 3), q.bid_size, q.ask_size
    (2.26, 2.347, 9, 11)
    """
    books = [_book(defn, leg_id, quotes) for leg_id in defn.ids]
    per_unit = _lots_per_unit(defn, lots)
    bid, ask, mid = defn.kernel.executable([b[0] for b in books], [b[1] for b in books], *_fx_args(fx))
    # Selling the spread sells positive-weight legs into their bids and buys the others' asks.
    pos = defn.kernel.positive
    sell_sizes = [b[2] if p else b[3] for b, p in zip(books, pos, strict=True)]
    buy_sizes = [b[3] if p else b[2] for b, p in zip(books, pos, strict=True)]
    return SpreadQuote(bid, ask, mid, spread_units(sell_sizes, per_unit), spread_units(buy_sizes, per_unit))


def _book(defn: SpreadDef, leg_id: str, quotes: Mapping[str, BookLike]) -> tuple[PriceLike, ...]:
    if leg_id not in quotes:
        raise ValueError(f"spread {defn.name!r}: no quote for leg {leg_id}")
    book = quotes[leg_id]
    if isinstance(book, Quote):
        return book.bid, book.ask, book.bid_size, book.ask_size
    if isinstance(book, Sequence) and len(book) == 4:
        return tuple(book)
    raise ValueError(
        f"spread {defn.name!r}: quote for {leg_id} must be a Quote or (bid, ask, bid_size, ask_size)"
    )


def _lots_per_unit(defn: SpreadDef, lots: Mapping[str, int] | None) -> list[int]:
    lots = lots or {}
    unknown = [leg_id for leg_id in lots if leg_id not in defn.ids]
    if unknown:
        raise ValueError(
            f"spread {defn.name!r}: lots for {', '.join(unknown)}, which is not a leg; "
            f"legs: {', '.join(defn.ids)}"
        )
    out = []
    for leg_id in defn.ids:
        n = lots.get(leg_id, 1)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"spread {defn.name!r}: lots[{leg_id!r}] = {n!r} must be a whole number >= 1")
        out.append(int(n))
    return out


def spread_series(
    defn: SpreadDef,
    bids: Mapping[str, PriceLike],
    asks: Mapping[str, PriceLike],
    fx_mid: PriceLike | None = None,
    cnh_cny_basis: PriceLike = 0.0,
) -> dict[str, PriceLike]:
    """Executable ``bid``, ``ask`` and ``mid`` of a spread over recorded quotes, elementwise.

    The same code as :func:`spread_quote`: a number here is the number the engine would have
    seen. Pass numpy arrays (same shape) or xarray DataArrays (aligned on their coordinates).

    Examples
    --------
    >>> import numpy as np
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> au_gc = SpreadDef.from_ids("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}, specs.instruments)
    >>> out = spread_series(
    ...     au_gc,
    ...     bids={"SHFE.au": np.array([619.98, 621.0]), "COMEX.GC": np.array([2649.9, 2655.0])},
    ...     asks={"SHFE.au": np.array([620.02, 621.1]), "COMEX.GC": np.array([2650.1, 2655.2])},
    ...     fx_mid=np.array([7.25, 7.26]),
    ... )
    >>> np.round(out["bid"], 3)
    array([2.26 , 1.238])
    """
    fx = None if fx_mid is None else FxRates(fx_mid, cnh_cny_basis)
    bid, ask, mid = _executable(defn, bids, asks, fx)
    return {"bid": bid, "ask": ask, "mid": mid}


__all__ = [
    "COPPER_IMPORT_PARITY",
    "CostTerms",
    "SpreadDef",
    "SpreadQuote",
    "convert_price",
    "import_costs",
    "landed_price",
    "spread_quote",
    "spread_series",
    "spread_value",
]
