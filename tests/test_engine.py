"""The engine through its public API: instruments, quotes, orders, journal, kill switch, callbacks."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_months import AG, AU, CL, CU, GC, MAIN, NEXT, SC, SI

import cmc_lab as cmc
from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.model import OrderFilled, SubmitOrder
from cmc_lab.core.specs import load_specs
from cmc_lab.journal import Journal
from cmc_lab.venues.sim.exchange import SimExchange

SATURDAY_NOON_UTC = int(datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
LIFECYCLE = ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"]


def kinds(eng: cmc.Engine, order_id: str) -> list[str]:
    return eng.journal.timeline(order_id)["kind"].tolist()


def rows(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def record_venue_submits(eng: cmc.Engine, venue: str) -> list[SubmitOrder]:
    """Wrap one venue's submit so the test sees every command that reached it."""
    sim = eng.venues[venue]
    sent: list[SubmitOrder] = []
    real = sim.submit

    def submit(command: SubmitOrder) -> None:
        sent.append(command)
        real(command)

    sim.submit = submit  # type: ignore[method-assign]
    return sent


# ---------------------------------------------------------------------------- instruments, quotes


def test_instruments_frame_has_one_row_per_instrument_with_the_contract_columns(eng: cmc.Engine) -> None:
    frame = eng.instruments
    assert frame.index.name == "id"
    months = [
        m
        for p in ("SHFE.au", "SHFE.ag", "SHFE.cu", "INE.sc", "COMEX.GC", "COMEX.SI", "NYMEX.CL")
        for m in (MAIN[p], NEXT[p])
    ]
    assert list(frame.index) == [*months, "LME.CA", "FX.USDCNH", "FX.USDCNY"]
    for column in (
        "venue",
        "symbol",
        "product",
        "currency",
        "lot",
        "quote unit",
        "tick",
        "margin",
        "sessions",
    ):
        assert column in frame.columns
    assert frame.loc[AU, "product"] == "SHFE.au"
    assert frame.loc[AU, "margin"] == "17%"
    assert frame.loc[GC, "margin"] == "9%"
    assert frame.loc[CL, "margin"] == "6000 /lot"
    assert "Asia/Shanghai" in frame.loc[AU, "sessions"]
    assert frame["open now"].all()  # the sim starts Tue 14:00 UTC, when every venue trades


@pytest.mark.parametrize(
    ("iid", "lot", "quote_unit", "tick"),
    [
        (AU, "1000 g", "CNY/g", "0.02"),
        (GC, "100 oz", "USD/oz", "0.10"),
        (AG, "15 kg", "CNY/kg", "1"),
        (SI, "5000 oz", "USD/oz", "0.005"),
        (CU, "5 t", "CNY/t", "10"),
        ("LME.CA", "25 t", "USD/t", "0.5"),
        (SC, "1000 bbl", "CNY/bbl", "0.1"),
        (CL, "1000 bbl", "USD/bbl", "0.01"),
    ],
)
def test_instruments_match_the_exchanges_contract_specs(
    eng: cmc.Engine, iid: str, lot: str, quote_unit: str, tick: str
) -> None:
    row = eng.instruments.loc[iid]
    assert (row["lot"], row["quote unit"], row["tick"]) == (lot, quote_unit, Decimal(tick))


def test_quote_of_every_instrument_is_a_sane_top_of_book(eng: cmc.Engine) -> None:
    for iid in eng.instruments.index:
        q = eng.quote(iid)
        assert q.instrument_id == iid
        assert 0 < q.bid < q.ask
        assert q.bid_size > 0 and q.ask_size > 0
        assert q.ts_event == eng.now_ns()


def test_quotes_move_after_sleep_and_stand_still_between_calls(eng: cmc.Engine) -> None:
    before = {iid: eng.quote(iid) for iid in eng.instruments.index}
    assert {iid: eng.quote(iid) for iid in eng.instruments.index} == before  # virtual clock: no call, no time
    eng.sleep(5.0)
    after = {iid: eng.quote(iid) for iid in eng.instruments.index}
    assert all(after[iid].ts_event >= before[iid].ts_event + 4_000_000_000 for iid in before)
    assert any(after[iid].mid != before[iid].mid for iid in before)


