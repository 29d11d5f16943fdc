"""The replay venue: recorded quotes played through the engine, orders matched against the recorded book."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cmc_lab as cmc
from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.model import Event, OrderFilled, Quote, Side, SubmitOrder, TimeInForce
from cmc_lab.core.specs import load_specs
from cmc_lab.data import quotes_dataset, spread_series, synthetic_quotes
from cmc_lab.data.recorder import Recorder, open_quotes, save_quotes
from cmc_lab.execution.hedge import TicketState
from cmc_lab.execution.spread import SpreadSnapshot
from cmc_lab.venues.replay import ReplayFeed, first_time_ns

Make = Callable[..., cmc.Engine]
T0 = pd.Timestamp("2026-11-24 14:00").value
S = 1_000_000_000
MS = 1_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of synthetic quotes of every instrument, 10 a second."""
    path = tmp_path_factory.mktemp("replay") / "two_minutes.zarr"
    save_quotes(synthetic_quotes(rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="2min"), path)
    return path


@pytest.fixture
def gold_book(tmp_path: Path) -> Path:
    """SHFE au quoted 620.00 / 620.02, 5 lots a side, each second; at 5 s the ask drops to 619.88."""
    n = 10
    bid = np.full((n, 1), 620.0)
    ask = np.full((n, 1), 620.02)
    ask[5:] = 619.88
    bid[5:] = 619.86
    sizes = np.full((n, 1), 5.0)
    ds = quotes_dataset(
        T0 + S * np.arange(n),
        ["SHFE.au"],
        {"bid": bid, "ask": ask, "bid_size": sizes, "ask_size": sizes},
    )
    return save_quotes(ds, tmp_path / "gold.zarr")


def test_connect_replay_plays_the_recorded_quotes_from_the_first_one(make_engine: Make, store: Path) -> None:
    ds = open_quotes(store)
    eng = make_engine(f"replay:{store}")
    assert {v.kind for v in eng.venues.values()} == {"replay"}
    first = int(ds.time.values[0].astype(np.int64))
    assert eng.now_ns() == first
    eng.sleep(10.0)
    assert eng.now_ns() == first + 10 * S
    for iid in ("SHFE.au", "COMEX.GC", "FX.USDCNH"):
        quote = eng.quote(iid)
        assert quote.ts_event == eng.now_ns()


def test_replay_venues_by_name_take_fx_from_the_same_store(make_engine: Make, store: Path) -> None:
    address = f"replay:{store}"
    eng = make_engine(venues={"SHFE": address, "COMEX": address})
    assert sorted(eng.venues) == ["COMEX", "FX", "SHFE"]
    assert eng.venues["FX"].kind == "replay"
    eng.sleep(1.0)
    assert eng.spread("au_gc", {"SHFE.au": 1, "COMEX.GC": -1}).quote().fx is not None


def test_replay_addresses_that_cannot_work_say_why(store: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"replay store .*missing.zarr.* does not exist"):
        cmc.connect("replay:" + str(tmp_path / "missing.zarr"), clock="virtual")
    with pytest.raises(ValueError, match="use one kind"):
        cmc.connect(venues={"SHFE": f"replay:{store}", "COMEX": "fix://127.0.0.1:1?sender=A&target=B"})
    only_gold = save_quotes(
        synthetic_quotes(rate_hz=1, start="2026-11-24 14:00", day_length="5s").sel(instrument=["SHFE.au"]),
        tmp_path / "gold.zarr",
    )
    with pytest.raises(ValueError, match="has no quotes for venue"):
        cmc.connect(venues={"COMEX": f"replay:{only_gold}"}, clock="virtual")


def test_an_ioc_order_fills_at_the_recorded_price_up_to_the_recorded_size(
    make_engine: Make, gold_book: Path
) -> None:
    eng = make_engine(f"replay:{gold_book}", latency=0)
    eng.sleep(0.5)
    big = eng.submit("SHFE.au", "buy", 8, price=620.04, tif="IOC")
    big.wait(1)
    assert big.state is cmc.OrderState.CANCELED
    assert [(f.last_px, f.last_qty) for f in big.fills] == [(Decimal("620.02"), 5)]
    again = eng.submit("SHFE.au", "buy", 3, price=620.04, tif="IOC")
    again.wait(1)
    assert again.filled_qty == 0  # the recorded 5 lots are used up until the next recorded quote
    eng.sleep(1.0)
    later = eng.submit("SHFE.au", "buy", 3, price=620.04, tif="IOC")
    later.wait(1)
    assert later.state is cmc.OrderState.FILLED


def test_a_resting_order_fills_at_its_price_when_a_later_recorded_quote_crosses_it(
    make_engine: Make, gold_book: Path
) -> None:
    eng = make_engine(f"replay:{gold_book}", latency=0)
    eng.sleep(0.5)
    order = eng.submit("SHFE.au", "buy", 2, price=619.9, tif="GFD")
    eng.sleep(2.0)
    assert order.state is cmc.OrderState.ACCEPTED
    eng.sleep(4.0)  # at 5 s the recorded ask is 619.88, through our bid
    assert order.state is cmc.OrderState.FILLED
    assert order.fills[0].last_px == Decimal("619.90") and order.fills[0].liquidity == "maker"


def test_orders_and_answers_each_take_the_one_way_latency(make_engine: Make, gold_book: Path) -> None:
    eng = make_engine(f"replay:{gold_book}", latency=50)
    eng.sleep(0.5)
    sent = eng.now_ns()
    order = eng.submit("SHFE.au", "buy", 1, price=620.04, tif="IOC")
    order.wait(1)
    assert order.fills[0].ts_init - sent == 100_000_000


