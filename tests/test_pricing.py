"""Tests for cmc_lab.pricing: units, FX, import parity, spreads, executable quotes, lot ratios."""

from __future__ import annotations

import dataclasses
import doctest
import math
import os
from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote
from cmc_lab.core.specs import ENV_VAR, load_specs
from cmc_lab.pricing import (
    COPPER_IMPORT_PARITY,
    CostTerms,
    FxRates,
    SpreadDef,
    best_lot_ratio,
    convert_price,
    exact_lot_ratio,
    kernel,
    landed_price,
    lot_ratios,
    needs_fx,
    spread_quote,
    spread_series,
    spread_units,
    spread_value,
    spreads,
    unit_factor,
    units,
)

OZ = 31.1034768
FX = FxRates(usdcnh=7.25)


def _shipped() -> dict[str, Instrument]:
    saved = os.environ.pop(ENV_VAR, None)  # the shipped contracts, whatever the user's extension file
    try:
        return load_specs().instruments
    finally:
        if saved is not None:
            os.environ[ENV_VAR] = saved


INSTRUMENTS = _shipped()


def inst(instrument_id: str) -> Instrument:
    return INSTRUMENTS[instrument_id]


def spread(legs: Mapping[str, float], **kwargs: object) -> SpreadDef:
    return SpreadDef.from_ids("test", legs, INSTRUMENTS, **kwargs)  # type: ignore[arg-type]


AU_GC = {"SHFE.au": 1, "COMEX.GC": -1}


# ------------------------------------------------------------------------------------ units


def test_unit_factor_troy_ounce_pound_tonne_and_gallon() -> None:
    assert unit_factor("oz", "g") == OZ
    assert unit_factor("g", "oz") == pytest.approx(1 / OZ, rel=1e-15)
    assert unit_factor("lb", "g") == 453.59237
    assert unit_factor("t", "kg") == 1000.0
    assert unit_factor("kg", "oz") == pytest.approx(1000 / OZ)
    assert unit_factor("bbl", "gal") == 42.0
    assert unit_factor("gal", "bbl") == pytest.approx(1 / 42)
    assert unit_factor("g", "g") == 1.0


def test_unknown_unit_names_it_and_lists_known_units() -> None:
    with pytest.raises(ValueError, match=r"unknown unit 'lots'.*mass: g, kg, oz, lb, t; volume: bbl, gal"):
        unit_factor("lots", "g")
    with pytest.raises(ValueError, match=r"unknown unit 'stone' and 'ton'"):
        unit_factor("stone", "ton")


def test_incompatible_units_name_both_dimensions() -> None:
    with pytest.raises(ValueError, match=r"cannot convert 'g' \(mass\) to 'bbl' \(volume\)"):
        unit_factor("g", "bbl")


# ------------------------------------------------------------------------------- currencies


def test_fx_converts_usd_to_cny_and_cnh_and_back() -> None:
    assert FX.convert(100.0, "USD", "CNY") == 725.0
    assert FX.convert(100.0, "USD", "CNH") == 725.0
    assert FX.convert(725.0, "CNY", "USD") == 100.0
    assert FX.convert(5.0, "USD", "USD") == 5.0


def test_cny_and_cnh_are_the_same_money_unless_a_basis_is_given() -> None:
    assert FX.convert(123.45, "CNH", "CNY") == 123.45
    cnh_gold = dataclasses.replace(inst("SHFE.au"), currency="CNH")
    assert convert_price(620.0, inst("SHFE.au"), cnh_gold) == 620.0
    basis = FxRates(usdcnh=7.25, cnh_cny_basis=0.05)
    assert basis.usdcny == pytest.approx(7.30)
    assert basis.convert(100.0, "USD", "CNY") == pytest.approx(730.0)
    assert basis.convert(725.0, "CNH", "CNY") == pytest.approx(730.0)


def test_unknown_currency_says_which_rate_is_missing() -> None:
    with pytest.raises(ValueError, match=r"missing FX rate USDEUR to convert EUR to CNY"):
        FX.convert(1.0, "EUR", "CNY")
    with pytest.raises(ValueError, match=r"missing FX rate USDJPY"):
        FX.convert(1.0, "USD", "JPY")


