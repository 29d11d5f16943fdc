"""Import terms as data: silver and copper land with 13 % VAT (and copper's bonded premium) by default,
gold with none; a desk file changes them; bad terms say what to write (issue 14)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sim_months import SI

import cmc_lab as cmc
from cmc_lab.core.specs import SpecError, load_specs
from cmc_lab.pricing import FxRates
from cmc_lab.pricing.spreads import SpreadDef, import_costs, spread_value

SPECS = load_specs()
OZ = 31.1034768


def ag_si(costs: dict) -> SpreadDef:
    ids = ["SHFE.ag", "COMEX.SI"]
    return SpreadDef.from_ids(
        "ag_si", {"SHFE.ag": 1, "COMEX.SI": -1}, {i: SPECS.instrument(i) for i in ids}, costs=costs
    )


def test_silver_lands_with_vat_by_default_as_its_domestic_price_includes_it() -> None:
    prices, fx = {"SHFE.ag": 7300.0, "COMEX.SI": 31.0}, FxRates(usdcnh=7.25)
    with_vat = spread_value(ag_si(import_costs(["SHFE.ag", "COMEX.SI"], SPECS.import_terms)), prices, fx)
    assert with_vat == pytest.approx(7300.0 - 31.0 * 7.25 / OZ * 1000 * 1.13, rel=1e-12)
    assert round(with_vat) == -865  # what the issue found the spread to be, not the +74 read without VAT
    assert round(spread_value(ag_si({}), prices, fx)) == 74


def test_each_pair_gets_its_own_terms_and_gold_gets_none() -> None:
    terms = SPECS.import_terms
    assert import_costs(["SHFE.au", "COMEX.GC"], terms) == {}
    copper = import_costs(["SHFE.cu", "LME.CA"], terms)["LME.CA"]
    assert (copper.premium, copper.vat) == (80.0, 0.13)
    assert import_costs(["SHFE.ag", "COMEX.GC"], terms) == {}  # not twins: nothing landed


def test_the_engines_silver_spread_uses_the_terms_and_the_simulated_market_sits_near_parity() -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual")
    try:
        eng.sleep(1.0)
        sp = eng.spread("ag_si", legs={"SHFE.ag": 1, "COMEX.SI": -1})
        assert sp.defn.costs[SI].vat == 0.13  # the product's terms land its month (COMEX.SIH27)
        assert abs(sp.quote().mid) < 50  # CNY/kg: the simulated ag is calibrated with VAT, as SHFE prices are
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eng.close()


def test_a_desk_file_changes_the_terms_and_bad_ones_say_what_to_write(tmp_path: Path) -> None:
    desk = tmp_path / "desk.toml"
    entry = (
        '[[import_terms]]\ndomestic = "SHFE.ag"\noverseas = "COMEX.SI"\nsource = "desk"\nas_of = 2026-12-05\n'
    )
    desk.write_text(entry + 'vat = "0"\n')
    assert import_costs(["SHFE.ag", "COMEX.SI"], load_specs(desk).import_terms) == {}
    desk.write_text(entry + 'vat = "13"\n')
    with pytest.raises(SpecError, match=r'vat must be a fraction \("0.13" is 13 %\)'):
        load_specs(desk)
    desk.write_text('[[import_terms]]\ndomestic = "SHFE.ag"\noverseas = "COMEX.SI"\nvat = "0.13"\n')
    with pytest.raises(SpecError, match="missing source, as_of"):
        load_specs(desk)
