"""Errors a newcomer meets in the first hour say what to fix (issue 17's smaller items)."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import pytest

import cmc_lab as cmc
from cmc_lab.journal.pack import verify_pack
from cmc_lab.journal.window import EmptyAuditWindow


@pytest.mark.parametrize("amount", [1e30, "1e30", 10**40])
def test_a_transfer_of_an_absurd_amount_is_refused_with_what_to_fix(eng: cmc.Engine, amount: object) -> None:
    before = eng.capital()
    with pytest.raises(ValueError, match=r"beyond any account .*check the figure"):
        eng.transfer("CN-FUT", "US-FUT", amount)  # type: ignore[arg-type]
    assert str(eng.capital()) == str(before)  # nothing moved


def test_a_large_but_real_transfer_still_passes_the_check(eng: cmc.Engine) -> None:
    src, dst, money, _ = eng.risk.transfers.parse("CN-FUT", "US-FUT", "123456789012345.67", None)
    assert (src, dst, str(money)) == ("CN-FUT", "US-FUT", "123456789012345.67")


def test_the_kill_switch_as_the_readme_shows_it_needs_a_reason_and_rearms(eng: cmc.Engine) -> None:
    with pytest.raises(TypeError):
        eng.kill()  # type: ignore[call-arg]
    assert eng.kill(reason="desk stop") == 0
    assert eng.trading_state.value == "HALTED"
    eng.rearm()
    assert eng.trading_state.value == "ACTIVE"


def test_an_audit_pack_of_a_window_without_rows_warns_and_says_empty_when_verified(
    eng: cmc.Engine, tmp_path: Path
) -> None:
    eng.submit("COMEX.GC", "buy", 1, price="2600.0").wait(5)
    with pytest.warns(EmptyAuditWindow, match=r"holds no journal rows.*simulates 2026-11-24 from 14:00 UTC"):
        pack = eng.audit(tmp_path / "today.zip", since="2030-01-01", until="2030-01-02", progress=False)
    report = verify_pack(pack)
    assert report.ok  # nothing altered ...
    assert str(report).startswith("audit pack intact but EMPTY")  # ... but nothing proven either
    with zipfile.ZipFile(pack) as zf:
        assert "EMPTY" in zf.read("summary.html").decode()
        assert "holds no journal rows" in json.loads(zf.read("manifest.json"))["window"]["empty"]


def test_an_audit_pack_with_rows_carries_no_empty_mark(eng: cmc.Engine, tmp_path: Path) -> None:
    eng.submit("COMEX.GC", "buy", 1, price="2600.0").wait(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyAuditWindow)
        pack = eng.audit(tmp_path / "day.zip", progress=False)
    assert str(verify_pack(pack)).startswith("audit pack intact: ")


def test_is_balanced_is_a_documented_property_like_fills(eng: cmc.Engine) -> None:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    t = eng.hedge("au_gc", side="buy", qty=3)
    assert t.wait(10).value == "FILLED"
    assert t.is_balanced is True
    doc = type(t).is_balanced.__doc__
    assert isinstance(type(t).is_balanced, property) and doc and "naked" in doc


def test_empty_alerts_orders_and_tickets_are_tables_with_their_columns(eng: cmc.Engine) -> None:
    alerts, orders, working, tickets = eng.alerts(), eng.orders(), eng.orders(working=True), eng.tickets()
    assert alerts.empty and list(alerts.columns) == [
        "time",
        "id",
        "source",
        "level",
        "message",
        "acknowledged",
    ]
    assert orders.empty and working.empty and list(orders.columns) == list(working.columns)
    assert {"client_order_id", "instrument", "side", "qty", "price", "state", "filled"} <= set(orders.columns)
    assert tickets.empty and {"ticket", "spread", "state", "naked"} <= set(tickets.columns)
    for frame in (alerts, orders, tickets):
        assert "<th>" in frame._repr_html_()  # a table with a header row, not a blank box
    eng.submit("COMEX.GC", "buy", 1, price="2600.0").wait(5)
    assert list(eng.orders().columns) == list(orders.columns)


def test_timeline_keeps_payload_nanoseconds_exact(eng: cmc.Engine) -> None:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    t = eng.hedge("au_gc", side="buy", qty=3)
    assert t.wait(10).value == "FILLED"
    frame = eng.journal.timeline(t.ticket_id)
    assert str(frame["quote_ts"].dtype) == "Int64"  # was float64: 1.795529e+18, nanoseconds lost
    stamps = [
        r["payload"]["quote_ts"] for r in eng.journal.rows_of(t.ticket_id) if "quote_ts" in r["payload"]
    ]
    assert stamps and frame["quote_ts"].dropna().tolist() == stamps
    assert frame["quote_ts"].dropna().min() > 1_700_000_000_000_000_000


def test_a_fault_left_armed_by_a_denied_ticket_is_the_venues_and_remove_ends_it(eng: cmc.Engine) -> None:
    doc = type(eng.venues["COMEX"]).inject.__doc__ or ""
    assert "stays armed and hits the next" in doc and "remove()" in doc
    handle = eng.venues["COMEX"].inject("reject", times=1)
    eng.kill(reason="deny the next order")
    denied = eng.submit("COMEX.GC", "buy", 1, price="2600.0")
    assert denied.wait(5).value == "DENIED"
    eng.rearm()
    assert handle.active  # the denied order never reached the venue: the fault still waits
    handle.remove()
    plain = eng.submit("COMEX.GC", "buy", 1, price="2600.0")
    plain.wait(1)
    assert plain.state.value != "REJECTED"


def test_spreads_index_like_a_dict_and_call_like_tickets_and_alerts(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}, z_window=120)
    assert eng.spreads["au_gc"] is sp and list(eng.spreads) == ["au_gc"]  # notebooks that index keep working
    table = eng.spreads()
    assert list(table.index) == ["au_gc"] and table.loc["au_gc", "z_window"] == 120
    assert table.loc["au_gc", "bid"] < table.loc["au_gc", "ask"]
