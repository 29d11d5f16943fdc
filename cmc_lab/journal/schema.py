"""Journal storage layer: what a file at the journal path is, the SQLite schema and its migrations.

A journal is an SQLite database marked with ``PRAGMA application_id = 0x434D434C`` ('CMCL')
whose ``user_version`` is its schema version. Anything else at the path (a directory,
another program's database, random bytes) is refused before a single byte is written.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from cmc_lab.journal.errors import (
    CorruptJournal,
    ForeignDatabase,
    JournalIsDirectory,
    JournalNotFound,
    JournalReadOnly,
    JournalVersionTooNew,
)

APPLICATION_ID = 0x434D434C  # 'CMCL'
SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

#: Columns of the events table, in storage (and hashing) order.
EVENT_COLUMNS = (
    "seq",
    "ts_event",
    "ts_init",
    "mono_ns",
    "kind",
    "order_id",
    "ticket_id",
    "venue",
    "instrument",
    "payload",
    "prev_hash",
    "hash",
)


#: The triggers that make the events table append-only, by name (rotation drops and recreates
#: ``events_no_delete`` inside its own transaction).
GUARDS = {
    f"events_no_{action.lower()}": (
        f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
        "BEGIN SELECT RAISE(ABORT, 'journal is append-only: rows cannot be changed or deleted'); END"
    )
    for action in ("UPDATE", "DELETE")
}

#: meta key of the ``seq:hash`` a journal's first row links to once older rows were rotated out.
ANCHOR = "chain_anchor"
#: meta key that marks a read-only archive segment (its value: the live journal it came from).
ARCHIVE_OF = "archive_of"


def _create_v1(db: Database) -> None:
    events = db.table("events")
    events.create(
        {
            "seq": int,
            "ts_event": int,
            "ts_init": int,
            "mono_ns": int,
            "kind": str,
            "order_id": str,
            "ticket_id": str,
            "venue": str,
            "instrument": str,
            "payload": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="seq",
        not_null=["ts_event", "ts_init", "mono_ns", "kind", "payload", "prev_hash", "hash"],
    )
    events.create_index(["order_id", "seq"], index_name="events_order_id")
    events.create_index(["ticket_id", "seq"], index_name="events_ticket_id")
    events.create_index(["ts_event"], index_name="events_ts_event")
    for statement in GUARDS.values():
        db.execute(statement)
    db.table("meta").create({"key": str, "value": str}, pk="key", not_null=["value"])


#: ``(version, step)`` in order; opening an older journal for writing runs the missing steps
#: in one transaction. Version 1 is the initial schema.
MIGRATIONS: list[tuple[int, Callable[[Database], None]]] = [(1, _create_v1)]


def sqlite_uri(path: Path, mode: str = "mode=ro") -> str:
    """A read-only SQLite URI for ``path``; ``immutable=1`` also skips locks and the WAL files."""
    return f"{path.resolve().as_uri()}?{mode}"


def _identity(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return app_id, version, _names(conn)


def _names(conn: sqlite3.Connection) -> list[str]:
    query = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
    return [row[0] for row in conn.execute(query + " ORDER BY name")]


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise JournalVersionTooNew(
            f"journal {path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
            "cmc_lab knows; upgrade cmc_lab (pip install -U cmc-lab) to open it"
        )


def _judge(path: Path, app_id: int, version: int, names: list[str]) -> bool:
    """True if the database is empty (a journal may be created), False if it is a journal."""
    if app_id == APPLICATION_ID:
        _check_version(path, version)
        if version == 0 or not {"events", "meta"} <= set(names):
            raise CorruptJournal(
                f"journal {path} is marked as a cmc_lab journal but lacks its tables (found: "
                f"{', '.join(names) or 'none'}); it was left untouched; use another path"
            )
        return False
    if app_id == 0 and version == 0 and not names:
        return True
    found = f"tables: {', '.join(names)}" if names else f"application_id {app_id:#x}, user_version {version}"
    raise ForeignDatabase(
        f"{path} is an SQLite database of another program ({found}); it was left untouched; "
        f"pass a new path for the journal, such as {path.with_name(path.stem + '.journal.sqlite')}"
    )


def judge(conn: sqlite3.Connection, path: Path) -> bool:
    """On an open connection: True if the database is empty, False if it is a journal; else raise."""
    return _judge(path, *_identity(conn))


def _not_sqlite(path: Path, detail: str = "") -> CorruptJournal:
    return CorruptJournal(
        f"{path} is not an SQLite database (or is damaged{detail}); it was left untouched; use another path"
    )


def check_file(path: Path, *, readonly: bool) -> None:
    """Refuse, without changing anything at or beside ``path``, what cannot be a journal.

    Decides from the file's 100-byte header where it can, and lists another program's
    tables with an ``immutable`` read (no locks, no WAL files created). A journal, or an
    empty database, is judged again on the connection that opens it (:func:`judge`).
    """
    if path.is_dir():
        raise JournalIsDirectory(
            f"journal path {path} is a directory; pass a file path such as {path / 'run.sqlite'}"
        )
    if not path.exists():
        if readonly:
            raise JournalNotFound(f"no journal at {path}; check the path")
        if not path.parent.is_dir():
            raise JournalNotFound(
                f"cannot create journal {path}: directory {path.parent} does not exist; create it first"
            )
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise CorruptJournal(f"journal {path} cannot be read ({exc}); check its permissions") from exc
    if not header:
        if readonly:
            raise JournalNotFound(f"{path} is an empty file, not a journal yet; check the path")
        return
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise _not_sqlite(path)
    if int.from_bytes(header[68:72], "big") == APPLICATION_ID:
        _check_version(path, int.from_bytes(header[60:64], "big"))
        return
    try:
        app_id, version, names = _inspect(path, "immutable=1")
        if not names and header[18] == 2:  # WAL mode: its tables may still sit in the -wal file
            app_id, version, names = _inspect(path, "mode=ro")
    except sqlite3.DatabaseError as exc:
        raise _not_sqlite(path, f": {exc}") from exc
    _judge(path, app_id, version, names)


def _inspect(path: Path, mode: str) -> tuple[int, int, list[str]]:
    conn = sqlite3.connect(sqlite_uri(path, mode), uri=True)
    try:
        return _identity(conn)
    finally:
        conn.close()


def read_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def prepare(conn: sqlite3.Connection, path: Path, now_ns: int) -> int:
    """Create or migrate the schema and count this run, in one transaction; the new run id.

    Runs inside ``BEGIN IMMEDIATE`` and checks the file's identity again there, so a file
    another process changed since :func:`check_file` is still judged before any write.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        is_new = judge(conn, path)
        if not is_new and read_meta(conn, ARCHIVE_OF) is not None:
            raise JournalReadOnly(
                f"{path} is a read-only archive of journal {read_meta(conn, ARCHIVE_OF)}; "
                "open it with Journal(path, readonly=True) to read and verify it"
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        db = Database(conn)
        for step_version, step in MIGRATIONS:
            if step_version > version:
                step(db)
                conn.execute(f"PRAGMA user_version = {step_version:d}")
        if is_new:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
            db.table("meta").insert_all(
                [{"key": "app", "value": "cmc_lab"}, {"key": "created_ns", "value": str(now_ns)}]
            )
        run_id = int(read_meta(conn, "run_id") or 0) + 1
        db.table("meta").upsert_all(
            [
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                {"key": "run_id", "value": str(run_id)},
            ],
            pk="key",
        )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return run_id


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction; a failure here must not hide the error that led here."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