@pytest.mark.parametrize("rate", [0.0, -7.25, np.array([7.2, 0.0])])
def test_fx_rate_must_be_positive(rate: object) -> None:
    with pytest.raises(ValueError, match="above zero"):
        FxRates(usdcnh=rate)  # type: ignore[arg-type]


def test_fx_rate_as_text_is_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        FxRates(usdcnh="7.25")  # type: ignore[arg-type]


def test_converting_across_currencies_without_fx_asks_for_it() -> None:
    with pytest.raises(ValueError, match=r"converting USD to CNY needs the USDCNH rate; pass fx="):
        convert_price(2650.0, inst("COMEX.GC"), inst("SHFE.au"))


def test_convert_price_gold_usd_per_oz_to_cny_per_g() -> None:
    assert convert_price(2650.0, inst("COMEX.GC"), inst("SHFE.au"), FX) == 2650.0 * 7.25 / OZ


# --------------------------------------------------------------------------- spread values


def test_gold_spread_is_au_minus_gc_times_usdcnh_over_troy_ounce() -> None:
    value = spread_value(spread(AU_GC), {"SHFE.au": 620.0, "COMEX.GC": 2650.0}, FX)
    assert value == 620.0 - 2650.0 * 7.25 / 31.1034768
    assert spread(AU_GC).unit == "CNY/g"


def test_silver_spread_in_cny_per_kg() -> None:
    value = spread_value(spread({"SHFE.ag": 1, "COMEX.SI": -1}), {"SHFE.ag": 7300.0, "COMEX.SI": 31.0}, FX)
    assert value == pytest.approx(7300.0 - 31.0 * 7.25 / OZ * 1000, rel=1e-12)


def test_copper_import_parity_with_named_cost_terms() -> None:
    defn = spread({"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": COPPER_IMPORT_PARITY})
    prices = {"SHFE.cu": 76200.0, "LME.CA": 9200.0}
    assert dataclasses.astuple(COPPER_IMPORT_PARITY) == (80.0, 0.13, 0.0)
    assert spread_value(defn, prices, FX) == pytest.approx(76200.0 - (9200.0 + 80.0) * 7.25 * 1.13, rel=1e-12)


def test_editing_copper_cost_terms_changes_the_parity() -> None:
    prices = {"SHFE.cu": 76200.0, "LME.CA": 9200.0}
    legs = {"SHFE.cu": 1, "LME.CA": -1}
    base = spread_value(spread(legs, costs={"LME.CA": COPPER_IMPORT_PARITY}), prices, FX)
    richer = dataclasses.replace(COPPER_IMPORT_PARITY, premium=100.0, fixed=50.0)
    edited = spread_value(spread(legs, costs={"LME.CA": richer}), prices, FX)
    assert edited == pytest.approx(base - 20.0 * 7.25 * 1.13 - 50.0, rel=1e-12)
    no_vat = dataclasses.replace(COPPER_IMPORT_PARITY, vat=0.0)
    plain = spread_value(spread({"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": no_vat}), prices, FX)
    assert plain == pytest.approx(76200.0 - 9280.0 * 7.25, rel=1e-12)


def test_copper_parity_uses_the_onshore_rate_when_a_basis_is_set() -> None:
    fx = FxRates(usdcnh=7.25, cnh_cny_basis=-0.02)
    landed = landed_price(9200.0, inst("LME.CA"), inst("SHFE.cu"), fx, COPPER_IMPORT_PARITY)
    assert landed == pytest.approx(9280.0 * 7.23 * 1.13, rel=1e-12)


