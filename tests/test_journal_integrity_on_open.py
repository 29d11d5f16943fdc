"""A journal whose chain does not verify never reopens for trading silently; run ids come from the chain."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cmc_lab as cmc

MakeEngine = Callable[..., cmc.Engine]


@pytest.fixture(autouse=True)
def _closing_with_exposure_is_expected() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cmc.OpenExposureWarning)
        yield


@pytest.fixture
def traded_journal(make_engine: MakeEngine, journal_path: Path) -> Path:
    eng = make_engine(journal=journal_path)
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.close()
    return journal_path


def sql(path: Path, *statements: str) -> None:
    """Edit the file as someone with sqlite3 would: drop the guard triggers, then write."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def fill_seq(path: Path) -> int:
    conn = sqlite3.connect(path)
    (seq,) = conn.execute("SELECT seq FROM events WHERE kind = 'OrderFilled'").fetchone()
    conn.close()
    return int(seq)


def test_a_journal_with_an_edited_byte_reopens_halted_with_an_alert_naming_the_row(
    make_engine: MakeEngine, traded_journal: Path
) -> None:
    seq = fill_seq(traded_journal)
    sql(
        traded_journal,
        f"UPDATE events SET payload = replace(payload, '\"last_qty\":1', '\"last_qty\":9') WHERE seq = {seq}",
    )
    eng = make_engine(journal=traded_journal)
    assert eng.trading_state is cmc.TradingState.HALTED
    alert = eng.alerts().iloc[0]
    assert alert["source"] == "journal" and alert["level"] == "critical"
    assert f"breaks at row {seq}" in alert["message"]
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.state is cmc.OrderState.DENIED and f"breaks at row {seq}" in order.reason
    with pytest.raises(cmc.TradingRefused, match="accept_damaged_journal"):
        eng.rearm()


def test_a_journal_with_a_deleted_row_reopens_halted(make_engine: MakeEngine, traded_journal: Path) -> None:
    sql(traded_journal, f"DELETE FROM events WHERE seq = {fill_seq(traded_journal)}")
    eng = make_engine(journal=traded_journal)
    assert eng.trading_state is cmc.TradingState.HALTED
    assert "hash chain breaks" in eng.halt_reason


def test_a_damaged_journal_accepted_with_a_reason_trades_and_journals_the_acceptance(
    make_engine: MakeEngine, traded_journal: Path
) -> None:
    sql(traded_journal, f"DELETE FROM events WHERE seq = {fill_seq(traded_journal)}")
    eng = make_engine(journal=traded_journal, accept_damaged_journal="restored from backup; checked by ops")
    assert eng.trading_state is cmc.TradingState.ACTIVE
    (accepted,) = [r["payload"] for r in eng.journal.rows(kinds=["JournalDamageAccepted"])]
    assert accepted["why"] == "restored from backup; checked by ops" and accepted["first_bad_seq"] is not None


def test_a_run_counter_set_back_outside_the_chain_never_reuses_order_ids(
    make_engine: MakeEngine, traded_journal: Path
) -> None:
    sql(traded_journal, "UPDATE meta SET value = '0' WHERE key = 'run_id'")
    eng = make_engine(journal=traded_journal)
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert not order.client_order_id.startswith("r1-")
    assert eng.journal.verify().ok
