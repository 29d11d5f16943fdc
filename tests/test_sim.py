"""The embedded exchange driven directly on a virtual clock: quotes, matching, latency, faults."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cmc_lab.core.clock import SIM_START_NS, VirtualClock
from cmc_lab.core.model import (
    CancelOrder,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderState,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
    VenueConnected,
    VenueDisconnected,
)
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.base import OrderStatusReport, Venue, VenueNotConnected
from cmc_lab.venues.sim.exchange import SimExchange, SimVenue
from cmc_lab.venues.sim.faults import FAULT_KINDS

MS = 1_000_000
SATURDAY_NOON_UTC = int(datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000


class Sim:
    """A SimExchange on its own virtual-clock loop, every message appended to ``events``."""

    def __init__(
        self,
        seed: int = 7,
        latency: float | dict[str, tuple[float, float]] | None = None,
        start_ns: int = SIM_START_NS,
        venues: tuple[str, ...] | None = None,
    ) -> None:
        self.specs = load_specs()
        self.clock = VirtualClock(start_ns)
        self.loop = self.clock.new_loop()
        self.ex = SimExchange(self.specs, self.clock, seed=seed, latency=latency)
        self.events: list[Event | Quote] = []
        self._n = 0
        for name in venues or tuple(self.ex.venues):
            self.loop.run_until_complete(self.ex.venue(name).connect(self.events.append))

    def run(self, seconds: float) -> None:
        self.loop.run_until_complete(self.clock.advance(asyncio.sleep(seconds)))

    def venue(self, iid: str) -> SimVenue:
        return self.ex.venue(iid.split(".")[0])

    def price(self, iid: str, ticks: int) -> Decimal:
        return ticks * self.specs.instruments[iid].tick

    def top(self, iid: str) -> tuple[int, int]:
        bid, ask = self.ex.book(iid).best_bid(), self.ex.book(iid).best_ask()
        assert bid is not None and ask is not None
        return bid[0], ask[0]

    def submit(
        self, iid: str, side: str, qty: int, price: Decimal, tif: str = "GFD", cid: str | None = None
    ) -> str:
        self._n += 1
        cid = cid or f"c{self._n}"
        command = SubmitOrder(cid, iid, Side(side), qty, price, TimeInForce(tif), "acct", self.clock.now_ns())
        self.venue(iid).submit(command)
        return cid

    def cancel(self, iid: str, cid: str) -> None:
        self.venue(iid).cancel(CancelOrder(cid, iid, self.clock.now_ns()))

    def of(self, cid: str) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent) and e.client_order_id == cid]

    def quotes(self, iid: str | None = None) -> list[Quote]:
        return [e for e in self.events if isinstance(e, Quote) and iid in (None, e.instrument_id)]

    def status(self, iid: str, ids: list[str]) -> list[OrderStatusReport]:
        return self.loop.run_until_complete(self.clock.advance(self.venue(iid).order_status(ids)))

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def sim() -> Iterator[Sim]:
    s = Sim()
    yield s
    s.close()


@pytest.fixture
def instant() -> Iterator[Sim]:
    """No latency: an order sent now is matched against the book as it is now."""
    s = Sim(latency=0)
    yield s
    s.close()


def kinds(events: list[OrderEvent]) -> list[str]:
    return [e.kind for e in events]


# --------------------------------------------------------------------------- quotes


def test_sim_venue_implements_the_venue_protocol(sim: Sim) -> None:
    venue = sim.ex.venue("COMEX")
    assert isinstance(venue, Venue)
    assert venue.kind == "sim" and venue.connected
    assert [i.id for i in venue.instruments] == ["COMEX.GC", "COMEX.SI"]
    assert sim.ex.venue("COMEX") is venue
    with pytest.raises(KeyError, match="no venue 'CBOT'"):
        sim.ex.venue("CBOT")


def test_connect_delivers_venue_connected_and_a_quote_per_instrument_before_returning() -> None:
    s = Sim(venues=("SHFE",))
    assert isinstance(s.events[0], VenueConnected)
    assert sorted(q.instrument_id for q in s.quotes()) == ["SHFE.ag", "SHFE.au", "SHFE.cu"]
    au = s.quotes("SHFE.au")[0]
    assert au.bid < 945.00 < au.ask and au.ts_init == au.ts_event == SIM_START_NS
    s.close()


def test_quotes_arrive_for_every_instrument_move_and_stay_on_tick(sim: Sim) -> None:
    sim.run(20.0)
    for iid, inst in sim.specs.instruments.items():
        quotes = sim.quotes(iid)
        assert len(quotes) >= 90, iid  # one per 0.2 s
        assert len({q.mid for q in quotes}) > 1, f"{iid} never moved"
        for q in quotes:
            assert 0 < q.bid < q.ask and q.bid_size > 0 and q.ask_size > 0
            assert inst.is_on_tick(Decimal(str(q.bid))) and inst.is_on_tick(Decimal(str(q.ask)))
            assert q.ts_init >= q.ts_event


def test_same_seed_gives_identical_quotes_and_fills() -> None:
    def script(seed: int) -> list[Event | Quote]:
        s = Sim(seed=seed)
        s.run(2.0)
        bid, ask = s.top("COMEX.GC")
        s.submit("COMEX.GC", "buy", 80, s.price("COMEX.GC", ask + 2))
        s.submit("SHFE.au", "sell", 3, s.price("SHFE.au", s.top("SHFE.au")[1]))
        resting = s.submit("COMEX.GC", "buy", 2, s.price("COMEX.GC", bid))
        s.run(30.0)
        s.cancel("COMEX.GC", resting)
        s.run(1.0)
        s.close()
        return s.events

    first, again = script(7), script(7)
    assert first == again
    assert any(isinstance(e, OrderFilled) for e in first)
    assert [q for q in script(8) if isinstance(q, Quote)] != [q for q in first if isinstance(q, Quote)]


# --------------------------------------------------------------------------- matching


def test_crossing_buy_fills_at_the_ask_then_the_next_levels(instant: Sim) -> None:
    book = instant.ex.book("COMEX.GC")
    asks = book.depth(3)[1]
    want = asks[0][1] + asks[1][1] + 3
    cid = instant.submit("COMEX.GC", "buy", want, instant.price("COMEX.GC", asks[2][0]))
    instant.run(0.001)
    events = instant.of(cid)
    assert kinds(events) == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderFilled"]
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [(f.last_px, f.last_qty) for f in fills] == [
        (instant.price("COMEX.GC", asks[0][0]), asks[0][1]),
        (instant.price("COMEX.GC", asks[1][0]), asks[1][1]),
        (instant.price("COMEX.GC", asks[2][0]), 3),
    ]
    assert all(f.liquidity == "taker" and f.side is Side.BUY for f in fills)
    assert str(fills[0].last_px) == "4100.10"  # exact, on the 0.10 tick
    assert len({f.trade_id for f in fills}) == 3
    assert isinstance(events[0], OrderAccepted) and events[0].venue_order_id == "COMEX-00000001"


def test_orders_at_one_price_fill_first_come_first_served(instant: Sim) -> None:
    asks = instant.ex.book("SHFE.cu").depth(4)[1]
    level = instant.price("SHFE.cu", asks[3][0])
    first = instant.submit("SHFE.cu", "sell", 2, level)
    second = instant.submit("SHFE.cu", "sell", 3, level)
    instant.run(0.001)
    ahead = sum(size for _, size in asks)  # simulated liquidity up to that level, all of it earlier
    taker = instant.submit("SHFE.cu", "buy", ahead + 4, level)
    instant.run(0.001)
    fills = [e for e in instant.of(taker) if isinstance(e, OrderFilled)]
    assert [f.last_qty for f in fills] == [size for _, size in asks] + [2, 2]
    assert [(f.last_qty, f.liquidity) for f in instant.of(first) if isinstance(f, OrderFilled)] == [
        (2, "maker")
    ]
    assert [(f.last_qty, f.liquidity) for f in instant.of(second) if isinstance(f, OrderFilled)] == [
        (2, "maker")
    ]


def test_quotes_show_user_orders_at_the_top_of_the_book(instant: Sim) -> None:
    bid, ask = instant.top("COMEX.GC")
    assert ask - bid == 2  # the opening book: fair mid exactly on a tick
    cid = instant.submit("COMEX.GC", "buy", 7, instant.price("COMEX.GC", bid + 1))
    instant.run(0.001)
    assert instant.ex.book("COMEX.GC").best_bid() == (bid + 1, 7)
    instant.run(0.2)  # one tick: the simulated bid moved up to join the user's order, behind it
    quote = instant.quotes("COMEX.GC")[-1]
    book = instant.ex.book("COMEX.GC")
    joined = sum(o.qty for o in book.orders("mm") if o.side is Side.BUY and o.price_ticks == bid + 1)
    assert kinds(instant.of(cid)) == ["OrderAccepted"]
    assert (quote.bid, quote.bid_size) == (float(instant.price("COMEX.GC", bid + 1)), joined + 7)
    assert book.orders()[0].key == "COMEX-00000001"  # first in time


def test_resting_order_fills_as_maker_at_its_price_when_the_market_moves_through_it(instant: Sim) -> None:
    bid, _ = instant.top("SHFE.au")
    limit = instant.price("SHFE.au", bid)
    cid = instant.submit("SHFE.au", "buy", 5, limit)
    for _ in range(120):
        instant.run(1.0)
        if any(isinstance(e, OrderFilled) for e in instant.of(cid)):
            break
    fills = [e for e in instant.of(cid) if isinstance(e, OrderFilled)]
    assert fills, "the market never traded through the resting bid in 120 s"
    assert all(f.liquidity == "maker" and f.last_px == limit for f in fills)
    assert fills[0].ts_event > SIM_START_NS


def test_ioc_remainder_is_cancelled_and_does_not_rest(instant: Sim) -> None:
    ask, size = instant.ex.book("NYMEX.CL").best_ask() or (0, 0)
    cid = instant.submit("NYMEX.CL", "buy", size + 7, instant.price("NYMEX.CL", ask), tif="IOC")
    instant.run(0.001)
    events = instant.of(cid)
    assert kinds(events) == ["OrderAccepted", "OrderFilled", "OrderCanceled"]
    assert isinstance(events[-1], OrderCanceled) and events[-1].reason == "IOC remainder"
    assert cid not in [o.key for o in instant.ex.book("NYMEX.CL").orders("user")]
    assert instant.status("NYMEX.CL", [cid])[0].state is OrderState.CANCELED


def test_cancel_of_a_resting_order_removes_it(sim: Sim) -> None:
    bid, _ = sim.top("LME.CA")
    cid = sim.submit("LME.CA", "buy", 2, sim.price("LME.CA", bid - 20))
    sim.run(0.5)
    sim.cancel("LME.CA", cid)
    sim.run(0.5)
    assert kinds(sim.of(cid)) == ["OrderAccepted", "OrderCanceled"]
    assert sim.ex.book("LME.CA").orders("user") == []


def test_cancel_of_an_unknown_or_filled_order_is_rejected(instant: Sim) -> None:
    instant.cancel("SHFE.ag", "never-sent")
    _, ask = instant.top("SHFE.ag")
    done = instant.submit("SHFE.ag", "buy", 1, instant.price("SHFE.ag", ask))
    instant.run(0.001)
    instant.cancel("SHFE.ag", done)
    instant.run(0.001)
    unknown = instant.of("never-sent")
    assert kinds(unknown) == ["OrderCancelRejected"]
    assert isinstance(unknown[0], OrderCancelRejected) and "unknown order 'never-sent'" in unknown[0].reason
    late = instant.of(done)[-1]
    assert isinstance(late, OrderCancelRejected) and late.reason == "too late to cancel: filled"


def test_price_outside_the_daily_limit_band_is_rejected_naming_the_band(instant: Sim) -> None:
    cid = instant.submit("SHFE.au", "buy", 1, Decimal("1086.76"))
    instant.run(0.001)
    (event,) = instant.of(cid)
    assert isinstance(event, OrderRejected)
    assert "daily limit band 803.26-1086.74 of SHFE.au for trading day" in event.reason
    assert "(settlement 945.00 ± 15%)" in event.reason


def test_bad_orders_are_rejected_with_the_reason(instant: Sim) -> None:
    off_tick = instant.submit("COMEX.GC", "buy", 1, Decimal("4100.05"))
    fx = instant.submit("FX.USDCNH", "buy", 1, Decimal("7.25"))
    too_big = instant.submit("COMEX.GC", "buy", 501, Decimal("4022.6"))
    unknown = instant.submit("COMEX.XX", "buy", 1, Decimal("1"))
    instant.run(0.001)
    assert "off the tick grid" in getattr(instant.of(off_tick)[0], "reason", "")
    assert "not a tradeable contract" in getattr(instant.of(fx)[0], "reason", "")
    assert "between 1 and 500 lots" in getattr(instant.of(too_big)[0], "reason", "")
    assert "unknown instrument 'COMEX.XX'" in getattr(instant.of(unknown)[0], "reason", "")


def test_session_closed_on_a_saturday_rejects_with_the_trading_hours() -> None:
    s = Sim(start_ns=SATURDAY_NOON_UTC, venues=("COMEX", "SHFE"))
    gc = s.submit("COMEX.GC", "buy", 1, Decimal("4022.6"))
    au = s.submit("SHFE.au", "buy", 1, Decimal("914.52"))
    s.run(5.0)
    (reject,) = s.of(gc)
    assert isinstance(reject, OrderRejected)
    hours = s.specs.instruments["COMEX.GC"].hours.describe()
    assert reject.reason.startswith(f"session closed: COMEX.GC trades {hours}")
    assert "America/Chicago" in reject.reason and "next open Sun 2026-11-29 17:00" in reject.reason
    assert s.specs.instruments["SHFE.au"].hours.describe() in getattr(s.of(au)[0], "reason", "")
    assert len(s.quotes()) == 5  # the snapshot at connect; closed books do not move
    s.close()


def test_order_status_reports_known_orders_and_skips_unknown_ones(instant: Sim) -> None:
    bid, ask = instant.top("COMEX.SI")
    filled = instant.submit("COMEX.SI", "buy", 2, instant.price("COMEX.SI", ask))
    resting = instant.submit("COMEX.SI", "sell", 3, instant.price("COMEX.SI", ask + 30))
    cancelled = instant.submit("COMEX.SI", "buy", 1, instant.price("COMEX.SI", bid - 30))
    rejected = instant.submit("COMEX.SI", "buy", 1, Decimal("99.000"))
    instant.run(0.001)
    instant.cancel("COMEX.SI", cancelled)
    instant.run(0.001)
    reports = {
        r.client_order_id: r for r in instant.status("COMEX.SI", [filled, resting, cancelled, rejected, "x"])
    }
    assert set(reports) == {filled, resting, cancelled, rejected}
    assert reports[filled].state is OrderState.FILLED and reports[filled].filled_qty == 2
    assert reports[filled].avg_px == instant.price("COMEX.SI", ask) and reports[filled].leaves_qty == 0
    assert reports[resting].state is OrderState.ACCEPTED and reports[resting].leaves_qty == 3
    assert reports[resting].venue_order_id == "COMEX-00000002"
    assert reports[cancelled].state is OrderState.CANCELED and reports[cancelled].leaves_qty == 0
    assert reports[rejected].state is OrderState.REJECTED and reports[rejected].venue_order_id is None


# --------------------------------------------------------------------------- latency


def test_overseas_ack_takes_two_one_way_latencies_and_domestic_a_few_ms(sim: Sim) -> None:
    for iid, (lo, hi) in (("COMEX.GC", (60, 120)), ("SHFE.au", (1, 3))):
        for _ in range(10):
            bid, _ = sim.top(iid)
            sent = sim.clock.now_ns()
            cid = sim.submit(iid, "buy", 1, sim.price(iid, bid - 10))
            sim.run(0.3)
            ack = sim.of(cid)[0]
            assert isinstance(ack, OrderAccepted)
            assert lo * MS <= ack.ts_event - sent <= hi * MS
            assert lo * MS <= ack.ts_init - ack.ts_event <= hi * MS
            assert 2 * lo * MS <= ack.ts_init - sent <= 2 * hi * MS


def test_messages_never_overtake_each_other_in_either_direction() -> None:
    s = Sim(latency={"COMEX": (1.0, 400.0)}, venues=("COMEX",))
    bid, _ = s.top("COMEX.GC")
    sent = [s.submit("COMEX.GC", "buy", 1, s.price("COMEX.GC", bid - 10 - i)) for i in range(30)]
    s.cancel("COMEX.GC", sent[-1])  # leaves right behind the last order, so it finds it resting
    s.run(2.0)
    acks = [e for e in s.events if isinstance(e, OrderAccepted)]
    assert [a.client_order_id for a in acks] == sent
    assert [a.ts_event for a in acks] == sorted(a.ts_event for a in acks)
    assert kinds(s.of(sent[-1])) == ["OrderAccepted", "OrderCanceled"]
    s.close()


def test_zero_latency_answers_without_virtual_time_passing(instant: Sim) -> None:
    sent = instant.clock.now_ns()
    cid = instant.submit("COMEX.GC", "buy", 1, Decimal("4022.6"))
    instant.run(0)
    instant.run(0)
    (ack,) = instant.of(cid)
    assert ack.ts_event == ack.ts_init == sent


def test_latency_settings_are_checked() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match="unknown venue 'CBOT'"):
        SimExchange(load_specs(), clock, latency={"CBOT": (1.0, 2.0)})
    with pytest.raises(ValueError, match="low <= high"):
        SimExchange(load_specs(), clock, latency={"COMEX": (5.0, 1.0)})
    with pytest.raises(ValueError, match=">= 0 ms"):
        SimExchange(load_specs(), clock, latency=-1)


def test_submit_before_connect_raises_venue_not_connected() -> None:
    ex = SimExchange(load_specs(), VirtualClock(), seed=7)
    with pytest.raises(VenueNotConnected, match="venue 'COMEX' is not connected; call connect"):
        ex.venue("COMEX").submit(
            SubmitOrder("c", "COMEX.GC", Side.BUY, 1, Decimal("4022.6"), TimeInForce.GFD, "a", 0)
        )


# --------------------------------------------------------------------------- faults


def test_injected_reject_hits_the_next_matching_orders_only(instant: Sim) -> None:
    handle = instant.ex.venue("COMEX").inject("reject", times=1, instrument="GC", reason="margin call")
    si = instant.submit("COMEX.SI", "buy", 1, Decimal("46.000"))
    first = instant.submit("COMEX.GC", "buy", 1, Decimal("4022.6"))
    second = instant.submit("COMEX.GC", "buy", 1, Decimal("4022.6"))
    instant.run(0.001)
    assert kinds(instant.of(si)) == ["OrderAccepted"]
    assert getattr(instant.of(first)[0], "reason", "") == "margin call"
    assert kinds(instant.of(second)) == ["OrderAccepted"]
    assert handle.used == 1 and not handle.active


def test_injected_reject_with_probability_is_seeded() -> None:
    def rejected(seed: int) -> list[bool]:
        s = Sim(seed=seed, latency=0, venues=("SHFE",))
        s.ex.venue("SHFE").inject("reject", times=None, probability=0.5, side="sell")
        ids = [s.submit("SHFE.au", side, 1, Decimal("914.52")) for side in ["sell", "buy"] * 20]
        s.run(0.001)
        s.close()
        return [isinstance(s.of(cid)[0], OrderRejected) for cid in ids]

    first = rejected(3)
    assert first == rejected(3)
    assert not any(first[1::2])  # buys are never hit
    assert 3 < sum(first[::2]) < 17


def test_injected_partial_fills_a_share_and_cancels_the_rest(instant: Sim) -> None:
    instant.ex.venue("COMEX").inject("partial", ratio=0.3)
    _, ask = instant.top("COMEX.GC")
    cid = instant.submit("COMEX.GC", "buy", 10, instant.price("COMEX.GC", ask))
    far = instant.submit("COMEX.GC", "buy", 4, Decimal("4022.6"))
    instant.run(0.001)
    events = instant.of(cid)
    assert kinds(events) == ["OrderAccepted", "OrderFilled", "OrderCanceled"]
    assert getattr(events[1], "last_qty", 0) == 3
    assert getattr(events[2], "reason", "") == "partial fill injected: rest cancelled by venue"
    assert kinds(instant.of(far)) == ["OrderAccepted"]  # times=1: the next order is untouched


def test_injected_no_ack_loses_the_acceptance_but_not_the_fills(instant: Sim) -> None:
    venue = instant.ex.venue("SHFE")
    venue.inject("no_ack")
    _, ask = instant.top("SHFE.au")
    cid = instant.submit("SHFE.au", "buy", 1, instant.price("SHFE.au", ask))
    instant.run(0.001)
    assert kinds(instant.of(cid)) == ["OrderFilled"]
    venue.inject("no_ack", lost=True)
    lost = instant.submit("SHFE.au", "buy", 1, instant.price("SHFE.au", ask))
    instant.run(1.0)
    assert instant.of(lost) == []
    assert instant.status("SHFE.au", [cid, lost])[0].client_order_id == cid
    assert len(instant.status("SHFE.au", [lost])) == 0


def test_injected_disconnect_drops_messages_and_reconnects(sim: Sim) -> None:
    venue = sim.ex.venue("SHFE")
    bid, _ = sim.top("SHFE.au")
    resting = sim.submit("SHFE.au", "buy", 50, sim.price("SHFE.au", bid))
    sim.run(0.1)
    in_flight = sim.submit("SHFE.au", "buy", 1, Decimal("914.52"))
    mark = len(sim.events)
    venue.inject("disconnect", duration=30.0)
    assert isinstance(sim.events[mark], VenueDisconnected) and not venue.connected
    with pytest.raises(VenueNotConnected, match=r"connection lost .* reconcile with order_status"):
        sim.submit("SHFE.au", "buy", 1, Decimal("914.52"))
    sim.run(29.9)
    during = sim.events[mark + 1 :]
    assert not [e for e in during if getattr(e, "instrument_id", "").startswith("SHFE.")]
    assert sim.quotes("COMEX.GC")[-1].ts_event > sim.events[mark].ts_event  # other venues carry on
    sim.run(1.0)
    back = [e for e in sim.events[mark + 1 :] if isinstance(e, VenueConnected)]
    assert back and back[0].ts_event - sim.events[mark].ts_event == 30_000 * MS
    assert sim.quotes("SHFE.au")[-1].ts_event > back[0].ts_event
    reports = {r.client_order_id: r for r in sim.status("SHFE.au", [resting, in_flight])}
    assert in_flight not in reports  # lost on the wire: never reached the book
    assert reports[resting].filled_qty > 0  # it traded during the outage ...
    assert not [e for e in sim.of(resting) if isinstance(e, OrderFilled)]  # ... but the reports were lost


def test_injected_stale_stops_quotes_of_one_instrument_while_the_book_trades(sim: Sim) -> None:
    sim.ex.venue("COMEX").inject("stale", instrument="GC", duration=5.0)
    mark = len(sim.events)
    sim.run(4.9)
    later = [q.instrument_id for q in sim.events[mark:] if isinstance(q, Quote)]
    assert "COMEX.GC" not in later and "COMEX.SI" in later
    _, ask = sim.top("COMEX.GC")
    cid = sim.submit("COMEX.GC", "buy", 1, sim.price("COMEX.GC", ask))
    sim.run(1.0)
    assert "OrderFilled" in kinds(sim.of(cid))
    assert sim.quotes("COMEX.GC")[-1].ts_event >= SIM_START_NS + 5_000 * MS


def test_injected_halt_rejects_orders_and_stops_quotes_until_resumed(instant: Sim) -> None:
    venue = instant.ex.venue("INE")
    venue.inject("halt")
    mark = len(instant.events)
    cid = instant.submit("INE.sc", "buy", 1, Decimal("440.0"))
    instant.run(2.0)
    assert getattr(instant.of(cid)[0], "reason", "") == "trading halted"
    assert not [e for e in instant.events[mark:] if isinstance(e, Quote) and e.instrument_id == "INE.sc"]
    venue.inject("resume")
    again = instant.submit("INE.sc", "buy", 1, Decimal("440.0"))
    instant.run(1.0)
    assert kinds(instant.of(again)) == ["OrderAccepted"]
    assert instant.quotes("INE.sc")[-1].ts_event > instant.of(again)[0].ts_event


def test_injected_close_rejects_as_session_closed_until_opened(instant: Sim) -> None:
    venue = instant.ex.venue("LME")
    venue.inject("close", instrument="LME.CA")
    cid = instant.submit("LME.CA", "buy", 1, Decimal("10400.0"))
    instant.run(0.001)
    assert getattr(instant.of(cid)[0], "reason", "").startswith("session closed")
    venue.inject("open")
    again = instant.submit("LME.CA", "buy", 1, Decimal("10400.0"))
    instant.run(0.001)
    assert kinds(instant.of(again)) == ["OrderAccepted"]


def test_injected_duplicate_fill_delivers_the_same_fill_twice(instant: Sim) -> None:
    instant.ex.venue("NYMEX").inject("duplicate_fill")
    _, ask = instant.top("NYMEX.CL")
    cid = instant.submit("NYMEX.CL", "buy", 1, instant.price("NYMEX.CL", ask))
    instant.run(0.001)
    fills = [e for e in instant.of(cid) if isinstance(e, OrderFilled)]
    assert len(fills) == 2 and fills[0] == fills[1]


def test_injected_late_fill_fills_the_order_before_the_cancel_lands(instant: Sim) -> None:
    instant.ex.venue("COMEX").inject("late_fill")
    price = Decimal("4022.6")
    cid = instant.submit("COMEX.GC", "buy", 3, price)
    instant.run(0.001)
    instant.cancel("COMEX.GC", cid)
    instant.run(0.001)
    events = instant.of(cid)
    assert kinds(events) == ["OrderAccepted", "OrderFilled", "OrderCancelRejected"]
    assert getattr(events[1], "last_px", None) == price and getattr(events[1], "liquidity", "") == "maker"
    assert getattr(events[2], "reason", "") == "too late to cancel: filled"


def test_unknown_fault_kind_or_parameter_is_a_clear_value_error(sim: Sim) -> None:
    venue = sim.ex.venue("COMEX")
    with pytest.raises(ValueError, match="unknown fault kind 'explode'; valid kinds: reject, partial"):
        venue.inject("explode")
    with pytest.raises(ValueError, match="fault 'partial' takes no parameter reason; its parameters: ratio"):
        venue.inject("partial", reason="x")
    with pytest.raises(ValueError, match="ratio must be a number between 0 and 1"):
        venue.inject("partial", ratio=1.5)
    with pytest.raises(ValueError, match="instrument 'au' is not traded on COMEX"):
        venue.inject("reject", instrument="au")
    with pytest.raises(ValueError, match="side 'up' is not valid"):
        venue.inject("reject", side="up")
    assert set(FAULT_KINDS) >= {"reject", "partial", "no_ack", "disconnect", "stale", "halt", "close"}


def test_clear_faults_ends_every_fault_and_any_outage(sim: Sim) -> None:
    venue = sim.ex.venue("COMEX")
    venue.inject("reject", times=None)
    venue.inject("halt")
    venue.inject("disconnect", duration=60.0)
    sim.run(1.0)
    venue.clear_faults()
    assert venue.connected and isinstance(sim.events[-1], VenueConnected)
    cid = sim.submit("COMEX.GC", "buy", 1, Decimal("4022.6"))
    sim.run(1.0)
    assert kinds(sim.of(cid)) == ["OrderAccepted"]


def test_disconnect_by_the_client_fails_a_pending_status_request(sim: Sim) -> None:
    venue = sim.ex.venue("COMEX")

    async def ask_then_hang_up() -> None:
        task = asyncio.ensure_future(venue.order_status(["c1"]))
        await asyncio.sleep(0.01)
        await venue.disconnect()
        await task

    with pytest.raises(VenueNotConnected, match="before order_status answered"):
        sim.loop.run_until_complete(sim.clock.advance(ask_then_hang_up()))
    assert isinstance(sim.events[-1], VenueDisconnected) and not venue.connected


def test_exchange_stops_ticking_when_no_venue_is_connected(sim: Sim) -> None:
    for venue in sim.ex.venues.values():
        sim.loop.run_until_complete(venue.disconnect())
    ticks = sim.ex.ticks
    sim.run(5.0)
    assert sim.ex.ticks <= ticks + 1
    sim.loop.run_until_complete(sim.ex.venue("FX").connect(sim.events.append))
    sim.run(1.0)
    assert sim.ex.ticks >= ticks + 5


def test_inject_from_another_thread_runs_on_the_loop_thread() -> None:
    clock = VirtualClock()
    loop = clock.new_loop()
    venue = SimExchange(load_specs(), clock, seed=7).venue("COMEX")
    seen: list[tuple[str, int]] = []

    def sink(message: Event | Quote) -> None:
        seen.append((message.kind if isinstance(message, Event) else "Quote", threading.get_ident()))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(venue.connect(sink), loop).result(timeout=5)
        venue.inject("disconnect", duration=60.0)
        venue.clear_faults()
        deadline = time.monotonic() + 5
        while len([k for k, _ in seen if k.startswith("Venue")]) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
    assert [k for k, _ in seen if k.startswith("Venue")] == [
        "VenueConnected",
        "VenueDisconnected",
        "VenueConnected",
    ]
    assert {ident for _, ident in seen} == {thread.ident}
