"""Hedge tickets under scripted faults of the embedded exchange: every scenario ends in a defined state.

Each scenario scripts faults (``venue.inject``, disconnects, the kill switch, a market jump), runs
one hedge and checks the same invariants: a terminal state (BROKEN only with an alert), no naked
lots (or, when BROKEN, naked exposure within the limit), the ticket's complete journal chain,
an intact hash chain, no client order id sent twice, and every order resting in the exchange's
books known to the engine and the journal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sim_months import AG, AU, CU, GC

import cmc_lab as cmc
from cmc_lab.core.model import OrderState, SubmitOrder
from cmc_lab.execution.hedge import HedgeTicket, TicketState
from cmc_lab.venues.sim.exchange import SimVenue

TS = TicketState
FINAL_EVENT = {
    OrderState.FILLED: "OrderFilled",
    OrderState.CANCELED: "OrderCanceled",
    OrderState.REJECTED: "OrderRejected",
    OrderState.DENIED: "OrderDenied",
    OrderState.EXPIRED: "OrderExpired",
}
SPREADS = {
    "au_gc": {"SHFE.au": 1, "COMEX.GC": -1},
    "ag_si": {"SHFE.ag": 1, "COMEX.SI": -1},
    "cu_lme": {"SHFE.cu": 1, "LME.CA": -1},
    "sc_cl": {"INE.sc": 1, "NYMEX.CL": -1},
}


# --------------------------------------------------------------------------- harness


@dataclass
class Run:
    """One engine for one scenario, with every client order id the venues were handed."""

    eng: cmc.Engine
    sent: list[str] = field(default_factory=list)

    def venue(self, name: str) -> SimVenue:
        venue = self.eng.venues[name]
        assert isinstance(venue, SimVenue)
        return venue


def start(path: Path, **connect: Any) -> Run:
    """A virtual-clock engine with the four spreads defined and venue.submit recorded."""
    connect.setdefault("seed", 7)
    connect.setdefault("clock", "virtual")
    eng = cmc.connect("sim", journal=path, **connect)
    run = Run(eng)
    for name, legs in SPREADS.items():
        eng.spread(name, legs=legs)
    for venue in eng.venues.values():
        original = venue.submit

        def recording(command: SubmitOrder, original: Callable[[SubmitOrder], None] = original) -> None:
            run.sent.append(command.client_order_id)
            original(command)

        venue.submit = recording  # type: ignore[method-assign]
    return run


def jump(eng: cmc.Engine, instrument_id: str, amount: float) -> None:
    """Move one domestic contract's fair price by ``amount`` (its cross-market spread jumps)."""
    market = eng.venues["SHFE"]._ex.market  # type: ignore[attr-defined]
    market._spread[market._idx_dom.index(market.ids.index(instrument_id))] += amount


def settle(t: HedgeTicket, seconds: float = 60.0) -> TicketState:
    return t.wait(timeout=seconds)


