"""Capital and margin: accounts from the specs, positions marked on quotes, margin, the unified view."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_months import AU, CL, GC

import cmc_lab as cmc
from cmc_lab.core.model import Quote, Side
from cmc_lab.core.specs import SpecError, load_specs
from cmc_lab.risk.capital import Capital, Position
from cmc_lab.risk.capital_view import CapitalView
from cmc_lab.risk.fx_book import convert


def rows(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def fill(eng: cmc.Engine, iid: str, side: str, qty: int) -> cmc.Order:
    quote = eng.quote(iid)
    inst = eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price)
    assert order.wait(5) is cmc.OrderState.FILLED, order.reason
    return order


# ---------------------------------------------------------------------------- specs


def test_accounts_and_capital_settings_load_from_the_instrument_file() -> None:
    specs = load_specs()
    assert {n: (a.currency, a.cash) for n, a in specs.accounts.items()} == {
        "CN-FUT": ("CNY", Decimal("50000000")),
        "US-FUT": ("USD", Decimal("5000000")),
    }
    assert specs.capital.base_currency == "CNY"
    assert specs.capital.maintenance_ratio == Decimal("0.8")
    assert specs.capital.transfer_delay_s == 2.0
    assert specs.maintenance["COMEX.GC"] == Decimal("0.91")
    assert "SHFE.au" not in specs.maintenance


def test_user_file_overrides_accounts_capital_and_maintenance(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(
        '[capital]\nmaintenance_ratio = "0.75"\ntransfer_delay_s = 5\n'
        '[accounts.US-FUT]\ncurrency = "USD"\ncash = "250000.50"\n'
        "[[instrument]]\n"
        'venue = "SHFE"\nsymbol = "au"\ncurrency = "CNY"\nlot_size = "1000"\nlot_unit = "g"\n'
        'price_unit = "g"\ntick = "0.02"\ndaily_limit = "0.08"\nsessions = "shfe_precious"\n'
        'reference_price = "620.00"\nmargin = { kind = "percent", rate = "0.12", maintenance = "0.9" }\n'
    )
    specs = load_specs(path)
    assert specs.accounts["US-FUT"].cash == Decimal("250000.50")
    assert specs.capital.maintenance_ratio == Decimal("0.75")
    assert specs.capital.transfer_delay_s == 5.0
    assert specs.maintenance["SHFE.au"] == Decimal("0.9")
    assert specs.instrument("SHFE.au").margin_rate == Decimal("0.12")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[accounts.HK]\ncurrency = "HKD"\ncash = "1"\n',
            r"\[accounts\.HK\]: currency 'HKD' is not one the FX",
        ),
        ('[accounts.HK]\ncurrency = "USD"\ncash = "-1"\n', r"\[accounts\.HK\]: cash = '-1' must be a finite"),
        ('[accounts.HK]\ncash = "1"\n', r"\[accounts\.HK\]: missing field 'currency'"),
        (
            '[venues.DCE]\nregion = "domestic"\naccount = "DCE-FUT"\n',
            r"venue DCE trades in account 'DCE-FUT'",
        ),
        (
            '[capital]\nmaintenance_ratio = "1.5"\n',
            r"maintenance_ratio: '1.5' must be a share of initial margin",
        ),
        ("[capital]\ntransfer_delay_s = -1\n", r"transfer_delay_s = -1 must be a number of seconds"),
        ('[capital]\nbase_currency = "EUR"\n', r"base_currency 'EUR' must be one of CNY, CNH, USD"),
        ("[capital]\ndelay = 1\n", r"unknown key 'delay'; known: base_currency"),
    ],
)
def test_bad_capital_tables_name_the_entry_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_specs(path)


def test_connect_accounts_override_sets_cash_or_adds_an_account(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 1_000_000, "HK-FUT": {"currency": "USD", "cash": "250000"}})
    accounts, unified = eng.capital()
    assert accounts.loc["US-FUT", "cash"] == Decimal("1000000.00")
    assert accounts.loc["HK-FUT", "currency"] == "USD"
    assert list(unified.index) == ["CNY"]


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ({"US-FUT": -5}, r"accounts\['US-FUT'\]: cash -5 is negative"),
        ({"US-FUT": "lots"}, r"accounts\['US-FUT'\] cash = 'lots' is not a number"),
        ({"HK-FUT": 100}, r"a new account needs \{'currency': \.\.\., 'cash': \.\.\.\}"),
        ({"US-FUT": {"ccy": "USD"}}, r"unknown key 'ccy'; give currency and cash"),
    ],
)
def test_bad_accounts_override_fails_before_a_journal_is_opened(
    make_engine: Callable[..., cmc.Engine], tmp_path: Path, accounts: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_engine(accounts=accounts, journal=tmp_path / "never.sqlite")
    assert not (tmp_path / "never.sqlite").exists()


# ---------------------------------------------------------------------------- positions and margin


def test_margin_is_a_share_of_notional_on_comex_gold_and_on_shfe(eng: cmc.Engine) -> None:
    gc = fill(eng, "COMEX.GC", "buy", 2)
    au = fill(eng, "SHFE.au", "sell", 3)
    view = eng.capital()
    pos = view.positions.set_index("instrument")
    assert pos.loc[GC, "qty"] == 2 and pos.loc[AU, "qty"] == -3
    gc_initial = Decimal("0.09") * pos.loc[GC, "mark"] * 100 * 2  # CME: 9 % of notional since 2026-02-06
    assert view.accounts.loc["US-FUT", "initial_margin"] == gc_initial.quantize(Decimal("0.01"))
    au_mark = pos.loc[AU, "mark"]
    assert view.accounts.loc["CN-FUT", "initial_margin"] == (Decimal("0.17") * au_mark * 1000 * 3).quantize(
        Decimal("0.01")
    )
    us = view.accounts.loc["US-FUT"]
    assert us["maintenance_margin"] == (gc_initial * Decimal("0.91")).quantize(Decimal("0.01"))
    assert us["equity"] == us["cash"] + us["unrealized"]
    assert us["available"] == us["equity"] - us["initial_margin"]
    assert us["utilisation"] == pytest.approx(float(us["initial_margin"] / us["equity"]))
    assert gc.avg_px == pos.loc[GC, "avg_px"] and au.avg_px == pos.loc[AU, "avg_px"]


def test_positions_are_marked_to_market_on_every_quote(eng: cmc.Engine) -> None:
    fill(eng, "COMEX.GC", "buy", 1)
    marks = []
    for _ in range(5):
        eng.sleep(0.5)
        pos = eng.capital().positions.iloc[0]
        assert pos["mark"] == Decimal(str(eng.quote("COMEX.GC").mid))
        assert pos["unrealized"] == ((pos["mark"] - pos["avg_px"]) * 100).quantize(Decimal("0.01"))
        marks.append(pos["mark"])
    assert len(set(marks)) > 1


def test_a_closing_fill_realizes_pnl_into_cash(eng: cmc.Engine) -> None:
    buy = fill(eng, "COMEX.GC", "buy", 2)
    eng.venues["COMEX"].shock("GC", 0.01)
    eng.sleep(1.0)
    sell = fill(eng, "COMEX.GC", "sell", 2)
    realized = (sell.avg_px - buy.avg_px) * 2 * 100
    fees = Decimal("2.47") * 4  # COMEX GC per contract, 2 lots in and 2 out
    accounts, _ = eng.capital()
    assert realized > 0
    assert accounts.loc["US-FUT", "cash"] == (Decimal(5_000_000) + realized - fees).quantize(Decimal("0.01"))
    assert accounts.loc["US-FUT", "initial_margin"] == 0
    assert eng.risk.transfers.ledger()["USD"]["settled"] == realized - fees


def test_working_orders_hold_margin_until_they_end(eng: cmc.Engine) -> None:
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    order = eng.submit("COMEX.GC", "buy", 3, price=bid - 3)
    held = Decimal("0.09") * (bid - 3) * 100 * 3
    assert eng.capital().accounts.loc["US-FUT", "reserved"] == held.quantize(Decimal("0.01"))
    order.cancel()
    assert order.wait(5) is cmc.OrderState.CANCELED
    assert eng.capital().accounts.loc["US-FUT", "reserved"] == 0


def test_set_margin_rate_changes_margin_and_is_journaled(eng: cmc.Engine) -> None:
    fill(eng, "NYMEX.CL", "buy", 2)
    eng.set_margin_rate("NYMEX.CL", 7_000, maintenance=0.9)
    assert eng.capital().accounts.loc["US-FUT", "initial_margin"] == Decimal("14000.00")
    assert eng.capital().accounts.loc["US-FUT", "maintenance_margin"] == Decimal("12600.00")
    assert eng.instruments.loc[CL, "margin"] == "7000 /lot"
    assert eng.instruments.loc[AU, "margin"] == "17%"
    assert rows(eng, "MarginRateChanged") == [
        {"instrument": "NYMEX.CL", "old": ["per_lot", "6000", "0.91"], "new": ["per_lot", "7000", "0.9"]}
    ]


@pytest.mark.parametrize(
    ("iid", "rate", "kwargs", "message"),
    [
        (
            "SHFE.au",
            12,
            {},
            r"SHFE\.au margin is a share of notional: 12 would be 1200\.?0*%; give e\.g\. 0\.12",
        ),
        ("COMEX.GC", -1, {}, r"margin rate -1 is negative"),
        ("COMEX.XX", 1, {}, r"no margin rate for 'COMEX\.XX'; tradeable instruments: SHFE\.au"),
        ("COMEX.GC", 1, {"kind": "flat"}, r"margin kind 'flat' must be 'percent' or 'per_lot'"),
        ("NYMEX.CL", 1, {"maintenance": 2}, r"maintenance 2 must be a share of initial margin"),
    ],
)
def test_bad_margin_rates_are_refused(
    eng: cmc.Engine, iid: str, rate: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        eng.set_margin_rate(iid, rate, **kwargs)


def test_unified_view_converts_cny_at_the_onshore_rate_and_names_it(eng: cmc.Engine) -> None:
    eng.sleep(1.0)
    view = eng.capital()
    cny, cnh = Decimal(str(eng.quote("FX.USDCNY").mid)), Decimal(str(eng.quote("FX.USDCNH").mid))
    assert cny != cnh  # the simulated market keeps a basis between onshore and offshore yuan
    assert bool(view.fx.loc["USDCNY", "live"]) and view.fx.loc["USDCNY", "value"] == cny
    assert view.fx.loc["USDCNH", "value"] == cnh and 0 <= view.fx.loc["USDCNH", "age_s"] < 1.0
    assert view.fx_basis == cnh - cny
    unified = view.unified.loc["CNY"]
    assert unified["equity"] == (Decimal(50_000_000) + Decimal(5_000_000) * cny).quantize(Decimal("0.01"))
    assert unified["converted_at"] == view.base_rate == f"USDCNY {cny}"
    assert f"CNY converts at USDCNY {cny}" in repr(view) and "unified (CNY)" in repr(view)
    html = view._repr_html_()
    assert "US-FUT" in html and "CN-FUT" in html and "s old" in html and "CNH-CNY basis" in html


def test_capital_view_before_any_fx_quote_says_it_uses_the_reference_rates() -> None:
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    view = CapitalView.from_snapshot(cap.snapshot(0, {}), [])
    assert not view.fx["live"].any()
    assert "USDCNY 7.1100 (reference rate: no quote yet)" in view.fx_text()
    assert view.base_rate == "USDCNY 7.1100 (reference)"


def test_with_no_onshore_quote_cny_converts_at_usdcnh_and_says_so() -> None:
    """A recording of USDCNH only: onshore money converts at the live offshore rate, named."""
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    cap.on_quote(Quote("FX.USDCNH", 7.1200, 7.1202, 1, 1, 10, 10))
    assert str(cap.rate_used("CNY")) == "USDCNH 7.1201 (USDCNH, no USDCNY quote)"
    assert cap.to_base(Decimal(100), "USD") == Decimal("712.0100")


# ---------------------------------------------------------------------------- pure pieces


def test_position_flip_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price() -> None:
    gc = load_specs().instrument("COMEX.GC")
    pos = Position("US-FUT", gc)
    assert pos.apply_fill(Side.BUY, Decimal("2650.0"), 2).realized == 0
    assert pos.apply_fill(Side.BUY, Decimal("2660.0"), 2).realized == 0
    assert pos.avg_px == Decimal("2655.0")
    flip = pos.apply_fill(Side.SELL, Decimal("2665.0"), 6)
    assert flip.realized == Decimal("4000.0")  # 2 lots x 15 + 2 lots x 5, x 100 oz
    assert (flip.opened, flip.closed_today + flip.closed_yesterday) == (2, 4)
    assert (pos.qty, pos.avg_px) == (-2, Decimal("2665.0"))
    pos.mark = Decimal("2660.0")
    assert pos.unrealized == Decimal("1000.0")


def test_convert_between_usd_and_cny_at_usdcnh() -> None:
    rate = Decimal("7.25")
    assert convert(Decimal("100"), "USD", "CNY", rate) == Decimal("725.00")
    assert convert(Decimal("725"), "CNY", "USD", rate) == Decimal("100")
    assert convert(Decimal("5"), "CNH", "CNY", rate) == Decimal("5")


# ---------------------------------------------------------------------------- figures, cached per account


def test_a_quote_recomputes_the_figures_that_read_it_and_no_others() -> None:
    """A gold quote moves the account holding gold; an FX quote moves an account holding a position
    in another money (gold in USD in a CNH account) and leaves the same-money account's figures as
    they were; a fill anywhere recomputes every account."""
    specs = load_specs()
    cap = Capital(
        specs, specs.instruments.values(), accounts={"HK-FUT": {"currency": "CNH", "cash": 1_000_000}}
    )
    gc, au = specs.instrument("COMEX.GC"), specs.instrument("SHFE.au")
    cap.apply_fill("US-FUT", gc, Side.BUY, Decimal("4100.0"), 2)
    cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("950.00"), 1)
    cap.apply_fill("HK-FUT", gc, Side.SELL, Decimal("4100.0"), 1)
    before = {name: cap.figures(name) for name in cap.accounts}

    cap.on_quote(Quote(gc.id, 4110.0, 4110.2, 5, 5, 10, 10))
    after_gc = {name: cap.figures(name) for name in cap.accounts}
    assert after_gc["CN-FUT"] is before["CN-FUT"]
    assert after_gc["US-FUT"].unrealized == Decimal("2020.00")  # 2 lots x 100 oz x 10.1
    assert after_gc["HK-FUT"].unrealized != before["HK-FUT"].unrealized

    cap.on_quote(Quote("FX.USDCNH", 7.2, 7.2002, 5, 5, 20, 20))
    after_fx = {name: cap.figures(name) for name in cap.accounts}
    assert after_fx["CN-FUT"] is before["CN-FUT"] and after_fx["US-FUT"] is after_gc["US-FUT"]
    assert after_fx["HK-FUT"].unrealized != after_gc["HK-FUT"].unrealized  # USD P&L at the new rate
    assert after_fx["HK-FUT"] == cap._compute("HK-FUT")

    cap.apply_fill("US-FUT", gc, Side.SELL, Decimal("4110.0"), 2)
    assert all(cap.figures(name) is not after_fx[name] for name in cap.accounts)
    assert all(cap.figures(name) == cap._compute(name) for name in cap.accounts)


@pytest.mark.parametrize("account", ["CN-FUT", "US-FUT"])
def test_the_margin_call_check_answers_as_the_figures_do_across_the_call(account: str) -> None:
    """``margin_called`` (what the once-a-second check asks) reads the same rule as the figures: CN-FUT
    calls on its risk degree, US-FUT when equity falls under maintenance; walked down through each
    account's call by marking its position lower and lower."""
    specs = load_specs()
    small = {"CN-FUT": 400_000, "US-FUT": 120_000}
    cap = Capital(specs, specs.instruments.values(), accounts={account: small[account]})
    inst = specs.instrument("SHFE.au" if account == "CN-FUT" else "COMEX.GC")
    cap.apply_fill(account, inst, Side.BUY, inst.reference_price, 2)
    seen = set()
    for step in range(60):
        mid = float(inst.reference_price) * (1 - step / 200)
        cap.on_quote(Quote(inst.id, mid - float(inst.tick), mid + float(inst.tick), 5, 5, step, step))
        called = cap.margin_called(account)
        assert called is cap._compute(account).margin_call, (step, mid)
        assert called is cap.figures(account).margin_call  # and from the cached figures
        seen.add(called)
    assert seen == {False, True}
