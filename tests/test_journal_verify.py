"""Journal verification: every tampering with the stored rows is found and the row is named."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmc_lab.journal import GENESIS, CorruptJournal, Journal, JournalRow, VerifyReport
from cmc_lab.journal.chain import row_hash

N_ROWS = 12
EDITABLE = ["ts_event", "ts_init", "mono_ns", "kind", "order_id", "ticket_id", "venue", "instrument"]
EDITABLE += ["payload", "prev_hash", "hash"]


def rows(n: int = N_ROWS) -> Iterator[JournalRow]:
    for i in range(n):
        yield JournalRow(
            ("OrderSubmitted", "OrderAccepted", "OrderFilled")[i % 3],
            ts_event=1_700_000_000_000_000_000 + i,
            ts_init=1_700_000_000_000_000_500 + i,
            mono_ns=1_000 * i,
            payload={"qty": i, "last_px": "2650.10", "note": "ü"},
            order_id=f"C-1-{i // 3}",
            ticket_id="TK-1" if i % 2 else None,
            venue="COMEX",
            instrument="COMEX.GC",
        )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "run.sqlite"
    with Journal(path) as j:
        j.append_many(rows())
    return path


@pytest.fixture
def path(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(template, tmp_path / "run.sqlite"))


def tamper(path: Path, *statements: str) -> None:
    """Edit the file as an attacker with sqlite3 would: drop the guard triggers, then write."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def tamper_row(path: Path, seq: int, **values: object) -> None:
    """Set columns of one row to exact values (bound, so any type and byte goes through)."""
    tamper(path)
    conn = sqlite3.connect(path)
    assignments = ", ".join(f"{column} = ?" for column in values)
    conn.execute(f"UPDATE events SET {assignments} WHERE seq = ?", (*values.values(), seq))
    conn.commit()
    conn.close()


def stored(path: Path, seq: int, column: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    finally:
        conn.close()


def verify(path: Path, expected_head: tuple[int, str] | None = None) -> VerifyReport:
    with Journal(path, readonly=True) as j:
        return j.verify(expected_head)


def test_an_untouched_chain_verifies_and_reports_its_head(path: Path) -> None:
    with Journal(path) as j:
        head = j.head
        rep = j.verify()
    assert rep == VerifyReport(ok=True, rows=N_ROWS, first_bad_seq=None, reason="", head_hash=head[1])
    assert rep
    assert str(rep) == f"journal intact: {N_ROWS} rows verified, head hash {head[1]}"
    assert "intact" in rep._repr_html_()


def test_an_empty_journal_verifies(tmp_path: Path) -> None:
    with Journal(tmp_path / "run.sqlite") as j:
        assert j.verify() == VerifyReport(True, 0, None, "", GENESIS)
        assert j.verify(expected_head=(0, GENESIS)).ok


def _edited(value: object, where: int, column: str) -> object:
    if isinstance(value, int):
        return value + 1 + where
    if value is None:
        return f"X{where}"
    text = str(value)
    pos = where % len(text)
    replacement = "a" if text[pos] != "a" else "b"
    if column in ("prev_hash", "hash"):
        replacement = "0" if text[pos] != "0" else "1"
    return text[:pos] + replacement + text[pos + 1 :]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, N_ROWS), column=st.sampled_from(EDITABLE), where=st.integers(0, 10_000))
def test_any_single_field_edit_is_reported_at_the_edited_row(
    template: Path, tmp_path: Path, seq: int, column: str, where: int
) -> None:
    path = Path(shutil.copy(template, Path(tempfile.mkdtemp(dir=tmp_path)) / "run.sqlite"))
    tamper_row(path, seq, **{column: _edited(stored(path, seq, column), where, column)})

    rep = verify(path)

    assert not rep.ok
    assert rep.first_bad_seq == seq
    assert rep.rows == seq - 1
    assert rep.reason.startswith(f"row {seq} (")
    assert "edited" in rep.reason


def test_an_edit_names_the_row_and_its_kind(path: Path) -> None:
    tamper(path, "UPDATE events SET payload = replace(payload, '2650.10', '2650.20') WHERE seq = 6")

    rep = verify(path)

    assert rep.reason == "row 6 (OrderFilled): hash mismatch - the row was edited after it was written"
    assert str(rep).startswith("journal BROKEN at row 6: row 6 (OrderFilled): hash mismatch")
    assert "BROKEN" in rep._repr_html_()
    assert not rep


@pytest.mark.parametrize("deleted", [1, 5, N_ROWS - 1])
def test_a_deleted_row_is_reported_as_missing(path: Path, deleted: int) -> None:
    tamper(path, f"DELETE FROM events WHERE seq = {deleted}")

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq, rep.rows) == (False, deleted, deleted - 1)
    assert f"row {deleted} is missing" in rep.reason