def check_invariants(run: Run, t: HedgeTicket, expected: set[TicketState]) -> None:
    """The checks every fault scenario (and every property example) must pass."""
    eng = run.eng
    # (1) a defined terminal state; BROKEN only with an alert naming the ticket
    assert t.state.is_terminal, f"{t} did not end: {t.history}"
    assert t.state in expected, f"{t.ticket_id} ended {t.state} ({t.reason}), expected {expected}"
    alerts = eng.alerts()
    ticket_alerts = []
    if "ticket_id" in alerts:
        ticket_alerts = list(alerts.loc[alerts["ticket_id"] == t.ticket_id, "message"])
    if t.state is TS.BROKEN:
        assert ticket_alerts, "a BROKEN ticket must raise an alert"
        # (2) when BROKEN: the naked exposure is within the limit and named in the alert
        assert t.exposure_limit is not None and t.legged_exposure() <= t.exposure_limit
    else:
        # (2) legs within one lot of the ratio: for whole-lot ratios that means balanced to the lot
        assert t.is_balanced, f"{t.ticket_id} {t.state}: naked {t.imbalance_lots()}"
        assert all(o.done for o in t.orders), f"{t.ticket_id} ended with working orders"
    assert all(abs(v) <= 1 for v in t.imbalance_lots().values()) or t.state is TS.BROKEN
    # (3) the journal holds the ticket's complete chain
    rows = [r for r in eng.journal.rows() if r["ticket_id"] == t.ticket_id]
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "HedgeCreated"
    decisions = [r for r in rows if r["kind"] == "HedgeDecision"]
    if t.trigger is None or t.state is not TS.CANCELLED:
        assert decisions and decisions[0]["payload"]["reason"]
    changes = [r["payload"] for r in rows if r["kind"] == "HedgeStateChanged"]
    assert changes[-1]["to"] == t.state.value and changes[-1]["reason"]
    assert all(c["reason"] for c in changes)
    assert "report" in changes[-1]
    for order in t.orders:
        order_kinds = [r["kind"] for r in rows if r["order_id"] == order.client_order_id]
        assert order_kinds[0] == "OrderInitialized", order_kinds
        assert order_kinds[1] in ("OrderSubmitted", "OrderDenied"), order_kinds
        assert "HedgeOrderSent" in order_kinds
        if order.done:
            assert FINAL_EVENT[order.state] in order_kinds, (order, order_kinds)
    for kind in ("HedgeChase", "HedgeUnwind", "HedgeWait", "HedgeTimeout", "HedgeStop", "HedgeHold"):
        assert all(r["payload"].get("reason") for r in rows if r["kind"] == kind), kind
    # (4) the hash chain is intact
    assert eng.journal.verify().ok
    # (5) no client order id handed to a venue twice, and one order per leg for each intent
    assert len(run.sent) == len(set(run.sent)), f"sent twice: {run.sent}"
    intents = [(r["payload"]["leg"], r["payload"]["reason"]) for r in rows if r["kind"] == "HedgeOrderSent"]
    assert len(intents) == len(set(intents)), f"one intent sent twice: {intents}"
    # (6) every order the venues were handed, and every order resting in a book, is known
    known = set(eng.orders()["client_order_id"]) if run.sent else set()
    journaled = {r["order_id"] for r in eng.journal.rows(kinds=["OrderInitialized"])}
    assert set(run.sent) <= known and set(run.sent) <= journaled
    for venue in eng.venues.values():
        assert isinstance(venue, SimVenue)
        for listing in venue._matcher.listings.values():
            for resting in listing.book.orders("user"):
                cid = venue._matcher._by_key[resting.key].client_order_id
                assert cid in known and cid in journaled, f"{cid} rests in {listing.inst.id} unknown"


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    script: Callable[[Run], HedgeTicket]
    expected: frozenset[TicketState]
    connect: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Run, HedgeTicket], None] | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    *expected: TicketState,
    connect: dict[str, Any] | None = None,
    check: Callable[[Run, HedgeTicket], None] | None = None,
) -> Callable[[Callable[[Run], HedgeTicket]], Callable[[Run], HedgeTicket]]:
    def register(script: Callable[[Run], HedgeTicket]) -> Callable[[Run], HedgeTicket]:
        SCENARIOS[script.__name__] = Scenario(script, frozenset(expected), connect or {}, check)
        return script

    return register


def kinds_of(run: Run, t: HedgeTicket) -> list[str]:
    return [r["kind"] for r in run.eng.journal.rows() if r["ticket_id"] == t.ticket_id]


def states_of(t: HedgeTicket) -> list[str]:
    return [state for _, state, _ in t.history]


def reasons_of(t: HedgeTicket) -> str:
    return " | ".join(reason for _, _, reason in t.history)


def chased(run: Run, t: HedgeTicket) -> None:
    assert TS.HEDGING.value in states_of(t) and t.attempts >= 1


def unwound(run: Run, t: HedgeTicket) -> None:
    assert TS.UNWINDING.value in states_of(t) and "HedgeUnwind" in kinds_of(run, t)


