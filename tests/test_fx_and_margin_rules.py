"""Onshore USDCNY and offshore USDCNH named where used; margins and margin calls by each broker's rule."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import cmc_lab as cmc
from cmc_lab.core.instruments import TROY_OUNCE_GRAMS
from cmc_lab.core.model import Quote, Side
from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.risk.capital import Capital

G = float(TROY_OUNCE_GRAMS)


def test_a_spread_converts_at_the_rate_it_names_and_says_which(eng: cmc.Engine) -> None:
    eng.sleep(1.0)
    offshore = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    onshore = eng.spread("au_gc_cny", legs={"SHFE.au": 1, "COMEX.GC": -1}, fx="USDCNY")
    a, b = offshore.quote(), onshore.quote()
    au, gc = eng.quote("SHFE.au"), eng.quote("COMEX.GC")
    cnh, cny = eng.quote("FX.USDCNH").mid, eng.quote("FX.USDCNY").mid
    assert (a.fx_rate, a.fx, b.fx_rate, b.fx) == ("USDCNH", cnh, "USDCNY", cny)
    assert a.ask == pytest.approx(au.ask - gc.bid * cnh / G, abs=1e-9)
    assert b.ask == pytest.approx(au.ask - gc.bid * cny / G, abs=1e-9)
    # the basis is the size of the signal: a few hundredths of a yuan is a few yuan a gram on gold
    assert b.ask - a.ask == pytest.approx(gc.bid * (cnh - cny) / G, abs=1e-9) and a.ask != b.ask
    assert f"at USDCNY {cny:.4f}" in b._repr_html_() and f"at USDCNH {cnh:.4f}" in a._repr_html_()


def test_a_spread_at_an_unknown_rate_is_refused_naming_the_two(eng: cmc.Engine) -> None:
    with pytest.raises(ValueError, match=r"fx='EURCNY' is not a rate a spread converts at; use 'USDCNH'"):
        eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}, fx="EURCNY")


def test_the_onshore_rate_opens_at_half_past_nine_and_its_spread_says_why(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    """CFETS quotes USDCNY 09:30-03:00 Beijing, SHFE opens at 09:00: in between a spread landed at
    USDCNY is unquotable, naming the rate, while one at USDCNH (round the clock) quotes."""
    eng = make_engine(quote_interval=20.0)  # hours of market time: a quote per instrument every 20 s
    legs = {"SHFE.au": 1, "COMEX.GC": -1}
    offshore = eng.spread("au_gc", legs=legs, stale_after_ms=60_000)
    onshore = eng.spread("au_gc_cny", legs=legs, fx="USDCNY", stale_after_ms=60_000)
    cny, au = eng.instrument("FX.USDCNY").hours, eng.instrument("SHFE.au").hours
    now = eng.now_ns()
    while cny.is_open(now) or not au.is_open(now - 60 * 1_000_000_000):
        now += 60 * 1_000_000_000
    eng.sleep((now - eng.now_ns()) / 1e9 + 45.0)
    reason = onshore.not_quotable_reason()
    assert reason is not None and reason.startswith("FX FX.USDCNY: session closed"), reason
    assert offshore.not_quotable_reason() is None


def test_a_transfer_between_cny_and_usd_converts_at_usdcny_and_journals_the_rate(eng: cmc.Engine) -> None:
    eng.sleep(1.0)
    cny = Decimal(str(eng.quote("FX.USDCNY").mid))
    t = eng.transfer("CN-FUT", "US-FUT", 711_000)
    assert (t.rate_name, t.rate) == ("USDCNY", cny)
    assert t.credit == (Decimal(711_000) / cny).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    row = list(eng.journal.rows(kinds=["TransferInTransit"]))[-1]["payload"]
    assert (row["rate_name"], row["rate"]) == ("USDCNY", str(cny))


# ---------------------------------------------------------------------------- margin by the broker's rule


def capital(text: str, tmp_path: Path) -> tuple[Capital, Specs]:
    path = tmp_path / "desk.toml"
    path.write_text(text)
    specs = load_specs(path)
    return Capital(specs, specs.instruments.values()), specs


def test_a_chinese_broker_calls_on_the_risk_degree_where_a_maintenance_rule_would_not(tmp_path: Path) -> None:
    cap, specs = capital(
        '[accounts.CN-FUT]\ncurrency = "CNY"\ncash = "1700000"\nmargin_call = "risk_degree"\n', tmp_path
    )
    au = specs.instruments["SHFE.au"]
    cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("945.00"), 10)  # 17 % of 9,450,000 = 1,606,500
    cap.on_quote(Quote("SHFE.au", 944.0, 944.04, 5, 5, 1, 1))
    f = cap.figures("CN-FUT")
    assert not f.margin_call and f.call_text().startswith("risk degree 9")
    cap.on_quote(Quote("SHFE.au", 930.0, 930.04, 5, 5, 2, 2))  # a 14.98 loss a gram: equity below margin
    f = cap.figures("CN-FUT")
    assert f.utilisation >= 1 and f.margin_call, f.call_text()
    assert f.equity > f.maintenance_margin  # the old rule (0.8 of initial) would not have called
    assert f.shortfall() == (f.initial_margin - f.equity).quantize(Decimal("0.01"))


def test_a_cme_account_calls_only_below_maintenance(tmp_path: Path) -> None:
    cap, specs = capital(
        '[accounts.US-FUT]\ncurrency = "USD"\ncash = "80000"\nmargin_call = "maintenance"\n', tmp_path
    )
    gc = specs.instruments["COMEX.GC"]
    cap.apply_fill(
        "US-FUT", gc, Side.BUY, Decimal("4100.0"), 2
    )  # 9 % of 820,000 = 73,800; maintenance 67,158
    cap.on_quote(Quote("COMEX.GC", 4060.0, 4060.2, 5, 5, 1, 1))  # equity about 72,000: under initial only
    f = cap.figures("US-FUT")
    assert f.equity < f.initial_margin and not f.margin_call
    cap.on_quote(Quote("COMEX.GC", 4020.0, 4020.2, 5, 5, 2, 2))
    f = cap.figures("US-FUT")
    assert f.equity < f.maintenance_margin and f.margin_call
    assert f.call_text().startswith("equity ") and "against maintenance" in f.call_text()


def test_a_hedge_account_pays_the_hedge_rate_and_the_broker_adds_its_points(tmp_path: Path) -> None:
    cap, specs = capital(
        '[accounts.CN-FUT]\ncurrency = "CNY"\ncash = "5000000"\nmargin_call = "risk_degree"\n'
        'broker_add_on = "0.03"\nhedge = true\n',
        tmp_path,
    )
    au = specs.instruments["SHFE.au"]
    assert cap.order_margin("CN-FUT", au, 1, Decimal("1000.00")) == Decimal(
        "190000.0000"
    )  # (16 % + 3) x 1,000,000


def test_an_account_entering_a_margin_call_raises_one_alert_naming_its_rule(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 90_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.set_margin_rate("COMEX.GC", 0.13)  # about 106,600 of margin, 97,000 of maintenance, on 90,000
    eng.sleep(0.5)
    calls = eng.alerts()
    calls = calls[calls["source"] == "margin call"]
    assert len(calls) == 1
    assert (
        calls["message"]
        .iloc[0]
        .startswith("US-FUT is in margin call by its broker's maintenance rule: equity")
    )
    eng.set_margin_rate("COMEX.GC", 0.09)
    later = eng.alerts()
    assert (
        later[later["source"] == "margin call"]["message"].iloc[-1].startswith("US-FUT is out of margin call")
    )