def test_quote_of_unknown_instrument_suggests_the_right_name(eng: cmc.Engine) -> None:
    with pytest.raises(ValueError, match=r"unknown instrument 'CME\.GC'; did you mean 'COMEX\.GC'\?"):
        eng.quote("CME.GC")


def test_quote_of_disconnected_venue_raises_no_quote(eng: cmc.Engine) -> None:
    eng.disconnect("COMEX")
    with pytest.raises(cmc.NoQuote, match=rf"no quote for {GC} yet; its venue may be disconnected"):
        eng.quote("COMEX.GC")
    assert eng.quote("SHFE.au").bid > 0


# ---------------------------------------------------------------------------- orders


def test_crossing_limit_order_fills_with_decimal_prices_and_a_venue_order_id(eng: cmc.Engine) -> None:
    ask = eng.quote("COMEX.GC").ask
    order = eng.submit("COMEX.GC", "buy", 1, price=4177.4)
    assert order.client_order_id == "r1-000001"
    assert order.wait(timeout=5) is cmc.OrderState.FILLED
    assert order.done and order.filled_qty == 1 and order.leaves_qty == 0
    assert isinstance(order.avg_px, Decimal) and order.avg_px == Decimal(str(ask))
    fill = order.fills[0]
    assert isinstance(fill, OrderFilled) and isinstance(fill.last_px, Decimal)
    assert fill.liquidity == "taker"
    assert order.venue_order_id is not None and order.venue_order_id.startswith("COMEX-")
    assert order.anomalies == []
    assert order.reason == ""


def test_resting_order_then_cancel_ends_canceled(eng: cmc.Engine) -> None:
    order = eng.submit("SHFE.au", "buy", 2, price="914.52")
    eng.sleep(0.5)
    assert order.state is cmc.OrderState.ACCEPTED and not order.done
    order.cancel()
    assert order.wait(5) is cmc.OrderState.CANCELED
    assert order.fills == []
    assert kinds(eng, order.client_order_id) == [
        "OrderInitialized",
        "OrderSubmitted",
        "OrderAccepted",
        "OrderCancelRequested",
        "OrderCanceled",
    ]
    with pytest.raises(cmc.OrderNotWorking, match="is CANCELED; only working orders can be cancelled"):
        order.cancel()


def test_ioc_order_larger_than_the_top_level_fills_it_and_cancels_the_rest(eng: cmc.Engine) -> None:
    q = eng.quote("COMEX.GC")
    order = eng.submit("COMEX.GC", "buy", q.ask_size + 5, price=str(q.ask), tif="IOC")
    assert order.wait(5) is cmc.OrderState.CANCELED
    assert order.filled_qty == q.ask_size
    assert order.avg_px == Decimal(str(q.ask))
    assert order.reason == "IOC remainder"


def test_order_callbacks_see_each_fill_and_each_state(eng: cmc.Engine) -> None:
    fills: list[tuple[str, int]] = []
    states: list[cmc.OrderState] = []
    order = eng.submit("COMEX.GC", "sell", 3, price="4022.6")
    order.on_fill(lambda o, f: fills.append((o.client_order_id, f.last_qty)))
    order.on_state(lambda o, s: states.append(s))
    assert order.wait(5) is cmc.OrderState.FILLED
    assert sum(q for _, q in fills) == 3
    assert {cid for cid, _ in fills} == {order.client_order_id}
    assert states[0] is cmc.OrderState.ACCEPTED and states[-1] is cmc.OrderState.FILLED


def test_engine_on_event_sees_every_journaled_event_of_an_order(eng: cmc.Engine) -> None:
    seen: list[str] = []
    eng.on_event(lambda e: seen.append(e.kind))
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    order.wait(5)
    assert seen == ["OrderAccepted", "OrderFilled"]  # registered after the intent was journaled


