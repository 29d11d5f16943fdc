"""Journal facade layer: the append-only, hash-chained SQLite journal the engine writes and notebooks read.

One writer connection (WAL, ``synchronous=NORMAL``) commits every append before returning;
each reading thread has its own read-only connection, so a notebook can query while the
engine writes. The chain head is read inside every write transaction, so two writers on
one file (two notebooks) still extend a single chain.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from cmc_lab.core.crashpoints import crash_point
from cmc_lab.core.ids import venue_of
from cmc_lab.core.model import Event, event_payload
from cmc_lab.journal import schema
from cmc_lab.journal.chain import GENESIS, WIDTH, chain_slice, chained_slices
from cmc_lab.journal.checkpoint import Checkpointer
from cmc_lab.journal.errors import (
    CorruptJournal,
    JournalClosed,
    JournalError,
    JournalNotFound,
    JournalReadOnly,
    JournalWriteError,
)
from cmc_lab.journal.rows import (
    ALL_COLUMNS,
    JournalRow,
    insert_of,
    inserts,
    read_payload,
    timeline_frame,
    whole,
)
from cmc_lab.journal.verify import VerifyReport, check_rotation, file_damage, verify_chain

MEMORY = ":memory:"

_READ_COLUMNS = ", ".join(schema.EVENT_COLUMNS[:10])
_HEAD = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
_TIMELINE = f"SELECT {_READ_COLUMNS} FROM events WHERE order_id = ?1 OR ticket_id = ?1 ORDER BY seq"
_TAIL = f"SELECT {_READ_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?"
_LAST_OF = f"SELECT {ALL_COLUMNS} FROM events WHERE kind = ? ORDER BY seq DESC LIMIT 1"
_ROWS_OF = f"SELECT {ALL_COLUMNS} FROM events WHERE order_id = ?1 OR ticket_id = ?1 ORDER BY seq"
_ROWS_CHUNK = 5_000
_LAST_ROTATION = "SELECT payload FROM events WHERE kind = 'JournalRotated' ORDER BY seq DESC LIMIT 1"
# Rows chained, then inserted by one statement (rows.inserts), a slice at a time. Chaining a slice,
# then inserting it, rather than hashing each row while SQLite inserts the one before, keeps each
# side's working set in the CPU's caches; a slice of 256 rows in one statement inserts faster than 64
# or 128 (docs/benchmarks.md, figure (c)); and a long write never sits in memory whole.
_BATCH = 256
# A write of fewer rows (append, the engine's commits) is one statement of exactly its rows.
_FEW = 16

# SQLite primary result codes (sqlite3.h) a failed write maps onto.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def _ns(name: str, value: object) -> int | None:
    return None if value is None else whole(name, value)


def anchor(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """``(seq, hash)`` the first row links to once older rows were rotated into an archive, else None.

    Raises ValueError when the meta value is not ``SEQ:HASH``.
    """
    text = schema.read_meta(conn, schema.ANCHOR)
    if text is None:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValueError(f"meta {schema.ANCHOR} = {text!r} is not SEQ:HASH")
    return int(seq), digest


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _scan(conn: sqlite3.Connection) -> Generator[tuple[Any, ...], None, None]:
    """Every row in seq order; lazy, so that a damaged file fails inside the verifier's loop."""
    cursor = conn.execute(f"SELECT {ALL_COLUMNS} FROM events ORDER BY seq")
    try:
        yield from cursor
    finally:
        cursor.close()