@pytest.mark.parametrize(
    ("terms", "match"),
    [
        ({"vat": -1.0}, "vat"),
        ({"premium": math.nan}, "premium"),
        ({"fixed": "10"}, "fixed"),
    ],
)
def test_bad_cost_terms_are_refused(terms: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CostTerms(**terms)  # type: ignore[arg-type]


def test_crude_spread_sc_minus_cl_in_cny_per_bbl() -> None:
    value = spread_value(spread({"INE.sc": 1, "NYMEX.CL": -1}), {"INE.sc": 520.0, "NYMEX.CL": 70.0}, FX)
    assert value == 520.0 - 70.0 * 7.25


def test_hedge_weight_scales_the_leg() -> None:
    value = spread_value(spread({"SHFE.au": 1, "COMEX.GC": -0.5}), {"SHFE.au": 620.0, "COMEX.GC": 2650.0}, FX)
    assert value == pytest.approx(620.0 - 0.5 * 2650.0 * 7.25 / OZ)


def test_ratio_kind_divides_converted_prices() -> None:
    gold_silver = spread({"SHFE.au": 1, "SHFE.ag": -1}, kind="ratio")
    assert spread_value(gold_silver, {"SHFE.au": 620.0, "SHFE.ag": 7300.0}) == pytest.approx(620.0 / 7.3)
    au_si = spread({"SHFE.au": 1, "COMEX.SI": -1}, kind="ratio")
    value = spread_value(au_si, {"SHFE.au": 620.0, "COMEX.SI": 31.0}, FX)
    assert value == pytest.approx(620.0 / (31.0 * 7.25 / OZ))
    assert au_si.unit == "ratio"


# -------------------------------------------------------------------------- definitions


def test_spread_with_one_leg_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least 2 legs"):
        spread({"SHFE.au": 1})


def test_zero_weight_is_refused() -> None:
    with pytest.raises(ValueError, match=r"weight of COMEX\.GC is zero"):
        spread({"SHFE.au": 1, "COMEX.GC": 0})


def test_ratio_needs_exactly_two_legs_bought_and_sold() -> None:
    with pytest.raises(ValueError, match="exactly 2 legs"):
        spread({"SHFE.au": 1, "COMEX.GC": -1, "SHFE.ag": -1}, kind="ratio")
    with pytest.raises(ValueError, match=r"weights like \+1 and -1"):
        spread({"SHFE.au": 1, "SHFE.ag": 1}, kind="ratio")


def test_unknown_kind_and_duplicate_leg_are_refused() -> None:
    with pytest.raises(ValueError, match="'spread'"):
        spread(AU_GC, kind="spread")
    au = inst("SHFE.au")
    with pytest.raises(ValueError, match=r"SHFE\.au appears more than once"):
        SpreadDef("twice", ((au, 1.0), (au, -1.0)))


def test_legs_that_cannot_be_converted_are_refused() -> None:
    with pytest.raises(ValueError, match=r"leg NYMEX.CL .* cannot be converted .*'bbl' \(volume\)"):
        spread({"SHFE.au": 1, "NYMEX.CL": -1})
    with pytest.raises(ValueError, match=r"leg FX.USDCNH .*unknown unit 'USD'"):
        spread({"SHFE.au": 1, "FX.USDCNH": -1})
    euro_gold = dataclasses.replace(inst("COMEX.GC"), venue="EUREX", currency="EUR")
    with pytest.raises(ValueError, match="missing FX rate USDEUR"):
        SpreadDef("eur", ((inst("SHFE.au"), 1), (euro_gold, -1)))


def test_unknown_instrument_and_costs_for_a_non_leg_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown instrument 'COMEX.XX'; known: .*COMEX.GC"):
        spread({"SHFE.au": 1, "COMEX.XX": -1})
    with pytest.raises(ValueError, match=r"costs for 'LME.CA', which is not a leg"):
        spread(AU_GC, costs={"LME.CA": COPPER_IMPORT_PARITY})


def test_legs_as_a_dict_point_to_from_ids() -> None:
    with pytest.raises(ValueError, match="from_ids"):
        SpreadDef("x", {inst("SHFE.au"): 1})  # type: ignore[arg-type]


def test_spread_def_repr_and_costs_are_read_only() -> None:
    defn = spread({"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": COPPER_IMPORT_PARITY})
    assert repr(defn) == "SpreadDef('test': +1 SHFE.cu -1 LME.CA, diff in CNY/t)"
    with pytest.raises(TypeError):
        defn.costs["SHFE.cu"] = CostTerms()  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        defn.kind = "ratio"  # type: ignore[misc]


# -------------------------------------------------------------------------- custom formulas


def test_formula_gold_spread_matches_the_built_in_diff() -> None:
    prices = {"SHFE.au": 620.0, "COMEX.GC": 2650.0}
    custom = spread(AU_GC, formula="au - GC * USDCNH / 31.1034768")
    assert spread_value(custom, prices, FX) == spread_value(spread(AU_GC), prices, FX)
    by_venue = spread(AU_GC, formula="SHFE_au - COMEX_GC * USDCNY / 31.1034768")
    assert spread_value(by_venue, prices, FX) == pytest.approx(spread_value(spread(AU_GC), prices, FX))


def test_formula_functions_and_powers_work_elementwise() -> None:
    formula = "log(au) - log(GC * USDCNH / 31.1034768) + max(0, -au, 1) ** 2 - sqrt(abs(-4))"
    defn = spread(AU_GC, formula=formula)
    au = np.array([620.0, 630.0])
    gc = np.array([2650.0, 2660.0])
    got = spread_value(defn, {"SHFE.au": au, "COMEX.GC": gc}, FX)
    assert np.allclose(got, np.log(au) - np.log(gc * 7.25 / OZ) + 1 - 2)
    assert spread_value(spread(AU_GC, formula="min(au, GC, 5)"), {"SHFE.au": 620.0, "COMEX.GC": 1.0}) == 1.0


def test_formula_huge_power_overflows_to_inf_instead_of_hanging() -> None:
    defn = spread(AU_GC, formula="au - GC + 9 ** 9 ** 9")
    assert spread_value(defn, {"SHFE.au": 1.0, "COMEX.GC": 1.0}) == math.inf


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("__import__('os')", "__import__"),
        ("au.__class__", "au.__class__"),
        ("[1]", "[1]"),
        ("lambda: 1", "lambda: 1"),
        ("au + GC + os", "os"),
        ("eval('1') + au + GC", "eval"),
        ("au[0] + GC", "au[0]"),
        ("au // GC", "au // GC"),
        ("au if GC else 1", "au if GC else 1"),
        ("au + GC + 'x'", "'x'"),
        ("au + GC + True", "True"),
        ("log(au, GC)", "log(au, GC)"),
        ("abs(x=au) + GC", "abs(x=au)"),
        ("import os", "import os"),
        ("au = GC", "au = GC"),
    ],
)
def test_evil_or_unknown_formula_raises_naming_the_token(formula: str, token: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        spread(AU_GC, formula=formula)
    assert token in str(excinfo.value)


def test_formula_must_use_every_leg_and_cannot_take_costs() -> None:
    with pytest.raises(ValueError, match=r"does not use leg\(s\) COMEX.GC"):
        spread(AU_GC, formula="au * 2")
    with pytest.raises(ValueError, match="write them into the formula"):
        spread(AU_GC, formula="au - GC", costs={"COMEX.GC": COPPER_IMPORT_PARITY})


def test_formula_using_fx_without_fx_asks_for_it() -> None:
    defn = spread(AU_GC, formula="au - GC * USDCNH / 31.1034768")
    with pytest.raises(ValueError, match="uses USDCNH; pass fx="):
        spread_value(defn, {"SHFE.au": 620.0, "COMEX.GC": 2650.0})


def test_overlong_formula_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        spread(AU_GC, formula="au - GC" + " + 1" * 1000)


# ---------------------------------------------------------------------- executable quotes

BOOKS = {"SHFE.au": (619.98, 620.02, 40, 35), "COMEX.GC": (2649.9, 2650.1, 12, 9)}


def test_buying_the_spread_buys_positive_legs_at_ask_and_sells_negative_legs_at_bid() -> None:
    q = spread_quote(spread(AU_GC), BOOKS, FX)
    assert q.ask == 620.02 - 2649.9 * 7.25 / OZ
    assert q.bid == 619.98 - 2650.1 * 7.25 / OZ
    assert q.mid == (q.bid + q.ask) / 2


def test_negative_first_leg_is_sold_at_bid_when_buying() -> None:
    q = spread_quote(spread({"COMEX.GC": -1, "SHFE.au": 1}), BOOKS, FX)
    assert q.ask == pytest.approx(-2649.9 + 620.02 * OZ / 7.25)
    assert q.bid == pytest.approx(-2650.1 + 619.98 * OZ / 7.25)


def test_ratio_buys_at_ask1_over_bid2_and_sells_at_bid1_over_ask2() -> None:
    books = {"SHFE.au": (619.98, 620.02, 5, 5), "SHFE.ag": (7299.0, 7301.0, 5, 5)}
    q = spread_quote(spread({"SHFE.au": 1, "SHFE.ag": -1}, kind="ratio"), books)
    assert q.ask == pytest.approx(620.02 / 7.299)
    assert q.bid == pytest.approx(619.98 / 7.301)


def test_cost_terms_apply_to_executable_prices() -> None:
    defn = spread({"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": COPPER_IMPORT_PARITY})
    books = {"SHFE.cu": (76190.0, 76210.0, 10, 10), "LME.CA": (9199.5, 9200.5, 10, 10)}
    q = spread_quote(defn, books, FX)
    assert q.ask == pytest.approx(76210.0 - 9279.5 * 7.25 * 1.13)
    assert q.bid == pytest.approx(76190.0 - 9280.5 * 7.25 * 1.13)


def test_sizes_are_whole_spread_units_per_side_with_default_one_lot_each() -> None:
    q = spread_quote(spread(AU_GC), BOOKS, FX)
    # selling: au sold into 40 on the bid, GC bought from 9 on the ask; buying: au 35, GC 12
    assert (q.bid_size, q.ask_size) == (9, 12)
    assert isinstance(q.bid_size, int)


def test_sizes_divide_by_lots_per_spread_unit() -> None:
    q = spread_quote(spread(AU_GC), BOOKS, FX, lots={"SHFE.au": 3, "COMEX.GC": 1})
    assert (q.bid_size, q.ask_size) == (9, 11)
    q = spread_quote(spread(AU_GC), BOOKS, FX, lots={"SHFE.au": 28, "COMEX.GC": 9})
    assert (q.bid_size, q.ask_size) == (1, 1)
    q = spread_quote(spread(AU_GC), BOOKS, FX, lots={"SHFE.au": 41})
    assert (q.bid_size, q.ask_size) == (0, 0)


@pytest.mark.parametrize(
    ("lots", "match"),
    [({"SHFE.au": 0}, "whole number >= 1"), ({"SHFE.au": 1.5}, "whole number"), ({"LME.CA": 1}, "not a leg")],
)
def test_bad_lots_are_refused(lots: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spread_quote(spread(AU_GC), BOOKS, FX, lots=lots)


def test_spread_quote_takes_model_quotes_and_names_a_missing_leg() -> None:
    quotes = {
        "SHFE.au": Quote("SHFE.au", 619.98, 620.02, 40, 35, 0, 0),
        "COMEX.GC": Quote("COMEX.GC", 2649.9, 2650.1, 12, 9, 0, 0),
    }
    assert spread_quote(spread(AU_GC), quotes, FX) == spread_quote(spread(AU_GC), BOOKS, FX)
    with pytest.raises(ValueError, match=r"no quote for leg COMEX\.GC"):
        spread_quote(spread(AU_GC), {"SHFE.au": BOOKS["SHFE.au"]}, FX)
    with pytest.raises(ValueError, match=r"must be a Quote or \(bid, ask, bid_size, ask_size\)"):
        spread_quote(spread(AU_GC), {**BOOKS, "COMEX.GC": (2649.9, 2650.1)}, FX)


def test_spread_units_takes_the_tightest_leg() -> None:
    assert spread_units([40, 9], [3, 1]) == 9
    assert spread_units([7, 100, 50], [2, 10, 9]) == 3
    assert np.array_equal(spread_units([np.array([40, 2]), np.array([9, 9])], [3, 1]), [9, 0])


prices = st.floats(min_value=0.5, max_value=1e5, allow_nan=False)
widths = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
sizes = st.integers(min_value=0, max_value=500)
LEG_CHOICES = ["SHFE.au", "COMEX.GC", "SHFE.ag", "COMEX.SI"]


@st.composite
def random_books(draw: st.DrawFn) -> tuple[SpreadDef, dict[str, tuple[float, float, int, int]], FxRates]:
    kind = draw(st.sampled_from(["diff", "ratio"]))
    n = 2 if kind == "ratio" else draw(st.integers(min_value=2, max_value=4))
    ids = draw(st.permutations(LEG_CHOICES))[:n]
    weights = [draw(st.floats(min_value=0.1, max_value=5)) * draw(st.sampled_from([1, -1])) for _ in ids]
    if kind == "ratio":
        weights = [abs(weights[0]), -abs(weights[1])]
    costs = {}
    if draw(st.booleans()):
        costs[ids[-1]] = CostTerms(
            premium=draw(st.floats(min_value=0, max_value=100)),
            vat=draw(st.floats(min_value=0, max_value=0.2)),
            # a ratio assumes positive landed prices: no negative fixed cost there
            fixed=draw(st.floats(min_value=0 if kind == "ratio" else -50, max_value=50)),
        )
    defn = spread(dict(zip(ids, weights, strict=True)), kind=kind, costs=costs)
    books = {}
    for leg_id in ids:
        bid = draw(prices)
        books[leg_id] = (bid, bid + draw(widths), draw(sizes), draw(sizes))
    return defn, books, FxRates(usdcnh=draw(st.floats(min_value=5.0, max_value=9.0)))


@settings(max_examples=300, deadline=None)
@given(random_books())
def test_executable_bid_le_mid_le_ask_whenever_each_leg_has_bid_le_ask(
    case: tuple[SpreadDef, dict[str, tuple[float, float, int, int]], FxRates],
) -> None:
    defn, books, fx = case
    q = spread_quote(defn, books, fx)
    assert q.bid <= q.mid <= q.ask
    assert 0 <= q.bid_size <= 500 and 0 <= q.ask_size <= 500


# ------------------------------------------------------------------------ arrays and xarray


def _recorded(n: int = 50) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    au = 620 + rng.normal(0, 2, n)
    gc = 2650 + rng.normal(0, 8, n)
    bids = {"SHFE.au": au, "COMEX.GC": gc}
    asks = {"SHFE.au": au + rng.uniform(0, 0.1, n), "COMEX.GC": gc + rng.uniform(0, 0.4, n)}
    return bids, asks, 7.25 + rng.normal(0, 0.01, n)


@pytest.mark.parametrize(
    "defn",
    [
        spread(AU_GC),
        spread({"SHFE.au": 1, "COMEX.GC": -1}, kind="ratio"),
        spread(AU_GC, formula="au - GC * USDCNH / 31.1034768"),
        spread(AU_GC, costs={"COMEX.GC": CostTerms(premium=1.5, vat=0.03, fixed=0.2)}),
    ],
    ids=["diff", "ratio", "formula", "costs"],
)
def test_numpy_and_xarray_series_equal_the_scalar_quote_loop(defn: SpreadDef) -> None:
    bids, asks, fx = _recorded()
    loop = [
        spread_quote(defn, {i: (bids[i][k], asks[i][k], 1, 1) for i in defn.ids}, FxRates(usdcnh=fx[k]))
        for k in range(len(fx))
    ]
    series = spread_series(defn, bids, asks, fx)
    for field in ("bid", "ask", "mid"):
        assert np.array_equal(series[field], [getattr(q, field) for q in loop])

    time = np.arange(len(fx))
    xr_bids = {i: xr.DataArray(v, coords={"time": time}) for i, v in bids.items()}
    xr_asks = {i: xr.DataArray(v, coords={"time": time}) for i, v in asks.items()}
    xr_series = spread_series(defn, xr_bids, xr_asks, xr.DataArray(fx, coords={"time": time}))
    assert isinstance(xr_series["bid"], xr.DataArray)
    assert list(xr_series["bid"].coords) == ["time"]
    for field in ("bid", "ask", "mid"):
        assert np.array_equal(xr_series[field].values, series[field])


def test_series_broadcast_a_scalar_fx_rate_and_propagate_gaps() -> None:
    bids, asks, _ = _recorded(3)
    bids["SHFE.au"][1] = np.nan
    out = spread_series(spread(AU_GC), bids, asks, 7.25)
    assert np.isnan(out["bid"][1]) and not np.isnan(out["bid"][0])
    assert out["bid"][0] == bids["SHFE.au"][0] - asks["COMEX.GC"][0] * 7.25 / OZ


def test_series_without_fx_for_same_money_legs() -> None:
    bids = {"SHFE.au": np.array([620.0]), "SHFE.ag": np.array([7300.0])}
    asks = {"SHFE.au": np.array([620.1]), "SHFE.ag": np.array([7301.0])}
    out = spread_series(spread({"SHFE.au": 1, "SHFE.ag": -1}, kind="ratio"), bids, asks)
    assert out["ask"][0] == pytest.approx(620.1 / 7.3)


# --------------------------------------------------------------------------- the spread kernel

# Mass contracts in CNY, USD and (a made-up offshore gold contract) CNH.
CNH_GOLD = dataclasses.replace(inst("COMEX.GC"), venue="HK", symbol="GCH", currency="CNH")
MONEY_LEGS = {i: inst(i) for i in ("SHFE.au", "COMEX.GC", "LME.CA", "SHFE.cu", "COMEX.SI")} | {
    "HK.GCH": CNH_GOLD
}


def _reference_rates(defn: SpreadDef, usdcnh: float, basis: float) -> list[tuple[float, float]]:
    """Per leg, FxRates' own conversion factors: (per USD of the first leg's money, of the leg's)."""
    fx, first = FxRates(usdcnh, basis), defn.instruments[0].currency
    out = []
    for leg in defn.instruments:
        if leg.currency.upper() == first.upper() or (basis == 0 and not needs_fx(leg.currency, first)):
            out.append((1.0, 1.0))
        else:
            out.append((fx.per_usd(first), fx.per_usd(leg.currency)))
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(MONEY_LEGS)), min_size=2, max_size=4, unique=True),
    st.floats(min_value=0.01, max_value=100.0),
    st.sampled_from([0.0, 0, -0.013, 0.02]),
)
def test_kernel_rates_are_fx_rates_conversion_factors_to_the_bit(
    ids: list[str], usdcnh: float, basis: float
) -> None:
    defn = SpreadDef.from_ids("test", dict.fromkeys(ids, 1.0), MONEY_LEGS)
    rates = defn.kernel.rates(usdcnh, basis)
    assert [(m.hex(), d.hex()) for m, d in rates] == [
        (float(m).hex(), float(d).hex()) for m, d in _reference_rates(defn, usdcnh, basis)
    ]
    if basis == 0:
        assert defn.kernel.live_rates(usdcnh) == rates
        first = defn.instruments[0].currency
        converted = [i for i, leg in enumerate(defn.instruments) if needs_fx(leg.currency, first)]
        assert list(defn.kernel.fx_legs) == converted


