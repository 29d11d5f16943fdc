"""Book checkpoints: a clean close journals the book, a reopen restores it and replays only what
follows, and the book it rebuilds is the one a replay of the whole history rebuilds."""

from __future__ import annotations

import shutil
import sqlite3
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from polling import until
from sim_months import AU, GC, GC_NEXT

import cmc_lab as cmc
from cmc_lab.core.trading import TradingState
from cmc_lab.engine import lifecycle
from cmc_lab.engine.errors import OpenExposureWarning
from cmc_lab.engine.snapshot import FULL_REPLAY_ENV, KIND
from cmc_lab.journal import Journal


def close(eng: cmc.Engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenExposureWarning)
        eng.close()


def cross(eng: cmc.Engine, iid: str, side: str, qty: int) -> None:
    q = eng.quote(iid)
    inst = eng.instrument(iid)
    price = (
        inst.round_to_tick(q.ask + 20 * float(inst.tick))
        if side == "buy"
        else inst.round_to_tick(q.bid - 20 * float(inst.tick))
    )
    order = eng.submit(iid, side, qty, price=price)
    order.wait(5)
    assert order.state.value == "FILLED", order.reason


def trade_a_day(eng: cmc.Engine) -> None:
    """Fills that open and close (realized P&L, fees, close today), a cancel, a margin change and a
    cross-border transfer that arrives: everything a reopen must rebuild."""
    eng.sleep(1.0)
    cross(eng, "SHFE.au", "buy", 3)
    cross(eng, "SHFE.au", "sell", 1)
    cross(eng, "COMEX.GC", "sell", 2)
    cross(eng, "COMEX.GC", "buy", 1)
    gc = eng.quote("COMEX.GC")
    resting = eng.submit("COMEX.GC", "buy", 1, price=eng.instrument("COMEX.GC").round_to_tick(gc.bid * 0.98))
    eng.sleep(0.2)
    resting.cancel()
    resting.wait(5)
    eng.set_margin_rate("COMEX.GC", 20_000, kind="per_lot")
    eng.transfer("CN-FUT", "US-FUT", 1_000_000, currency="CNY")
    eng.sleep(3.0)  # the wire arrives


def book(eng: cmc.Engine) -> dict[str, Any]:
    """What a reopen must get right, marks aside (a checkpoint keeps the last mark, a replay the first fill)."""
    cap = eng.risk.capital
    return {
        "positions": eng.positions()[["account", "instrument", "position", "avg_px", "realized"]].to_dict(
            "records"
        ),
        "accounts": {n: (a.cash, a.settled, a.fees) for n, a in cap.accounts.items()},
        "lots": {
            (p.account, p.instrument.id): [(lot.qty, lot.px, lot.day) for lot in p.lots]
            for p in cap.positions()
        },
        "orders_per_day": dict(eng.risk.activity.orders),
        "cancels_per_day": dict(eng.risk.activity.cancels),
        "margin": {iid: cap.rate(iid) for iid in (GC, GC_NEXT, AU)},
        "ledger": eng.risk.transfers.ledger(),
        "transfers": sorted((t.transfer_id, t.state.value) for t in eng.risk.transfers.transfers.values()),
    }


def recovered(eng: cmc.Engine) -> dict[str, Any]:
    return [r for r in eng.journal.rows(kinds=["EngineRecovered"])][-1]["payload"]


def reopen_both_ways(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, dict, dict, dict]:
    """The book reopened from the checkpoint, and from a copy of the same files replayed in full."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in path.parent.glob(path.name + "*"):
        shutil.copy(f, copy / f.name)
    fast = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        fast_book, fast_note = book(fast), recovered(fast)
    finally:
        close(fast)
    monkeypatch.setenv(FULL_REPLAY_ENV, "1")
    full = cmc.connect("sim", seed=7, clock="virtual", journal=copy / path.name)
    try:
        full_book, full_note = book(full), recovered(full)
    finally:
        close(full)
        monkeypatch.delenv(FULL_REPLAY_ENV)
    return fast_book, full_book, fast_note, full_note


def a_day_closed_cleanly(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A journal after :func:`trade_a_day` and a clean close, and the book as it was at the close."""
    path = tmp_path / "desk.sqlite"
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    trade_a_day(eng)
    before = book(eng)
    close(eng)
    return path, before


