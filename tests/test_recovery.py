"""Restart recovery on the embedded exchange: a killed run's live orders come back, reconciled, never re-sent.

A "killed" engine here stops its loop where it is and drops its journal connection: no
``EngineStopped``, no goodbye to its venues, what ``kill -9`` leaves behind. The next engine's
embedded exchange is a new one that never saw those orders, so each recovered order ends closed
as unknown to the venue. Over FIX, where the exchange outlives the engine, see test_crash.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_months import GC

import cmc_lab as cmc
from cmc_lab.core.model import (
    OrderAccepted,
    OrderInitialized,
    OrderState,
    OrderSubmitted,
    Side,
    SubmitOrder,
    TimeInForce,
)
from cmc_lab.engine.recovery import run_owner
from cmc_lab.journal import Journal
from cmc_lab.venues.sim.exchange import SimVenue

MakeEngine = Callable[..., cmc.Engine]


def kill(eng: cmc.Engine) -> None:
    """What ``kill -9`` leaves: the loop stops mid-flight, no EngineStopped, the venues are not told."""
    eng.runtime.stop()
    eng.journal.close()


def payloads(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def filled(eng: cmc.Engine, iid: str, side: str, qty: int) -> cmc.Order:
    inst, quote = eng.instrument(iid), eng.quote(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price)
    assert order.wait(5) is OrderState.FILLED, order
    return order


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Client order ids handed to any embedded-exchange venue from now on."""
    ids: list[str] = []
    original = SimVenue.submit

    def spy(self: SimVenue, command: SubmitOrder) -> None:
        ids.append(command.client_order_id)
        original(self, command)

    monkeypatch.setattr(SimVenue, "submit", spy)
    return ids


@pytest.fixture
def killed_run(make_engine: MakeEngine, journal_path: Path) -> dict[str, str]:
    """A run killed with two orders resting (GC buy, au sell) and one filled; their ids."""
    eng = make_engine(journal=journal_path)
    resting_gc = eng.submit("COMEX.GC", "buy", 1, price="4022.6")
    resting_au = eng.submit("SHFE.au", "sell", 1, price="975.48")
    done = filled(eng, "COMEX.GC", "buy", 2)
    eng.sleep(0.5)
    assert resting_gc.state is resting_au.state is OrderState.ACCEPTED
    kill(eng)
    return {
        "gc": resting_gc.client_order_id,
        "au": resting_au.client_order_id,
        "filled": done.client_order_id,
    }


def test_restart_recovers_the_working_orders_of_a_killed_run_under_their_old_ids(
    make_engine: MakeEngine, journal_path: Path, killed_run: dict[str, str], sent: list[str]
) -> None:
    eng = make_engine(journal=journal_path)
    (recovered,) = payloads(eng, "EngineRecovered")
    assert recovered["recovered"] == [killed_run["gc"], killed_run["au"]]
    assert recovered["states"] == {"ACCEPTED": 2} and recovered["orders_read"] == 3
    order = eng.order(killed_run["gc"])
    assert (order.client_order_id, order.qty, order.price) == ("r1-000001", 1, Decimal("4022.6"))
    assert [e.kind for e in order.events] == ["OrderInitialized", "OrderSubmitted", "OrderAccepted"]
    history = eng.order(killed_run["filled"])  # final: rebuilt from the journal, not a live order
    assert history.state is cmc.OrderState.FILLED and history not in eng.working_orders()
    eng.sleep(1.0)  # the reconcile runs on the engine loop
    for cid in (killed_run["gc"], killed_run["au"]):
        closed = eng.order(cid)
        assert closed.state is OrderState.CANCELED, closed
        assert closed.reason == "reconcile: the venue does not know this order"
    (outcome,) = payloads(eng, "RecoveryReconciled")
    assert outcome["closed"] == {killed_run["gc"]: "CANCELED", killed_run["au"]: "CANCELED"}
    assert outcome["working"] == [] and outcome["venue_only"] == []
    assert sent == []  # nothing re-sent
    assert eng.journal.verify().ok


def test_second_engine_on_the_same_journal_continues_with_new_ids_and_never_resends(
    make_engine: MakeEngine, journal_path: Path, killed_run: dict[str, str], sent: list[str]
) -> None:
    eng = make_engine(journal=journal_path)
    eng.sleep(1.0)
    new = filled(eng, "COMEX.GC", "sell", 1)
    assert new.client_order_id == "r2-000001" and sent == ["r2-000001"]
    intents = [r["order_id"] for r in eng.journal.rows(kinds=["OrderSubmitted"])]
    assert sorted(intents) == sorted([*killed_run.values(), "r2-000001"])  # each intent once


def test_recovery_rebuilds_the_killed_sessions_positions_once_across_two_kills(
    make_engine: MakeEngine, journal_path: Path, killed_run: dict[str, str]
) -> None:
    second = make_engine(journal=journal_path)
    assert second.risk.capital.position("US-FUT", GC) == 2
    (recovered,) = payloads(second, "EngineRecovered")
    assert recovered["fills_replayed"] == 1 and recovered["book_from_seq"] == 0
    second.sleep(1.0)
    filled(second, "COMEX.GC", "buy", 1)
    kill(second)
    third = make_engine(journal=journal_path)
    assert third.risk.capital.position("US-FUT", GC) == 3  # each fill counted once
    assert third.risk.activity.messages_last_second(third.now_ns()) == 0  # replays are not traffic
    third.close()
    fourth = make_engine(journal=journal_path)
    assert fourth.risk.capital.position("US-FUT", GC) == 3  # a clean stop keeps the book too


