"""Fees: a dated schedule per instrument (SHFE/INE open, close today, close yesterday; CME/LME per
contract), booked into the account's cash on every fill and journaled with the fill's effects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc
from cmc_lab.core.fees import FeeBasis
from cmc_lab.core.model import Side
from cmc_lab.core.specs import SpecError, load_specs
from cmc_lab.risk.capital import Capital

D1, D2 = date(2026, 11, 24), date(2026, 11, 25)


def take(eng: cmc.Engine, iid: str, side: str, qty: int) -> cmc.Order:
    quote, inst = eng.quote(iid), eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price)
    assert order.wait(5) is cmc.OrderState.FILLED, order.reason
    return order


def booked(eng: cmc.Engine, order: cmc.Order) -> list[dict[str, Any]]:
    rows = eng.journal.rows(kinds=["FillBooked"])
    return [r["payload"] for r in rows if r["payload"]["order_id"] == order.client_order_id]


# ---------------------------------------------------------------------------- the schedule


def test_every_shipped_contract_has_a_dated_fee_with_its_source() -> None:
    specs = load_specs()
    tradeable = sorted(i.id for i in specs.instruments.values() if i.tradeable)
    assert sorted(specs.fees.entries) == tradeable
    for iid, entries in specs.fees.entries.items():
        for entry in entries:
            assert entry.source and isinstance(entry.as_of, date)
            assert entry.currency == specs.instrument(iid).currency
    au = specs.fees.entry("SHFE.au", D1)
    assert au is not None and au.basis is FeeBasis.PER_LOT
    assert (au.open, au.close_today, au.close_yesterday) == (Decimal(10), Decimal(0), Decimal(10))
    gc = specs.fees.entry("COMEX.GC", D1)
    assert gc is not None and dict(gc.components) == {
        "exchange": Decimal("1.60"),
        "nfa": Decimal("0.02"),
        "broker": Decimal("0.85"),
    }


def test_a_later_entry_applies_from_its_date_and_earlier_fills_keep_the_old_rate(tmp_path: Path) -> None:
    path = tmp_path / "fees.toml"
    path.write_text(
        '[[fee]]\ninstrument = "SHFE.au"\ncurrency = "CNY"\nas_of = 2026-11-25\n'
        'source = "desk test: SHFE raises gold fees"\nper_lot = { open = "12", close_today = "1", '
        'close_yesterday = "12" }\n'
    )
    specs = load_specs(path)
    cap = Capital(specs, specs.instruments.values())
    au = specs.instrument("SHFE.au")
    old = cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("620.00"), 1, day=D1)
    new = cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("620.00"), 1, day=D2)
    assert (old.fee.amount, new.fee.amount) == (Decimal("10.00"), Decimal("12.00"))
    assert new.fee.source == "desk test: SHFE raises gold fees"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('instrument = "SHFE.au"\ncurrency = "CNY"\nas_of = 2026-01-01\nper_lot = {}\n', r"give the source"),
        (
            'instrument = "SHFE.au"\ncurrency = "CNY"\nsource = "x"\nper_lot = { open = "1", close_today = "1", '
            'close_yesterday = "1" }\n',
            r"missing field 'as_of'",
        ),
        (
            'instrument = "SHFE.au"\ncurrency = "CNY"\nsource = "x"\nas_of = "last week"\nper_contract = { a = "1" }\n',
            r"as_of = 'last week' must be a date, written as_of = 2026-01-31",
        ),
        (
            'instrument = "SHFE.au"\ncurrency = "CNY"\nsource = "x"\nas_of = 2026-01-01\n',
            r"give exactly one of per_lot, notional or per_contract \(found none\)",
        ),
        (
            'instrument = "SHFE.cu"\ncurrency = "CNY"\nsource = "x"\nas_of = 2026-01-01\n'
            'notional = { open = "5", close_today = "0", close_yesterday = "5" }\n',
            r"a share of notional must be below 1: write 0.05 per mille as \"0.00005\"",
        ),
        (
            'instrument = "SHFE.au"\ncurrency = "CNY"\nsource = "x"\nas_of = 2026-01-01\nper_lot = { open = "1" }\n',
            r"per_lot: missing field 'close_today'",
        ),
        (
            'instrument = "COMEX.GC"\ncurrency = "CNY"\nsource = "x"\nas_of = 2026-01-01\nper_contract = { a = "1" }\n',
            r"currency 'CNY' is not the instrument's \(USD\)",
        ),
        (
            'instrument = "COMEX.HG"\ncurrency = "USD"\nsource = "x"\nas_of = 2026-01-01\nper_contract = { a = "1" }\n',
            r"unknown instrument 'COMEX\.HG'.*a fee needs its \[\[instrument\]\]",
        ),
        (
            'instrument = "COMEX.GC"\ncurrency = "USD"\nsource = "x"\nas_of = 2026-01-01\nper_contract = { a = "-1" }\n',
            r"a = '-1' must be a finite, non-negative number",
        ),
        ('instrument = "GC"\n', r"instrument id 'GC' is not VENUE\.SYMBOL"),
        ('instrument = "COMEX.GC"\nrate = "1"\n', r"unknown key 'rate'"),
    ],
)
def test_bad_fee_entries_name_the_entry_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[fee]]\n" + text)
    with pytest.raises(SpecError, match=message):
        load_specs(path)


# ---------------------------------------------------------------------------- pricing a fill


def test_shfe_close_today_and_close_yesterday_lots_pay_their_own_rates() -> None:
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    au, cu = specs.instrument("SHFE.au"), specs.instrument("SHFE.cu")
    assert cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("620.00"), 2, day=D1).fee.amount == Decimal("20.00")
    assert cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("621.00"), 1, day=D2).fee.amount == Decimal("10.00")
    close = cap.apply_fill("CN-FUT", au, Side.SELL, Decimal("622.00"), 3, day=D2)  # FIFO: 2 old lots first
    assert (close.effect.closed_yesterday, close.effect.closed_today) == (2, 1)
    assert close.fee.amount == Decimal("20.00")  # 2 x 10 close yesterday + 1 x 0 close today
    assert close.fee.detail == "close today 1 x 0 CNY/lot close yesterday 2 x 10 CNY/lot"
    opened = cap.apply_fill("CN-FUT", cu, Side.BUY, Decimal("76210"), 3, day=D2)
    assert opened.fee.amount == Decimal("57.16")  # 0.00005 x 76,210 x 5 t x 3 = 57.1575
    closed = cap.apply_fill("CN-FUT", cu, Side.SELL, Decimal("76220"), 3, day=D2)
    assert closed.fee.amount == Decimal("114.33")  # close today: 0.0001 x 76,220 x 15 = 114.33
    acct = cap.accounts["CN-FUT"]
    assert acct.fees == Decimal("221.49")
    assert acct.cash == Decimal(50_000_000) + (2 * 2 + 1) * 1000 + 10 * 15 - acct.fees


def test_cme_and_lme_fees_are_per_contract_opening_or_closing() -> None:
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    gc, ca = specs.instrument("COMEX.GC"), specs.instrument("LME.CA")
    assert cap.apply_fill("US-FUT", gc, Side.BUY, Decimal("2650.0"), 2, day=D1).fee.amount == Decimal("4.94")
    assert cap.apply_fill("US-FUT", gc, Side.SELL, Decimal("2650.0"), 2, day=D1).fee.amount == Decimal("4.94")
    lme = cap.apply_fill("US-FUT", ca, Side.SELL, Decimal("9200.0"), 4, day=D1).fee
    assert lme.amount == Decimal("7.00") and lme.detail.endswith(
        "(exchange 0.65 + clearing 0.25 + broker 0.85)"
    )
    assert cap.accounts["US-FUT"].cash == Decimal(5_000_000) - Decimal("16.88")


def test_an_instrument_without_a_schedule_pays_nothing_and_says_so(tmp_path: Path) -> None:
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    fx = specs.instrument("FX.USDCNH")
    booking = cap.apply_fill("US-FUT", fx, Side.BUY, Decimal("7.2500"), 1)
    assert booking.fee.amount == 0 and booking.fee.detail == "no fee schedule for this instrument"


# ---------------------------------------------------------------------------- on the engine


def test_every_fill_pays_its_fee_from_cash_and_is_journaled_with_its_effects(eng: cmc.Engine) -> None:
    buy = take(eng, "SHFE.au", "buy", 3)
    sell = take(eng, "SHFE.au", "sell", 3)  # same trading day: close today, free for gold
    (opened,) = booked(eng, buy)
    assert opened["fee"] == "30.00" and opened["fee_currency"] == "CNY" and opened["opened"] == 3
    assert opened["fee_detail"] == "open 3 x 10 CNY/lot" and opened["fee_as_of"] == "2021-12-31"
    assert opened["position"] == 3 and opened["trade_id"] == buy.fills[0].trade_id
    (closed,) = booked(eng, sell)
    assert (closed["closed_today"], closed["closed_yesterday"], closed["fee"]) == (3, 0, "0.00")
    realized = (sell.avg_px - buy.avg_px) * 3 * 1000
    assert Decimal(closed["realized"]) == realized and Decimal(closed["cash"]) == realized
    accounts, _ = eng.capital()
    assert accounts.loc["CN-FUT", "cash"] == Decimal(50_000_000) + realized - 30
    assert [b.fee.amount for b in eng.risk.capital.bookings_of(buy.client_order_id)] == [Decimal("30.00")]
    for e in eng.risk.transfers.ledger().values():
        assert e["cash"] + e["in_transit"] == e["start"] + e["settled"] + e["bought"] - e["sold"]


def test_fees_are_rebuilt_on_reopen_and_not_journaled_twice(
    make_engine: Callable[..., cmc.Engine], journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    take(first, "COMEX.GC", "buy", 2)
    cash = first.capital().accounts.loc["US-FUT", "cash"]
    assert cash == Decimal(5_000_000) - Decimal("4.94")
    first.close()
    second = make_engine(journal=journal_path)
    assert second.capital().accounts.loc["US-FUT", "cash"] == cash
    assert second.risk.capital.accounts["US-FUT"].fees == Decimal("4.94")
    assert len(list(second.journal.rows(kinds=["FillBooked"]))) == 1


def test_a_per_contract_fee_reads_close_without_today_or_yesterday() -> None:
    specs = load_specs()
    fee = specs.fees.fee(
        specs.instrument("COMEX.GC"), Decimal("4100.0"), opened=0, closed_today=1, closed_yesterday=1,
        day=date(2026, 12, 7),
    )  # fmt: skip
    assert fee.amount == Decimal("4.94")
    assert fee.detail == "close 2 x 2.47 USD/contract (exchange 1.60 + nfa 0.02 + broker 0.85)"
