"""Reconciliation with the venues and the broker: differences journaled and alerted, never written over the book."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.model import Side, SubmitOrder, TimeInForce
from cmc_lab.core.specs import load_specs
from cmc_lab.data.history import quotes_dataset
from cmc_lab.data.recorder import save_quotes
from cmc_lab.engine.statement import StatementError
from cmc_lab.venues.base import VenueNotConnected
from cmc_lab.venues.fix.gateway import fix_venues
from cmc_lab.venues.sim.exchange import SimExchange, SimVenue
from cmc_lab.venues.sim.positions import PositionBook, TradeLog, trade_log_path

MakeEngine = Callable[..., cmc.Engine]


@pytest.fixture(autouse=True)
def _closing_with_exposure_is_expected() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cmc.OpenExposureWarning)
        yield


def payloads(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def sim(eng: cmc.Engine, name: str) -> SimVenue:
    venue = eng.venues[name]
    assert isinstance(venue, SimVenue)
    return venue


def filled(eng: cmc.Engine, iid: str, side: str, qty: int) -> cmc.Order:
    inst, quote = eng.instrument(iid), eng.quote(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price)
    assert order.wait(5) is cmc.OrderState.FILLED, order
    return order


def resting_price(eng: cmc.Engine, iid: str) -> Decimal:
    inst = eng.instrument(iid)
    return inst.round_to_tick(eng.quote(iid).bid) - 20 * inst.tick


# --------------------------------------------------------------------------- the venues


def test_a_clean_book_journals_book_reconciled_and_raises_no_alert(eng: cmc.Engine) -> None:
    eng.sleep(0.5)
    filled(eng, "COMEX.GC", "buy", 2)
    resting = eng.submit("SHFE.au", "buy", 1, price=resting_price(eng, "SHFE.au"))
    eng.sleep(0.5)
    result = eng.reconcile()
    assert result.clean and result.differences == [] and result.unverified == {}
    rows = {row["item"]: row for row in result.frame.to_dict("records")}
    assert [rows[GC][c] for c in ("reported", "engine", "status")] == [2, 2, "ok"]
    assert [rows[resting.client_order_id][c] for c in ("check", "reported", "engine")] == [
        "working order",
        1,
        1,
    ]
    last = payloads(eng, "BookReconciled")[-1]
    assert last["clean"] is True and last["differences"] == 0 and last["compared"] == 2
    assert payloads(eng, "ReconcileDifference") == [] and eng.alerts().empty
    assert "<table" in result._repr_html_() and "clean" in result._repr_html_()


def test_the_book_is_checked_at_start_up_with_every_venue_in_one_row(eng: cmc.Engine) -> None:
    eng.sleep(1.0)
    (startup,) = payloads(eng, "BookReconciled")
    assert startup["venues"] == list(eng.venues) and startup["clean"] is True


def test_a_fill_the_engine_never_heard_is_journaled_and_alerted_with_the_signed_difference(
    eng: cmc.Engine,
) -> None:
    eng.sleep(0.5)
    filled(eng, "COMEX.GC", "buy", 2)
    sim(eng, "COMEX").book_trade("US-FUT", "GC", "buy", 1)  # a fill whose report never came
    result = eng.reconcile()
    (difference,) = result.differences
    assert (difference.reported, difference.engine, difference.difference) == (3, 2, 1)
    assert difference.action == f"sell 1 {GC}"
    (row,) = payloads(eng, "ReconcileDifference")
    assert row["reported"] == 3 and row["engine"] == 2 and row["difference"] == 1
    assert row["long_qty"] == 3 and row["short_qty"] == 0 and row["action"] == f"sell 1 {GC}"
    alert = eng.alerts().iloc[-1]
    assert alert["level"] == "critical" and alert["source"] == "reconcile"
    assert "COMEX holds long 3, the engine's book long 2: +1 lot(s)" in alert["message"]
    assert f"sell 1 {GC} to flatten the difference" in alert["message"]
    assert eng.risk.capital.position("US-FUT", GC) == 2  # never overwritten
    assert payloads(eng, "BookReconciled")[-1]["clean"] is False


def test_a_short_the_engine_does_not_hold_is_stated_short_with_a_buy_to_flatten(eng: cmc.Engine) -> None:
    sim(eng, "SHFE").book_trade("CN-FUT", "SHFE.au", "sell", 3)
    (difference,) = eng.reconcile().differences
    assert difference.difference == -3 and difference.action == f"buy 3 {AU}"
    message = eng.alerts()["message"].iloc[-1]
    assert "SHFE holds short 3, the engine's book flat: -3 lot(s)" in message and f"buy 3 {AU}" in message


def test_a_fill_in_flight_while_the_venues_are_asked_is_not_a_difference(eng: cmc.Engine) -> None:
    eng.sleep(0.5)
    quote = eng.quote("COMEX.GC")
    order = eng.submit("COMEX.GC", "buy", 1, price=eng.instrument("COMEX.GC").round_to_tick(quote.ask + 5))
    result = eng.reconcile()  # asked while the order and its fill travel
    assert order.state is cmc.OrderState.FILLED
    assert result.differences == [] and payloads(eng, "ReconcileDifference") == []


def test_an_order_working_at_the_venue_that_the_engine_does_not_know_is_critical(eng: cmc.Engine) -> None:
    eng.sleep(0.5)
    venue = sim(eng, "COMEX")
    stranger = SubmitOrder(
        "x9-000001", GC, Side.BUY, 1, resting_price(eng, "COMEX.GC"), TimeInForce.GFD, "US-FUT", 0
    )

    async def sent_by_another_process() -> None:
        venue.submit(stranger)

    eng.runtime.call(sent_by_another_process())
    eng.sleep(0.5)
    (difference,) = eng.reconcile().differences
    assert difference.check == "working order" and difference.item == "x9-000001"
    assert (difference.reported, difference.engine, difference.difference) == (1, 0, 1)
    assert difference.action == "cancel x9-000001 at COMEX"
    alert = eng.alerts().iloc[-1]
    assert alert["level"] == "critical" and "which the engine does not know" in alert["message"]
    (row,) = [r for r in eng.journal.rows(kinds=["ReconcileDifference"])]
    assert row["order_id"] == "x9-000001" and row["venue"] == "COMEX" and row["instrument"] == GC


def test_a_reconnect_triggers_the_book_check_after_the_order_status_reconcile(eng: cmc.Engine) -> None:
    eng.sleep(1.0)
    resting = eng.submit("COMEX.GC", "buy", 1, price=resting_price(eng, "COMEX.GC"))
    eng.sleep(0.5)
    before = len(payloads(eng, "BookReconciled"))
    comex = sim(eng, "COMEX")
    comex.inject("disconnect", duration=1.0)
    eng.sleep(0.1)
    comex.book_trade("US-FUT", "COMEX.GC", "sell", 2)  # booked while the engine could not hear
    eng.sleep(2.0)
    after = payloads(eng, "BookReconciled")[before:]
    assert [p["venues"] for p in after] == [["COMEX"]]
    assert after[0]["differences"] == 1
    kinds = [r["kind"] for r in eng.journal.rows(kinds=["Reconciled", "BookReconciled"])]
    assert kinds[-2:] == ["Reconciled", "BookReconciled"]  # order status first, then the book
    (row,) = payloads(eng, "ReconcileDifference")
    assert row["difference"] == -2 and row["action"] == f"buy 2 {GC}"
    assert "critical" in set(eng.alerts()["level"])
    assert resting.state is cmc.OrderState.ACCEPTED  # checked by status and listed as working: no difference


def test_a_reopened_journal_is_checked_against_the_exchange_that_kept_its_trades(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    first.sleep(0.5)
    filled(first, "COMEX.GC", "buy", 2)
    first.close()
    assert [t["qty"] for t in TradeLog(trade_log_path(journal_path)).trades()] == [2]
    second = make_engine(journal=journal_path)
    second.sleep(1.0)
    assert payloads(second, "BookReconciled")[-1]["clean"] is True  # the venue remembers what it filled
    second.close()
    TradeLog(trade_log_path(journal_path)).append(
        {
            "venue": "COMEX",
            "account": "US-FUT",
            "instrument_id": GC,
            "side": "buy",
            "qty": 1,
            "ts_event": 0,
        }
    )
    third = make_engine(journal=journal_path)
    third.sleep(1.0)
    (row,) = payloads(third, "ReconcileDifference")
    assert (row["reported"], row["engine"], row["difference"]) == (3, 2, 1)


def test_a_torn_last_line_of_the_trade_log_is_left_out_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite.sim-book.jsonl"
    good = '{"account": "US-FUT", "instrument_id": "COMEX.GC", "qty": 1, "side": "buy", "ts_event": 1, "venue": "COMEX"}'
    path.write_text(good + "\n" + good[:30])
    exchange = SimExchange(load_specs(), VirtualClock(), trade_log=path)

    async def ask() -> list[Any]:
        venue = exchange.venue("COMEX")
        await venue.connect(lambda message: None)
        return await venue.positions()

    clock = exchange.clock
    assert isinstance(clock, VirtualClock)
    loop = clock.new_loop()
    try:
        (report,) = loop.run_until_complete(clock.advance(ask()))
    finally:
        loop.close()
    assert (report.account, report.instrument_id, report.net_qty) == ("US-FUT", "COMEX.GC", 1)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"line 1 is not a trade .* move the file aside"):
        SimExchange(load_specs(), VirtualClock(), trade_log=path)


def test_the_venue_book_closes_the_opposite_side_before_it_opens() -> None:
    book = PositionBook("SHFE")
    book.book("CN-FUT", "SHFE.au", Side.BUY, 3, 1)
    book.book("CN-FUT", "SHFE.au", Side.SELL, 5, 2)
    (report,) = book.reports(3)
    assert (report.long_qty, report.short_qty, report.net_qty, report.ts_event) == (0, 2, -2, 3)
    book.book("CN-FUT", "SHFE.au", Side.BUY, 2, 4)
    assert book.reports(5) == []


def test_book_trade_refuses_what_cannot_be_a_trade(eng: cmc.Engine) -> None:
    comex = sim(eng, "COMEX")
    with pytest.raises(KeyError, match=r"no instrument 'COMEX\.au' on COMEX"):
        comex.book_trade("US-FUT", "au", "buy", 1)
    with pytest.raises(ValueError, match="whole number of lots >= 1"):
        comex.book_trade("US-FUT", "GC", "buy", 0)
    with pytest.raises(ValueError, match="account must be an account name"):
        comex.book_trade("", "GC", "buy", 1)


def test_a_replay_venue_answers_positions_and_working_orders_from_its_matcher(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    t0, n = pd.Timestamp("2026-11-24 14:00").value, 10
    ds = quotes_dataset(
        t0 + 1_000_000_000 * np.arange(n),
        ["SHFE.au"],
        {
            "bid": np.full((n, 1), 620.0),
            "ask": np.full((n, 1), 620.02),
            "bid_size": np.full((n, 1), 5.0),
            "ask_size": np.full((n, 1), 5.0),
        },
    )
    eng = make_engine(f"replay:{save_quotes(ds, tmp_path / 'gold.zarr')}", latency=0)
    eng.sleep(0.5)
    assert eng.submit("SHFE.au", "buy", 2, price=620.04, tif="IOC").wait(1) is cmc.OrderState.FILLED
    resting = eng.submit("SHFE.au", "buy", 1, price=619.5)
    eng.sleep(0.1)
    result = eng.reconcile()
    assert result.clean
    frame = result.frame.set_index("item")
    assert frame.loc["SHFE.au", "reported"] == 2 and frame.loc[resting.client_order_id, "reported"] == 1


def test_a_fix_venue_reports_positions_over_fix_and_is_never_read_as_flat_while_down(
    tmp_path: Path, open_hours: Path
) -> None:
    venue = fix_venues({"COMEX": "fix://127.0.0.1:9?sender=C&target=E"}, load_specs(), VirtualClock())[
        "COMEX"
    ]
    with pytest.raises(VenueNotConnected, match="venue 'COMEX' is not connected"):
        asyncio.run(venue.positions())
    with pytest.raises(VenueNotConnected, match="venue 'COMEX' is not connected"):
        asyncio.run(venue.working_orders())
    with served_exchange() as (port, _):
        address = f"fix://127.0.0.1:{port}?sender=CLIENT1&target=EXECUTOR"
        eng = cmc.connect(venues={"COMEX": address}, instruments=open_hours, journal=tmp_path / "fix.sqlite")
        try:
            result = eng.reconcile()
            said = [a for a in eng.alerts().to_dict("records") if a["source"] == "reconcile"]
            unverified = payloads(eng, "BookReconciled")[-1]["unverified"]
        finally:
            eng.close()
    assert result.clean and result.differences == [] and said == [] and unverified == {}


# --------------------------------------------------------------------------- the broker's statement


def write(tmp_path: Path, text: str, name: str = "sod.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_statement_with_a_position_and_cash_mismatch_alerts_each(eng: cmc.Engine, tmp_path: Path) -> None:
    eng.sleep(0.5)
    filled(eng, "COMEX.GC", "buy", 2)
    statement = write(
        tmp_path,
        "account,instrument,long,short,cash,currency\n"
        f"US-FUT,{GC},1,0,4999000.00,USD\n"
        f"SHFE,{AU},0,3,,\n",  # a venue name stands for its account
    )
    result = eng.load_statement(statement)
    by_item = {d.item: d for d in result.differences}
    assert by_item[GC].difference == -1 and by_item[GC].action == f"buy 1 {GC}"
    assert by_item[AU].difference == -3 and by_item[AU].action == f"buy 3 {AU}"
    assert by_item["USD"].difference == Decimal("-995.06")  # the book's cash is net of 2 x 2.47 USD of fees
    levels = dict(zip(eng.alerts()["check"], eng.alerts()["level"], strict=True))
    assert levels == {"position": "critical", "cash": "warning"}
    assert "the statement holds long 1, the engine's book long 2" in eng.alerts()["message"].iloc[0]
    rows = payloads(eng, "ReconcileDifference")
    assert {r["source"] for r in rows} == {"statement"} and len(rows) == 3
    cash = next(r for r in rows if r["check"] == "cash")
    assert cash["reported"] == "4999000.00" and cash["engine"] == "4999995.06"  # money as text
    summary = payloads(eng, "BookReconciled")[-1]
    assert (
        summary["source"] == "statement sod.csv"
        and summary["differences"] == 3
        and len(summary["sha256"]) == 64
    )
    assert eng.risk.capital.accounts["US-FUT"].cash == Decimal("4999995.06")  # never overwritten


def test_a_statement_that_agrees_journals_book_reconciled_clean(eng: cmc.Engine, tmp_path: Path) -> None:
    eng.sleep(0.5)
    filled(eng, "COMEX.GC", "sell", 1)
    statement = write(
        tmp_path,
        "\ufeffCurrency,Cash,Short,Long,Instrument,Account,Desk\n"  # a BOM, any order, an extra column
        f"USD,4999997.53,1,0,{GC},US-FUT,metals\n",  # less the fill's 2.47 USD fee
    )
    result = eng.load_statement(statement)
    assert result.clean and len(result.lines) == 2
    assert payloads(eng, "BookReconciled")[-1]["clean"] is True and eng.alerts().empty


@pytest.mark.parametrize(
    ("rows", "line", "column", "says"),
    [
        (f"CN-FUT,{AU},3,0,,\nCN-FUT,{AU},-3,0,,\n", 3, "long", "not a whole number of lots"),
        ("CN-FUT,SHFE.xx,1,0,,\n", 2, "instrument", "not a contract the engine trades"),
        ("CN-FUT,au,1,0,,\n", 2, "instrument", "not VENUE.SYMBOL"),
        (f"HK-FUT,{AU},1,0,,\n", 2, "account", "no account or venue 'HK-FUT'"),
        (f",{AU},1,0,,\n", 2, "account", "is blank"),
        ("CN-FUT,,,,1000,USD\n", 2, "currency", "CN-FUT keeps CNY"),
        ("CN-FUT,,,,1000,\n", 2, "currency", "write CN-FUT's currency, CNY"),
        ("CN-FUT,,,,1.000.0,CNY\n", 2, "cash", "not an amount"),
        ("CN-FUT,,,,,\n", 2, "instrument", "both blank"),
        ("CN-FUT,,2,,,\n", 2, "instrument", "blank on a row with lots"),
        (f"CN-FUT,{AU},1,0,,\n\nCN-FUT,{AU},2,0,,\n", 4, "instrument", "again (first on line 2)"),
    ],
)
def test_a_statement_with_a_bad_row_names_the_line_and_column(
    eng: cmc.Engine, tmp_path: Path, rows: str, line: int, column: str, says: str
) -> None:
    statement = write(tmp_path, "account,instrument,long,short,cash,currency\n" + rows)
    with pytest.raises(StatementError) as info:
        eng.load_statement(statement)
    message = str(info.value)
    assert message.startswith(f"sod.csv line {line}, column {column!r}: ") and says in message, message
    assert payloads(eng, "ReconcileDifference") == []


def test_a_statement_without_its_columns_or_file_says_what_it_must_have(
    eng: cmc.Engine, tmp_path: Path
) -> None:
    with pytest.raises(StatementError, match=r"line 1 \(the header\) lacks column\(s\) short, currency"):
        eng.load_statement(write(tmp_path, "account,instrument,long,cash\n"))
    with pytest.raises(StatementError, match="is empty"):
        eng.load_statement(write(tmp_path, ""))
    with pytest.raises(StatementError, match=r"no statement at .*missing\.csv"):
        eng.load_statement(tmp_path / "missing.csv")
