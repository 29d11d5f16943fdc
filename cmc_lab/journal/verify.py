"""Journal verification layer: walk the hash chain from genesis and name the first row that breaks it."""

from __future__ import annotations

import dataclasses
import html
import json
import operator
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cmc_lab.journal.chain import GENESIS, row_hash

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :meth:`Journal.verify`; true in a boolean context only when ``ok``.

    Attributes
    ----------
    ok
        Every row links to the one before it, back to genesis (and to ``expected_head``).
    rows
        How many rows verified, counting from the first; all of them when ``ok``.
    first_bad_seq
        The first seq at which the chain breaks (a missing row's seq for a deletion), or None.
    reason
        What is wrong, naming the row and its kind; empty when ``ok``.
    head_hash
        Hash of the last row of the intact chain: the journal head when ``ok``. Keep it (with
        ``rows``) outside the journal to detect a truncated tail later.

    Examples
    --------
    >>> rep = VerifyReport(ok=True, rows=3, first_bad_seq=None, reason="", head_hash="ab" * 32)
    >>> bool(rep), str(rep).startswith("journal intact")
    (True, True)
    """

    ok: bool
    rows: int
    first_bad_seq: int | None
    reason: str
    head_hash: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"journal intact: {self.rows} rows verified, head hash {self.head_hash}"
        if self.first_bad_seq is None:
            return f"journal BROKEN: {self.reason} ({self.rows} rows verified)"
        return (
            f"journal BROKEN at row {self.first_bad_seq}: {self.reason} ({self.rows} rows before it verified)"
        )

    def _repr_html_(self) -> str:
        colour, status = ("#1a7f37", "intact") if self.ok else ("#cf222e", "BROKEN")
        cells = [
            ("status", f'<b style="color:{colour}">{status}</b>'),
            ("rows verified", str(self.rows)),
            ("first bad row", "" if self.first_bad_seq is None else str(self.first_bad_seq)),
            ("reason", html.escape(self.reason)),
            ("head hash", f"<code>{self.head_hash}</code>"),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in cells)
        return f"<table>{body}</table>"


def parse_head(expected_head: tuple[int, str]) -> tuple[int, str]:
    """Check an externally kept ``(seq, hash)`` head, or raise ValueError saying what is wrong."""
    try:
        seq, head_hash = expected_head
    except (TypeError, ValueError):
        raise ValueError(
            f"expected_head {expected_head!r} is not a (seq, hash) pair; pass e.g. journal.head"
        ) from None
    try:
        number = -1 if isinstance(seq, bool) else operator.index(seq)
    except TypeError:
        number = -1
    if number < 0:
        raise ValueError(f"expected_head seq {seq!r} is not a row number (an int >= 0)")
    if not isinstance(head_hash, str) or not _HASH.fullmatch(head_hash):
        raise ValueError(f"expected_head hash {head_hash!r} is not a 64-digit lowercase hex SHA-256")
    return number, head_hash


def _row_problem(row: Sequence[Any], prev_seq: int, prev_hash: str, first_seq: int) -> tuple[int, str] | None:
    seq, kind, stored_prev = row[0], row[4], row[10]
    name = f"row {seq} ({kind})"
    if seq != prev_seq + 1:
        if isinstance(seq, int) and seq > prev_seq + 1:
            return prev_seq + 1, (
                f"row {prev_seq + 1} is missing: the journal jumps from row {prev_seq} to row {seq} - "
                "rows were deleted"
            )
        return seq, f"{name} is numbered out of sequence: the chain starts at row 1 and counts up by one"
    for value in row[5:9]:  # order_id, ticket_id, venue, instrument: absent or a non-empty str
        if value is not None and (type(value) is not str or not value):
            return seq, f"{name}: an id holds {value!r}, which the journal never writes - the row was edited"
    try:
        computed = row_hash(*row[:11])
    except ValueError:
        return (
            seq,
            f"{name}: a field holds a separator or invalid text - the row was edited after it was written",
        )
    if computed != row[11]:
        return seq, f"{name}: hash mismatch - the row was edited after it was written"
    if stored_prev != prev_hash:
        if seq == 1:
            return seq, f"{name} does not start from the genesis hash - the start of the journal was replaced"
        if seq == first_seq + 1:
            return seq, (
                f"{name} does not link to row {first_seq}, the last row rotated into the archive - the "
                "start of the journal was replaced"
            )
        return seq, (
            f"{name} does not link to row {seq - 1}: row {seq - 1} was rewritten with a recomputed hash, "
            "or the rows from here on come from another chain"
        )
    return None


def verify_chain(
    rows: Iterable[Sequence[Any]],
    expected_head: tuple[int, str] | None = None,
    start: tuple[int, str] | None = None,
) -> VerifyReport:
    """Verify rows (all columns of the events table, in seq order) from genesis to the end.

    With ``expected_head``, a ``(seq, hash)`` kept outside the journal, also report a tail
    cut off below that seq or a chain that no longer passes through that hash. ``start``, a
    ``(seq, hash)``, is the row the first row links to when older rows were rotated into an
    archive (genesis, ``(0, GENESIS)``, by default); ``rows`` then counts from it.

    Examples
    --------
    >>> verify_chain([]).ok
    True
    """
    first_seq, first_hash = start if start is not None else (0, GENESIS)
    want_seq, want_hash = parse_head(expected_head) if expected_head is not None else (-1, GENESIS)
    if first_seq and (0 <= want_seq < first_seq or (want_seq == first_seq and want_hash != first_hash)):
        raise ValueError(
            f"expected_head row {want_seq} was rotated into an archive (this journal starts after row "
            f"{first_seq}); check it with cmc_lab.journal.archive.verify_chain([archives..., journal])"
        )
    if want_seq == 0 and want_hash != GENESIS:
        return VerifyReport(
            False, 0, 0, "the expected head is row 0 but its hash is not the genesis hash", GENESIS
        )
    report = _walk(rows, first_seq, first_hash, want_seq, want_hash)
    if first_seq == 0:
        return report
    return dataclasses.replace(report, rows=max(report.rows - first_seq, 0))


def _walk(
    rows: Iterable[Sequence[Any]], prev_seq: int, prev_hash: str, want_seq: int, want_hash: str
) -> VerifyReport:
    first_seq = prev_seq
    try:
        for row in rows:
            problem = _row_problem(row, prev_seq, prev_hash, first_seq)
            if problem is None and row[0] == want_seq and row[11] != want_hash:
                problem = (
                    want_seq,
                    (
                        f"row {want_seq} ({row[4]}) has hash {row[11][:16]}... but the expected head has "
                        f"{want_hash[:16]}... - the journal was rewritten at or before row {want_seq}"
                    ),
                )
            if problem is not None:
                return VerifyReport(False, prev_seq, problem[0], problem[1], prev_hash)
            prev_seq, prev_hash = row[0], row[11]
    except sqlite3.DatabaseError as exc:
        return VerifyReport(
            False,
            prev_seq,
            prev_seq + 1,
            f"row {prev_seq + 1} cannot be read ({exc}) - the row was edited or the file is damaged",
            prev_hash,
        )
    if want_seq > prev_seq:
        return VerifyReport(
            False,
            prev_seq,
            prev_seq + 1,
            f"the journal ends at row {prev_seq} but the expected head is row {want_seq}: "
            f"rows {prev_seq + 1} to {want_seq} were cut off",
            prev_hash,
        )
    return VerifyReport(True, prev_seq, None, "", prev_hash)


def file_damage(conn: sqlite3.Connection) -> str:
    """What SQLite's integrity_check (indexes against their table too) finds wrong in the file beneath the rows (an index, a page), or ''."""
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(5)")]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found == ["ok"]:
        return ""
    return (
        f"the file is damaged beneath its rows (SQLite: {'; '.join(found)}); the rows verify but reading "
        "them may fail: restore the file from a copy or an archive"
    )


def check_rotation(report: VerifyReport, start: tuple[int, str], record: str | None) -> VerifyReport:
    """A journal whose first rows were rotated out must hold, in its verified chain, the record of
    that rotation (``record``: the payload of its last ``JournalRotated`` row) naming ``start``.

    Editing the journal's meta to hide rows cut from its start breaks this; an archive segment,
    which needs no such record, is checked against its neighbours by ``archive.verify_chain``.
    """
    seq, head_hash = start
    try:
        payload = json.loads(record) if record is not None else {}
        recorded = (payload["last_seq"], payload["head_hash"])
    except (ValueError, KeyError, TypeError):
        recorded = None
    if recorded == (seq, head_hash):
        return report
    what = "holds no record of it" if recorded is None else f"recorded rotating up to row {recorded[0]}"
    return VerifyReport(
        False,
        0,
        seq + 1,
        f"the journal's meta says rows up to {seq} were rotated into an archive but the chain {what} - "
        "rows were cut from the start of the journal",
        start[1],
    )
