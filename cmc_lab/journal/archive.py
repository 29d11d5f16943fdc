"""Journal retention layer: rotate old rows into read-only archive files that verify as one chain.

``rotate(journal, upto_seq)`` copies rows up to ``upto_seq`` into a new SQLite archive (same
schema, plus a trigger refusing inserts; the file is made read-only), then, in one transaction
of the live journal, deletes them with the delete guard dropped and recreated inside that same
transaction, records the rotation (archive path, seq range, head hash, the archive's SHA-256) in
the meta table and appends a ``JournalRotated`` row. The live journal's first row still links to
the archive's last hash, so ``verify_chain([archive..., live])`` checks them as one chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from cmc_lab.journal import schema
from cmc_lab.journal.chain import GENESIS, chain_slice
from cmc_lab.journal.errors import JournalError
from cmc_lab.journal.rows import ALL_COLUMNS, INSERT, JournalRow, whole
from cmc_lab.journal.store import Journal, anchor
from cmc_lab.journal.verify import VerifyReport
from cmc_lab.journal.verify import verify_chain as verify_rows

ROTATED = "JournalRotated"
_NO_INSERT = (
    "CREATE TRIGGER events_no_insert BEFORE INSERT ON events "
    "BEGIN SELECT RAISE(ABORT, 'journal archive is read-only: rows cannot be added'); END"
)


class RotationError(JournalError):
    """A rotation that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """One rotation: which rows went into which archive, and how to check it later.

    ``head_hash`` is the hash of the archive's last row, which the live journal's first row
    links to; ``sha256`` is the archive file's digest, also kept in the live journal's meta and
    in its ``JournalRotated`` row (``seq``).
    """

    archive: Path
    first_seq: int
    last_seq: int
    head_hash: str
    sha256: str
    seq: int

    @property
    def rows(self) -> int:
        return self.last_seq - self.first_seq + 1

    def record(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "rows": self.rows,
            "head_hash": self.head_hash,
            "sha256": self.sha256,
        }


def rotate(
    journal: Journal, upto_seq: int, archive: str | Path | None = None, *, now_ns: int | None = None
) -> Rotation:
    """Move rows up to ``upto_seq`` into a new read-only archive file; the :class:`Rotation`.

    ``archive`` defaults to ``<journal>.archive-<first>-<last>.sqlite`` beside the journal and
    must not exist. The rows are verified before they move (a broken chain is refused); if the
    live journal changed underneath or any step fails, the archive is removed and the live
    journal is left as it was.

    Examples
    --------
    >>> rot = rotate(journal, upto_seq=journal.head[0] - 1)          # doctest: +SKIP
    >>> verify_chain([rot.archive, journal.path]).ok                  # doctest: +SKIP
    True
    """
    upto = whole("upto_seq", upto_seq)
    if str(journal.path) == ":memory:":
        raise RotationError("an in-memory journal cannot be rotated: its archive would be all there is")
    with journal._lock:
        conn = journal._writer()
        start = anchor(conn) or (0, GENESIS)
        head = journal._head(conn)
        if not start[0] < upto <= head[0]:
            raise RotationError(
                f"upto_seq={upto} is outside the live rows of {journal.path} ({start[0] + 1} to {head[0]}); "
                "pass the seq of the last row to archive"
            )
        target = Path(archive) if archive is not None else _default_path(journal.path, start[0] + 1, upto)
        if target.exists():
            raise RotationError(f"archive {target} exists; pass another path")
        head_hash = _write_archive(conn, journal.path, target, start, upto)
        try:
            digest = _sha256(target)
            rotation = Rotation(target, start[0] + 1, upto, head_hash, digest, 0)
            seq = _cut(conn, rotation, start, now_ns)
        except BaseException:
            _remove(target)
            raise
    return Rotation(target, start[0] + 1, upto, head_hash, digest, seq)


def _default_path(live: Path, first: int, last: int) -> Path:
    return live.with_name(f"{live.stem}.archive-{first:09d}-{last:09d}.sqlite")


