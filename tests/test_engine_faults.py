"""Scripted venue faults seen through the engine: what the order, the journal and reconcile make of them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sim_months import GC

import cmc_lab as cmc
from cmc_lab.venues.sim.exchange import SimVenue


def comex(eng: cmc.Engine) -> SimVenue:
    venue = eng.venues["COMEX"]
    assert isinstance(venue, SimVenue)
    return venue


def kinds(eng: cmc.Engine, order_id: str) -> list[str]:
    return eng.journal.timeline(order_id)["kind"].tolist()


def journal_kinds(eng: cmc.Engine, *wanted: str) -> list[str]:
    return [r["kind"] for r in eng.journal.rows(kinds=list(wanted))]


def reconciled(eng: cmc.Engine) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=["Reconciled"])]


def resting_buy(eng: cmc.Engine, ticks_below_ask: int = 1) -> cmc.Order:
    """A GC buy just under the ask: it rests, and the next downtick of the market fills it."""
    ask = Decimal(str(eng.quote("COMEX.GC").ask))
    order = eng.submit("COMEX.GC", "buy", 1, price=ask - ticks_below_ask * Decimal("0.1"))
    eng.sleep(0.3)
    assert order.state is cmc.OrderState.ACCEPTED
    return order


def test_injected_reject_rejects_the_order_with_the_venues_reason(eng: cmc.Engine) -> None:
    comex(eng).inject("reject", reason="insufficient margin")
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.REJECTED
    assert order.reason == "insufficient margin"
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderSubmitted", "OrderRejected"]
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED


def test_injected_partial_fill_ends_canceled_with_the_partial_quantity(eng: cmc.Engine) -> None:
    comex(eng).inject("partial", ratio=0.5)
    order = eng.submit("COMEX.GC", "buy", 4, price="4177.4")
    assert order.wait(5) is cmc.OrderState.CANCELED
    assert order.filled_qty == 2
    assert order.avg_px is not None
    assert "partial fill injected" in order.reason
    assert kinds(eng, order.client_order_id)[-1] == "OrderCanceled"


def test_no_ack_order_fills_without_an_accept_and_ends_filled(eng: cmc.Engine) -> None:
    comex(eng).inject("no_ack")
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.FILLED
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderSubmitted", "OrderFilled"]
    assert order.venue_order_id is not None and order.venue_order_id.startswith("COMEX-")
    assert order.anomalies == []


def test_lost_order_stays_submitted_until_reconcile_rejects_it(eng: cmc.Engine) -> None:
    comex(eng).inject("no_ack", lost=True)
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(2) is cmc.OrderState.SUBMITTED
    assert not order.done
    eng.disconnect("COMEX")
    eng.reconnect("COMEX")
    assert order.state is cmc.OrderState.REJECTED
    assert "venue does not know" in order.reason
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderSubmitted", "OrderRejected"]
    assert reconciled(eng) == [
        {"venue": "COMEX", "checked": 1, "changed": [], "unknown": [order.client_order_id]}
    ]
    assert order.anomalies == []


def test_disconnect_and_reconnect_keep_a_resting_order_and_reconcile_it(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price="4022.6")
    eng.sleep(0.3)
    eng.disconnect("COMEX")
    assert not eng.venue_connected("COMEX")
    with pytest.raises(cmc.NoQuote):
        eng.quote("COMEX.GC")
    denied = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert denied.state is cmc.OrderState.DENIED
    assert denied.reason.startswith("venue_connected: venue 'COMEX' is not connected")
    eng.reconnect("COMEX")
    assert eng.venue_connected("COMEX")
    assert eng.quote("COMEX.GC").bid > 0
    assert order.state is cmc.OrderState.ACCEPTED
    assert reconciled(eng) == [{"venue": "COMEX", "checked": 1, "changed": [], "unknown": []}]
    order.cancel()
    assert order.wait(5) is cmc.OrderState.CANCELED


def test_a_venue_that_drops_alerts_at_once_and_its_return_alerts_again_with_no_ticket_working(
    eng: cmc.Engine,
) -> None:
    order = resting_buy(eng)
    comex(eng).inject("disconnect", duration=5.0)
    eng.sleep(0.01)
    down = eng.alerts()
    assert list(down["source"]) == ["venue"] and down["level"].iloc[0] == "critical"
    assert "COMEX disconnected" in down["message"].iloc[0] and "1 working order(s)" in down["message"].iloc[0]
    eng.sleep(6.0)
    back = eng.alerts()
    assert list(back["source"]) == ["venue", "venue"] and "COMEX reconnected" in back["message"].iloc[1]
    assert order.done
    alerts = [r["payload"]["message"] for r in eng.journal.rows(kinds=["Alert"])]
    assert len(alerts) == 2 and alerts[0].startswith("COMEX disconnected")


def test_disconnect_with_duration_journals_the_outage_and_reconciles_a_fill_made_during_it(
    eng: cmc.Engine,
) -> None:
    order = resting_buy(eng)
    comex(eng).inject("disconnect", duration=5.0)
    eng.sleep(0.01)
    assert not eng.venue_connected("COMEX")
    assert order.filled_qty == 0
    eng.sleep(6.0)
    assert eng.venue_connected("COMEX")
    assert order.state is cmc.OrderState.FILLED
    assert order.filled_qty == 1 and isinstance(order.avg_px, Decimal)
    assert order.avg_px <= order.price
    venue_rows = journal_kinds(eng, "VenueDisconnected", "VenueConnected", "Reconciled")
    assert venue_rows[-3:] == ["VenueDisconnected", "VenueConnected", "Reconciled"]
    assert reconciled(eng) == [
        {"venue": "COMEX", "checked": 1, "changed": [order.client_order_id], "unknown": []}
    ]
    assert kinds(eng, order.client_order_id)[-1] == "OrderFilled"
    assert eng.journal.verify().ok


def test_reject_lost_in_an_outage_is_closed_by_reconcile(make_engine: Any) -> None:
    eng = make_engine(latency={"COMEX": (100.0, 100.0)})
    comex(eng).inject("reject", reason="insufficient margin")
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    eng.sleep(0.15)  # the venue has rejected it; the answer is on the wire
    comex(eng).inject("disconnect", duration=1.0)
    eng.sleep(2.0)
    assert order.state is cmc.OrderState.REJECTED
    assert kinds(eng, order.client_order_id) == ["OrderInitialized", "OrderSubmitted", "OrderRejected"]
    assert reconciled(eng)[0]["changed"] == [order.client_order_id]


def test_duplicate_fill_is_journaled_as_ignored_and_not_counted_twice(eng: cmc.Engine) -> None:
    comex(eng).inject("duplicate_fill")
    order = eng.submit("COMEX.GC", "buy", 2, price="4177.4")
    assert order.wait(5) is cmc.OrderState.FILLED
    assert order.filled_qty == 2
    assert len(order.fills) == len({f.trade_id for f in order.fills})
    assert kinds(eng, order.client_order_id).count("DuplicateFillIgnored") == 1


def test_late_fill_rejects_the_cancel_and_leaves_the_order_filled(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 2, price="4090.0")
    eng.sleep(0.3)
    comex(eng).inject("late_fill")
    order.cancel()
    assert order.wait(5) is cmc.OrderState.FILLED
    assert order.filled_qty == 2 and order.avg_px == Decimal("4090.0")
    assert kinds(eng, order.client_order_id)[-3:] == [
        "OrderCancelRequested",
        "OrderFilled",
        "OrderCancelRejected",
    ]
    assert order.reason == ""  # not the reason of the cancel request it overtook


def test_halt_freezes_quotes_and_rejects_orders_until_resume(eng: cmc.Engine) -> None:
    comex(eng).inject("halt", instrument="GC")
    eng.sleep(0.5)  # quotes already on the wire arrive
    frozen = eng.quote("COMEX.GC")
    silver = eng.quote("COMEX.SI")
    eng.sleep(1.0)
    assert eng.quote("COMEX.GC") == frozen
    assert eng.quote("COMEX.SI").ts_event > silver.ts_event
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.REJECTED
    assert order.reason == "trading halted"
    comex(eng).inject("resume", instrument="GC")
    eng.sleep(0.5)
    assert eng.quote("COMEX.GC").ts_event > frozen.ts_event
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED


def test_stale_feed_stops_quote_timestamps_until_cleared(eng: cmc.Engine) -> None:
    comex(eng).inject("stale")
    eng.sleep(0.5)
    stale = eng.quote("COMEX.GC")
    domestic = eng.quote("SHFE.au")
    eng.sleep(2.0)
    assert eng.quote("COMEX.GC").ts_event == stale.ts_event
    assert eng.quote("SHFE.au").ts_event > domestic.ts_event
    assert eng.quotes().loc[GC, "age_ms"] >= 2000
    comex(eng).clear_faults()
    eng.sleep(0.5)
    assert eng.quote("COMEX.GC").ts_event > stale.ts_event


def test_reconcile_cut_short_by_a_second_outage_is_reported_and_runs_again(make_engine: Any) -> None:
    eng = make_engine(latency={"COMEX": (100.0, 100.0)})
    order = eng.submit("COMEX.GC", "buy", 1, price="4022.6")
    eng.sleep(0.5)
    comex(eng).inject("disconnect", duration=1.0)
    eng.sleep(1.05)  # back up; the reconcile's status request is on the wire
    comex(eng).inject("disconnect", duration=1.0)
    eng.sleep(2.0)
    assert any(e.startswith("reconcile of COMEX failed: VenueNotConnected") for e in eng.errors)
    assert reconciled(eng) == [{"venue": "COMEX", "checked": 1, "changed": [], "unknown": []}]
    assert order.state is cmc.OrderState.ACCEPTED