def test_live_rates_are_shared_by_kernels_that_convert_alike() -> None:
    """One FX quote re-rates every live spread: kernels converting the same way share the answer."""
    gold, copper = spread(AU_GC).kernel, spread({"SHFE.cu": 1, "LME.CA": -1}).kernel
    first = gold.live_rates(7.123)
    assert copper.live_rates(7.123) is first and first == copper.rates(7.123)
    assert gold.live_rates(7.124) == gold.rates(7.124) != first
    same_money = spread({"SHFE.au": 1, "SHFE.ag": -1}).kernel
    assert same_money.live_rates(7.124) == ((1.0, 1.0), (1.0, 1.0)) and same_money.fx_legs == ()


# ------------------------------------------------------------------------------- lot ratios


def test_gold_lot_ratio_is_three_to_one_within_four_percent() -> None:
    au, gc = inst("SHFE.au"), inst("COMEX.GC")
    assert exact_lot_ratio(au, gc) == pytest.approx(3.110347680)
    best = best_lot_ratio(au, gc, tolerance=0.04)
    assert (best.a_lots, best.b_lots) == (3, 1)
    assert best.residual == pytest.approx((3000 - 100 * OZ) / (100 * OZ))
    assert best.residual == pytest.approx(-0.0355, abs=5e-4)
    assert best.residual_qty == pytest.approx(3000 - 100 * OZ)
    assert best.residual_lots == pytest.approx((3000 - 100 * OZ) / 1000)
    assert best.unit == "g"


