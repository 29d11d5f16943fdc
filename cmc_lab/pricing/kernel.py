"""The spread kernel: one spread's arithmetic, resolved once from plain values.

Split from :mod:`cmc_lab.pricing.spreads` because it is the hot path: the live spread recomputes through
these per-leg factors on every quote, and research evaluates the same operations on arrays, so
the two agree to the last bit. ``SpreadDef`` checks a spread and builds its kernel from the
legs' weights, currencies, price units, cost terms and parsed formula; the kernel knows
nothing of ``SpreadDef``. Pure: no IO, no engine.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cmc_lab.pricing.formula import evaluate
from cmc_lab.pricing.units import PriceLike, needs_fx, unit_factor

_SAME_MONEY = (1.0, 1.0)  # (multiply, divide) of a leg priced in the first leg's money
_PER_USD = {"USD": 0, "CNH": 1}  # where _per_usd's answer sits in (1.0, usdcnh, usdcnh + basis)
_LAST_RATES: dict[tuple[int, tuple[tuple[int, int, int], ...]], list[tuple[float, tuple[Any, ...]]]] = {}


def _per_usd(currency: str, usdcnh: PriceLike, basis: PriceLike) -> PriceLike:
    # FxRates.per_usd without the object: currencies were checked before the kernel was built.
    if currency == "USD":
        return 1.0
    return usdcnh if currency == "CNH" else usdcnh + basis


class SpreadKernel:
    """The arithmetic of one spread, resolved once: per-leg factors, then ``+ - * /``.

    Built from plain values, one per leg in leg order (the first leg's money and unit are the
    spread's): ``weights``, ``currencies``, ``price_units`` and ``costs`` (``(premium, vat,
    fixed)`` as in ``CostTerms``, or None for none). A formula spread also passes its text,
    its parsed ``formula_tree`` and ``formula_names`` (name in the formula -> leg index), as
    :func:`~cmc_lab.pricing.formula.parse_formula` gives them. No checks here: ``SpreadDef``
    makes them before it builds its kernel.

    ``landed`` brings one leg's price to the first leg's money and unit (FX, unit factor, cost
    terms) and ``combine`` joins the landed legs (weighted sum, or first over second for a
    ratio). :func:`spread_value`, :func:`spread_quote` and :func:`spread_series` evaluate
    through these two methods, on floats or elementwise on arrays; the live spread's per-quote
    path writes the same operations out from :attr:`leg_terms` (a call costs more than the
    arithmetic there; its tests check the bits), so their numbers agree to the last bit. The
    operations and their order are those of :func:`landed_price`:
    ``((price + premium) * to / from) / unit factor * (1 + vat) + fixed``.

    Examples
    --------
    The gold spread ``au - GC * USDCNH / 31.1034768`` (SHFE au in CNY/g, COMEX GC in USD/oz):

    >>> k = SpreadKernel("au_gc", "diff", (1.0, -1.0), ("CNY", "USD"), ("g", "oz"), (None, None))
    >>> rates = k.rates(7.25)
    >>> round(k.combine([k.landed(0, 620.0, rates[0]), k.landed(1, 2650.0, rates[1])]), 4)
    2.3038
    """

    __slots__ = (
        "_converted",
        "_costs",
        "_factors",
        "_last_rates",
        "_money",
        "_names",
        "_same",
        "_tree",
        "formula",
        "fx_legs",
        "kind",
        "leg_terms",
        "n",
        "name",
        "positive",
        "weights",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        weights: Sequence[float],
        currencies: Sequence[str],
        price_units: Sequence[str],
        costs: Sequence[tuple[float, float, float] | None],
        formula: str | None = None,
        formula_tree: ast.expr | None = None,
        formula_names: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.formula = formula
        self.weights = tuple(weights)
        self.positive = tuple(w > 0 for w in self.weights)
        self.n = len(self.weights)
        self._tree = formula_tree
        self._names = dict(formula_names or {})
        money, factors = [], []
        t, to_unit = currencies[0], price_units[0]  # every leg lands in the first leg's money and unit
        for f, unit in zip(currencies, price_units, strict=True):
            money.append((f, t, f.upper(), t.upper(), needs_fx(f, t)))
            factors.append(unit_factor(unit, to_unit))
        costs = [None if c is None else (c[0], 1 + c[1], c[2]) for c in costs]
        self._money = tuple(money)
        self._factors = tuple(factors)
        self._costs = tuple(costs)
        #: Per leg: (unit factor, cost terms as (premium, 1 + vat, fixed) or None, positive weight),
        #: what :meth:`landed_pair` lands a leg with (the live spread writes its operations out).
        self.leg_terms = tuple(zip(self._factors, self._costs, self.positive, strict=True))
        #: The legs an FX rate converts (CNY and CNH count as one money): the only ones whose
        #: entry of :meth:`rates` moves with the rate while there is no CNH/CNY basis.
        self.fx_legs = tuple(i for i, m in enumerate(money) if m[4])
        # rates() without a basis: per converted leg, where (multiply, divide) come from in
        # (1.0, usdcnh, usdcny), and the rates when no leg is converted.
        self._converted = tuple(
            (i, _PER_USD.get(m[3], 2), _PER_USD.get(m[2], 2)) for i, m in enumerate(money) if m[4]
        )
        self._same = (_SAME_MONEY,) * self.n
        # The last float rate's answer, shared by every kernel that converts the same way: one FX
        # quote re-rates all the live spreads, and most of them alike (CNY first leg, USD hedge).
        self._last_rates = _LAST_RATES.setdefault((self.n, self._converted), [(math.nan, self._same)])

    def rates(self, usdcnh: PriceLike | None, basis: PriceLike = 0.0) -> tuple[tuple[Any, Any], ...]:
        """Per leg, ``(multiply, divide)`` taking its money to the first leg's at USDCNH ``usdcnh``.

        ``usdcnh=None`` (no rate) is fine while every leg is in the first leg's money; otherwise
        a ValueError names the conversion that needs the rate.
        """
        zero_basis = isinstance(basis, int | float) and basis == 0
        if zero_basis and usdcnh is not None:  # CNY and CNH are one money: the loop below, short
            return self._one_money_rates(usdcnh, basis)
        out: list[tuple[Any, Any]] = []
        for f, t, f_up, t_up, needs in self._money:
            if usdcnh is None:
                if needs:
                    raise ValueError(
                        f"converting {f} to {t} needs the USDCNH rate; pass fx=FxRates(usdcnh=...)"
                    )
                out.append(_SAME_MONEY)
            elif f_up == t_up or (zero_basis and not needs):
                out.append(_SAME_MONEY)
            else:
                out.append((_per_usd(t_up, usdcnh, basis), _per_usd(f_up, usdcnh, basis)))
        return tuple(out)

    def live_rates(self, usdcnh: float) -> tuple[tuple[float, float], ...]:
        """:meth:`rates` at a live FX mid (a positive float, no CNH/CNY basis).

        The last answer is kept, shared by every kernel that converts alike: one FX quote
        re-rates every live spread, most of them the same way (a CNY first leg, a USD hedge).
        Equal positive floats have the same bits, so a kept answer is the one it would compute.
        """
        last = self._last_rates[0]
        if last[0] == usdcnh:
            return last[1]
        rates = self._one_money_rates(usdcnh, 0.0)
        self._last_rates[0] = (usdcnh, rates)
        return rates

    def _one_money_rates(self, usdcnh: PriceLike, basis: PriceLike) -> tuple[tuple[Any, Any], ...]:
        if not self._converted:
            return self._same
        per_usd = (1.0, usdcnh, usdcnh + basis)  # what _per_usd gives for USD, CNH, CNY
        out: list[tuple[Any, Any]] = list(self._same)
        for i, to_ccy, from_ccy in self._converted:
            out[i] = (per_usd[to_ccy], per_usd[from_ccy])
        return tuple(out)

    def landed(self, i: int, price: PriceLike, rate: tuple[Any, Any]) -> PriceLike:
        """Leg ``i``'s ``price`` in the first leg's money and unit, cost terms included."""
        cost = self._costs[i]
        if cost is None:
            return price * rate[0] / rate[1] / self._factors[i]
        return (price + cost[0]) * rate[0] / rate[1] / self._factors[i] * cost[1] + cost[2]

    def landed_pair(self, i: int, bid: PriceLike, ask: PriceLike, rate: tuple[Any, Any]) -> tuple[Any, Any]:
        """Leg ``i``'s landed prices (as :meth:`landed`) in the order ``(selling the spread, buying
        it)``: a positive-weight leg is sold at its bid when the spread is sold, a negative one
        bought back at its ask."""
        m, d = rate
        factor, cost, positive = self.leg_terms[i]
        if cost is None:
            low, high = bid * m / d / factor, ask * m / d / factor
        else:
            premium, vat, fixed = cost
            low = (bid + premium) * m / d / factor * vat + fixed
            high = (ask + premium) * m / d / factor * vat + fixed
        return (low, high) if positive else (high, low)

    def combine_pair(self, sell: list[Any], buy: list[Any]) -> tuple[Any, Any]:
        """Executable ``(bid, ask)`` from the legs' landed prices when selling and when buying."""
        if self.n == 2:  # combine(), inlined for the common two-leg spread: the same operations
            if self.kind == "ratio":
                return sell[0] / sell[1], buy[0] / buy[1]
            w0, w1 = self.weights
            return w0 * sell[0] + w1 * sell[1], w0 * buy[0] + w1 * buy[1]
        return self.combine(sell), self.combine(buy)

    def combine(self, landed: list[Any]) -> PriceLike:
        """The spread's value from its legs' landed prices, in leg order."""
        if self.kind == "ratio":
            return landed[0] / landed[1]
        w = self.weights
        if self.n == 2:  # the loop below, unrolled: the same two products and one sum
            return w[0] * landed[0] + w[1] * landed[1]
        total = w[0] * landed[0]
        for k in range(1, self.n):
            total = total + w[k] * landed[k]
        return total

    def value(self, prices: list[Any], usdcnh: PriceLike | None, basis: PriceLike = 0.0) -> PriceLike:
        """The spread's value at one (raw) price per leg, in leg order."""
        if self._tree is not None:
            env: dict[str, PriceLike] = {name: prices[i] for name, i in self._names.items()}
            if usdcnh is not None:
                env.update(USDCNH=usdcnh, USDCNY=usdcnh + basis)
            try:
                with np.errstate(all="ignore"):
                    result: PriceLike = evaluate(self._tree, env)
            except KeyError as exc:
                raise ValueError(
                    f"spread {self.name!r}: the formula uses {exc.args[0]}; pass fx=FxRates(usdcnh=...)"
                ) from None
            return result
        rates = self.rates(usdcnh, basis)
        return self.combine([self.landed(i, prices[i], rates[i]) for i in range(self.n)])

    def executable(
        self, bids: list[Any], asks: list[Any], usdcnh: PriceLike | None, basis: PriceLike = 0.0
    ) -> tuple[PriceLike, PriceLike, PriceLike]:
        """Executable ``(bid, ask, mid)``: buying buys positive-weight legs at their ask and sells the
        others at their bid; selling is the mirror. A ratio has weights (+, -): buy = ask1 / bid2.
        """
        if self._tree is not None:
            pos = self.positive
            bid = self.value([bids[i] if pos[i] else asks[i] for i in range(self.n)], usdcnh, basis)
            ask = self.value([asks[i] if pos[i] else bids[i] for i in range(self.n)], usdcnh, basis)
        else:
            rates = self.rates(usdcnh, basis)
            pairs = [self.landed_pair(i, bids[i], asks[i], rates[i]) for i in range(self.n)]
            bid, ask = self.combine_pair([p[0] for p in pairs], [p[1] for p in pairs])
        return bid, ask, (bid + ask) / 2
