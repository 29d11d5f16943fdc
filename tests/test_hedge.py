"""Hedge tickets without faults: legs, checks before firing, modes, report, journal, state machine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.core.model import OrderState, Quote, Side
from cmc_lab.execution.hedge import (
    TICKET_TRANSITIONS,
    HedgePolicy,
    HedgeTicket,
    IllegalTicketMove,
    Leg,
    TicketState,
)
from cmc_lab.execution.ticket import (
    chase_plan,
    hedged_units,
    imbalance,
    lead_leg,
    limit_price,
    size_shortfall,
    unwind_plan,
)

TS = TicketState


pytestmark = pytest.mark.usefixtures("au_gc")  # every test here hedges the gold spread


def ticket_rows(eng: cmc.Engine, t: HedgeTicket) -> list[dict]:
    return [r for r in eng.journal.rows() if r["ticket_id"] == t.ticket_id]


# --------------------------------------------------------------------------- the happy path


def test_buying_the_gold_spread_buys_three_au_and_sells_one_gc(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    assert t.wait(10) is TS.FILLED
    au, gc = t.legs
    assert (au.id, au.side, au.net, au.target) == (AU, Side.BUY, 3, 3)
    assert (gc.id, gc.side, gc.net, gc.target) == (GC, Side.SELL, 1, 1)
    assert [s for _, s, _ in t.history] == ["CHECKING", "WORKING", "FILLED"]
    assert t.is_balanced and t.hedged_units() == 1 and t.qty == 3


def test_hedge_async_and_wait_async_fill_the_ticket_under_asyncio_run(eng: cmc.Engine) -> None:
    async def trade() -> tuple[HedgeTicket, TS]:
        ticket = await eng.hedge_async("au_gc", "buy", 3)
        return ticket, await ticket.wait_async(10)

    ticket, state = asyncio.run(trade())
    assert state is TS.FILLED and ticket is eng.ticket(ticket.ticket_id)
    assert [leg.net for leg in ticket.legs] == [3, 1]


def test_bad_hedge_async_request_raises_in_the_caller_before_anything_is_journaled(eng: cmc.Engine) -> None:
    rows = len(list(eng.journal.rows()))
    with pytest.raises(ValueError, match="not a multiple of the 3:1 lot ratio"):
        asyncio.run(eng.hedge_async("au_gc", "buy", 2))
    assert eng.tickets().empty and len(list(eng.journal.rows())) == rows


def test_selling_the_spread_sells_the_first_leg(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "sell", 6)
    assert t.wait(10) is TS.FILLED
    assert [(leg.side, leg.net) for leg in t.legs] == [(Side.SELL, 6), (Side.BUY, 2)]


def test_legs_leave_in_one_batch_and_are_limit_orders_at_crossing_plus_allowance(eng: cmc.Engine) -> None:
    snap = eng.spread("au_gc").quote()
    t = eng.hedge("au_gc", "buy", 3, allowance_ticks=3)
    au, gc = (leg.orders[0] for leg in t.legs)
    assert au.events[0].ts_init == gc.events[0].ts_init  # initialized in the same loop turn
    assert au.price == Decimal(str(snap.legs[0].ask)) + 3 * Decimal("0.02")
    assert gc.price == Decimal(str(snap.legs[1].bid)) - 3 * Decimal("0.10")
    assert au.tif.value == "IOC"
    t.wait(10)


def test_report_gives_slippage_time_between_legs_and_time_to_hedged(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    report = t.report()
    assert report["outcome"] == "FILLED" and report["hedged_units"] == 1 and report["naked_lots"] == {}
    gc = report["legs"][GC]
    assert gc["slippage_ticks"] is not None and gc["currency"] == "USD"
    assert gc["slippage_money"] == Decimal(str(gc["slippage_ticks"])) * Decimal("0.10") * 100 * gc["filled"]
    assert report["time_between_legs_ns"] > 0  # COMEX answers later than SHFE
    assert report["time_to_hedged_ns"] >= report["time_between_legs_ns"]
    final = [r for r in ticket_rows(eng, t) if r["kind"] == "HedgeStateChanged"][-1]["payload"]
    assert final["report"]["legs"][AU]["net"] == 3


def test_callbacks_see_every_fill_and_state(eng: cmc.Engine) -> None:
    fills, states = [], []
    t = eng.hedge("au_gc", "buy", 3)
    t.on_fill(lambda ticket, fill: fills.append(fill.instrument_id))
    t.on_state(lambda ticket, state: states.append(state))
    t.wait(10)
    assert sorted(set(fills)) == [GC, AU]
    assert states == [TS.FILLED]


def test_tickets_frame_and_lookup(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    frame = eng.tickets()
    assert frame.loc[0, "state"] == "FILLED" and frame.loc[0, f"{AU} filled"] == "3/3"
    assert eng.ticket(t.ticket_id) is t
    with pytest.raises(KeyError, match="no ticket"):
        eng.ticket("T-nope")
    assert "FILLED" in repr(t) and "cmc-ticket" in t._repr_html_()


def test_gfd_legs_fill_like_ioc_when_they_cross(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3, tif="GFD")
    assert t.wait(10) is TS.FILLED
    assert all(o.tif.value == "GFD" for o in t.orders)


# --------------------------------------------------------------------------- lead-lag


def test_lead_lag_sends_the_thinner_leg_first_and_the_hedge_after_its_fill(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3, mode="lead_lag")
    assert [len(leg.orders) for leg in t.legs] == [1, 0]  # SHFE au: 6 units at the top, GC 20
    assert t.wait(10) is TS.FILLED
    lead_fill = t.legs[0].orders[0].fills[0]
    assert t.legs[1].orders[0].events[0].ts_init >= lead_fill.ts_init


# --------------------------------------------------------------------------- checks before firing


def test_minimum_size_denies_a_ticket_larger_than_the_top_of_book(eng: cmc.Engine) -> None:
    snap = eng.spread("au_gc").quote()
    t = eng.hedge("au_gc", "buy", 3 * (snap.ask_size + 1))
    assert t.state is TS.DENIED and "minimum size" in t.reason and t.orders == []
    half = eng.hedge("au_gc", "buy", 3 * (snap.ask_size + 1), min_top_cover=0.5)
    assert half.state is not TS.DENIED
    half.wait(10)


def test_minimum_size_check_can_be_switched_off(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 60, min_top_cover=0)
    assert t.state is not TS.DENIED
    t.wait(30)
    assert t.done and t.is_balanced


def test_kill_switch_denies_both_legs_before_anything_is_sent(eng: cmc.Engine) -> None:
    eng.kill("end of day")
    t = eng.hedge("au_gc", "buy", 3)
    assert t.state is TS.DENIED and t.orders == []
    assert f"{AU}: trading_state" in t.reason and f"{GC}: trading_state" in t.reason
    decision = next(r for r in ticket_rows(eng, t) if r["kind"] == "HedgeDecision")["payload"]
    assert decision["action"] == "deny" and decision["spread_ask"] is not None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"qty": 4}, "not a multiple of the 3:1 lot ratio"),
        ({"qty": 0}, f"whole number of {AU} lots"),
        ({"qty": 1503}, "largest order"),
        ({"qty": 3, "policy": "pray"}, "policy 'pray' is not known"),
        ({"qty": 3, "mode": "eventually"}, "mode 'eventually' is not known"),
        ({"qty": 3, "tif": "GTC"}, "time in force"),
        ({"qty": 3, "chase_tics": 3}, "unknown hedge option chase_tics"),
        ({"qty": 3, "max_attempts": -1}, "max_attempts"),
        ({"qty": 3, "min_top_cover": 2}, "min_top_cover"),
        ({"qty": 3, "time_limit_ms": 0}, "time_limit_ms"),
        ({"qty": 3, "repeat": 2}, "repeat=2 needs a trigger"),
        ({"qty": 3, "when": "ask <= 2", "repeat": 0}, "repeat must be"),
        ({"qty": 3, "when": "spread < 2"}, "is not understood"),
    ],
)
def test_bad_hedge_requests_say_what_to_fix(eng: cmc.Engine, kwargs: dict, words: str) -> None:
    qty = kwargs.pop("qty")
    with pytest.raises(ValueError, match=words):
        eng.hedge("au_gc", "buy", qty, **kwargs)
    assert eng.tickets().empty


def test_unknown_spread_names_the_fix(eng: cmc.Engine) -> None:
    with pytest.raises(KeyError, match=r"define it with eng.spread\('ag_si'"):
        eng.hedge("ag_si", "buy", 3)


# --------------------------------------------------------------------------- journal


def test_every_decision_is_journaled_with_its_reason_and_linked_to_its_orders(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    rows = ticket_rows(eng, t)
    kinds = [r["kind"] for r in rows]
    assert kinds[:3] == ["HedgeCreated", "HedgeStateChanged", "HedgeDecision"]
    assert "HedgeChase" in kinds
    sent = [r for r in rows if r["kind"] == "HedgeOrderSent"]
    assert {r["order_id"] for r in sent} == {o.client_order_id for o in t.orders}
    assert {r["payload"]["purpose"] for r in sent} == {"leg", "chase"}
    chase_order = t.legs[1].orders[-1]
    timeline = eng.journal.timeline(chase_order.client_order_id)
    assert list(timeline["kind"])[:3] == ["OrderInitialized", "OrderSubmitted", "HedgeOrderSent"]
    ticket_timeline = eng.journal.timeline(t.ticket_id)
    assert set(ticket_timeline["order_id"].dropna()) == {o.client_order_id for o in t.orders}
    assert eng.journal.verify().ok


# --------------------------------------------------------------------------- state machine


def test_terminal_states_have_no_way_out_and_every_other_state_has_one() -> None:
    for state in TicketState:
        moves = TICKET_TRANSITIONS.get(state, frozenset())
        assert bool(moves) is not state.is_terminal, state


def test_every_working_state_can_reach_broken_or_a_clean_end() -> None:
    for state in (TS.WORKING, TS.LEGGED, TS.HEDGING, TS.UNWINDING):
        assert TS.BROKEN in TICKET_TRANSITIONS[state]
    assert TS.DISARMED in TICKET_TRANSITIONS[TS.ARMED] and TS.ARMED in TICKET_TRANSITIONS[TS.DISARMED]
    assert TICKET_TRANSITIONS[TS.CHECKING] == {TS.WORKING, TS.DENIED}


def test_an_illegal_move_raises(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    with pytest.raises(IllegalTicketMove, match="FILLED -> WORKING"):
        t._set(TS.WORKING, "bug")


def test_policy_defaults_bound_every_policy() -> None:
    policy = HedgePolicy()
    assert policy.max_legged_ms < policy.time_limit_ms
    assert policy.needed_top(3) == 3 and HedgePolicy(min_top_cover=0.5).needed_top(3) == 2
    assert HedgePolicy(min_top_cover=0).needed_top(10) == 0


# --------------------------------------------------------------------------- pure decisions


@dataclass
class FakeOrder:
    side: Side
    qty: int
    filled_qty: int
    done: bool = True
    fills: tuple = ()


@pytest.fixture
def legs() -> list[Leg]:
    from cmc_lab.core.specs import load_specs

    specs = load_specs()
    au = Leg(specs.instrument("SHFE.au"), Side.BUY, 6, 3, Decimal("620.02"))
    gc = Leg(specs.instrument("COMEX.GC"), Side.SELL, 2, 1, Decimal("2649.90"))
    return [au, gc]


def quotes(au: tuple[float, float], gc: tuple[float, float]) -> dict[str, Quote]:
    return {
        "SHFE.au": Quote("SHFE.au", au[0], au[1], 20, 20, 0, 0),
        "COMEX.GC": Quote("COMEX.GC", gc[0], gc[1], 20, 20, 0, 0),
    }


def test_imbalance_counts_lots_beyond_whole_hedged_units(legs: list[Leg]) -> None:
    au, gc = legs
    au.orders = [FakeOrder(Side.BUY, 6, 5)]  # type: ignore[list-item]
    gc.orders = [FakeOrder(Side.SELL, 2, 2)]  # type: ignore[list-item]
    assert hedged_units(legs) == 1
    assert imbalance(legs) == {"SHFE.au": 2, "COMEX.GC": 1}


def test_chase_plan_completes_the_next_unit_within_the_chase_bound(legs: list[Leg]) -> None:
    au, gc = legs
    au.orders = [FakeOrder(Side.BUY, 6, 5)]  # type: ignore[list-item]
    gc.orders = [FakeOrder(Side.SELL, 2, 2)]  # type: ignore[list-item]
    plan, problem = chase_plan(legs, 2, quotes((620.0, 620.04), (2649.8, 2650.0)), HedgePolicy())
    assert problem is None
    assert [(p.leg.id, p.side, p.qty, p.price) for p in plan] == [("SHFE.au", Side.BUY, 1, Decimal("620.08"))]
    capped, _ = chase_plan(legs, 2, quotes((620.0, 620.20), (2649.8, 2650.0)), HedgePolicy(chase_ticks=10))
    assert capped[0].price == Decimal("620.22")  # 620.20 + 2 ticks allowance, capped at 620.02 + 10 ticks
    _, ran = chase_plan(legs, 2, quotes((620.0, 620.24), (2649.8, 2650.0)), HedgePolicy(chase_ticks=10))
    assert ran is not None and "price ran away on SHFE.au" in ran
    _, none = chase_plan(legs, 2, {"COMEX.GC": quotes((1, 2), (3, 4))["COMEX.GC"]}, HedgePolicy())
    assert none == "no quote for SHFE.au"


def test_unwind_plan_sells_back_no_worse_than_the_loss_bound(legs: list[Leg]) -> None:
    au = legs[0]

    class Fill:
        last_px = Decimal("620.02")
        last_qty = 3

    au.orders = [FakeOrder(Side.BUY, 6, 3, fills=(Fill(),))]  # type: ignore[list-item]
    policy = HedgePolicy(unwind_ticks=20, allowance_ticks=2)
    near = unwind_plan(legs, quotes((619.90, 619.94), (2649.8, 2650.0)), policy)
    assert [(p.leg.id, p.side, p.qty, p.price) for p in near] == [
        ("SHFE.au", Side.SELL, 3, Decimal("619.86"))
    ]
    far = unwind_plan(legs, quotes((610.0, 610.04), (2649.8, 2650.0)), policy)
    assert far[0].price == Decimal("619.62")  # 620.02 - 20 ticks: the loss is bounded
    blind = unwind_plan(legs, {}, policy)
    assert blind[0].price == Decimal("619.62")


def test_limit_price_lead_leg_and_size_shortfall(legs: list[Leg]) -> None:
    au = legs[0]
    assert limit_price(au, Side.BUY, Decimal("620.00"), 2) == Decimal("620.04")
    assert limit_price(au, Side.SELL, Decimal("0.02"), 5) == Decimal("0.02")
    thin = quotes((620.0, 620.04), (2649.8, 2650.0))
    assert lead_leg(legs, thin) is au  # 20 au lots = 6 units; 20 GC lots = 20 units
    assert size_shortfall(HedgePolicy(), Side.BUY, 3, bid_size=9, ask_size=2) is not None
    assert size_shortfall(HedgePolicy(), Side.SELL, 3, bid_size=9, ask_size=2) is None
    assert size_shortfall(HedgePolicy(min_top_cover=0), Side.BUY, 3, 0, 0) is None


def test_orders_of_a_filled_ticket_are_all_done(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    assert all(o.state is OrderState.FILLED for o in t.orders)
    assert eng.desk.working() == []