def test_gold_lot_ratios_within_a_tenth_of_a_percent_include_28_to_9() -> None:
    ratios = lot_ratios(inst("SHFE.au"), inst("COMEX.GC"), tolerance=0.001)
    assert (28, 9) in [(r.a_lots, r.b_lots) for r in ratios]
    assert all(abs(r.residual) <= 0.001 for r in ratios)


def test_lot_ratios_are_reduced_sorted_and_bounded() -> None:
    ratios = lot_ratios(inst("SHFE.au"), inst("COMEX.GC"), max_lots=30, tolerance=0.04)
    pairs = [(r.a_lots, r.b_lots) for r in ratios]
    assert pairs[0] == (3, 1)
    assert (6, 2) not in pairs and (9, 3) not in pairs
    assert all(math.gcd(a, b) == 1 and a <= 30 and b <= 30 for a, b in pairs)
    assert [a + b for a, b in pairs] == sorted(a + b for a, b in pairs)


def test_silver_lot_ratios() -> None:
    ag, si = inst("SHFE.ag"), inst("COMEX.SI")
    assert exact_lot_ratio(ag, si) == pytest.approx(5000 * OZ / 15000)
    loose = best_lot_ratio(ag, si, tolerance=0.04)
    assert (loose.a_lots, loose.b_lots) == (10, 1)
    assert loose.residual_qty == pytest.approx(150 - 5000 * OZ / 1000)
    assert loose.unit == "kg"
    tight = best_lot_ratio(ag, si, tolerance=0.02)
    assert (tight.a_lots, tight.b_lots) == (21, 2)
    assert tight.residual == pytest.approx((21 * 15 - 2 * 5000 * OZ / 1000) / (2 * 5000 * OZ / 1000))


