"""Journal write failures: nothing of a failed write is kept, and the chain goes on from the last commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmc_lab.journal import Journal, JournalReadOnly, JournalRow, JournalWriteError


def fills(n: int, start: int = 0, pad: int = 0) -> Iterator[JournalRow]:
    for i in range(start, start + n):
        yield JournalRow("OrderFilled", i, i, i, {"i": i, "pad": "x" * pad}, order_id=f"C-{i % 5}")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "run.sqlite") as j:
        j.append_many(fills(10))
        yield j


def full_disk(journal: Journal) -> None:
    """Cap the file at its current size: the next page SQLite needs fails with SQLITE_FULL."""
    conn = journal._conn  # fault injection reaches into the writer connection on purpose
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(journal: Journal) -> None:
    conn = journal._conn
    assert conn is not None
    conn.execute("PRAGMA max_page_count = 1073741823")


def test_disk_full_mid_append_many_keeps_prior_rows_and_the_chain_goes_on(journal: Journal) -> None:
    head = journal.head
    full_disk(journal)

    with pytest.raises(JournalWriteError) as err:
        journal.append_many(fills(500, start=10, pad=400))

    assert isinstance(err.value.error, sqlite3.OperationalError)
    assert err.value.__cause__ is err.value.error
    assert "database or disk is full" in str(err.value)
    assert "nothing of this write was kept" in str(err.value) and "free space" in str(err.value)
    assert journal.head == head
    assert journal.verify().ok
    assert len(list(journal.rows())) == 10

    free_disk(journal)
    assert journal.append("OrderCanceled", ts_event=1, ts_init=1, mono_ns=1, payload={}) == 11
    eleventh = list(journal.rows())[-1]
    assert eleventh["prev_hash"] == head[1]
    assert journal.verify().ok


def test_disk_full_on_a_single_append_raises_and_the_next_append_succeeds(journal: Journal) -> None:
    head = journal.head
    full_disk(journal)
    with pytest.raises(JournalWriteError):
        for row in fills(200, start=10, pad=400):
            journal.append_many([row])
    written = journal.head[0]
    assert written >= head[0]
    assert journal.verify().ok

    free_disk(journal)
    assert journal.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={}) == written + 1
    assert journal.verify().ok


def test_a_bad_row_mid_batch_refuses_the_whole_batch(journal: Journal) -> None:
    head = journal.head
    batch = list(fills(50, start=10))
    batch[30] = batch[30]._replace(payload={"when": object()})

    with pytest.raises(TypeError, match=r"journal row 31 of this write was refused \(nothing was written\)"):
        journal.append_many(batch)

    assert journal.head == head
    assert journal.append_many(fills(3, start=10)) == 13
    assert journal.verify().ok


def test_an_interrupted_batch_generator_rolls_back(journal: Journal) -> None:
    head = journal.head

    def interrupted() -> Iterator[JournalRow]:
        yield from fills(5, start=10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        journal.append_many(interrupted())

    assert journal.head == head
    assert journal.verify().ok


def test_a_locked_journal_raises_a_write_error_naming_the_other_writer(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as j:
        j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        assert j._conn is not None
        j._conn.execute("PRAGMA busy_timeout = 0")
        try:
            with pytest.raises(JournalWriteError, match="another process holds the journal's write lock"):
                j.append("Y", ts_event=2, ts_init=2, mono_ns=2, payload={})
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert j.append("Y", ts_event=2, ts_init=2, mono_ns=2, payload={}) == 2
        assert j.verify().ok


def test_a_journal_that_turns_read_only_refuses_the_write_and_keeps_its_chain(journal: Journal) -> None:
    head = journal.head
    conn = journal._conn
    assert conn is not None
    conn.execute("PRAGMA query_only = ON")  # the same SQLITE_READONLY a read-only file gives

    with pytest.raises(JournalReadOnly, match=r"cannot be written.*readonly=True"):
        journal.append_many(fills(3, start=10))

    assert journal.head == head
    conn.execute("PRAGMA query_only = OFF")
    assert journal.append_many(fills(3, start=10)) == 13
    assert journal.verify().ok
