"""A hedge ticket whose order's fate is unknown because its venue dropped (issue 13, finding 4).

The legged-exposure time limit holds while the order is unresolved: the filled leg is unwound on
the venue that is up (or an alert says it cannot); the ticket does not end while an order's fate
is unknown; once the venue is back and the ticket's orders are reconciled it resumes (re-hedges,
unwinds, or goes BROKEN) with a fresh alert.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sim_months import AU

import cmc_lab as cmc
from cmc_lab.core.model import OrderState
from cmc_lab.execution.hedge import HedgeTicket, TicketState

TS = TicketState
FLATTEN_AU = f"long 3 {AU}; sell 3 to flatten"


@pytest.fixture
def eng(make_engine: Callable[..., cmc.Engine], tmp_path: Path) -> cmc.Engine:
    engine = make_engine(journal=tmp_path / "j.sqlite")
    engine.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    return engine


def rows_of(eng: cmc.Engine, t: HedgeTicket, kind: str) -> list[dict]:
    return [r for r in eng.journal.rows(kinds=[kind]) if r["ticket_id"] == t.ticket_id]


def ticket_alerts(eng: cmc.Engine, t: HedgeTicket) -> list[str]:
    alerts = eng.alerts()
    if "ticket_id" not in alerts:
        return []
    return list(alerts.loc[alerts["ticket_id"] == t.ticket_id, "message"])


def gc_in_flight_when_comex_drops(eng: cmc.Engine, outage_s: float) -> HedgeTicket:
    t = eng.hedge("au_gc", "buy", 3)
    eng.sleep(0.001)  # both legs on their way; COMEX drops before its answer
    eng.venues["COMEX"].inject("disconnect", duration=outage_s)
    eng.sleep(0.05)  # SHFE has filled the au
    assert t.legs[0].net == 3 and not t.legs[1].orders[0].done
    return t


def test_venue_drop_with_hedge_order_in_flight_unwinds_the_filled_leg_within_the_legged_limit(
    eng: cmc.Engine,
) -> None:
    t = gc_in_flight_when_comex_drops(eng, 30.0)
    gc_order = t.legs[1].orders[0]
    au_fill = t.legs[0].orders[0].fills[0]
    eng.sleep(t.policy.max_legged_ms / 1000 + 0.5)
    assert not eng.venues["COMEX"].connected and not gc_order.done  # its fate still unknown
    assert eng.risk.capital.net_position(AU) == 0, "the filled au is unwound while COMEX is down"
    unwind = next(r for r in rows_of(eng, t, "HedgeOrderSent") if r["payload"]["purpose"] == "unwind")
    assert unwind["ts_init"] - au_fill.ts_init <= t.policy.max_legged_ms * 1e6 + 1e6
    assert t.state is TS.UNWINDING and not t.done  # the GC order may still have filled
    down = rows_of(eng, t, "HedgeVenueDown")
    assert down and gc_order.client_order_id in down[0]["payload"]["orders"]
    # past the ticket's own time limit the outage is alerted, the ticket is not BROKEN
    eng.sleep(t.policy.time_limit_ms / 1000)
    assert t.state is TS.UNWINDING
    assert any("unresolved" in a and gc_order.client_order_id in a for a in ticket_alerts(eng, t))
    assert t.wait(timeout=30) is TS.UNWOUND  # COMEX back: the GC order was never filled
    assert gc_order.state in (OrderState.REJECTED, OrderState.CANCELED)
    assert not any("BROKEN" in a for a in ticket_alerts(eng, t))


@pytest.mark.parametrize(
    ("shfe_outage_s", "comex_outage_s", "ends", "resume_words"),
    [
        (None, 2.0, TS.FILLED, "re-hedging"),  # back within the legged limit: chase the GC leg
        (31.0, 30.0, TS.UNWOUND, "unwinding"),  # au could not be unwound meanwhile: unwind it now
        (90.0, 30.0, TS.BROKEN, "unwinding"),  # and when it still cannot: BROKEN, alerted afresh
    ],
)
def test_reconnect_that_cancels_the_missing_leg_resumes_the_ticket_with_a_new_alert(
    eng: cmc.Engine,
    shfe_outage_s: float | None,
    comex_outage_s: float,
    ends: TicketState,
    resume_words: str,
) -> None:
    t = gc_in_flight_when_comex_drops(eng, comex_outage_s)
    gc_order = t.legs[1].orders[0]
    if shfe_outage_s is not None:
        eng.venues["SHFE"].inject("disconnect", duration=shfe_outage_s)
    eng.sleep(comex_outage_s - 0.1)
    assert not t.done and not gc_order.done
    before = len(ticket_alerts(eng, t))
    eng.sleep(1.0)  # COMEX is back and the GC order reconciled: the venue never had it
    assert gc_order.state in (OrderState.REJECTED, OrderState.CANCELED)
    resumed = rows_of(eng, t, "HedgeResume")
    assert resumed and resumed[0]["payload"]["venue"] == "COMEX"
    assert resumed[0]["payload"]["orders"][gc_order.client_order_id]["filled"] == 0
    fresh = ticket_alerts(eng, t)[before:]
    assert any("COMEX" in a and "resum" in a and FLATTEN_AU in a and resume_words in a for a in fresh), fresh
    assert t.wait(timeout=60) is ends
    if ends is TS.BROKEN:
        assert any("BROKEN" in a and FLATTEN_AU in a for a in ticket_alerts(eng, t)[before:])
        assert eng.risk.capital.net_position(AU) == 3
    else:
        assert t.is_balanced and all(o.done for o in t.orders)


def test_venue_that_drops_again_before_answering_keeps_the_order_unresolved_until_its_next_return(
    eng: cmc.Engine,
) -> None:
    t = gc_in_flight_when_comex_drops(eng, 2.0)
    gc_order = t.legs[1].orders[0]
    eng.sleep(2.0 - 0.05 + 0.01)  # COMEX is back; the status query is on its way
    assert eng.venues["COMEX"].connected and not gc_order.done
    eng.venues["COMEX"].inject("disconnect", duration=1.0)
    eng.sleep(0.5)
    failed = [r["payload"]["reason"] for r in rows_of(eng, t, "HedgeReconcile")]
    assert any("reconcile after COMEX returned failed" in f for f in failed)
    assert not gc_order.done and not rows_of(eng, t, "HedgeResume") and not t.done
    assert t.wait(timeout=30) is TS.UNWOUND  # the next return resolves it, past the chase window
    (resumed,) = rows_of(eng, t, "HedgeResume")
    assert resumed["payload"]["then"] == "unwinding (chase limits reached)"
