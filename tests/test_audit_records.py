"""Records a regulator asks for: every order names the trader and the algorithm that made it, in
the journal and in the audit pack's orders table (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packs import close_quietly, pack_table

import cmc_lab as cmc


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