def test_copper_and_crude_lot_ratios_are_exact() -> None:
    cu = best_lot_ratio(inst("SHFE.cu"), inst("LME.CA"), tolerance=0.0)
    assert (cu.a_lots, cu.b_lots, cu.residual, cu.residual_qty) == (5, 1, 0.0, 0.0)
    crude = best_lot_ratio(inst("INE.sc"), inst("NYMEX.CL"), tolerance=0.0)
    assert (crude.a_lots, crude.b_lots, crude.residual) == (1, 1, 0.0)
    assert lot_ratios(inst("INE.sc"), inst("NYMEX.CL"), tolerance=0.0) == [crude]


def test_no_lot_ratio_within_tolerance_names_the_closest() -> None:
    with pytest.raises(ValueError, match=r"closest is 3:1 \(-3.55%\); raise tolerance or max_lots"):
        best_lot_ratio(inst("SHFE.au"), inst("COMEX.GC"), max_lots=5, tolerance=0.01)


def test_lot_ratio_of_incompatible_lots_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"cannot compare lots of SHFE.au and NYMEX.CL"):
        lot_ratios(inst("SHFE.au"), inst("NYMEX.CL"))
    with pytest.raises(ValueError, match="max_lots"):
        lot_ratios(inst("SHFE.au"), inst("COMEX.GC"), max_lots=0)
    with pytest.raises(ValueError, match="tolerance"):
        lot_ratios(inst("SHFE.au"), inst("COMEX.GC"), tolerance=-0.1)


def test_lot_ratio_reads_decimal_lot_sizes_of_user_contracts() -> None:
    mini = dataclasses.replace(inst("COMEX.GC"), symbol="MGC", lot_size=Decimal("10"))
    best = best_lot_ratio(inst("SHFE.au"), mini, tolerance=0.04)
    assert (best.a_lots, best.b_lots) == (3, 10)
    assert repr(best) == "LotRatio(3:10, residual -3.548%, -0.1103 lots = -110.348 g)"


# --------------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("module", [spreads, units, kernel], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