def test_submit_async_and_wait_async_work_under_asyncio_run(eng: cmc.Engine) -> None:
    async def cell() -> tuple[cmc.Order, cmc.OrderState]:
        order = await eng.submit_async("COMEX.GC", "buy", 1, price="4177.4")
        return order, await order.wait_async(timeout=5)

    order, state = asyncio.run(cell())
    assert state is cmc.OrderState.FILLED
    assert kinds(eng, order.client_order_id) == LIFECYCLE


def test_orders_frame_lists_working_and_done_orders(eng: cmc.Engine) -> None:
    filled = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    filled.wait(5)
    resting = eng.submit("COMEX.GC", "buy", 1, price="4022.6")
    eng.sleep(0.5)
    frame = eng.orders()
    assert frame["client_order_id"].tolist() == [filled.client_order_id, resting.client_order_id]
    assert eng.orders(working=True)["client_order_id"].tolist() == [resting.client_order_id]
    assert eng.cancel_all() == 1
    assert resting.wait(5) is cmc.OrderState.CANCELED


# ---------------------------------------------------------------------------- determinism


def _script(eng: cmc.Engine) -> list[tuple[Any, ...]]:
    orders = [eng.submit("COMEX.GC", "buy", 3, price="4177.4"), eng.submit("SHFE.au", "sell", 2, "914.52")]
    for order in orders:
        order.wait(5)
    eng.sleep(2.0)
    bid = eng.quote("COMEX.GC").bid
    resting = eng.submit("COMEX.GC", "buy", 1, price=str(bid))
    orders.append(resting)
    eng.sleep(3.0)
    ioc = eng.submit("NYMEX.CL", "sell", 50, price="60.00", tif="IOC")
    ioc.wait(5)
    orders.append(ioc)
    if not resting.done:
        resting.cancel()
        resting.wait(5)
    return [
        (o.client_order_id, o.state, f.trade_id, f.last_px, f.last_qty, f.liquidity)
        for o in orders
        for f in o.fills
    ]


def test_same_seed_same_orders_give_identical_fills_and_journal(
    make_engine: Callable[..., cmc.Engine], tmp_path: Path
) -> None:
    one = make_engine(seed=7, journal=tmp_path / "one.sqlite")
    two = make_engine(seed=7, journal=tmp_path / "two.sqlite")
    fills_one, fills_two = _script(one), _script(two)
    assert fills_one and fills_one == fills_two
    journal_one = [(r["kind"], r["order_id"], r["ts_event"]) for r in one.journal.rows()]
    journal_two = [(r["kind"], r["order_id"], r["ts_event"]) for r in two.journal.rows()]
    assert journal_one == journal_two


def test_a_call_right_after_connect_sees_the_same_market_on_every_run(
    make_engine: Callable[..., cmc.Engine], tmp_path: Path
) -> None:
    """Connect returned while the loop still ran the instant's ready work (the venues' first quotes,
    each drawing a latency), so whether an order came before or after those draws was up to the
    threads: COMEX acked it 78 or 106 ms later on different runs of one seed (the margin-squeeze
    scenario's figures changed between runs). A call now answers once that work has run."""
    acks = set()
    for run in range(6):
        eng = make_engine(seed=8, journal=tmp_path / f"run{run}.sqlite")
        bid = eng.quote("COMEX.GC").bid
        order = eng.submit("COMEX.GC", "sell", 10, price=eng.instrument("COMEX.GC").round_to_tick(bid - 2))
        order.wait(5)
        acks |= {r["ts_event"] for r in eng.journal.rows(kinds=["OrderAccepted"])}
        eng.close()
    assert len(acks) == 1, sorted(acks)


