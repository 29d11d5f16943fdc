"""Hedge ticket limits that make sense for ordinary sizes, and say so when they change a policy
(issue 13, finding 5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import cmc_lab as cmc
from cmc_lab.execution.hedge import HedgeTicket, TicketState

TS = TicketState


pytestmark = pytest.mark.usefixtures("au_gc")  # every test here hedges the gold spread


def changes(eng: cmc.Engine, t: HedgeTicket) -> list[dict]:
    return [
        r["payload"] for r in eng.journal.rows(kinds=["HedgeStateChanged"]) if r["ticket_id"] == t.ticket_id
    ]


@pytest.mark.parametrize("qty", [9, 30])
def test_nine_lot_chase_ticket_with_one_reject_chases_not_unwinds(eng: cmc.Engine, qty: int) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", qty, policy="chase", min_top_cover=0)
    assert t.wait(timeout=30) is TS.FILLED, (t.reason, t.history)
    assert t.attempts >= 1 and TS.UNWINDING.value not in [s for _, s, _ in t.history]
    assert t.report()["limits"] == []
    one_leg = qty * 1000 * 620  # the whole au leg naked after the GC reject, about 620 CNY/g
    assert t.exposure_limit is not None and t.exposure_limit > one_leg


def test_default_exposure_limit_is_derived_from_the_tickets_own_size(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 9)
    t.wait(timeout=30)
    decision = next(
        r["payload"] for r in eng.journal.rows(kinds=["HedgeDecision"]) if r["ticket_id"] == t.ticket_id
    )
    fx = decision["fx"]
    au = 9 * 1000 * float(t.legs[0].decision_px)
    gc = 3 * 100 * float(t.legs[1].decision_px) * fx
    assert t.policy.max_legged_exposure is None
    assert t.exposure_limit == pytest.approx(1.25 * (au + gc))
    assert decision["exposure_limit"] == pytest.approx(t.exposure_limit)
    assert "1.25" in decision["exposure_limit_basis"] and "COMEX.GC" in decision["exposure_limit_basis"]
    tight = eng.hedge("au_gc", "buy", 3, max_legged_exposure=1_000_000.0)
    assert tight.exposure_limit == 1_000_000.0


def test_exposure_limit_that_turns_chase_into_unwind_is_named_with_its_excess(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="chase", max_legged_exposure=1_000_000.0)
    assert t.wait(timeout=30) is TS.UNWOUND
    (limit,) = t.report()["limits"]
    assert limit["limit"] == "max_legged_exposure" and limit["value"] == 1_000_000.0
    assert limit["policy"] == "chase" and limit["then"] == "unwind"
    assert limit["seen"] > 1_800_000 and limit["over_by"] == pytest.approx(limit["seen"] - 1_000_000.0)
    to_unwinding = next(c for c in changes(eng, t) if c["to"] == "UNWINDING")
    assert to_unwinding["limit"] == limit
    assert "max_legged_exposure" in to_unwinding["reason"] and "over by" in to_unwinding["reason"]
    final = changes(eng, t)[-1]["report"]
    assert final["limits"][0]["limit"] == "max_legged_exposure"


def test_legged_time_limit_that_turns_hold_into_unwind_is_named_with_its_excess(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=2000)
    assert t.wait(timeout=30) is TS.UNWOUND
    (limit,) = t.report()["limits"]
    assert limit["limit"] == "max_legged_ms" and limit["value"] == 2000
    assert limit["policy"] == "hold" and limit["then"] == "unwind"
    assert limit["seen"] >= 2000 and limit["over_by"] >= 0
    assert isinstance(limit["seen"], float | int) and not isinstance(limit["seen"], Decimal)
