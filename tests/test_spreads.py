"""Live spreads on the engine: unit and FX conversion, import parity, formulas, lot ratio, quotability."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_months import AG, AU, CL, CU, GC, SC, SI

import cmc_lab as cmc
from cmc_lab.core.model import Quote
from cmc_lab.execution.spread import SpreadNotQuotable, SpreadSnapshot
from cmc_lab.pricing import COPPER_IMPORT_PARITY, CostTerms

OZ = 31.1034768


@pytest.fixture
def eng(make_engine: Callable[..., cmc.Engine], tmp_path: Path) -> cmc.Engine:
    return make_engine(journal=tmp_path / "j.sqlite")


def books(eng: cmc.Engine, *ids: str) -> tuple[Quote, ...]:
    return tuple(eng.quote(i) for i in ids)


# --------------------------------------------------------------------------- conversion


def test_gold_spread_converts_usd_per_ounce_to_cny_per_gram(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    au, gc, fx = books(eng, "SHFE.au", "COMEX.GC", "FX.USDCNH")
    q = sp.quote()
    assert q.unit == "CNY/g" and q.fx == pytest.approx(fx.mid)
    assert q.bid == pytest.approx(au.bid - gc.ask * fx.mid / OZ, rel=1e-12)  # sell au, buy GC
    assert q.ask == pytest.approx(au.ask - gc.bid * fx.mid / OZ, rel=1e-12)  # buy au, sell GC
    assert q.mid == pytest.approx((q.bid + q.ask) / 2)
    assert q.bid < q.mid < q.ask


def test_gold_trades_three_au_lots_per_gc_lot_and_sizes_are_whole_spread_units(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    assert sp.lots == {AU: 3, GC: 1}
    au, gc = books(eng, "SHFE.au", "COMEX.GC")
    q = sp.quote()
    assert q.ask_size == min(au.ask_size // 3, gc.bid_size)
    assert q.bid_size == min(au.bid_size // 3, gc.ask_size)
    assert "lots 3:1" in repr(sp)


def test_lots_can_be_set_by_hand(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}, lots={"SHFE.au": 28, "COMEX.GC": 9})
    assert sp.lots == {AU: 28, GC: 9}
    with pytest.raises(ValueError, match="lots must give a whole number"):
        eng.spread("bad", legs={"SHFE.au": 1, "COMEX.GC": -1}, lots={"SHFE.au": 3})


def test_silver_spread_in_cny_per_kg_lands_comex_silver_with_vat(eng: cmc.Engine) -> None:
    sp = eng.spread("ag_si", legs={"SHFE.ag": 1, "COMEX.SI": -1})
    ag, si, fx = books(eng, "SHFE.ag", "COMEX.SI", "FX.USDCNH")
    q = sp.quote()
    assert q.unit == "CNY/kg"
    assert q.mid == pytest.approx(
        ag.mid - si.mid * fx.mid * 1000 / OZ * 1.13, rel=1e-9
    )  # terms.toml: 13 % VAT
    ratio = sp.lots[AG] * 15 / (sp.lots[SI] * 5000 * OZ / 1000)
    assert abs(ratio - 1) <= 0.04  # equal kilograms on both sides, within the ratio tolerance


def test_copper_import_parity_adds_vat_and_the_bonded_premium(eng: cmc.Engine) -> None:
    sp = eng.spread("cu_lme", legs={"SHFE.cu": 1, "LME.CA": -1})
    cu, lme, fx = books(eng, "SHFE.cu", "LME.CA", "FX.USDCNH")
    assert sp.defn.costs["LME.CA"] == COPPER_IMPORT_PARITY
    q = sp.quote()
    assert q.unit == "CNY/t"
    assert q.mid == pytest.approx(cu.mid - (lme.mid + 80.0) * fx.mid * 1.13, rel=1e-9)
    assert sp.lots == {CU: 5, "LME.CA": 1}  # 25 t of LME against 5 lots of 5 t


def test_copper_parity_terms_are_named_and_editable(eng: cmc.Engine) -> None:
    base = eng.spread("cu_lme", legs={"SHFE.cu": 1, "LME.CA": -1}).quote().mid
    richer = dataclasses.replace(COPPER_IMPORT_PARITY, premium=95.0)
    edited = eng.spread("cu_lme", legs={"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": richer}).quote().mid
    fx = eng.quote("FX.USDCNH").mid
    assert base - edited == pytest.approx(15.0 * fx * 1.13, rel=1e-9)
    plain = eng.spread("cu_raw", legs={"SHFE.cu": 1, "LME.CA": -1}, costs={"LME.CA": CostTerms()}).quote()
    assert plain.mid > base


def test_crude_sc_against_cl_in_cny_per_barrel(eng: cmc.Engine) -> None:
    sp = eng.spread("sc_cl", legs={"INE.sc": 1, "NYMEX.CL": -1})
    sc, cl, fx = books(eng, "INE.sc", "NYMEX.CL", "FX.USDCNH")
    assert sp.lots == {SC: 1, CL: 1}
    assert sp.quote().mid == pytest.approx(sc.mid - cl.mid * fx.mid, rel=1e-9)


def test_a_custom_formula_gives_the_same_number_as_the_built_in_conversion(eng: cmc.Engine) -> None:
    built_in = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}).quote()
    custom = eng.spread(
        "au_gc_f", legs={"SHFE.au": 1, "COMEX.GC": -1}, formula="au - GC * USDCNH / 31.1034768"
    ).quote()
    assert (custom.bid, custom.ask) == pytest.approx((built_in.bid, built_in.ask), rel=1e-12)
    with pytest.raises(ValueError, match="unknown name 'gold'"):
        eng.spread("bad", legs={"SHFE.au": 1, "COMEX.GC": -1}, formula="gold - GC")


def test_a_ratio_spread_quotes_the_landed_price_ratio(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc_r", legs={"SHFE.au": 1, "COMEX.GC": -1}, kind="ratio")
    au, gc, fx = books(eng, "SHFE.au", "COMEX.GC", "FX.USDCNH")
    q = sp.quote()
    assert q.unit == "ratio"
    assert q.ask == pytest.approx(au.ask / (gc.bid * fx.mid / OZ), rel=1e-12)
    assert q.ratio == q.mid
    diff = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}).quote()
    assert diff.ratio == pytest.approx(au.mid / (gc.mid * fx.mid / OZ), rel=1e-12)


def test_bad_spreads_say_what_to_fix(eng: cmc.Engine) -> None:
    with pytest.raises(ValueError, match="use 'diff' or 'ratio'"):
        eng.spread("x", legs={"SHFE.au": 1, "COMEX.GC": -1}, kind="product")
    with pytest.raises(ValueError, match="at least two"):
        eng.spread("x", legs={"SHFE.au": 1})
    with pytest.raises(cmc.InvalidOrder, match=r"SHFE\.gold"):
        eng.spread("x", legs={"SHFE.gold": 1, "COMEX.GC": -1})
    with pytest.raises(KeyError, match=r"no spread 'nope'; define it"):
        eng.spread("nope")


# --------------------------------------------------------------------------- quotability


def test_a_stale_leg_is_not_quotable_and_says_which_and_why(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.venues["COMEX"].inject("stale", instrument="GC")
    eng.sleep(4)
    with pytest.raises(SpreadNotQuotable) as info:
        sp.quote()
    assert info.value.leg == GC and info.value.why.startswith("quote is stale")
    assert f"spread 'au_gc' is not quotable: leg {GC}: quote is stale" in str(info.value)
    assert "quote is stale" in sp._repr_html_()


def test_stale_fx_is_not_quotable(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.venues["FX"].inject("stale")
    eng.sleep(4)
    assert sp.not_quotable_reason().startswith("FX FX.USDCNH: quote is stale")
    gold_silver = eng.spread("au_ag", legs={"SHFE.au": 1, "SHFE.ag": -1}, kind="ratio")
    assert not gold_silver.needs_fx and gold_silver.quote().fx is None  # both in CNY: no FX needed


def test_a_disconnected_venue_is_not_quotable(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.disconnect("COMEX")
    with pytest.raises(SpreadNotQuotable, match=rf"leg {re.escape(GC)}: venue COMEX is not connected"):
        sp.quote()
    eng.reconnect("COMEX")
    assert sp.quote().bid > 0


def test_a_closed_session_is_not_quotable(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(quote_interval=60.0)
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.sleep(5 * 3600.0)  # 03:00 in Shanghai: SHFE's night session closed at 02:30
    with pytest.raises(SpreadNotQuotable) as info:
        sp.quote()
    assert info.value.leg == AU and info.value.why.startswith("session closed (day-1")


# --------------------------------------------------------------------------- live recomputation


def test_each_leg_quote_recomputes_the_spread_and_its_z_score(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    seen: list[SpreadSnapshot] = []
    eng.desk.on_spread("au_gc", seen.append)
    eng.sleep(10)
    assert len(seen) > 100 and all(s.name == "au_gc" for s in seen)
    assert seen[0].z is None and seen[-1].z is not None
    assert sp.last is seen[-1]
    assert "USDCNH" in seen[-1]._repr_html_()


def test_redefining_a_spread_replaces_it_everywhere(eng: cmc.Engine) -> None:
    eng.spread("x", legs={"SHFE.au": 1, "COMEX.GC": -1})
    seen: list[SpreadSnapshot] = []
    eng.spread("x", legs={"SHFE.ag": 1, "COMEX.SI": -1})
    eng.desk.on_spread("x", seen.append)
    eng.sleep(3)
    assert seen and {s.unit for s in seen} == {"CNY/kg"}
    assert "x" in eng.spreads and eng.spreads["x"].leg_ids == (AG, SI)