def test_a_clean_close_checkpoints_the_book_and_a_reopen_from_it_equals_a_full_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = a_day_closed_cleanly(tmp_path)
    checkpoint = Journal(path, readonly=True).last_of(KIND)
    assert (
        checkpoint is not None
        and checkpoint["payload"]["book"]["accounts"]["CN-FUT"]["positions"][AU]["qty"] == 2
    )

    fast, full, fast_note, full_note = reopen_both_ways(path, tmp_path, monkeypatch)
    assert fast_note["book_from_seq"] == checkpoint["seq"] and fast_note["full_replay_because"] == ""
    assert full_note["book_from_seq"] == 0 and FULL_REPLAY_ENV in full_note["full_replay_because"]
    assert fast == full
    assert fast["positions"] == before["positions"] and fast["accounts"] == before["accounts"]
    assert fast["margin"][GC].rate == fast["margin"][GC_NEXT].rate == Decimal("20000")  # a product notice
    assert fast["cancels_per_day"] and fast["transfers"] == before["transfers"]


def test_trading_after_a_checkpoint_replays_only_the_tail_and_still_equals_a_full_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = a_day_closed_cleanly(tmp_path)
    again = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    again.sleep(1.0)
    cross(again, "SHFE.au", "sell", 2)  # closes the rest of day one's au: FIFO against restored lots
    cross(again, "COMEX.GC", "sell", 1)
    close(again)
    fast, full, fast_note, _ = reopen_both_ways(path, tmp_path, monkeypatch)
    assert fast_note["book_from_seq"] > 0
    assert fast == full


def test_a_close_with_a_working_order_writes_no_checkpoint_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite"
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    eng.sleep(1.0)
    gc = eng.quote("COMEX.GC")
    eng.submit("COMEX.GC", "buy", 1, price=eng.instrument("COMEX.GC").round_to_tick(gc.bid * 0.98))
    eng.sleep(0.2)
    close(eng)
    journal = Journal(path, readonly=True)
    assert journal.last_of(KIND) is None
    skipped = journal.last_of("BookCheckpointSkipped")
    assert skipped is not None and "1 working order" in skipped["payload"]["reason"]
    again = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        note = recovered(again)
        assert note["book_from_seq"] == 0 and note["full_replay_because"] == "no checkpoint in the journal"
        assert len(note["recovered"]) == 1  # the working order is rebuilt from the history, as before
    finally:
        close(again)


def tamper(path: Path, seq: int) -> None:
    """Edit one row's payload as someone with sqlite3 would: drop the guard trigger, then write."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("UPDATE events SET payload = payload || ' ' WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()


@pytest.fixture
def checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, int]:
    """A traded journal closed with a checkpoint, opened as a long one would be (verify from the checkpoint)."""
    monkeypatch.setattr(lifecycle, "SYNC_VERIFY_ROWS", 0)
    path = tmp_path / "desk.sqlite"
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    eng.sleep(1.0)
    cross(eng, "COMEX.GC", "buy", 1)
    close(eng)
    seq = Journal(path, readonly=True).last_of(KIND)["seq"]  # type: ignore[index]
    return path, seq


def test_a_long_journal_opens_from_its_checkpoint_and_a_break_before_it_halts_trading_from_the_background(
    checkpointed: tuple[Path, int],
) -> None:
    path, _ = checkpointed
    tamper(path, 3)  # a row long before the checkpoint: not read by the reopen, found by the full walk
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        until(lambda: eng.trading_state is TradingState.HALTED, "the background verify to halt trading")
        alerts = eng.alerts()
        assert "breaks at row 3" in " ".join(alerts["message"])
    finally:
        close(eng)


@pytest.mark.parametrize("where", ["checkpoint", "after"])
def test_a_break_in_the_checkpoint_row_or_after_it_opens_halted_at_once(
    checkpointed: tuple[Path, int], where: str
) -> None:
    path, seq = checkpointed
    tamper(path, seq if where == "checkpoint" else seq + 1)
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        assert eng.trading_state is TradingState.HALTED
    finally:
        close(eng)