def test_swapped_rows_are_reported_at_the_first_of_them(path: Path) -> None:
    tamper(
        path,
        "UPDATE events SET seq = -3 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = 4",
        "UPDATE events SET seq = 4 WHERE seq = -3",
    )

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq) == (False, 3)


def test_a_deleted_row_hidden_by_renumbering_is_still_found(path: Path) -> None:
    statements = ["DELETE FROM events WHERE seq = 7"]
    statements += [f"UPDATE events SET seq = {seq - 1} WHERE seq = {seq}" for seq in range(8, N_ROWS + 1)]
    tamper(path, *statements)

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq) == (False, 7)


def _rehash(path: Path, seq: int, prev: str | None = None) -> str:
    conn = sqlite3.connect(path)
    fields = conn.execute(
        "SELECT seq, ts_event, ts_init, mono_ns, kind, order_id, ticket_id, venue, instrument, payload, "
        "prev_hash FROM events WHERE seq = ?",
        (seq,),
    ).fetchone()
    conn.close()
    fields = (*fields[:10], fields[10] if prev is None else prev)
    digest = row_hash(*fields)
    tamper_row(path, seq, prev_hash=fields[10], hash=digest)
    return digest


def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(path: Path) -> None:
    tamper(path, "UPDATE events SET payload = replace(payload, '2650.10', '9999.99') WHERE seq = 5")
    _rehash(path, 5)

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq, rep.rows) == (False, 6, 5)
    assert "does not link to row 5" in rep.reason


def test_a_whole_rewritten_tail_is_found_against_the_kept_head(path: Path) -> None:
    kept = verify(path)
    tamper(path, "UPDATE events SET payload = replace(payload, '2650.10', '9999.99') WHERE seq = 5")
    prev = _rehash(path, 5)
    for seq in range(6, N_ROWS + 1):
        prev = _rehash(path, seq, prev)

    assert verify(path).ok
    rep = verify(path, expected_head=(kept.rows, kept.head_hash))
    assert (rep.ok, rep.first_bad_seq) == (False, N_ROWS)
    assert "rewritten at or before" in rep.reason


def test_a_truncated_tail_is_found_only_against_the_kept_head(path: Path) -> None:
    with Journal(path, readonly=True) as j:
        kept = j.head
    tamper(path, f"DELETE FROM events WHERE seq > {N_ROWS - 3}")

    assert verify(path).ok
    rep = verify(path, expected_head=kept)
    assert (rep.ok, rep.first_bad_seq, rep.rows) == (False, N_ROWS - 2, N_ROWS - 3)
    assert "cut off" in rep.reason


def test_a_head_kept_earlier_still_verifies_after_more_appends(path: Path) -> None:
    with Journal(path) as j:
        kept = j.head
        j.append("OrderCanceled", ts_event=1, ts_init=1, mono_ns=1, payload={})
        assert j.verify(expected_head=kept).ok
        assert not j.verify(expected_head=(0, "f" * 64)).ok


@pytest.mark.parametrize(
    "bad", [(1,), ("1", GENESIS), (-1, GENESIS), (1, "xyz"), (1, "F" * 64), "not a pair"]
)
def test_a_malformed_expected_head_is_refused(path: Path, bad: object) -> None:
    with Journal(path, readonly=True) as j, pytest.raises(ValueError, match="expected_head"):
        j.verify(expected_head=bad)  # type: ignore[arg-type]


def test_update_and_delete_are_refused_by_the_journal_triggers(path: Path) -> None:
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET kind = 'X' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events WHERE seq = 1")
    conn.close()
    assert verify(path).ok


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"ticket_id": ""}, "an id holds ''"),
        ({"ticket_id": b""}, "an id holds b''"),
        ({"order_id": "C-1-1\x1fTK-1", "ticket_id": None}, "separator"),
    ],
)
def test_edits_that_would_hash_like_the_original_are_still_found(
    path: Path, values: dict[str, object], words: str
) -> None:
    # Row 4 holds order_id C-1-1 and ticket_id TK-1; an absent id hashes as an empty one.
    tamper_row(path, 4, **values)

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq) == (False, 4)
    assert words in rep.reason


def test_undecodable_text_is_reported_as_the_bad_row_and_reads_say_corrupt(path: Path) -> None:
    tamper(path, "UPDATE events SET payload = CAST(X'7B22FF227D' AS TEXT) WHERE seq = 4")

    rep = verify(path)

    assert (rep.ok, rep.first_bad_seq, rep.rows) == (False, 4, 3)
    assert "cannot be read" in rep.reason
    with Journal(path, readonly=True) as j, pytest.raises(CorruptJournal, match="verify"):
        j.timeline("C-1-1")
