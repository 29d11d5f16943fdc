"""Records a regulator asks for: every order names the trader and the algorithm that made it, in
the journal and in the audit pack's orders table; the tickets table shows each leg in columns and
its latencies in ms (issue 14)."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from packs import close_quietly, pack_table

import cmc_lab as cmc
from cmc_lab.execution.hedge import TicketState


def intents(eng: cmc.Engine) -> dict[str, dict]:
    return {r["order_id"]: r["payload"] for r in eng.journal.rows(kinds=["OrderInitialized"])}


def test_every_order_names_its_trader_and_what_made_it_in_the_journal_and_the_pack(tmp_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite", trader="T-ZHANG")
    try:
        eng.sleep(1.0)
        gc = eng.quote("COMEX.GC")
        manual = eng.submit("COMEX.GC", "buy", 1, price=eng.instrument("COMEX.GC").round_to_tick(gc.ask + 1))
        manual.wait(5)
        eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
        ticket = eng.hedge("au_gc", "buy", 3, when="ask < 50", policy="chase")
        ticket.wait(timeout=10)
        rows = intents(eng)
        assert rows[manual.client_order_id]["trader"] == "T-ZHANG"
        assert (
            rows[manual.client_order_id]["algo"].startswith("cmc_lab ")
            and "manual" in rows[manual.client_order_id]["algo"]
        )
        for order in ticket.orders:
            algo = rows[order.client_order_id]["algo"]
            assert f"hedge ticket {ticket.ticket_id}, spread au_gc, policy chase" in algo
            assert "trigger 'ask < 50'" in algo
        pack = eng.audit(tmp_path / "pack.zip", overwrite=True)
    finally:
        close_quietly(eng)
    orders = pack_table(pack, "orders.csv")
    by_id = {o["client_order_id"]: o for o in orders}
    assert by_id[manual.client_order_id]["trader"] == "T-ZHANG"
    assert "hedge ticket" in by_id[ticket.orders[0].client_order_id]["algo"]


def test_the_trader_defaults_to_the_environment_then_the_os_user_and_a_blank_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CMC_LAB_TRADER", "T-LI")
    eng = cmc.connect("sim", seed=7, clock="virtual")
    try:
        assert eng.router.trader == "T-LI"
    finally:
        eng.close()
    with pytest.raises(ValueError, match="trader must be a non-empty id such as 'T-ZHANG'"):
        cmc.connect("sim", seed=7, clock="virtual", trader="  ")


def test_the_tickets_table_shows_each_leg_in_columns_and_latencies_in_ms_and_every_cell_reads(
    tmp_path: Path,
) -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite")
    try:
        eng.sleep(1.0)
        eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
        ticket = eng.hedge("au_gc", "buy", 3, policy="chase")
        assert ticket.wait(timeout=10) is TicketState.FILLED
        report = ticket.report()
        decision = next(r for r in eng.journal.rows(kinds=["HedgeDecision"]))
        submitted = {
            r["instrument"]: r["mono_ns"]
            for r in eng.journal.rows(kinds=["OrderSubmitted"])
            if r["ticket_id"] == ticket.ticket_id
        }
        pack = eng.audit(tmp_path / "pack.zip", overwrite=True)
    finally:
        close_quietly(eng)
    with zipfile.ZipFile(pack) as zf:
        frame = pd.read_csv(io.BytesIO(zf.read("tickets.csv")))
    assert len(frame) == 1 and "legs" not in frame
    assert not frame.isna().any().any(), frame.columns[frame.isna().any()].tolist()
    (row,) = pack_table(pack, "tickets.csv")
    for n, (iid, leg) in enumerate(report["legs"].items(), start=1):  # in the order the legs were sent
        assert row[f"leg{n}_instrument"] == iid and row[f"leg{n}_side"] == leg["side"]
        assert int(row[f"leg{n}_qty"]) == leg["target"] and int(row[f"leg{n}_filled"]) == leg["filled"]
        assert Decimal(row[f"leg{n}_avg_px"]) == leg["avg_px"] and row[f"leg{n}_currency"] == leg["currency"]
        assert Decimal(row[f"leg{n}_slippage"]) == leg["slippage_money"]
    ms = {c: float(v) for c, v in row.items() if c.endswith("_ms")}
    assert set(ms) == {
        "decide_to_first_sent_ms",
        "decide_to_all_sent_ms",
        "decide_to_hedged_ms",
        "between_first_fills_ms",
    }
    first, last = min(submitted.values()), max(submitted.values())
    assert ms["decide_to_first_sent_ms"] == round((first - decision["mono_ns"]) / 1e6, 3)
    assert ms["decide_to_all_sent_ms"] == round((last - decision["mono_ns"]) / 1e6, 3)
    assert ms["decide_to_hedged_ms"] == round(report["time_to_hedged_ns"] / 1e6, 3)
    assert ms["between_first_fills_ms"] == round(report["time_between_legs_ns"] / 1e6, 3)
    assert all(0 <= v < 10_000 for v in ms.values()), ms  # milliseconds, not nanoseconds
    assert all(len(row[c].split(".")[1]) == 3 for c in ms)
