"""Pressing the kill switch raises an alert naming the reason and who pressed it (issue 17)."""

from __future__ import annotations

import cmc_lab as cmc


def resting_bid(eng: cmc.Engine) -> float:
    return round(eng.quote("COMEX.GC").bid * 0.98, 1)


def test_kill_puts_an_alert_naming_the_reason_and_who_pressed_it(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price=resting_bid(eng))
    order.wait(timeout=5)
    assert eng.kill("margin call at COMEX", who="%cmc kill") == 1
    order.wait(timeout=5)
    alerts = eng.alerts()
    kills = alerts[alerts.source == "kill switch"]
    assert len(kills) == 1, alerts
    row = kills.iloc[0]
    assert row.level == "critical"
    assert "margin call at COMEX" in row.message and "%cmc kill" in row.message
    assert "1 working order cancelled" in row.message
    assert (row.reason, row.who, row.cancelled) == ("margin call at COMEX", "%cmc kill", 1)


def test_the_kill_alert_is_journaled(eng: cmc.Engine) -> None:
    eng.kill("desk review", who="kill switch widget")
    payloads = [r["payload"] for r in eng.journal.rows(kinds=["Alert"])]
    assert [(p["source"], p["reason"], p["who"]) for p in payloads] == [
        ("kill switch", "desk review", "kill switch widget")
    ], payloads