class Journal:
    """Append-only, hash-chained SQLite journal of every event of a run.

    Every row carries the SHA-256 of its fields and of the row before it; :meth:`verify`
    walks that chain and names the first row that was edited, removed or moved. Triggers
    refuse UPDATE and DELETE. Opening a journal for writing counts a new run (``run_id``).

    Parameters
    ----------
    path
        A file path (created if absent; an existing journal continues its chain), or
        ``":memory:"`` for a journal that lives as long as this object.
    readonly
        Open for reading and verifying only: nothing is created, migrated or written.

    Raises
    ------
    JournalIsDirectory, JournalNotFound, ForeignDatabase, CorruptJournal, JournalVersionTooNew
        When ``path`` is not a journal this code can open; the file is left untouched.
    JournalReadOnly
        When the file cannot be written and ``readonly`` is False.

    Examples
    --------
    >>> with Journal(":memory:") as j:
    ...     seq = j.append("OrderSubmitted", ts_event=1, ts_init=2, mono_ns=3, payload={"qty": 1})
    ...     (seq, j.run_id, j.verify().ok)
    (1, 1, True)
    """

    run_id: int

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._memory = str(path) == MEMORY
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._conn: sqlite3.Connection | None = None
        self._checkpoints: Checkpointer | None = None
        self._closed = False
        if self._memory:
            if readonly:
                raise JournalError(
                    "an in-memory journal cannot be opened read-only: it would always be empty"
                )
        else:
            schema.check_file(self.path, readonly=readonly)
        if not readonly:
            self._conn = self._open_writer()
            if not self._memory:  # WAL checkpoints on a thread of their own, never inside a commit
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpoints = Checkpointer(self.path)
            return
        try:
            with self._reading() as conn:
                if schema.judge(conn, self.path):
                    raise JournalNotFound(
                        f"{self.path} is an empty SQLite database, not a journal; check the path"
                    )
                self.run_id = int(schema.read_meta(conn, "run_id") or 0)
        except BaseException:
            self.close()
            raise

    def _open_writer(self) -> sqlite3.Connection:
        if not self._memory:  # a new journal is the desk's record: owner-only (0600)
            with suppress(OSError):  # exists already, or unwritable: SQLite says so below
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._write_error(exc) from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self.run_id = schema.prepare(conn, self.path, time.time_ns())
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._write_error(exc) from exc
            if isinstance(exc, UnicodeDecodeError):
                raise CorruptJournal(
                    f"journal {self.path} is damaged: its schema does not read as text ({exc}); it was left "
                    "untouched; run Journal(path, readonly=True).verify() to see what is left"
                ) from exc
            raise
        return conn

    # ----------------------------------------------------------------------- writing

    def append(
        self,
        kind: str,
        *,
        ts_event: int,
        ts_init: int,
        mono_ns: int,
        payload: dict[str, Any],
        order_id: str | None = None,
        ticket_id: str | None = None,
        venue: str | None = None,
        instrument: str | None = None,
    ) -> int:
        """Append one row and commit it before returning; its seq.

        Empty ids are stored as absent. Raises ``TypeError``/``ValueError`` for a row that
        cannot be journaled, :class:`JournalReadOnly` or :class:`JournalWriteError` when the
        write fails (then nothing of it was kept and the chain is unchanged).

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> j.append("OrderDenied", ts_event=5, ts_init=6, mono_ns=7, payload={"reason": "halted"})
        1
        """
        row = JournalRow(kind, ts_event, ts_init, mono_ns, payload, order_id, ticket_id, venue, instrument)
        return self._write((row,))

    def append_many(self, rows: Iterable[JournalRow]) -> int:
        """Append rows in one transaction (all or nothing); the seq of the last row (the head's if none).

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> j.append_many(JournalRow("OrderSubmitted", t, t, t, {"n": t}, order_id="C-1") for t in range(3))
        3
        """
        return self._write(rows)

    def record(
        self, event: Event, mono_ns: int, *, ticket_id: str | None = None, venue: str | None = None
    ) -> int:
        """Append a model event; its seq.

        The kind is the event's class name and the payload its fields; ``order_id``,
        ``instrument`` and ``ticket_id`` come from the event when it has them, and the venue,
        unless given, from the event's ``venue`` or its instrument id's prefix (``COMEX.GC``).

        Examples
        --------
        >>> from cmc_lab.core.model import OrderAccepted
        >>> j = Journal(":memory:")
        >>> j.record(OrderAccepted(1, 2, "C-1-1", "COMEX.GC", "V-9"), mono_ns=3)
        1
        >>> j.tail()[["kind", "order_id", "venue", "venue_order_id"]].values.tolist()
        [['OrderAccepted', 'C-1-1', 'COMEX', 'V-9']]
        """
        instrument = getattr(event, "instrument_id", None)
        if venue is None:
            venue = getattr(event, "venue", None)
        if venue is None and instrument and "." in instrument:
            venue = venue_of(instrument)
        return self.append(
            event.kind,
            ts_event=event.ts_event,
            ts_init=event.ts_init,
            mono_ns=mono_ns,
            payload=event_payload(event),
            order_id=getattr(event, "client_order_id", None),
            ticket_id=ticket_id if ticket_id is not None else getattr(event, "ticket_id", None),
            venue=venue,
            instrument=instrument,
        )

    def _write(self, rows: Iterable[JournalRow]) -> int:
        with self._lock:
            conn = self._writer()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_error(exc) from exc
            try:
                tip = [self._head(conn)]
                if isinstance(rows, tuple | list) and len(rows) < _FEW:  # append(), the engine's commits
                    if rows:  # one statement of exactly these rows: no slicing, no helper thread
                        conn.execute(insert_of(len(rows)), chain_slice(iter(rows), tip, _FEW, tip[0][0]))
                else:
                    self._insert_slices(conn, rows, tip)
                crash_point("mid_commit")
                conn.execute("COMMIT")
                if self._checkpoints is not None:
                    self._checkpoints.wrote()
            except BaseException as exc:
                schema.rollback(conn)
                if isinstance(exc, sqlite3.Error | OSError):
                    raise self._write_error(exc) from exc
                raise
        return tip[0][0]

    @staticmethod
    def _insert_slices(
        conn: sqlite3.Connection, rows: Iterable[JournalRow], tip: list[tuple[int, str]]
    ) -> None:
        most = min(_BATCH, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // WIDTH)
        with closing(chained_slices(rows, tip, _BATCH)) as slices:
            for flat in slices:
                for statement, values in inserts(flat, most):
                    conn.execute(statement, values)

    def _writer(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalClosed(
                f"journal {self.path} is closed; open it again with Journal({str(self.path)!r})"
            )
        if self._conn is None:
            raise JournalReadOnly(
                f"journal {self.path} was opened with readonly=True; open it with Journal(path) to write"
            )
        return self._conn

    def _write_error(self, exc: BaseException) -> JournalError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == _SQLITE_READONLY or (code == _SQLITE_CANTOPEN and self._read_only_media()):
            return JournalReadOnly(
                f"journal {self.path} cannot be written: the file or its directory is read-only ({exc}); "
                "fix the permissions, or open it with Journal(path, readonly=True) to read and verify it"
            )
        if code == _SQLITE_FULL:
            hint = "the disk is full; free space, then write again"
        elif code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            hint = "another process holds the journal's write lock; close the other writer, then write again"
        else:
            hint = "check the disk and the file, then write again"
        return JournalWriteError(
            f"writing journal {self.path} failed ({exc}); nothing of this write was kept and the rows "
            f"before it are intact; {hint}",
            exc,
        )

    # ----------------------------------------------------------------------- reading

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise JournalClosed(
                f"journal {self.path} is closed; open it again with Journal({str(self.path)!r})"
            )
        try:
            if self._memory:
                with self._lock:
                    yield self._writer()
            else:
                yield self._reader()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a damaged name: text not UTF-8
            if self._closed:
                raise JournalClosed(f"journal {self.path} was closed while it was being read") from exc
            damaged = getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
            # a header byte ("unsupported file format"), a name's bytes ("decode"), the stored schema
            # ("no such column" in a table the open checked)
            if damaged or any(sign in str(exc) for sign in ("decode", "unsupported file format", "no such")):
                raise CorruptJournal(
                    f"journal {self.path} could not be read ({exc}): the file is damaged beneath the "
                    "rows, so verify() cannot read it either; restore it from a copy or archive, or "
                    f"salvage the readable rows with: sqlite3 {self.path} .recover > rows.sql"
                ) from exc
            raise JournalError(f"reading journal {self.path} failed ({exc}); try again") from exc

    def _read_only_media(self) -> bool:
        """True when the journal's directory cannot be written (a read-only mount, even for root)."""
        return not self._memory and not os.access(self.path.parent, os.W_OK)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # On read-only media SQLite cannot make the -shm file a WAL read needs; nothing can
            # change the file there either, so it is read as immutable.
            mode = "immutable=1" if self._read_only_media() and not _wal(self.path).exists() else "mode=ro"
            conn = sqlite3.connect(
                schema.sqlite_uri(self.path, mode), uri=True, isolation_level=None, check_same_thread=False
            )
            with self._lock:
                if self._closed:
                    conn.close()
                    raise JournalClosed(f"journal {self.path} is closed")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @staticmethod
    def _head(conn: sqlite3.Connection) -> tuple[int, str]:
        row = conn.execute(_HEAD).fetchone()
        if row is not None:
            return row[0], row[1]
        return anchor(conn) or (0, GENESIS)

    @property
    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last row; ``(0, GENESIS)`` when empty. Keep it to detect truncation.

        Examples
        --------
        >>> Journal(":memory:").head == (0, "0" * 64)
        True
        """
        with self._reading() as conn:
            return self._head(conn)

    def timeline(self, id: str) -> pd.DataFrame:
        """Every event of one order (``order_id``) or hedge ticket (``ticket_id``), in journal order.

        Columns: seq, ts_event, ts_init, mono_ns, kind, order_id, ticket_id, venue,
        instrument, hop_ns (``mono_ns`` minus the previous row's; 0 first), elapsed_ns
        (minus the first row's), then the payload fields. A payload field named like one of
        these columns is left out (the column holds the journaled value); ``rows()`` gives
        the whole payload. ``mono_ns`` is a per-process clock: hops across a restart are
        meaningless.

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> for k, mono in (("OrderSubmitted", 100), ("OrderAccepted", 350)):
        ...     _ = j.append(k, ts_event=mono, ts_init=mono, mono_ns=mono, payload={}, order_id="C-1")
        >>> j.timeline("C-1")[["kind", "hop_ns", "elapsed_ns"]].values.tolist()
        [['OrderSubmitted', 0, 0], ['OrderAccepted', 250, 250]]
        """
        with self._reading() as conn:
            rows = conn.execute(_TIMELINE, (id,)).fetchall()
        return timeline_frame(rows)

    def last_of(self, kind: str) -> dict[str, Any] | None:
        """The latest row of ``kind`` as :meth:`rows` gives it, or None; read from the end, so a row
        written near the head (a book checkpoint at close) is found without reading the history."""
        with self._reading() as conn:
            row = conn.execute(_LAST_OF, (kind,)).fetchone()
        if row is None:
            return None
        return {**dict(zip(schema.EVENT_COLUMNS, row, strict=True)), "payload": read_payload(row)}

    def rows_of(self, id: str) -> list[dict[str, Any]]:
        """Every row of one order or hedge ticket as :meth:`rows` gives them (whole payload), by index.

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> _ = j.append("OrderDenied", ts_event=5, ts_init=6, mono_ns=7, payload={"reason": "x"}, order_id="C-1")
        >>> [r["kind"] for r in j.rows_of("C-1")]
        ['OrderDenied']
        """
        with self._reading() as conn:
            found = conn.execute(_ROWS_OF, (id,)).fetchall()
        return [
            {**dict(zip(schema.EVENT_COLUMNS, row, strict=True)), "payload": read_payload(row)}
            for row in found
        ]

    def tail(self, n: int = 20) -> pd.DataFrame:
        """The last ``n`` rows, oldest first, shaped as :meth:`timeline` (hops within these rows).

        Examples
        --------
        >>> len(Journal(":memory:").tail())
        0
        """
        count = whole("n", n)
        if count < 0:
            raise ValueError(f"tail(n={n!r}): n must be a whole number of rows >= 0")
        with self._reading() as conn:
            rows = conn.execute(_TAIL, (count,)).fetchall()
        rows.reverse()
        return timeline_frame(rows)

    def rows(
        self,
        since_ns: int | None = None,
        until_ns: int | None = None,
        kinds: Iterable[str] | None = None,
        after_seq: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Rows in journal order as dicts (payload decoded, hashes included), for export and audit.

        Filters: ``since_ns <= ts_event < until_ns``, ``kind in kinds`` and ``seq > after_seq``.
        Rows are read in chunks, each its own short read, so a slow consumer never holds the
        journal open.

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> _ = j.append("OrderDenied", ts_event=5, ts_init=6, mono_ns=7, payload={"reason": "halted"})
        >>> [(r["seq"], r["payload"]["reason"]) for r in j.rows(since_ns=5, kinds=["OrderDenied"])]
        [(1, 'halted')]
        """
        # The ts_event index finds the seq range of the time window; the chunks then walk that
        # range by seq ("+ts_event" keeps the planner off the index, which would re-sort per chunk).
        window = (("ts_event >= ?", _ns("since_ns", since_ns)), ("ts_event < ?", _ns("until_ns", until_ns)))
        span = [(term, value) for term, value in window if value is not None]
        bounds = "SELECT min(seq) - 1, max(seq) FROM events"
        if span:
            bounds += " WHERE " + " AND ".join(term for term, _ in span)
        where = ["seq > ?", "seq <= ?", *(f"+{term}" for term, _ in span)]
        params: list[Any] = [value for _, value in span]
        if kinds is not None:
            wanted = [kinds] if isinstance(kinds, str) else list(kinds)
            where.append(f"kind IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        query = (
            f"SELECT {ALL_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT {_ROWS_CHUNK}"
        )
        with self._reading() as conn:
            after, last = conn.execute(bounds, [value for _, value in span]).fetchone()
        if last is None:
            return
        after = max(after, after_seq)
        while True:
            with self._reading() as conn:
                chunk = conn.execute(query, [after, last, *params]).fetchall()
            for row in chunk:
                out = dict(zip(schema.EVENT_COLUMNS, row, strict=True))
                out["payload"] = read_payload(row)
                yield out
            if len(chunk) < _ROWS_CHUNK:
                return
            after = chunk[-1][0]

    def verify(self, expected_head: tuple[int, str] | None = None) -> VerifyReport:
        """Recompute every row's hash and link from genesis; a report naming the first bad row.

        A tail cut off at a row boundary leaves a valid chain: pass ``expected_head``, a
        ``(seq, hash)`` taken from :attr:`head` earlier and kept outside the journal, to
        detect that too. A damaged file is reported, not raised.

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> _ = j.append("OrderDenied", ts_event=5, ts_init=6, mono_ns=7, payload={})
        >>> kept = j.head
        >>> j.verify(expected_head=kept).ok
        True
        """
        with self._reading() as conn:
            try:
                start = anchor(conn)
            except ValueError as exc:
                return VerifyReport(False, 0, 1, f"{exc} - the journal's meta was edited", GENESIS)
            scan = _scan(conn)
            try:
                report = verify_chain(scan, expected_head, start)
            finally:
                scan.close()
            damage = file_damage(conn) if report.ok else ""
            if damage:
                return VerifyReport(False, report.rows, None, damage, report.head_hash)
            if start is None or not report.ok or schema.read_meta(conn, schema.ARCHIVE_OF) is not None:
                return report
            record = conn.execute(_LAST_ROTATION).fetchone()
            return check_rotation(report, start, None if record is None else record[0])

    def verify_from(self, seq: int) -> VerifyReport:
        """Verify row ``seq`` and every row after it against the link row ``seq`` stores: the part of
        the chain a reopen from a book checkpoint at ``seq`` relies on (:meth:`verify` walks it all).

        Examples
        --------
        >>> j = Journal(":memory:")
        >>> _ = j.append_many(JournalRow("OrderDenied", t, t, t, {}) for t in range(3))
        >>> j.verify_from(2).ok
        True
        """
        with self._reading() as conn:
            link = conn.execute("SELECT prev_hash FROM events WHERE seq = ?", (seq,)).fetchone()
            if link is None:
                return VerifyReport(False, 0, seq, f"row {seq} is missing", GENESIS)
            cursor = conn.execute(f"SELECT {ALL_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq", (seq,))
            try:
                return verify_chain(cursor, None, (seq - 1, link[0]))
            finally:
                cursor.close()

    # ----------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close every connection (readers first, so the writer checkpoints the WAL); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._checkpoints is not None:
                self._checkpoints.close()
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            if self._conn is not None:
                self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", readonly" if self.readonly else ""
        if self._closed:
            return f"Journal({self.path}{mode}, closed)"
        return f"Journal({self.path}{mode}, run {self.run_id}, {self.head[0]} rows)"
