"""Property tests: random fault sequences against random hedges keep the ticket invariants.

Each example runs its own engine on the virtual clock (latency a few ms), injects a random
sequence of faults (kind, venue, time, count, probability, side) around one hedge with a random
side, size, policy, mode and time in force, and checks at the terminal state: a defined state
(BROKEN only with an alert), legs within one lot of the ratio, the ticket's complete journal, an
intact hash chain, no client order id sent twice, every resting order known. In lead-lag mode the
hedge leg never runs ahead of the lead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hedge_faults import check_invariants, start

from cmc_lab.execution.hedge import HedgeTicket, TicketState

TS = TicketState
ORDER_FAULTS = ("reject", "partial", "no_ack", "lost", "duplicate_fill", "late_fill")
STATE_FAULTS = ("stale", "halt", "close")

fault = st.fixed_dictionaries(
    {
        "kind": st.sampled_from((*ORDER_FAULTS, *STATE_FAULTS, "disconnect")),
        "venue": st.sampled_from(("SHFE", "COMEX", "FX")),
        "at": st.sampled_from((0.0, 0.002, 0.05, 0.5, 2.0)),
        "times": st.integers(1, 3),
        "probability": st.none() | st.sampled_from((0.3, 0.7, 1.0)),
        "side": st.none() | st.sampled_from(("buy", "sell")),
        "duration": st.sampled_from((0.3, 1.0, 2.5)),
    }
)
hedge = st.fixed_dictionaries(
    {
        "side": st.sampled_from(("buy", "sell")),
        "units": st.integers(1, 2),
        "policy": st.sampled_from(("chase", "unwind", "hold")),
        "mode": st.sampled_from(("concurrent", "lead_lag")),
        "tif": st.sampled_from(("IOC", "GFD")),
    }
)


def inject(run: Any, f: dict[str, Any]) -> None:
    venue = run.venue(f["venue"])
    kind = f["kind"]
    if kind == "disconnect":
        if venue.connected:
            venue.inject("disconnect", duration=f["duration"])
    elif kind in STATE_FAULTS:
        venue.inject(kind, duration=f["duration"])
    elif f["venue"] != "FX":
        params = {"lost": True} if kind == "lost" else {"ratio": 0.5} if kind == "partial" else {}
        venue.inject(
            "no_ack" if kind == "lost" else kind,
            times=f["times"],
            probability=f["probability"],
            side=f["side"],
            **params,
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(faults=st.lists(fault, max_size=4), order=hedge, seed=st.integers(1, 1000))
def test_random_faults_never_break_the_ticket_invariants(
    faults: list[dict[str, Any]], order: dict[str, Any], seed: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = start(Path(tmp) / "j.sqlite", latency=2.0, seed=seed)
        try:
            schedule = sorted(faults, key=lambda f: f["at"])
            for f in [f for f in schedule if f["at"] == 0.0]:
                inject(run, f)
            t = run.eng.hedge(
                "au_gc",
                order["side"],
                3 * order["units"],
                policy=order["policy"],
                mode=order["mode"],
                tif=order["tif"],
            )
            ahead: list[str] = []
            if order["mode"] == "lead_lag":
                t.on_fill(lambda ticket, fill: _hedge_not_ahead(ticket, ahead))
            now = 0.0
            for f in [f for f in schedule if f["at"] > 0.0]:
                run.eng.sleep(f["at"] - now)
                now = f["at"]
                inject(run, f)
            t.wait(timeout=90)
            check_invariants(run, t, set(TS) - {TS.NEW, TS.ARMED, TS.DISARMED})
            assert not ahead, ahead
        finally:
            run.eng.close()


def _hedge_not_ahead(t: HedgeTicket, ahead: list[str]) -> None:
    """Lead-lag, while WORKING: the hedge legs hold at most the lead's whole units."""
    lead = t._lead
    if lead is None or t.state is not TS.WORKING:
        return
    units = max(lead.net, 0) // lead.lots_per_unit
    for leg in t.legs:
        if leg is not lead and leg.net > units * leg.lots_per_unit:
            ahead.append(repr(t))