def test_reconnect_reconciles_a_resting_order_with_order_status(make_engine: Make, gold_book: Path) -> None:
    eng = make_engine(f"replay:{gold_book}", latency=0)
    eng.sleep(0.5)
    order = eng.submit("SHFE.au", "buy", 1, price=619.5, tif="GFD")
    eng.sleep(0.1)
    eng.disconnect("SHFE")
    eng.reconnect("SHFE")
    assert order.state is cmc.OrderState.ACCEPTED
    assert any(r["kind"] == "Reconciled" for r in eng.journal.rows(kinds=["Reconciled"]))


def test_same_seed_replays_the_same_events_at_the_same_times(store: Path) -> None:
    def script(seed: int) -> list[Event | Quote]:
        ds = open_quotes(store)
        clock = VirtualClock(first_time_ns(ds))
        loop = clock.new_loop()
        feed = ReplayFeed(ds, load_specs(), clock, seed=seed, instruments=["COMEX.GC"])
        venue = feed.venue("COMEX")
        events: list[Event | Quote] = []
        loop.run_until_complete(venue.connect(events.append))
        for n in range(20):
            quote = feed.latest("COMEX.GC")
            assert quote is not None
            price = Decimal(str(quote.ask)) + Decimal("0.1") * (n % 3 - 1)
            command = SubmitOrder(
                f"c{n}", "COMEX.GC", Side.BUY, 1, price, TimeInForce.GFD, "acct", clock.now_ns()
            )
            venue.submit(command)
            loop.run_until_complete(clock.advance(asyncio.sleep(0.3)))
        loop.close()
        return events

    first = script(7)
    assert first == script(7)
    fills = [e for e in first if isinstance(e, OrderFilled)]
    hops = {e.ts_init - e.ts_event for e in fills}
    assert len(hops) > 1 and all(60 * MS <= hop <= 120 * MS for hop in hops)  # drawn from COMEX's 60-120 ms
    assert [e for e in script(8) if isinstance(e, OrderFilled)] != fills


def test_an_order_while_the_session_is_closed_is_refused(make_engine: Make, tmp_path: Path) -> None:
    closed = T0 - 6 * 3600 * S  # 08:00 UTC: 16:00 in Shanghai, between the day and night sessions
    one = np.ones((3, 1))
    ds = quotes_dataset(
        closed + S * np.arange(3),
        ["SHFE.au"],
        {"bid": 620 * one, "ask": 620.02 * one, "bid_size": 5 * one, "ask_size": 5 * one},
    )
    eng = make_engine(f"replay:{save_quotes(ds, tmp_path / 'closed.zarr')}", latency=0)
    order = eng.submit("SHFE.au", "buy", 1, price=620.04, tif="IOC")
    order.wait(1)
    assert order.state in (cmc.OrderState.DENIED, cmc.OrderState.REJECTED)
    assert "session" in (order.reason or "")


def test_the_live_spread_on_a_replay_is_spread_series_of_the_same_quotes(
    make_engine: Make, store: Path
) -> None:
    eng = make_engine(f"replay:{store}", latency=0)
    eng.spread("au_gc", {"SHFE.au": 1, "COMEX.GC": -1})
    seen: list[SpreadSnapshot] = []
    eng.desk.on_spread("au_gc", seen.append)
    eng.sleep(60.0)
    live = pd.DataFrame(
        [(s.ts_ns, s.bid, s.ask, s.mid, s.bid_size) for s in seen], columns=["t", "bid", "ask", "mid", "size"]
    )
    live = live.groupby("t").last()  # legs of one row quote one after the other: the last sees them all
    research = spread_series(
        open_quotes(store).load(), {"SHFE.au": 1, "COMEX.GC": -1}, on=live.index.to_numpy()
    )
    assert len(live) > 500
    np.testing.assert_allclose(research.bid.values, live.bid.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(research.ask.values, live.ask.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(research.mid.values, live.mid.to_numpy(), rtol=0, atol=1e-12)
    assert research.bid_size.values.tolist() == live["size"].tolist()


def test_a_hedge_ticket_fires_and_fills_on_replayed_quotes(make_engine: Make, store: Path) -> None:
    eng = make_engine(f"replay:{store}")
    eng.spread("au_gc", {"SHFE.au": 1, "COMEX.GC": -1})
    ticket = eng.hedge("au_gc", "buy", 3, when="ask <= 100", policy="chase")
    assert ticket.wait(10) is TicketState.FILLED
    kinds = [r["kind"] for r in eng.journal.rows()]
    assert "HedgeDecision" in kinds and kinds.count("OrderFilled") >= 2


def test_a_recorded_sim_session_replays_the_quotes_it_heard(make_engine: Make, tmp_path: Path) -> None:
    live = make_engine()
    heard: list[Quote] = []
    live.on_quote(heard.append)
    rec = Recorder(live, tmp_path / "session.zarr")
    live.sleep(10.0)
    rec.close()
    live.close()
    replay = make_engine(f"replay:{tmp_path / 'session.zarr'}")
    played: list[Quote] = []
    replay.on_quote(played.append)
    replay.sleep(11.0)
    key = [(q.instrument_id, q.bid, q.ask, q.bid_size, q.ask_size, q.ts_event) for q in heard]
    assert [(q.instrument_id, q.bid, q.ask, q.bid_size, q.ask_size, q.ts_event) for q in played] == key[
        len(key) - len(played) :
    ]
    assert len(played) >= len(heard) - 9  # all but the first moment's quotes (the replay's start state)


def test_replay_on_the_real_clock_plays_at_wall_speed(make_engine: Make, store: Path) -> None:
    eng = make_engine(f"replay:{store}", clock="real")
    start = eng.now_ns()
    eng.sleep(0.5)
    assert eng.quote("COMEX.GC").ts_event > start
    assert eng.quote("COMEX.GC").ts_event <= eng.now_ns()