def nothing_sent(run: Run, t: HedgeTicket) -> None:
    assert run.sent == [] and t.orders == []
    assert "HedgeDecision" in kinds_of(run, t)


@scenario(TS.FILLED, check=chased)
def second_leg_rejected_chase(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="chase")
    settle(t)
    return t


@scenario(TS.UNWOUND, check=unwound)
def second_leg_rejected_unwind(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="unwind")
    settle(t)
    return t


def _held_then_unwound(run: Run, t: HedgeTicket) -> None:
    assert any("on hold" in a for a in t.alerts)
    assert "HedgeHold" in kinds_of(run, t)
    assert "legged for" in reasons_of(t)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_held_then_unwound)
def second_leg_rejected_hold_then_time_limit(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=2000)
    run.eng.sleep(1.0)
    assert t.state is TS.LEGGED  # held for a human, alert raised, not yet unwound
    settle(t)
    return t


@scenario(TS.FILLED, check=chased)
def first_leg_partially_filled(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("partial", ratio=0.4)
    t = run.eng.hedge("au_gc", "buy", 3)
    settle(t)
    return t


@scenario(TS.FILLED, check=chased)
def both_legs_partially_filled(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("partial", ratio=0.5)
    run.venue("COMEX").inject("partial", ratio=0.5)
    t = run.eng.hedge("au_gc", "sell", 6)
    settle(t)
    return t


def _balanced_part(run: Run, t: HedgeTicket) -> None:
    assert t.hedged_units() == 1 and "balanced at 1 of 2 units" in t.reason


@scenario(TS.CANCELLED, check=_balanced_part)
def both_legs_partially_filled_unwind_policy(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("partial", ratio=0.5)
    run.venue("COMEX").inject("partial", ratio=0.5)
    t = run.eng.hedge("au_gc", "buy", 6, policy="unwind")
    settle(t)
    return t


@scenario(TS.FILLED)
def missing_ack(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("no_ack")
    t = run.eng.hedge("au_gc", "buy", 3)
    settle(t)
    assert not any(e.kind == "OrderAccepted" for e in t.legs[1].orders[0].events)
    return t


def _timed_out_and_reconciled(run: Run, t: HedgeTicket) -> None:
    kinds = kinds_of(run, t)
    assert "HedgeTimeout" in kinds and "HedgeReconcile" in kinds
    lost = t.legs[1].orders[0]
    assert lost.state is OrderState.CANCELED and "reconcile" in lost.reason
    chased(run, t)


@scenario(TS.FILLED, check=_timed_out_and_reconciled)
def lost_order_times_out_and_reconciles(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("no_ack", lost=True)
    t = run.eng.hedge("au_gc", "buy", 3)
    settle(t)
    return t


@scenario(TS.FILLED)
def disconnect_mid_ticket(run: Run) -> HedgeTicket:
    t = run.eng.hedge("au_gc", "buy", 3)
    run.venue("COMEX").inject("disconnect", duration=1.0)
    settle(t)
    assert any(r["kind"] == "Reconciled" for r in run.eng.journal.rows())
    return t


@scenario(TS.FILLED)
def disconnect_of_the_filled_leg_venue(run: Run) -> HedgeTicket:
    t = run.eng.hedge("au_gc", "buy", 3)
    run.eng.sleep(0.01)  # SHFE has answered, COMEX not yet
    run.venue("SHFE").inject("disconnect", duration=2.0)
    settle(t)
    return t


def _ran_away(run: Run, t: HedgeTicket) -> None:
    chases = [
        r["payload"] for r in run.eng.journal.rows(kinds=["HedgeChase"]) if r["ticket_id"] == t.ticket_id
    ]
    assert chases and chases[-1].get("abandoned") and f"price ran away on {AU}" in chases[-1]["reason"]
    assert t.attempts == 0
    unwound(run, t)


@scenario(TS.UNWOUND, connect={"latency": {"SHFE": (300.0, 300.0)}}, check=_ran_away)
def price_runs_away_during_chase(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, chase_ticks=0)
    jump(run.eng, "SHFE.au", 3.0)  # SHFE gold runs 150 ticks while its reject is on the way
    settle(t)
    return t


def _closed_rejects(run: Run, t: HedgeTicket) -> None:
    assert any("session closed" in o.reason for o in t.legs[1].orders)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_closed_rejects)
def session_closes_mid_ticket(run: Run) -> HedgeTicket:
    t = run.eng.hedge("au_gc", "buy", 3)
    closed: list[bool] = []

    def close_overseas(ticket: HedgeTicket, fill: Any) -> None:
        if fill.instrument_id == AU and not closed:
            closed.append(True)
            run.venue("COMEX").inject("close")

    t.on_fill(close_overseas)
    settle(t)
    return t


def _denied(words: str) -> Callable[[Run, HedgeTicket], None]:
    def check(run: Run, t: HedgeTicket) -> None:
        assert words in t.reason, t.reason
        nothing_sent(run, t)

    return check


@scenario(TS.DENIED, check=_denied(f"leg {GC}: quote is stale"))
def stale_quote_before_firing(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("stale", instrument="GC")
    run.eng.sleep(4.0)
    return run.eng.hedge("au_gc", "buy", 3)


@scenario(TS.DENIED, check=_denied("FX FX.USDCNH: quote is stale"))
def stale_fx_before_firing(run: Run) -> HedgeTicket:
    run.venue("FX").inject("stale")
    run.eng.sleep(4.0)
    return run.eng.hedge("au_gc", "buy", 3)


@scenario(TS.DENIED, connect={"quote_interval": 60.0}, check=_denied(f"leg {AU}: session closed"))
def venue_closed_before_firing(run: Run) -> HedgeTicket:
    run.eng.sleep(5 * 3600.0)  # 19:00 UTC: SHFE's night session closed at 02:30 Shanghai
    return run.eng.hedge("au_gc", "buy", 3)


@scenario(TS.DENIED, check=_denied("venue COMEX is not connected"))
def venue_disconnected_before_firing(run: Run) -> HedgeTicket:
    run.eng.disconnect("COMEX")
    return run.eng.hedge("au_gc", "buy", 3)


@scenario(TS.DENIED, check=_denied("minimum size"))
def top_of_book_too_thin(run: Run) -> HedgeTicket:
    return run.eng.hedge("au_gc", "buy", 90)


def _halted(run: Run, t: HedgeTicket) -> None:
    assert any(o.reason == "trading halted" for o in t.legs[1].orders)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_halted)
def halted_leg(run: Run) -> HedgeTicket:
    t = run.eng.hedge("au_gc", "buy", 3)
    run.venue("COMEX").inject("halt", instrument="GC")
    settle(t)
    return t


def _duplicate_ignored(run: Run, t: HedgeTicket) -> None:
    assert t.legs[0].net == 3
    assert any(r["kind"] == "DuplicateFillIgnored" for r in run.eng.journal.rows())


@scenario(TS.FILLED, check=_duplicate_ignored)
def duplicated_fill_report(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("duplicate_fill")
    t = run.eng.hedge("au_gc", "buy", 3)
    settle(t)
    return t


def _late_fill(run: Run, t: HedgeTicket) -> None:
    gc = t.legs[1].orders[0]
    kinds = [e.kind for e in gc.events]
    assert kinds.index("OrderCancelRequested") < kinds.index("OrderFilled"), kinds
    assert "HedgeTimeout" in kinds_of(run, t)


@scenario(TS.FILLED, connect={"latency": {"COMEX": (300.0, 300.0)}}, check=_late_fill)
def fill_arrives_after_cancel(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("late_fill")
    t = run.eng.hedge("au_gc", "sell", 3, tif="GFD", allowance_ticks=0)
    market = run.eng.venues["COMEX"]._ex.market  # type: ignore[attr-defined]
    market._x[0] += math.log(1.001)  # gold up 0.1 % before the GC buy arrives: it rests
    settle(t)
    return t


def _storm(run: Run, t: HedgeTicket) -> None:
    assert t.attempts == t.policy.max_attempts
    assert "chase limits reached" in reasons_of(t)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_storm)
def reject_storm(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=20, probability=1.0, reason="reject storm")
    t = run.eng.hedge("au_gc", "buy", 3)
    settle(t)
    return t


def _unwound_through_the_kill_switch(run: Run, t: HedgeTicket) -> None:
    """The kill switch blocks what adds exposure, never the unwind (issue 13, finding 2)."""
    unwind = t.legs[0].orders[-1]
    checks = next(
        r["payload"]["checks"]
        for r in run.eng.journal.rows(kinds=["OrderSubmitted"])
        if r["order_id"] == unwind.client_order_id
    )
    assert checks.startswith(f"trading_state: exempt (reduces long 3 {AU} in CN-FUT)")
    unwound(run, t)


@scenario(TS.UNWOUND, check=_unwound_through_the_kill_switch)
def kill_switch_during_ticket_then_rearm(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=1000)
    run.eng.sleep(0.5)
    run.eng.kill("desk risk check")
    run.eng.sleep(2.0)
    assert t.state is TS.UNWOUND  # the unwind reduces exposure: the kill switch lets it out
    run.eng.rearm()
    settle(t)
    return t


@scenario(TS.UNWOUND, check=_unwound_through_the_kill_switch)
def kill_switch_during_ticket_never_rearmed(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=1000, time_limit_ms=4000)
    run.eng.sleep(0.5)
    run.eng.kill("desk risk check")
    settle(t)
    return t


def _broken_with_its_venue_down(run: Run, t: HedgeTicket) -> None:
    assert "time limit" in t.reason and t.imbalance_lots()[AU] == 3


@scenario(TS.BROKEN, check=_broken_with_its_venue_down)
def unwind_venue_down_until_the_time_limit(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=1000, time_limit_ms=4000)
    run.eng.sleep(0.5)
    run.venue("SHFE").inject("disconnect", duration=60.0)  # the unwind has nowhere to go
    settle(t)
    return t


def _exposure(run: Run, t: HedgeTicket) -> None:
    assert t.attempts == 0 and "legged exposure" in reasons_of(t)
    assert any("above the limit" in a for a in t.alerts)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_exposure)
def legged_exposure_limit_hit(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, max_legged_exposure=1000.0)
    settle(t)
    return t


def _lead_lag(run: Run, t: HedgeTicket) -> None:
    lead, hedge = t.legs  # SHFE gold is the thinner book per spread unit: it leads
    first_hedge = hedge.orders[0]
    first_lead_fill = lead.orders[0].fills[0]
    assert first_hedge.events[0].ts_init >= first_lead_fill.ts_init
    assert first_hedge.qty == 1  # 4 of 9 au filled: one whole unit hedged, not more


@scenario(TS.FILLED, check=_lead_lag)
def lead_lag_with_partial_lead_fills(run: Run) -> HedgeTicket:
    run.venue("SHFE").inject("partial", ratio=0.5)
    t = run.eng.hedge("au_gc", "buy", 9, mode="lead_lag")
    overhedged: list[str] = []

    def watch(ticket: HedgeTicket, fill: Any) -> None:
        lead, hedge = ticket.legs
        if hedge.net > lead.net // lead.lots_per_unit * hedge.lots_per_unit and ticket.state is TS.WORKING:
            overhedged.append(repr(ticket))

    t.on_fill(watch)
    settle(t)
    assert not overhedged
    return t


@scenario(TS.FILLED, check=chased)
def gfd_legs_with_reject(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, tif="GFD")
    settle(t)
    return t


@scenario(TS.FILLED, check=chased)
def silver_second_leg_rejected(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1, instrument="SI")
    t = run.eng.hedge("ag_si", "sell", run.eng.spread("ag_si").lots[AG])
    settle(t)
    return t


@scenario(TS.FILLED, check=chased)
def copper_overseas_leg_partial(run: Run) -> HedgeTicket:
    run.venue("LME").inject("partial", ratio=0.5)
    t = run.eng.hedge("cu_lme", "buy", run.eng.spread("cu_lme").lots[CU] * 2)
    settle(t)
    return t


@scenario(TS.UNWOUND, check=unwound)
def crude_overseas_leg_rejected_unwind(run: Run) -> HedgeTicket:
    run.venue("NYMEX").inject("reject", times=1)
    t = run.eng.hedge("sc_cl", "buy", 2, policy="unwind")
    settle(t)
    return t


def _unwound_while_down_then_resumed(run: Run, t: HedgeTicket) -> None:
    kinds = kinds_of(run, t)
    assert "HedgeVenueDown" in kinds and "HedgeResume" in kinds
    assert any("unresolved" in a for a in t.alerts) and any(
        "resumes after COMEX returned" in a for a in t.alerts
    )
    assert not any("BROKEN" in a for a in t.alerts)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_unwound_while_down_then_resumed)
def lost_order_while_venue_stays_down(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("no_ack", lost=True)
    t = run.eng.hedge("au_gc", "buy", 3, time_limit_ms=6000)
    run.eng.sleep(0.3)
    run.venue("COMEX").inject("disconnect", duration=60.0)
    run.eng.sleep(t.policy.max_legged_ms / 1000 + 0.5)
    assert t.legs[0].net == 0 and not t.done  # the au is unwound while the GC order's fate is unknown
    settle(t, 90.0)
    return t


@scenario(TS.UNWOUND, check=unwound)
def unwind_leg_rejected_then_retried(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    run.venue("SHFE").inject("reject", times=2, side="sell")
    t = run.eng.hedge("au_gc", "buy", 3, policy="unwind")
    settle(t)
    assert t.unwind_attempts == 3
    return t


def _backed_off(run: Run, t: HedgeTicket) -> None:
    waits = [r["payload"] for r in run.eng.journal.rows(kinds=["HedgeWait"]) if r["ticket_id"] == t.ticket_id]
    pauses = [w["retry_ms"] for w in waits if "filled nothing" in w["reason"]]
    assert pauses == sorted(pauses) and pauses[-1] > pauses[0]  # backing off, not hammering
    assert t.unwind_attempts < t.policy.max_unwind_attempts
    unwound(run, t)


@scenario(TS.UNWOUND, connect={"latency": 2.0}, check=_backed_off)
def unwind_venue_halted_for_four_seconds(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="unwind")
    run.eng.sleep(0.002)  # au filled, GC rejected on its way back
    run.venue("SHFE").inject("halt", duration=4.0)
    settle(t)
    return t


def _user_cancel(run: Run, t: HedgeTicket) -> None:
    assert "cancelled by user" in reasons_of(t)
    unwound(run, t)


@scenario(TS.UNWOUND, check=_user_cancel)
def user_cancels_a_held_ticket(run: Run) -> HedgeTicket:
    run.venue("COMEX").inject("reject", times=1)
    t = run.eng.hedge("au_gc", "buy", 3, policy="hold")
    run.eng.sleep(0.5)
    t.cancel()
    settle(t)
    assert (t.history[-1][0] - t.history[0][0]) / 1e9 < 2.0  # well before the hold's time limit
    return t


# --------------------------------------------------------------------------- the matrix


def test_the_matrix_has_at_least_twenty_scenarios() -> None:
    assert len(SCENARIOS) >= 20
    assert {s for sc in SCENARIOS.values() for s in sc.expected} >= {
        TS.FILLED,
        TS.UNWOUND,
        TS.CANCELLED,
        TS.DENIED,
        TS.BROKEN,
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario_ends_in_a_defined_state(name: str, tmp_path: Path) -> None:
    sc = SCENARIOS[name]
    run = start(tmp_path / "j.sqlite", **sc.connect)
    try:
        t = sc.script(run)
        check_invariants(run, t, set(sc.expected))
        if sc.check is not None:
            sc.check(run, t)
    finally:
        run.eng.close()
