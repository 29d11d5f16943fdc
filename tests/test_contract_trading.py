"""Contract months in the engine and the embedded exchange (issue 15): orders and spreads name months,
``SHFE.au`` stands for the main month, a roll moves a hedged position one month on as hedged tickets,
and a position near its month's last trading day raises a reminder."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sim_months import AU, AU_NEXT, CL, GC, GC_NEXT

import cmc_lab as cmc
from cmc_lab.bench.startup import _write_history
from cmc_lab.core.listing import list_months
from cmc_lab.core.specs import load_specs
from cmc_lab.execution.hedge import TicketState


def take(eng: cmc.Engine, iid: str, side: str, qty: int) -> cmc.Order:
    quote, inst = eng.quote(iid), eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price)
    for part in order.parts:
        assert part.wait(5) is cmc.OrderState.FILLED, part.reason
    return order


def held(eng: cmc.Engine) -> dict[str, int]:
    frame = eng.positions()
    return {row.instrument: int(row.position) for row in frame.itertuples() if row.position}


@pytest.fixture
def eng() -> cmc.Engine:
    engine = cmc.connect("sim", seed=7, clock="virtual")
    yield engine
    engine.close()


def test_the_exchange_quotes_contract_months_and_the_product_stands_for_the_main_month(
    eng: cmc.Engine,
) -> None:
    assert (AU, GC) == (
        "SHFE.au2702",
        "COMEX.GCG27",
    )  # 2026-11-24: SHFE's even months, COMEX before first notice
    assert {AU, AU_NEXT, GC, GC_NEXT} <= set(eng.quotes().index)
    assert "SHFE.au" not in eng.quotes().index  # a product is not a contract: no book of its own
    assert eng.instrument("SHFE.au").id == AU and eng.quote("SHFE.au").instrument_id == AU
    au = eng.instrument(AU)
    assert (au.product, au.last_trading_day) == ("SHFE.au", date(2027, 2, 15))
    assert eng.instrument(GC).last_trading_day == date(2027, 2, 24)  # third last business day of February
    frame = eng.instruments
    assert frame.loc[AU, "last trading day"] == "2027-02-15" and frame.loc[AU, "product"] == "SHFE.au"
    # the later month trades at the main month plus its carry (contracts.toml), not at the same price
    assert eng.quote(AU_NEXT).mid > eng.quote(AU).mid


def test_an_order_on_a_month_fills_and_the_book_holds_that_month(eng: cmc.Engine) -> None:
    order = take(eng, "SHFE.au2702", "buy", 2)
    assert order.instrument_id == "SHFE.au2702"
    take(eng, "SHFE.au", "buy", 1)  # the product: its main month, the same position
    take(eng, AU_NEXT, "buy", 1)
    assert held(eng) == {AU: 3, AU_NEXT: 1}
    fills = eng.journal.rows(kinds=["OrderFilled"])
    assert {row["instrument"] for row in fills} == {AU, AU_NEXT}


def test_a_month_that_is_listed_but_not_quoted_is_known_and_says_why_it_cannot_trade(eng: cmc.Engine) -> None:
    june = eng.instrument("SHFE.au2706")  # listed by SHFE's rules on 2026-11-24, not quoted here
    assert (june.product, june.last_trading_day) == ("SHFE.au", date(2027, 6, 15))
    order = eng.submit("SHFE.au2706", "buy", 1, price="900.00")
    order.wait(5)
    assert order.state in (cmc.OrderState.DENIED, cmc.OrderState.REJECTED)
    assert "SHFE.au2706" in (order.reason or "")
    with pytest.raises(ValueError, match=r"'2613' is not a contract month of SHFE.au.*SHFE.au2606"):
        eng.instrument("SHFE.au2613")
    with pytest.raises(ValueError, match=r"COMEX.GCM26"):
        eng.instrument("COMEX.GC2606")  # CME months are letters


def test_a_spread_names_months_on_both_sides_and_a_calendar_spread_quotes(eng: cmc.Engine) -> None:
    cross = eng.spread("au_gc", legs={"SHFE.au2702": 1, "COMEX.GCG27": -1})
    assert cross.leg_ids == ("SHFE.au2702", "COMEX.GCG27")
    by_product = eng.spread("au_gc_main", legs={"SHFE.au": 1, "COMEX.GC": -1})
    assert by_product.leg_ids == cross.leg_ids  # the products name the same months
    calendar = eng.spread("au_cal", legs={AU: 1, AU_NEXT: -1})
    eng.sleep(2.0)
    snap = calendar.quote()
    assert snap.unit == "CNY/g" and snap.fx is None  # one product: no unit or FX conversion
    near, far = eng.quote(AU), eng.quote(AU_NEXT)
    assert snap.bid == pytest.approx(near.bid - far.ask) and snap.mid < 0  # the later month is dearer
    formula = eng.spread("au_gc_f", legs={AU: 1, GC: -1}, formula="au - GC * USDCNH / 31.1034768")
    eng.sleep(0.5)
    assert formula.quote().mid == pytest.approx(cross.quote().mid, abs=0.2)


def test_a_roll_moves_a_hedged_position_one_month_on_with_both_legs_journaled(eng: cmc.Engine) -> None:
    spread = eng.spread("au_gc", legs={AU: 1, GC: -1})
    opened = eng.hedge(spread, "buy", 3)
    assert opened.wait(10) is TicketState.FILLED
    assert held(eng) == {AU: 3, GC: -1}
    gold_in = eng.roll(AU)  # CN-FUT's long 3: sell the calendar spread AU - AU_NEXT
    gold_out = eng.roll("COMEX.GC")  # the product: its main month, US-FUT's short 1
    for ticket in (gold_in, gold_out):
        assert ticket.wait(10) is TicketState.FILLED, ticket.reason
    assert held(eng) == {AU_NEXT: 3, GC_NEXT: -1}
    book = eng.positions().set_index("instrument")
    assert book.loc[AU_NEXT, "last_trading_day"] == date(2027, 4, 15)  # what the desk must roll by next
    assert gold_in.spread.name == f"roll_au2702_{AU_NEXT.split('.')[1]}"
    assert gold_in.side is cmc.Side.SELL and gold_out.side is cmc.Side.BUY
    rows = eng.journal.rows(kinds=["OrderInitialized"])
    roll_legs = {
        (r["payload"]["instrument_id"], r["payload"]["side"])
        for r in rows
        if r["ticket_id"] == gold_in.ticket_id
    }
    assert roll_legs == {(AU, "sell"), (AU_NEXT, "buy")}
    receipt = eng.receipt(gold_in.ticket_id)  # the roll's fees as the book charged them
    fees = {(o.instrument, o.offset): (o.fee, o.fee_currency) for o in receipt.orders.itertuples()}
    assert fees == {
        (AU, "close_today"): (Decimal("0.00"), "CNY"),
        (AU_NEXT, "open"): (Decimal("30.00"), "CNY"),
    }
    report = eng.ticket(gold_in.ticket_id).report()
    assert report["fees_cny"] == Decimal("30.00")
    bought = Decimal(str(eng.receipt(opened.ticket_id).legs.set_index("leg").loc[AU, "avg_px"]))
    sold = receipt.orders.set_index("instrument").loc[AU, "avg_px"]
    assert report["book_realised_pnl_cny"] == (sold - bought) * 3 * 1000  # the near month's close, FIFO
    assert report["realised_pnl_cny"] == 0  # its own round trip: it bought one month and sold another
    with pytest.raises(ValueError, match=r"CN-FUT holds no SHFE.au2702: nothing to roll"):
        eng.roll(AU)
    with pytest.raises(ValueError, match=r"rolls more than CN-FUT holds: \+3 SHFE.au2704"):
        eng.roll(AU_NEXT, to="SHFE.au2706", qty=4)
    with pytest.raises(ValueError, match=r"no later month of SHFE.au than SHFE.au2704 is quoted"):
        eng.roll(AU_NEXT)


def test_a_position_near_its_last_trading_day_raises_a_roll_reminder(tmp_path: Path) -> None:
    desk = tmp_path / "desk.toml"
    desk.write_text('[contracts."NYMEX.CL"]\nremind_days = 20\n')  # CLF27 ends 2026-12-21: 18 CME days away
    eng = cmc.connect("sim", seed=7, clock="virtual", instruments=desk)
    try:
        take(eng, CL, "buy", 2)
        eng.sleep(61.0)
        alerts = eng.alerts()
        rolls = alerts[alerts["source"] == "roll"]
        assert len(rolls) == 1 and rolls.iloc[0]["level"] == "warning"
        assert f"US-FUT holds +2 {CL}, whose last trading day is 2026-12-21" in rolls.iloc[0]["message"]
        assert f"eng.roll('{CL}')" in rolls.iloc[0]["message"]
        last_day = datetime(2026, 12, 21, 10, tzinfo=ZoneInfo("America/Chicago"))
        eng.runtime.call(_check_at(eng, int(last_day.timestamp()) * 1_000_000_000))
        alerts = eng.alerts()
        last = alerts[alerts["source"] == "roll"].iloc[-1]
        assert last["level"] == "critical" and "(today)" in last["message"]
    finally:
        eng.close()


async def _check_at(eng: cmc.Engine, ts_ns: int) -> None:
    eng.inbox.rolls.check(ts_ns)


def test_fees_and_margin_of_a_product_apply_to_each_of_its_months() -> None:
    specs = list_months(load_specs(), 1_795_528_800_000_000_000)
    au, au_next = specs.instrument(AU), specs.instrument(AU_NEXT)
    fee = specs.fees.fee(
        au_next, Decimal("950.00"), opened=2, closed_today=0, closed_yesterday=0, day=date(2026, 11, 25)
    )
    assert (fee.amount, fee.detail) == (Decimal("20.00"), "open 2 x 10 CNY/lot")
    assert specs.hedge_margin[au.id] == specs.hedge_margin[au_next.id] == load_specs().hedge_margin["SHFE.au"]


def test_a_margin_notice_for_a_product_moves_every_month(eng: cmc.Engine) -> None:
    eng.set_margin_rate("COMEX.GC", 0.12)
    margins = eng.instruments.loc[[GC, GC_NEXT], "margin"]
    assert margins.nunique() == 1 and margins.iloc[0].startswith("12")


def test_a_position_in_a_month_the_next_session_does_not_quote_survives_the_restart(tmp_path: Path) -> None:
    journal = tmp_path / "run.sqlite"
    first = cmc.connect("sim", seed=7, clock="virtual", journal=journal)
    take(first, AU_NEXT, "buy", 2)  # the second month: a session that lists one month does not quote it
    with pytest.warns(cmc.OpenExposureWarning):
        first.close()
    again = cmc.connect("sim", seed=7, clock="virtual", journal=journal, months=1)
    try:
        assert AU_NEXT not in again.quotes().index
        assert held(again) == {AU_NEXT: 2}
        assert again.instrument(AU_NEXT).last_trading_day == date(2027, 4, 15)
        assert again.capital().accounts.loc["CN-FUT", "initial_margin"] > 0  # its product's margin rate
    finally:
        with pytest.warns(cmc.OpenExposureWarning):
            again.close()


def test_a_limit_set_on_a_product_holds_for_each_of_its_months(eng: cmc.Engine) -> None:
    eng.limits.set("SHFE.au", max_order_qty=2)
    for month in (AU, AU_NEXT):
        quote = eng.quote(month)
        order = eng.submit(month, "buy", 3, price=eng.instrument(month).round_to_tick(quote.bid))
        assert order.state is cmc.OrderState.DENIED and "maximum order size of 2 lots" in (order.reason or "")
    eng.limits.set(AU_NEXT, max_order_qty=5)  # a month's own limit comes first
    order = eng.submit(AU_NEXT, "buy", 3, price=eng.instrument(AU_NEXT).round_to_tick(eng.quote(AU_NEXT).bid))
    assert order.state is not cmc.OrderState.DENIED
    eng.thresholds.add(
        "position", warn=1, act=2, action="alert", scope="COMEX.GC"
    )  # the product: its main month
    assert GC in repr(eng.thresholds)


def test_open_interest_names_the_main_month_as_the_exchange_does() -> None:
    busy = {"SHFE.au2706": 210_000, "SHFE.au2702": 15_000, "COMEX.GCG27": 400_000}  # a daily report's figures
    eng = cmc.connect("sim", seed=7, clock="virtual", open_interest=busy)
    try:
        assert eng.instrument("SHFE.au").id == "SHFE.au2706"  # the most open interest, though June is far
        assert "SHFE.au2708" in eng.quotes().index  # and the main month after it
        assert eng.instrument("COMEX.GC").id == GC  # agrees with the rule
    finally:
        eng.close()
    with pytest.raises(ValueError, match=r"'SHFE.au' is not a contract month; name months, e.g. SHFE.au2606"):
        cmc.connect("sim", clock="virtual", open_interest={"SHFE.au": 1})


def test_a_month_the_exchange_does_not_list_today_is_refused_naming_the_listed_ones(eng: cmc.Engine) -> None:
    with pytest.raises(
        ValueError, match=r"SHFE.au2606 is not listed on 2026-11-2\d \(its last trading day is 2026-06-15\)"
    ):
        eng.instrument("SHFE.au2606")  # expired in June
    with pytest.raises(
        ValueError, match=r"COMEX.GCZ98 is not listed .*COMEX.GC lists COMEX.GCX26, COMEX.GCZ26, COMEX.GCF27"
    ):
        eng.submit("COMEX.GCZ98", "buy", 1, price="4100.0")
    assert "COMEX.GCZ98" not in eng.instruments.index  # a refused id leaves no trace in the universe


def test_a_journal_written_before_months_reopens_from_its_checkpoint_with_its_margin(tmp_path: Path) -> None:
    """Its rows name the product (COMEX.GC): the book keeps that id, with the product's margin rate."""
    path = tmp_path / "old.sqlite"
    _write_history(path, 41)  # buys and sells of one COMEX.GC lot, filled: long 1 at the end
    first = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    with pytest.warns(cmc.OpenExposureWarning):
        first.close()
    again = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        note = list(again.journal.rows(kinds=["EngineRecovered"]))[-1]["payload"]
        assert note["full_replay_because"] in ("", None) and note["book_from_seq"] > 0
        assert held(again) == {"COMEX.GC": 1}
        assert again.capital().accounts.loc["US-FUT", "initial_margin"] > 0  # the product's rate
    finally:
        with pytest.warns(cmc.OpenExposureWarning):
            again.close()
