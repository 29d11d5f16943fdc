"""SHFE/INE offsets end to end (issue 15): orders say open / close / close today / close yesterday on
the venues that keep long and short apart, the engine chooses when the user does not, the book keeps
today's and yesterday's lots (across a restart and a trading-day roll) and charges each fill by its
offset, closing more than held is denied (engine) and rejected (embedded exchange, FIX)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from always_open import ALWAYS_OPEN_TOML
from polling import until

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.model import OrderRejected, Side, SubmitOrder, TimeInForce
from cmc_lab.core.offsets import Lots, Offset
from cmc_lab.core.specs import load_specs
from cmc_lab.engine.snapshot import FULL_REPLAY_ENV
from cmc_lab.risk.capital import Capital

D1, D2 = date(2026, 11, 24), date(2026, 11, 25)


def price_to_take(eng: cmc.Engine, iid: str, side: str) -> Decimal:
    quote, inst = eng.quote(iid), eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    return inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick


def take(eng: cmc.Engine, iid: str, side: str, qty: int, **kwargs: Any) -> cmc.Order:
    order = eng.submit(iid, side, qty, price=price_to_take(eng, iid, side), **kwargs)
    for part in order.parts:
        part.wait(5)
    return order


def booked(eng: cmc.Engine, order: cmc.Order) -> list[dict[str, Any]]:
    rows = eng.journal.rows(kinds=["FillBooked"])
    return [r["payload"] for r in rows if r["payload"]["order_id"] == order.client_order_id]


def lots(eng: cmc.Engine, iid: str = "SHFE.au", account: str = "CN-FUT") -> tuple[Lots, Lots]:
    book = eng.risk.capital.offsets.view(account, eng.instrument(iid), eng.now_ns())
    return book.long, book.short


def new_trading_day(eng: cmc.Engine) -> None:
    """Today's lots become yesterday's in the engine's book and the exchange's (a day's wait, at once)."""
    eng.risk.capital.offsets.roll_all()
    for book in eng.venues["SHFE"]._matcher.positions.holdings.values():  # type: ignore[attr-defined]
        book.roll()


# ---------------------------------------------------------------------------- fees by the offset


def test_a_forced_close_today_on_shfe_gold_is_booked_with_the_close_today_fee(eng: cmc.Engine) -> None:
    bought = take(eng, "SHFE.au", "buy", 2, offset="open")
    sold = take(eng, "SHFE.au", "sell", 2, offset="close_today")
    assert (bought.state, sold.state) == (cmc.OrderState.FILLED, cmc.OrderState.FILLED)
    assert (bought.offset, sold.offset) == ("open", "close_today")
    (opened,) = booked(eng, bought)
    (closed,) = booked(eng, sold)
    assert (opened["offset"], opened["opened"], opened["fee"]) == ("open", 2, "20.00")
    assert (closed["offset"], closed["closed_today"], closed["fee"]) == ("close_today", 2, "0.00")
    assert lots(eng) == (Lots(), Lots())
    shown = eng.orders().set_index("client_order_id")
    assert shown.loc[sold.client_order_id, "offset"] == "close_today"
    intent = next(
        r["payload"]
        for r in eng.journal.rows(kinds=["OrderInitialized"])
        if r["order_id"] == sold.client_order_id
    )
    assert intent["offset"] == "close_today"


def test_the_offset_is_in_the_receipt_and_the_audit_packs_order_and_fill_tables(
    eng: cmc.Engine, tmp_path: Path
) -> None:
    take(eng, "SHFE.au", "buy", 2)
    sold = take(eng, "SHFE.au", "sell", 2, offset="close_today")
    receipt = eng.receipt(sold)
    assert list(receipt.orders["offset"]) == ["close_today"]
    assert (
        "sell close_today 2 @"
        in receipt.frame.loc[receipt.frame["kind"] == "OrderInitialized", "detail"].iloc[0]
    )
    pack = eng.audit(tmp_path / "pack.zip")
    with zipfile.ZipFile(pack) as zf:
        orders = list(csv.DictReader(io.StringIO(zf.read("orders.csv").decode())))
        fills = list(csv.DictReader(io.StringIO(zf.read("fills.csv").decode())))
    assert [o["offset"] for o in orders] == ["open", "close_today"]
    assert [(f["offset"], f["fee"]) for f in fills] == [("open", "20.00"), ("close_today", "0.00")]


def test_a_close_today_of_shfe_copper_pays_the_close_today_share_of_notional(eng: cmc.Engine) -> None:
    take(eng, "SHFE.cu", "buy", 1)
    sold = take(eng, "SHFE.cu", "sell", 1)  # the engine closes today's lot: nothing older is held
    assert sold.offset == "close_today" and sold.state is cmc.OrderState.FILLED
    (closed,) = booked(eng, sold)
    notional = sold.fills[0].last_px * 5
    assert Decimal(closed["fee"]) == (notional * Decimal("0.0001")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert closed["fee_detail"].startswith("close today 1 x 0.0001 of notional")


def test_comex_orders_carry_no_offset(eng: cmc.Engine) -> None:
    order = take(eng, "COMEX.GC", "buy", 1)
    assert order.offset == "" and order.parts == [order]
    with pytest.raises(cmc.InvalidOrder, match="COMEX nets"):
        eng.submit("COMEX.GC", "sell", 1, price=price_to_take(eng, "COMEX.GC", "sell"), offset="close")


def test_an_unknown_offset_is_refused_before_anything_is_journaled(eng: cmc.Engine) -> None:
    with pytest.raises(cmc.InvalidOrder, match="offset 'closetoday' is not valid"):
        eng.submit("SHFE.au", "buy", 1, price=price_to_take(eng, "SHFE.au", "buy"), offset="closetoday")
    assert not list(eng.journal.rows(kinds=["OrderInitialized"]))


# ---------------------------------------------------------------------------- closing more than held


def test_a_forced_close_of_more_than_is_held_is_denied_saying_what_to_send(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 2)
    order = eng.submit(
        "SHFE.au", "sell", 3, price=price_to_take(eng, "SHFE.au", "sell"), offset="close_today"
    )
    assert order.state is cmc.OrderState.DENIED
    assert "close_today 3 closes more than is held: 2 long lots opened today" in order.reason
    assert "close at most 2" in order.reason
    assert lots(eng)[0] == Lots(today=2)


def test_close_orders_working_at_the_venue_hold_their_lots(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 2)
    far = eng.instrument("SHFE.au").round_to_tick(eng.quote("SHFE.au").ask * 1.01)
    resting = eng.submit("SHFE.au", "sell", 2, price=far, offset="close_today")
    assert resting.state is not cmc.OrderState.DENIED
    again = eng.submit("SHFE.au", "sell", 1, price=far, offset="close_today")
    assert again.state is cmc.OrderState.DENIED and "2 more are claimed by close orders" in again.reason


def test_the_embedded_exchange_rejects_a_close_of_more_than_it_holds(eng: cmc.Engine) -> None:
    matcher = eng.venues["SHFE"]._matcher  # type: ignore[attr-defined]
    now = eng.now_ns()
    price = price_to_take(eng, "SHFE.au", "sell")
    au = eng.instrument("SHFE.au").id
    command = SubmitOrder("x-1", au, Side.SELL, 2, price, TimeInForce.IOC, "CN-FUT", now, offset="close")
    events = [item(ts_init=now) for item in matcher.submit(command, now)]
    assert isinstance(events[0], OrderRejected)
    assert "close 2 closes more than is held: 0 long lots opened before today" in events[0].reason
    odd = SubmitOrder("x-2", au, Side.BUY, 1, price, TimeInForce.IOC, "CN-FUT", now, offset="lock")
    (rejected,) = [item(ts_init=now) for item in matcher.submit(odd, now)]
    assert (
        isinstance(rejected, OrderRejected)
        and "say open, close, close_today or close_yesterday" in rejected.reason
    )


def test_the_embedded_exchange_books_long_and_short_apart_by_the_offset(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 2)
    take(eng, "SHFE.au", "sell", 1, offset="open")  # a locked position: both sides held
    assert lots(eng) == (Lots(today=2), Lots(today=1))
    reports = eng.runtime.call(eng.venues["SHFE"].positions(), advance=True)
    au = eng.instrument("SHFE.au").id  # the main month
    (report,) = [r for r in reports if r.instrument_id == au]
    assert (report.long_qty, report.short_qty) == (2, 1)
    assert eng.risk.capital.position("CN-FUT", au) == 1
    table = eng.positions().set_index("instrument")
    row = table.loc[au]
    assert (row["long_today"], row["long_yesterday"], row["short_today"], row["short_yesterday"]) == (
        2,
        0,
        1,
        0,
    )
    assert eng.reconcile().clean


def test_a_reconcile_says_when_the_venue_holds_the_same_net_apart_otherwise(eng: cmc.Engine) -> None:
    eng.sleep(0.5)  # the start-up reconcile is done before the venue's book is changed behind the engine
    take(eng, "SHFE.au", "buy", 2)
    au = eng.instrument("SHFE.au")
    venue_book = eng.venues["SHFE"]._matcher.positions  # type: ignore[attr-defined]
    day = au.hours.trading_day(eng.now_ns())
    venue_book.apply("CN-FUT", au.id, Side.SELL, 1, Offset.OPEN, day)  # locked at the venue, net unchanged
    venue_book.apply("CN-FUT", au.id, Side.BUY, 1, Offset.OPEN, day)
    result = eng.reconcile()
    assert not result.clean
    (line,) = result.frame[result.frame["status"] == "differs"].to_dict("records")
    assert (line["check"], line["item"], line["reported"], line["engine"]) == ("long lots", au.id, 3, 2)
    (row,) = eng.journal.rows(kinds=["ReconcileDifference"])
    assert (
        "holds long 3 / short 1, the engine's book long 2 / short 0: the same net"
        in row["payload"]["message"]
    )


# ---------------------------------------------------------------------------- the engine's plan


def test_a_sell_against_yesterdays_and_todays_lots_goes_out_as_two_orders(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 3)
    new_trading_day(eng)
    take(eng, "SHFE.au", "buy", 2)
    assert lots(eng)[0] == Lots(today=2, yesterday=3)
    order = take(eng, "SHFE.au", "sell", 5)
    assert [(p.offset, p.qty) for p in order.parts] == [("close_yesterday", 3), ("close_today", 2)]
    assert all(p.state is cmc.OrderState.FILLED for p in order.parts), order.parts
    assert order.parts[1].part_of == order.client_order_id
    assert lots(eng)[0] == Lots()
    fees = [booked(eng, p)[0]["fee"] for p in order.parts]
    assert fees == ["30.00", "0.00"]


def test_a_reducing_order_passes_the_kill_switch_and_an_opening_part_does_not(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 3)
    eng.kill("desk stop")
    order = take(eng, "SHFE.au", "sell", 3)
    assert order.offset == "close_today" and order.state is cmc.OrderState.FILLED
    take(eng, "SHFE.au", "buy", 1, offset="open")  # rejected: the kill blocks what opens
    opened = eng.working_orders(all_orders=True)[-1]
    assert opened.state is cmc.OrderState.DENIED and "HALTED" in opened.reason


def test_a_hedge_ticket_opens_its_shfe_leg_and_its_unwind_closes_it(au_gc: cmc.Engine) -> None:
    eng = au_gc
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="unwind")
    t.wait(timeout=30)
    au = t.legs[0].orders
    assert [o.offset for o in au] == ["open", "close_today"], [(o.side, o.offset, o.state) for o in au]
    assert lots(eng) == (Lots(), Lots())
    assert all(o.offset == "" for o in t.legs[1].orders)


# ---------------------------------------------------------------------------- the book over time


def test_todays_lots_become_yesterdays_on_the_next_trading_day() -> None:
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    au = specs.instrument("SHFE.au")
    cap.apply_fill("CN-FUT", au, Side.BUY, Decimal("945.00"), 2, day=D1, offset="open")
    book = cap.offsets.book("CN-FUT", au.id)
    assert book.long == Lots(today=2)
    closing = cap.apply_fill("CN-FUT", au, Side.SELL, Decimal("946.00"), 1, day=D2, offset="close_yesterday")
    assert book.long == Lots(yesterday=1) and book.day == D2
    assert closing.fee.amount == Decimal("10.00") and closing.effect.closed_yesterday == 1


def test_the_night_session_belongs_to_the_next_trading_day(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 1)  # 22:00 in Shanghai on 2026-11-24: trading day 2026-11-25
    assert eng.risk.capital.offsets.book("CN-FUT", eng.instrument("SHFE.au").id).day == D2


@pytest.mark.parametrize("full_replay", [False, True])
def test_a_restart_keeps_todays_and_yesterdays_lots(
    make_engine: Callable[..., cmc.Engine],
    journal_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_replay: bool,
) -> None:
    first = make_engine(journal=journal_path)
    take(first, "SHFE.au", "buy", 3)
    take(first, "SHFE.au", "sell", 1, offset="open")
    before = lots(first)
    first.close()
    if full_replay:
        monkeypatch.setenv(FULL_REPLAY_ENV, "1")
    second = make_engine(journal=journal_path)
    assert lots(second) == before == (Lots(today=3), Lots(today=1))
    order = take(second, "SHFE.au", "sell", 4, offset="close_today")
    assert order.state is cmc.OrderState.DENIED and "3 long lots opened today" in order.reason


# ---------------------------------------------------------------------------- FIX


@pytest.fixture(scope="module")
def hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offsets") / "always_open.toml"
    path.write_text(ALWAYS_OPEN_TOML)
    return path


@pytest.fixture(scope="module")
def port(hours: Path) -> Iterator[int]:
    env = {"CMC_LAB_INSTRUMENTS": str(hours)}
    with served_exchange("--target=OF1", "--quote-interval", "0.1", env=env) as (bound, _):
        yield bound


def test_the_offset_travels_over_fix_and_the_acceptor_enforces_it(
    port: int, hours: Path, tmp_path: Path
) -> None:
    address = f"fix://127.0.0.1:{port}?sender=OF1&target=EXECUTOR&heartbeat=1"
    eng = cmc.connect(venues={"SHFE": address}, journal=tmp_path / "fix.sqlite", instruments=hours)
    try:
        au = eng.instrument("SHFE.au")
        high = au.round_to_tick(au.reference_price * Decimal("1.05"))
        low = au.round_to_tick(au.reference_price * Decimal("0.95"))
        bought = eng.submit(au.id, "buy", 2, price=high, tif="IOC", offset="open")
        assert bought.wait(10) is cmc.OrderState.FILLED, bought.reason
        sold = eng.submit(au.id, "sell", 1, price=low, tif="IOC")  # the engine chooses close_today
        assert sold.wait(10) is cmc.OrderState.FILLED and sold.offset == "close_today", sold.reason
        assert lots(eng) == (Lots(today=1), Lots())

        command = SubmitOrder(
            "of-x", au.id, Side.SELL, 5, low, TimeInForce.IOC, "CN-FUT", eng.now_ns(), offset="close_today"
        )

        async def past_the_engine() -> None:  # the engine would deny it: the acceptor must refuse it too
            eng.venues["SHFE"].submit(command)

        eng.runtime.call(past_the_engine())

        def refused() -> list[dict[str, Any]]:
            rows = eng.journal.rows(kinds=["UnknownOrderReport"])
            return [r["payload"] for r in rows if r["payload"].get("client_order_id") == "of-x"]

        until(refused, "the acceptor's reject of of-x")
        (report,) = refused()
        assert report["event"] == "OrderRejected"
        assert "close_today 5 closes more than is held: 1 long lots opened today" in report["reason"]
        assert eng.reconcile().clean
    finally:
        eng.close()


def test_fix_maps_each_offset_to_position_effect_and_the_close_day_tag() -> None:
    from cmc_lab.venues.fix.mapping import offset_fields, offset_of

    assert offset_fields("open") == [(77, "O")]
    assert offset_fields("close") == [(77, "C")]
    assert offset_fields("close_today") == [(77, "C"), (20077, "T")]
    assert offset_fields("close_yesterday") == [(77, "C"), (20077, "Y")]
    assert offset_fields("") == []
    for offset in ("open", "close", "close_today", "close_yesterday", ""):
        assert offset_of(dict(offset_fields(offset))) == offset
    assert Offset("close_today").closes
