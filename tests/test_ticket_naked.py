"""Naked exposure of a hedge ticket is stated as the account holds it: a signed position and the
order that flattens it, in the ticket's reason, alerts, report and journal (issue 13, finding 3)."""

from __future__ import annotations

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.execution.figures import naked_text
from cmc_lab.execution.hedge import TicketState

TS = TicketState


pytestmark = pytest.mark.usefixtures("au_gc")  # every test here hedges the gold spread


def test_naked_exposure_is_stated_as_the_account_position_and_the_order_that_flattens_it(
    eng: cmc.Engine,
) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "sell", 3, policy="hold")  # sells 3 au, the GC buy is rejected
    eng.sleep(1.0)
    assert t.state is TS.LEGGED
    assert eng.risk.capital.net_position(AU) == -3  # the account is short 3 au
    stated = f"short 3 {AU}; buy 3 to flatten"
    assert stated in t.reason and "+3" not in t.reason
    assert any(stated in a for a in t.alerts) and not any("+3" in a for a in t.alerts)
    alerts = eng.alerts()
    assert any(stated in m for m in alerts.loc[alerts["ticket_id"] == t.ticket_id, "message"])
    report = t.report()
    assert report["naked_lots"] == {AU: -3}
    assert report["naked"] == [
        {"instrument": AU, "position": -3, "flatten": {"side": "buy", "qty": 3}, "text": stated}
    ]
    assert t.imbalance_lots() == {AU: -3, GC: 0}
    assert stated in eng.tickets().loc[0, "naked"] and stated in t._repr_html_()
    rows = [r for r in eng.journal.rows() if r["ticket_id"] == t.ticket_id]
    hold = next(r["payload"] for r in rows if r["kind"] == "HedgeHold")
    assert stated in hold["reason"]
    legged = next(
        r["payload"] for r in rows if r["kind"] == "HedgeStateChanged" and r["payload"]["to"] == "LEGGED"
    )
    assert stated in legged["reason"]
    assert t.wait(timeout=30) is TS.UNWOUND
    unwinds = [r["payload"] for r in eng.journal.rows(kinds=["HedgeUnwind"]) if r["ticket_id"] == t.ticket_id]
    assert unwinds and stated in unwinds[0]["reason"]
    assert eng.risk.capital.net_position(AU) == 0


def test_naked_text_names_each_leg_signed_with_its_flattening_order() -> None:
    assert naked_text({"SHFE.au": -3}) == "naked: short 3 SHFE.au; buy 3 to flatten"
    assert naked_text({"SHFE.au": 2, "COMEX.GC": -1}) == (
        "naked: long 2 SHFE.au; sell 2 to flatten, short 1 COMEX.GC; buy 1 to flatten"
    )
    assert naked_text({}) == "balanced"