def test_a_venue_report_for_an_order_the_journal_never_saw_raises_a_critical_alert(
    make_engine: MakeEngine, journal_path: Path, killed_run: dict[str, str]
) -> None:
    eng = make_engine(journal=journal_path)

    async def stranger() -> None:  # arrives while the recovered orders are being reconciled
        now = eng.now_ns()
        eng.router.on_event(OrderAccepted(now, now, "r9-000001", "COMEX.GC", "COMEX-77"))
        eng.router.on_event(
            OrderAccepted(now, now, killed_run["filled"], "COMEX.GC", "COMEX-3")
        )  # late, known

    eng.runtime.call(stranger())
    eng.sleep(1.0)
    assert payloads(eng, "RecoveryReconciled")[0]["venue_only"] == ["r9-000001"]
    alerts = eng.alerts()
    assert list(alerts["level"]) == ["critical"] and "r9-000001" in alerts["message"].iloc[0]


def test_an_intent_without_its_send_decision_is_denied_on_restart_not_sent(
    make_engine: MakeEngine, journal_path: Path, sent: list[str]
) -> None:
    with Journal(journal_path) as journal:
        journal.record(
            OrderInitialized(
                1, 1, "r1-000001", "COMEX.GC", Side.BUY, 1, Decimal("4022.6"), TimeInForce.GFD, "US-FUT"
            ),
            mono_ns=1,
        )
    eng = make_engine(journal=journal_path)
    order = eng.order("r1-000001")
    assert order.state is OrderState.DENIED and "never left" in order.reason
    assert payloads(eng, "EngineRecovered")[0]["never_sent"] == ["r1-000001"]
    eng.sleep(0.5)
    assert sent == []


def test_orders_of_a_run_whose_process_still_runs_are_left_to_it(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        owner = {**run_owner("r1"), "pid": other.pid}
        owner.pop("proc_start", None)  # a process of ours: no /proc check needed to call it alive
        with Journal(journal_path) as journal:
            journal.append(
                "EngineStarted", ts_event=1, ts_init=1, mono_ns=1, payload={"label": "sim", **owner}
            )
            for event in (
                OrderInitialized(
                    2, 2, "r1-000001", "COMEX.GC", Side.BUY, 1, Decimal("4022.6"), TimeInForce.GFD, "US-FUT"
                ),
                OrderSubmitted(2, 2, "r1-000001", "COMEX.GC"),
            ):
                journal.record(event, mono_ns=2)
        eng = make_engine(journal=journal_path)
        assert "r1-000001" not in {o.client_order_id for o in eng.working_orders()}  # left to its process
        recovered = payloads(eng, "EngineRecovered")[0]
        assert recovered["left_to_running"] == {"r1": other.pid} and recovered["left_orders"] == 1
        alerts = eng.alerts()
        assert list(alerts["level"]) == ["warning"] and "still runs" in alerts["message"].iloc[0]
    finally:
        other.kill()
        other.wait()


def test_an_open_hedge_ticket_of_a_killed_run_raises_one_critical_alert(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    with Journal(journal_path) as journal:
        payload = {"from": "WORKING", "to": "LEGGED", "reason": "au filled, GC not yet"}
        journal.append(
            "HedgeStateChanged", ts_event=1, ts_init=1, mono_ns=1, payload=payload, ticket_id="Tr1-0001"
        )
    eng = make_engine(journal=journal_path)
    alerts = eng.alerts()
    assert list(alerts["level"]) == ["critical"] and "Tr1-0001 (LEGGED)" in alerts["message"].iloc[0]
    assert payloads(eng, "EngineRecovered")[0]["open_tickets"] == {"Tr1-0001": "LEGGED"}
    eng.close()
    again = make_engine(journal=journal_path)
    assert again.alerts().empty  # said once


def test_a_recovered_order_on_a_venue_this_engine_does_not_connect_raises_a_critical_alert(
    make_engine: MakeEngine, journal_path: Path, killed_run: dict[str, str]
) -> None:
    eng = make_engine(venues={"COMEX": "sim"}, journal=journal_path)
    recovered = payloads(eng, "EngineRecovered")[0]
    assert recovered["recovered"] == [killed_run["gc"]]
    assert recovered["on_other_venues"] == [killed_run["au"]]
    alerts = eng.alerts()
    assert list(alerts["level"]) == ["critical"] and killed_run["au"] in alerts["message"].iloc[0]


def test_an_engine_on_a_new_or_memory_journal_recovers_nothing(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    for eng in (make_engine(journal=journal_path), make_engine()):
        assert payloads(eng, "EngineRecovered") == [] and eng.alerts().empty
        assert eng.orders().empty
