"""Journal opening: only a journal (or nothing) is accepted at the path; anything else is left untouched."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlite_utils import Database

from cmc_lab.journal import (
    GENESIS,
    CorruptJournal,
    ForeignDatabase,
    Journal,
    JournalError,
    JournalIsDirectory,
    JournalNotFound,
    JournalReadOnly,
    JournalVersionTooNew,
    schema,
)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def make_journal(path: Path, rows: int = 3) -> tuple[int, str]:
    with Journal(path) as j:
        for i in range(rows):
            j.append("OrderSubmitted", ts_event=i, ts_init=i, mono_ns=i, payload={"i": i}, order_id="C-1")
        return j.head


@pytest.mark.parametrize("readonly", [False, True])
def test_a_directory_path_is_refused_with_a_file_path_to_use(tmp_path: Path, readonly: bool) -> None:
    with pytest.raises(JournalIsDirectory) as err:
        Journal(tmp_path, readonly=readonly)
    assert str(err.value) == (
        f"journal path {tmp_path} is a directory; pass a file path such as {tmp_path / 'run.sqlite'}"
    )


@pytest.mark.parametrize("readonly", [False, True])
def test_another_programs_database_is_refused_and_left_byte_for_byte(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)

    with pytest.raises(ForeignDatabase) as err:
        Journal(path, readonly=readonly)

    assert snapshot(tmp_path) == before
    message = str(err.value)
    assert str(path) in message and "users" in message
    assert "left untouched" in message and "new path" in message


def test_a_live_wal_database_of_another_program_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE quotes (px REAL)")  # still only in app.db-wal: never checkpointed
    durable = ("app.db", "app.db-wal")  # app.db-shm is shared memory that every reader updates
    before = {name: (tmp_path / name).read_bytes() for name in durable}

    with pytest.raises(ForeignDatabase, match="quotes"):
        Journal(path)

    assert {name: (tmp_path / name).read_bytes() for name in durable} == before
    other.close()


def test_an_empty_database_marked_by_another_program_is_foreign(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    before = path.read_bytes()

    with pytest.raises(ForeignDatabase, match="user_version 7"):
        Journal(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        random.Random(7).randbytes(4096),
        b"order_id,qty\nC-1,3\n",
        schema.SQLITE_MAGIC + random.Random(8).randbytes(4080),
    ],
    ids=["random-bytes", "text", "damaged-sqlite"],
)
@pytest.mark.parametrize("readonly", [False, True])
def test_a_file_that_is_not_sqlite_is_refused_and_never_overwritten(
    tmp_path: Path, content: bytes, readonly: bool
) -> None:
    path = tmp_path / "run.sqlite"
    path.write_bytes(content)

    with pytest.raises(CorruptJournal) as err:
        Journal(path, readonly=readonly)

    assert snapshot(tmp_path) == {"run.sqlite": content}
    assert "is not an SQLite database (or is damaged" in str(err.value)
    assert "left untouched" in str(err.value) and "another path" in str(err.value)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_journal_of_a_newer_schema_is_refused_with_an_upgrade_hint(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "run.sqlite"
    make_journal(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    before = snapshot(tmp_path)

    with pytest.raises(JournalVersionTooNew, match=r"schema version 2.*upgrade cmc_lab"):
        Journal(path, readonly=readonly)
    assert snapshot(tmp_path) == before


def test_a_zero_byte_file_becomes_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    path.touch()

    with Journal(path) as j:
        assert (j.head, j.run_id) == ((0, GENESIS), 1)
        j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x434D434C
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    conn.close()
    assert meta["app"] == "cmc_lab" and meta["schema_version"] == "1" and meta["run_id"] == "1"
    assert int(meta["created_ns"]) > 0


def test_an_empty_sqlite_database_becomes_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    assert path.stat().st_size > 0

    with Journal(path) as j:
        assert j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={}) == 1


def test_readonly_open_of_nothing_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(JournalNotFound, match="no journal at"):
        Journal(tmp_path / "missing.sqlite", readonly=True)
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(JournalNotFound, match="empty file"):
        Journal(tmp_path / "empty.sqlite", readonly=True)
    with pytest.raises(JournalError, match="in-memory"):
        Journal(":memory:", readonly=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]


def test_a_journal_in_a_missing_directory_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(JournalNotFound, match="does not exist; create it first"):
        Journal(tmp_path / "nowhere" / "run.sqlite")


def test_readonly_journal_reads_and_verifies_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    head = make_journal(path)

    with Journal(path, readonly=True) as j:
        assert j.head == head
        assert j.run_id == 1
        assert len(j.timeline("C-1")) == 3
        assert j.verify().ok
        with pytest.raises(JournalReadOnly, match="readonly=True"):
            j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})
        assert "readonly" in repr(j)

    with Journal(path) as j:
        assert j.run_id == 2


def test_readonly_reader_sees_rows_a_writer_commits_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as writer, Journal(path, readonly=True) as reader:
        writer.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={}, order_id="C-1")
        assert len(reader.timeline("C-1")) == 1
        writer.append("Y", ts_event=2, ts_init=2, mono_ns=2, payload={}, order_id="C-1")
        assert reader.timeline("C-1")["kind"].tolist() == ["X", "Y"]


@contextmanager
def read_only_file(path: Path) -> Iterator[None]:
    """``path`` read-only even for root: mode 0444, and as root the immutable attribute too
    (root ignores file modes, not ``chattr +i``)."""
    path.chmod(0o444)
    immutable = hasattr(os, "geteuid") and os.geteuid() == 0
    if immutable:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
        if done.returncode:
            path.chmod(0o644)
            pytest.skip(f"running as root and chattr +i was refused here ({done.stderr.strip()})")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


@pytest.mark.skipif(os.name != "posix", reason="file modes and chattr are POSIX")
def test_a_journal_whose_file_is_read_only_cannot_be_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    head = make_journal(path)
    with read_only_file(path):
        with pytest.raises(JournalReadOnly, match=r"read-only.*readonly=True"):
            Journal(path)
        with Journal(path, readonly=True) as j:
            assert j.head == head


def test_a_version_1_journal_is_migrated_when_opened_by_newer_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.sqlite"
    head = make_journal(path)

    def add_kind_index(db: Database) -> None:
        db.table("events").create_index(["kind"], index_name="events_kind")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, (2, add_kind_index)])

    with Journal(path, readonly=True) as j:
        assert j.head == head
    with Journal(path) as j:
        assert j.run_id == 2
        assert j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={}) == 4
        assert j.verify().ok

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert "events_kind" in [row[1] for row in conn.execute("PRAGMA index_list(events)")]
    conn.close()


def test_a_failing_migration_leaves_the_journal_at_its_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.sqlite"
    head = make_journal(path)

    def broken(db: Database) -> None:
        db.table("events").create_index(["kind"], index_name="events_kind")
        raise RuntimeError("migration step failed")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, (2, broken)])
    with pytest.raises(RuntimeError, match="migration step failed"):
        Journal(path)
    monkeypatch.undo()

    with Journal(path) as j:
        assert (j.head, j.run_id) == (head, 2)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "events_kind" not in [row[1] for row in conn.execute("PRAGMA index_list(events)")]
    conn.close()


def test_a_header_byte_that_makes_the_file_format_unsupported_is_reported_as_damage(tmp_path: Path) -> None:
    """Found by the bad-input sweep: byte 47 (the schema format number) flipped gave "unsupported file
    format; try again", as if a retry could help."""
    path = tmp_path / "run.sqlite"
    with Journal(path) as journal:
        journal.append("X", ts_event=1, ts_init=1, mono_ns=0, payload={"a": 1})
    raw = bytearray(path.read_bytes())
    raw[47] ^= 0xFF
    path.write_bytes(bytes(raw))
    damage = r"unsupported file format.*damaged.*restore it from a copy"
    with pytest.raises(CorruptJournal, match=damage), Journal(path, readonly=True) as journal:
        list(journal.rows())


def test_a_schema_byte_that_renames_a_column_is_reported_as_damage(tmp_path: Path) -> None:
    """Found by the bad-input sweep: a byte of the meta table's stored CREATE statement flipped (its
    "value" column no longer named so) gave "no such column: value; try again"."""
    path = tmp_path / "run.sqlite"
    with Journal(path) as journal:
        journal.append("X", ts_event=1, ts_init=1, mono_ns=0, payload={"a": 1})
    raw = bytearray(path.read_bytes())
    raw[raw.index(b'"value" TEXT NOT NULL') + 1] = 1
    path.write_bytes(bytes(raw))
    damage = r"no such column: value.*damaged.*restore it from a copy"
    with pytest.raises(CorruptJournal, match=damage):
        Journal(path, readonly=True).close()