def test_different_seed_gives_different_fills(make_engine: Callable[..., cmc.Engine], tmp_path: Path) -> None:
    seven = _script(make_engine(seed=7, journal=tmp_path / "seven.sqlite"))
    eight = _script(make_engine(seed=8, journal=tmp_path / "eight.sqlite"))
    assert [f[3] for f in seven] != [f[3] for f in eight]


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("COMEX.gold", "buy", 1, 4100.0), {}, r"unknown instrument 'COMEX\.gold'"),
        (("CME.GC", "buy", 1, 4100.0), {}, r"did you mean 'COMEX\.GC'\?"),
        (("COMEX.GC", "buy", 0, 4100.0), {}, "quantity must be at least 1 lot, got 0"),
        (("COMEX.GC", "buy", -1, 4100.0), {}, "quantity must be at least 1 lot, got -1"),
        (("COMEX.GC", "buy", 1.5, 4100.0), {}, "quantity 1.5 is not a whole number of lots"),
        (("COMEX.GC", "buy", "1", 4100.0), {}, "is text; pass a whole number of lots"),
        (("COMEX.GC", "buy", 1, float("nan")), {}, "price nan is not a finite number"),
        (("COMEX.GC", "buy", 1, float("inf")), {}, "price inf is not a finite number"),
        (("COMEX.GC", "buy", 1, -5.0), {}, "must be positive"),
        (("COMEX.GC", "buy", 1, 4100.05), {}, rf"off the tick grid of {GC} .*use 4100\.00 or 4100\.10"),
        (("SHFE.au", "buy", 1, "945.01"), {}, r"tick 0\.02\); use 945\.00 or 945\.02"),
        (("COMEX.GC", "long", 1, 4100.0), {}, "side 'long' is not valid; use 'buy' or 'sell'"),
        (
            ("COMEX.GC", "buy", 1, 4100.0),
            {"tif": "FOK"},
            "time in force 'FOK' is not valid; use 'GFD' or 'IOC'",
        ),
        (("FX.USDCNH", "buy", 1, 7.25), {}, r"FX\.USDCNH is a fx rate, not a contract; it cannot be traded"),
    ],
)
def test_bad_order_arguments_raise_invalid_order_and_journal_nothing(
    eng: cmc.Engine, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    head = eng.journal.head
    with pytest.raises(cmc.InvalidOrder, match=message):
        eng.submit(*args, **kwargs)
    assert eng.journal.head == head
    assert eng.orders().empty


def test_bad_order_arguments_to_submit_async_raise_invalid_order_too(eng: cmc.Engine) -> None:
    head = eng.journal.head
    with pytest.raises(cmc.InvalidOrder, match="time in force 'FOK'"):
        asyncio.run(eng.submit_async("COMEX.GC", "buy", 1, 4100.0, tif="FOK"))
    assert eng.journal.head == head


def test_order_into_a_session_the_venue_closed_is_rejected_by_the_venue(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("close")
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.REJECTED
    assert order.reason.startswith("session closed")
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderSubmitted", "OrderRejected"]
    eng.venues["COMEX"].inject("open")
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED


@pytest.fixture
def saturday_engine(tmp_path: Path) -> Iterator[cmc.Engine]:
    specs = load_specs()
    clock = VirtualClock(SATURDAY_NOON_UTC)
    exchange = SimExchange(specs, clock, seed=7)
    engine = cmc.Engine(
        {name: exchange.venue(name) for name in ("SHFE", "COMEX", "FX")},
        specs=specs,
        journal=Journal(tmp_path / "saturday.sqlite"),
        clock=clock,
    )
    yield engine
    engine.close()


def test_order_on_saturday_is_denied_before_trade_and_never_reaches_the_venue(
    saturday_engine: cmc.Engine,
) -> None:
    eng = saturday_engine
    assert not eng.instruments["open now"].any()
    sent = record_venue_submits(eng, "COMEX")
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.state is cmc.OrderState.DENIED
    assert order.reason.startswith("session_open: COMEX.GC session is closed")
    assert "next opens Sun 2026-11-29 17:00 America/Chicago" in order.reason
    eng.sleep(1.0)
    assert sent == []
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderDenied"]


# ---------------------------------------------------------------------------- journal


def test_every_order_lifecycle_is_journaled_in_order(eng: cmc.Engine) -> None:
    orders = [
        eng.submit(iid, "buy", 1, price=px) for iid, px in (("COMEX.GC", "4177.4"), ("SHFE.au", "975.48"))
    ]
    for order in orders:
        assert order.wait(5) is cmc.OrderState.FILLED
        assert kinds(eng, order.client_order_id) == LIFECYCLE
        timeline = eng.journal.timeline(order.client_order_id)
        assert timeline["seq"].is_monotonic_increasing
        assert (timeline["hop_ns"] >= 0).all()
    submitted = eng.journal.timeline(orders[0].client_order_id).iloc[1]
    assert submitted["checks"] == ",".join(name for name, _ in eng.checks.checks)  # every check it passed
    assert submitted["checks"].startswith("trading_state,tradeable,venue_connected,session_open,tick")


def test_intent_is_committed_before_the_venue_sees_the_order(eng: cmc.Engine) -> None:
    sim = eng.venues["COMEX"]
    real = sim.submit
    journaled_at_send: list[tuple[str, list[str]]] = []

    def submit(command: SubmitOrder) -> None:
        journaled_at_send.append((command.client_order_id, kinds(eng, command.client_order_id)))
        real(command)

    sim.submit = submit  # type: ignore[method-assign]
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    order.wait(5)
    # A second connection reads only committed rows: the intent was on disk when the venue got it.
    with Journal(eng.journal.path, readonly=True) as other:
        assert other.timeline(order.client_order_id)["kind"].tolist() == LIFECYCLE
    assert journaled_at_send == [(order.client_order_id, ["OrderInitialized", "OrderSubmitted"])]


def test_journal_verifies_after_a_session(eng: cmc.Engine) -> None:
    eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5)
    eng.submit("SHFE.au", "buy", 1, price="914.52")
    eng.sleep(1.0)
    eng.kill("end of test")
    eng.rearm()
    report = eng.journal.verify()
    assert report.ok, str(report)
    assert report.rows == eng.journal.head[0]


def test_reopening_a_journal_continues_its_chain_with_new_order_ids(
    make_engine: Callable[..., cmc.Engine], journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    one = first.submit("COMEX.GC", "buy", 1, price="4177.4")
    one.wait(5)
    first.close()
    with Journal(journal_path, readonly=True) as j:
        head = j.head
    second = make_engine(journal=journal_path)
    two = second.submit("COMEX.GC", "buy", 1, price="4177.4")
    two.wait(5)
    assert (one.client_order_id, two.client_order_id) == ("r1-000001", "r2-000001")
    report = second.journal.verify()
    assert report.ok, str(report)
    continued = [r for r in second.journal.rows() if r["seq"] == head[0] + 1]
    assert continued[0]["prev_hash"] == head[1]
    assert continued[0]["kind"] == "EngineStarted"
    assert [r["kind"] for r in second.journal.rows(kinds=["EngineStarted", "EngineStopped"])] == [
        "EngineStarted",
        "EngineStopped",
        "EngineStarted",
    ]
    assert second.journal.timeline("r1-000001")["kind"].tolist() == LIFECYCLE


# ---------------------------------------------------------------------------- kill switch


def test_kill_cancels_working_orders_denies_new_ones_and_journals_who_and_why(eng: cmc.Engine) -> None:
    working = [eng.submit("COMEX.GC", "buy", 1, price="4022.6"), eng.submit("SHFE.au", "sell", 1, "975.48")]
    eng.sleep(0.5)
    assert eng.kill("margin breach on US-FUT", who="risk-desk") == 2
    assert eng.trading_state is cmc.TradingState.HALTED
    for order in working:
        assert order.wait(5) is cmc.OrderState.CANCELED
    denied = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert denied.state is cmc.OrderState.DENIED
    assert "HALTED" in denied.reason and "eng.rearm()" in denied.reason
    changes = rows(eng, "TradingStateChanged")
    assert [(c["state"], c["who"], c["reason"]) for c in changes] == [
        ("HALTED", "risk-desk", "margin breach on US-FUT")
    ]
    assert "kill switch: margin breach" in eng.journal.timeline(working[0].client_order_id).iloc[3]["reason"]


def test_rearm_after_kill_accepts_orders_again(eng: cmc.Engine) -> None:
    eng.kill("test")
    eng.rearm(reason="checked", who="lead")
    assert eng.trading_state is cmc.TradingState.ACTIVE
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED
    assert [(c["state"], c["who"]) for c in rows(eng, "TradingStateChanged")] == [
        ("HALTED", "user"),
        ("ACTIVE", "lead"),
    ]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_kill_without_a_reason_is_refused(eng: cmc.Engine, reason: Any) -> None:
    head = eng.journal.head
    with pytest.raises(ValueError, match=r"say why: eng\.kill\(reason='\.\.\.'\)"):
        eng.kill(reason)
    assert eng.trading_state is cmc.TradingState.ACTIVE
    assert eng.journal.head == head


# ---------------------------------------------------------------------------- callbacks, errors


def test_a_callback_that_raises_does_not_stop_the_engine(eng: cmc.Engine) -> None:
    def broken(order: cmc.Order, fill: OrderFilled) -> None:
        raise RuntimeError("boom")

    first = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    first.on_fill(broken)
    assert first.wait(5) is cmc.OrderState.FILLED
    assert any("'broken' raised RuntimeError('boom')" in e for e in eng.errors)
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED


def test_blocking_call_from_an_engine_callback_raises_engine_error_instead_of_deadlocking(
    eng: cmc.Engine,
) -> None:
    raised: list[BaseException] = []
    threads: list[str] = []

    def on_event(event: Any) -> None:
        threads.append(threading.current_thread().name)
        try:
            eng.submit("COMEX.GC", "buy", 1, price="4177.4")
        except BaseException as exc:
            raised.append(exc)

    eng.on_event(on_event)
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.FILLED
    eng.on_event(on_event, remove=True)
    assert raised and all(isinstance(e, cmc.EngineError) for e in raised)
    assert "from the engine thread" in str(raised[0])
    assert set(threads) == {"cmc-engine"}
    assert len(eng.orders()) == 1


def test_quote_callback_sees_quotes_and_can_be_removed(eng: cmc.Engine) -> None:
    seen: list[str] = []

    def on_quote(q: cmc.Quote) -> None:
        seen.append(q.instrument_id)

    eng.on_quote(on_quote)
    eng.sleep(1.0)
    eng.on_quote(on_quote, remove=True)
    count = len(seen)
    eng.sleep(1.0)
    assert GC in seen and AU in seen
    assert len(seen) == count


# ---------------------------------------------------------------------------- closed engine


def test_closed_engine_raises_engine_closed_and_close_twice_is_fine(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price="4022.6")
    eng.close()
    eng.close()
    calls: list[Callable[[], object]] = [
        lambda: eng.submit("COMEX.GC", "buy", 1, price="4177.4"),
        lambda: eng.quote("COMEX.GC"),
        lambda: eng.sleep(1.0),
        lambda: eng.cancel_all(),
        lambda: eng.kill("closed"),
        lambda: eng.rearm(),
        lambda: eng.reconnect("COMEX"),
        lambda: order.wait(1.0),
        lambda: asyncio.run(eng.submit_async("COMEX.GC", "buy", 1, price="4177.4")),
    ]
    for call in calls:
        with pytest.raises(
            cmc.EngineClosed, match=r"this engine is closed; make a new one with cmc\.connect"
        ):
            call()
    assert "closed" in repr(eng)


def test_close_with_a_position_and_a_working_order_says_so_and_journals_it(
    make_engine: Callable[..., cmc.Engine], journal_path: Path
) -> None:
    eng = make_engine(journal=journal_path)
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    resting = eng.submit("COMEX.GC", "buy", 1, price="3867.9")
    with pytest.warns(cmc.OpenExposureWarning, match=rf"long 2 US-FUT {GC}; 1 working order"):
        eng.close()
    with Journal(journal_path, readonly=True) as journal:
        stopped = list(journal.rows(kinds=["EngineStopped"]))[-1]["payload"]
    assert stopped["positions"] == {f"US-FUT {GC}": 2}
    assert stopped["working_orders"] == [resting.client_order_id]


def test_close_of_a_flat_engine_with_nothing_working_is_silent(eng: cmc.Engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eng.close()
