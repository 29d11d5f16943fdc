"""cmc.connect(): both forms of the contract, its clear errors, and nothing left running after them."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import cmc_lab as cmc
from cmc_lab.journal import CorruptJournal, ForeignDatabase, JournalIsDirectory
from cmc_lab.venues.base import VenueNotConnected

ALL_VENUES = {"SHFE", "INE", "COMEX", "NYMEX", "LME", "FX"}
FIX_ADDRESS = "fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR"


def engine_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "cmc-engine"]


def test_connect_sim_puts_every_venue_on_the_embedded_exchange(journal_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, journal=journal_path)
    try:
        assert set(eng.venues) == ALL_VENUES
        assert all(eng.venue_connected(name) for name in ALL_VENUES)
        assert {v.kind for v in eng.venues.values()} == {"sim"}
        assert repr(eng) == "Engine(sim, 6 venues, journal=run.sqlite, ACTIVE)"
        assert journal_path.is_file()
    finally:
        eng.close()
    assert engine_threads() == []


def test_connect_venue_map_adds_fx_automatically(journal_path: Path) -> None:
    eng = cmc.connect(venues={"SHFE": "sim", "COMEX": "sim"}, journal=journal_path)
    try:
        assert set(eng.venues) == {"SHFE", "COMEX", "FX"}
        assert set(eng.instruments["venue"]) == {"SHFE", "COMEX", "FX"}
        assert "FX.USDCNH" in eng.instruments.index
        assert eng.quote("FX.USDCNH").bid > 0
        assert repr(eng).startswith("Engine(mixed, 3 venues")
    finally:
        eng.close()
    assert engine_threads() == []


def test_connect_unknown_target_raises_unsupported_venue_and_starts_no_thread() -> None:
    with pytest.raises(cmc.UnsupportedVenue, match=r"'interactive-brokers' is not supported.*use 'sim'"):
        cmc.connect("interactive-brokers")
    assert engine_threads() == []


def test_connect_fix_target_with_no_acceptor_listening_says_how_to_start_one() -> None:
    with pytest.raises(VenueNotConnected, match=r"cannot reach the FIX acceptor at 127\.0\.0\.1:9878"):
        cmc.connect(FIX_ADDRESS)
    assert engine_threads() == []


def test_connect_bad_fix_address_in_venue_map_fails_before_any_thread(journal_path: Path) -> None:
    with pytest.raises(ValueError, match=r"target= must be a CompID"):
        cmc.connect(venues={"COMEX": "fix://127.0.0.1:9878?sender=CLIENT1"}, journal=journal_path)
    assert engine_threads() == []
    assert not journal_path.exists()


def test_connect_unknown_venue_name_lists_the_known_venues(journal_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown venue CBOT; known venues: SHFE, INE, COMEX"):
        cmc.connect(venues={"SHFE": "sim", "CBOT": "sim"}, journal=journal_path)
    assert engine_threads() == []
    assert not journal_path.exists()


def test_connect_unknown_clock_says_which_clocks_exist() -> None:
    with pytest.raises(ValueError, match=r"use 'real' .* or 'virtual'"):
        cmc.connect("sim", clock="wall")
    assert engine_threads() == []


def test_connect_journal_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalIsDirectory, match="is a directory; pass a file path"):
        cmc.connect("sim", journal=tmp_path)
    assert engine_threads() == []


def test_connect_foreign_sqlite_database_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('Ada')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(ForeignDatabase, match=r"another program \(tables: customers\).*left untouched"):
        cmc.connect("sim", journal=path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.sqlite"]
    assert engine_threads() == []


def test_connect_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database\n")
    with pytest.raises(CorruptJournal, match="not an SQLite database"):
        cmc.connect("sim", journal=path)
    assert path.read_bytes() == b"these are my notes, not a database\n"
    assert engine_threads() == []


def test_connect_without_journal_keeps_it_in_memory_with_process_unique_order_ids(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine()
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert repr(eng).endswith("journal=:memory:, ACTIVE)")
    # Without a journal file there is no run counter: ids must not restart at r1 every time.
    assert order.client_order_id.startswith("m")
    assert order.wait(5) is cmc.OrderState.FILLED
    assert eng.journal.verify().ok


def test_connect_real_clock_with_zero_latency_fills_and_quotes_move(journal_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, journal=journal_path, latency=0, quote_interval=0.05)
    try:
        first = eng.quote("COMEX.GC")
        order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
        assert order.wait(timeout=5) is cmc.OrderState.FILLED
        t0 = time.monotonic()
        eng.sleep(0.3)
        assert time.monotonic() - t0 >= 0.29  # real seconds under the real clock
        assert eng.quote("COMEX.GC").ts_event > first.ts_event
    finally:
        eng.close()
    assert engine_threads() == []


def test_close_twice_is_fine_and_stops_the_engine_thread(journal_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=journal_path)
    assert engine_threads() == ["cmc-engine"]
    eng.close()
    eng.close()
    assert engine_threads() == []
    assert repr(eng) == "Engine(sim, 6 venues, journal=run.sqlite, closed)"


def test_engine_as_context_manager_closes_on_exit(journal_path: Path) -> None:
    with cmc.connect("sim", seed=7, clock="virtual", journal=journal_path) as eng:
        assert eng.venue_connected("COMEX")
    assert engine_threads() == []
    with pytest.raises(cmc.EngineClosed):
        eng.sleep(1)