def _write_archive(
    conn: sqlite3.Connection, live: Path, target: Path, start: tuple[int, str], upto: int
) -> str:
    """Copy and verify rows ``start+1..upto`` into a new archive file (made read-only); its last hash."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only from the start
    out = sqlite3.connect(partial, isolation_level=None)
    try:
        out.execute("BEGIN")
        db = Database(out)
        for version, step in schema.MIGRATIONS:
            step(db)
            out.execute(f"PRAGMA user_version = {version:d}")
        out.execute(f"PRAGMA application_id = {schema.APPLICATION_ID:d}")
        out.executemany(
            INSERT, conn.execute(f"SELECT {ALL_COLUMNS} FROM events WHERE seq <= ? ORDER BY seq", (upto,))
        )
        report = verify_rows(out.execute(f"SELECT {ALL_COLUMNS} FROM events ORDER BY seq"), start=start)
        if not report.ok or report.rows != upto - start[0]:
            raise RotationError(
                f"journal {live} does not verify up to row {upto} ({report}); nothing was rotated - "
                "run journal.verify() to find the damaged row"
            )
        meta = {
            "app": "cmc_lab",
            "created_ns": str(time.time_ns()),
            schema.ARCHIVE_OF: str(live.resolve()),
            "first_seq": str(start[0] + 1),
            "last_seq": str(upto),
            "head_hash": report.head_hash,
        }
        if start[0]:
            meta[schema.ANCHOR] = f"{start[0]}:{start[1]}"
        db.table("meta").insert_all([{"key": k, "value": v} for k, v in meta.items()])
        out.execute(_NO_INSERT)
        out.execute("COMMIT")
    except BaseException:
        out.close()
        partial.unlink(missing_ok=True)
        raise
    out.close()
    with partial.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    target.chmod(stat.S_IRUSR)  # the desk's record: its owner reads it, nobody writes it
    return report.head_hash


def _cut(conn: sqlite3.Connection, rotation: Rotation, start: tuple[int, str], now_ns: int | None) -> int:
    """In one live transaction: delete the archived rows, record the rotation, append its row."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        first = conn.execute("SELECT min(seq) FROM events").fetchone()[0]
        last = conn.execute("SELECT hash FROM events WHERE seq = ?", (rotation.last_seq,)).fetchone()
        if first != rotation.first_seq or last is None or last[0] != rotation.head_hash:
            raise RotationError(
                f"journal changed while row {rotation.first_seq} to {rotation.last_seq} were archived; "
                "nothing was rotated, try again"
            )
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("DELETE FROM events WHERE seq <= ?", (rotation.last_seq,))
        conn.execute(schema.GUARDS["events_no_delete"])
        record = rotation.record()
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                (schema.ANCHOR, f"{rotation.last_seq}:{rotation.head_hash}"),
                (f"rotation:{rotation.last_seq:012d}", json.dumps(record, sort_keys=True)),
            ],
        )
        now = time.time_ns() if now_ns is None else whole("now_ns", now_ns)
        tip = [Journal._head(conn)]
        row = JournalRow(ROTATED, now, now, time.perf_counter_ns(), record)
        conn.execute(INSERT, chain_slice(iter([row]), tip, 1, tip[0][0]))
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    return tip[0][0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.unlink(missing_ok=True)


def rotations(journal: Journal) -> list[Rotation]:
    """The rotations recorded in a live journal's meta, oldest first.

    Examples
    --------
    >>> rotations(Journal(":memory:"))
    []
    """
    with journal._reading() as conn:
        rows = conn.execute("SELECT value FROM meta WHERE key LIKE 'rotation:%' ORDER BY key").fetchall()
    out = []
    for (text,) in rows:
        r = json.loads(text)
        out.append(
            Rotation(Path(r["archive"]), r["first_seq"], r["last_seq"], r["head_hash"], r["sha256"], 0)
        )
    return out


# ============================================================================ verifying segments


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of :func:`verify_chain` over archives and the live journal.

    The fields of :class:`~cmc_lab.journal.verify.VerifyReport` plus ``path``, the file holding
    the first bad row (None when ``ok``), and ``segments``: ``(path, first seq, last seq)`` of each
    file in chain order.
    """

    ok: bool
    rows: int
    first_bad_seq: int | None
    reason: str
    head_hash: str
    path: Path | None
    segments: tuple[tuple[Path, int, int], ...]

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        files = len(self.segments)
        if self.ok:
            return (
                f"chain intact across {files} file(s): {self.rows} rows verified, head hash {self.head_hash}"
            )
        return f"chain BROKEN at row {self.first_bad_seq} in {self.path}: {self.reason}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        rows = "".join(
            f"<tr><td>{escape(str(p))}</td><td>{first}</td><td>{last}</td></tr>"
            for p, first, last in self.segments
        )
        return (
            f'<b style="color:{colour}">{escape(str(self))}</b><table><tr><th>file</th><th>first row</th>'
            f"<th>last row</th></tr>{rows}</table>"
        )


def verify_chain(paths: Sequence[str | Path], expected_head: tuple[int, str] | None = None) -> ChainReport:
    """Verify archive files and the live journal as one hash chain from genesis; name the first bad row
    and the file that holds it.

    Files may come in any order: archives are put in seq order and the live journal (at most
    one) last. Each archive's SHA-256 must match the one the live journal recorded when it was
    rotated, and rows 1 to the end must all be there.

    Examples
    --------
    >>> verify_chain(["run.archive-000000001-000050000.sqlite", "run.sqlite"]).ok   # doctest: +SKIP
    True
    """
    if not paths:
        raise ValueError("verify_chain needs the archive files and the live journal; got none")
    journals = [Journal(p, readonly=True) for p in paths]
    try:
        return _verify(journals, expected_head)
    finally:
        for j in journals:
            j.close()


def _verify(journals: list[Journal], expected_head: tuple[int, str] | None) -> ChainReport:
    archives: list[tuple[int, Journal]] = []
    live: list[tuple[int, Journal]] = []
    for j in journals:
        with j._reading() as conn:
            is_archive = schema.read_meta(conn, schema.ARCHIVE_OF) is not None
            first = conn.execute("SELECT min(seq) FROM events").fetchone()[0] or 0
        (archives if is_archive else live).append((first, j))
    if len(live) > 1:
        raise ValueError(
            f"verify_chain got {len(live)} live journals ({', '.join(str(j.path) for _, j in live)}); pass "
            "one live journal and its archives"
        )
    ordered = [j for _, j in sorted(archives, key=lambda item: item[0])] + [j for _, j in live]
    segments = [(j.path, *_span(j)) for j in ordered]
    recorded = {r.last_seq: r.sha256 for _, j in live for r in rotations(j)}
    for j, (_, first, last) in zip(ordered[: len(archives)], segments, strict=False):
        if last in recorded and _sha256(j.path) != recorded[last]:
            return ChainReport(
                False,
                0,
                first,
                f"archive {j.path} differs from the file rotated out (its SHA-256 is not the one recorded)",
                GENESIS,
                j.path,
                tuple(segments),
            )
    current: list[Path] = [ordered[0].path]

    def rows() -> Iterator[tuple[Any, ...]]:
        for j in ordered:
            current[0] = j.path
            with j._reading() as conn:
                yield from conn.execute(f"SELECT {ALL_COLUMNS} FROM events ORDER BY seq")

    report: VerifyReport = verify_rows(rows(), expected_head)
    return ChainReport(
        report.ok,
        report.rows,
        report.first_bad_seq,
        report.reason,
        report.head_hash,
        None if report.ok else current[0],
        tuple(segments),
    )


def _span(journal: Journal) -> tuple[int, int]:
    with journal._reading() as conn:
        first, last = conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
    return first or 0, last or 0


__all__ = ["ROTATED", "ChainReport", "Rotation", "RotationError", "rotate", "rotations", "verify_chain"]
