"""Retention: old journal rows rotate into read-only archives that still verify as one chain."""

from __future__ import annotations

import json
import sqlite3
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cmc_lab as cmc
from cmc_lab.journal import Journal, JournalReadOnly, JournalRow
from cmc_lab.journal.archive import ROTATED, RotationError, rotate, rotations, verify_chain
from cmc_lab.journal.audit import export_pack
from cmc_lab.journal.pack import verify_pack
from cmc_lab.journal.receipts import read_receipt

N = 30


def rows(n: int, first: int = 0) -> list[JournalRow]:
    kinds = ("OrderInitialized", "OrderSubmitted", "OrderAccepted")
    return [
        JournalRow(
            kinds[i % 3],
            1_795_528_800_000_000_000 + i,
            1_795_528_800_000_000_000 + i,
            i * 100,
            {"qty": 1, "price": "4100.10", "instrument_id": "COMEX.GC", "side": "buy"},
            order_id=f"r1-{i // 3:06d}",
            venue="COMEX",
            instrument="COMEX.GC",
        )
        for i in range(first, first + n)
    ]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "run.sqlite")
    j.append_many(rows(N))
    yield j
    j.close()


def tamper(path: Path, *statements: str) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    conn = sqlite3.connect(path)
    for trigger in ("events_no_update", "events_no_delete", "events_no_insert"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_rotation_moves_old_rows_into_a_read_only_archive_that_chains_on(journal: Journal) -> None:
    head = journal.head

    rot = rotate(journal, 20)

    assert (rot.first_seq, rot.last_seq, rot.rows, rot.seq) == (1, 20, 20, N + 1)
    assert rot.archive == journal.path.with_name("run.archive-000000001-000000020.sqlite")
    assert stat.S_IMODE(rot.archive.stat().st_mode) == 0o400
    with Journal(rot.archive, readonly=True) as archive:
        assert [r["seq"] for r in archive.rows()] == list(range(1, 21))
        assert archive.head == (20, rot.head_hash) and archive.verify().ok
    assert [r["seq"] for r in journal.rows()] == [*range(21, N + 1), N + 1]
    (last,) = journal.rows(kinds=[ROTATED])
    assert last["prev_hash"] == head[1] and last["payload"]["sha256"] == rot.sha256
    assert last["payload"]["archive"] == str(rot.archive) and last["payload"]["head_hash"] == rot.head_hash
    live = journal.verify()
    assert live.ok and live.rows == N + 1 - 20 and live.head_hash == journal.head[1]
    assert rotations(journal) == [rot.__class__(rot.archive, 1, 20, rot.head_hash, rot.sha256, 0)]

    report = verify_chain([journal.path, rot.archive])  # any order: archives first, live last
    assert report.ok and report.rows == N + 1 and report.head_hash == journal.head[1]
    assert [s[1:] for s in report.segments] == [(1, 20), (21, N + 1)]
    assert str(report).startswith("chain intact across 2 file(s)")


def test_the_live_journal_stays_append_only_and_keeps_its_chain(journal: Journal) -> None:
    rotate(journal, 10)
    journal.append_many(rows(5, N))

    conn = sqlite3.connect(journal.path)
    for statement in ("UPDATE events SET kind = 'x' WHERE seq = 12", "DELETE FROM events WHERE seq = 12"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()
    assert journal.verify().ok
    (archive,) = [r.archive for r in rotations(journal)]
    assert verify_chain([archive, journal.path]).ok


def test_an_archive_refuses_writes_even_where_file_modes_do_not_bind(journal: Journal) -> None:
    rot = rotate(journal, 10)
    rot.archive.chmod(stat.S_IRUSR | stat.S_IWUSR)
    conn = sqlite3.connect(rot.archive)
    with pytest.raises(sqlite3.IntegrityError, match="archive is read-only"):
        conn.execute("INSERT INTO events SELECT * FROM events WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")
    conn.close()
    with pytest.raises(JournalReadOnly, match="read-only archive of journal"):
        Journal(rot.archive)


def test_two_rotations_verify_as_one_chain_and_a_missing_archive_is_named(journal: Journal) -> None:
    first = rotate(journal, 10)
    journal.append_many(rows(10, N))
    second = rotate(journal, 25)

    assert (second.first_seq, second.last_seq) == (11, 25)
    assert verify_chain([second.archive, first.archive, journal.path]).ok

    gap = verify_chain([second.archive, journal.path])
    assert (gap.ok, gap.first_bad_seq, gap.path) == (False, 1, second.archive)
    assert "row 1 is missing" in gap.reason
    with Journal(second.archive, readonly=True) as alone:
        assert alone.verify().ok, "an archive verifies alone from the row before its first"


def test_an_edited_archive_row_is_named_with_its_file(journal: Journal) -> None:
    rot = rotate(journal, 20)
    tamper(rot.archive, "UPDATE events SET payload = replace(payload, '4100.10', '4100.20') WHERE seq = 7")

    report = verify_chain([rot.archive, journal.path])

    assert (report.ok, report.first_bad_seq, report.path) == (False, 1, rot.archive)
    assert "differs from the file rotated out" in report.reason
    without_live = verify_chain([rot.archive])
    assert (without_live.ok, without_live.first_bad_seq, without_live.path) == (False, 7, rot.archive)
    assert "row 7 (OrderInitialized): hash mismatch" in without_live.reason


def test_rows_cut_from_the_live_start_are_found_even_with_the_meta_rewritten(journal: Journal) -> None:
    rot = rotate(journal, 10)
    row = sqlite3.connect(journal.path).execute("SELECT hash FROM events WHERE seq = 14").fetchone()[0]
    tamper(
        journal.path,
        "DELETE FROM events WHERE seq <= 14",
        f"UPDATE meta SET value = '14:{row}' WHERE key = 'chain_anchor'",
    )
    with Journal(journal.path, readonly=True) as cut:
        report = cut.verify()
    assert (report.ok, report.first_bad_seq) == (False, 15)
    assert "rows were cut from the start" in report.reason
    broken = verify_chain([rot.archive, journal.path])
    assert (broken.ok, broken.first_bad_seq, broken.path) == (False, 11, journal.path)


def test_a_rotation_that_cannot_be_done_changes_nothing(journal: Journal, tmp_path: Path) -> None:
    head = journal.head
    for upto in (0, N + 1):
        with pytest.raises(RotationError, match="outside the live rows"):
            rotate(journal, upto)
    taken = tmp_path / "taken.sqlite"
    taken.write_bytes(b"")
    with pytest.raises(RotationError, match="exists"):
        rotate(journal, 5, taken)
    with pytest.raises(RotationError, match="in-memory"):
        rotate(Journal(":memory:"), 1)
    tamper(journal.path, "UPDATE events SET payload = replace(payload, '4100.10', '1.00') WHERE seq = 3")
    with pytest.raises(RotationError, match="does not verify up to row 10"):
        rotate(journal, 10)
    assert sorted(p.name for p in tmp_path.glob("*archive*")) == []
    assert journal.head == head and len(list(journal.rows())) == N


def test_a_rotated_journal_still_gives_receipts_and_audit_packs(journal: Journal, tmp_path: Path) -> None:
    rot = rotate(journal, 12)
    journal.append_many(rows(6, N))

    receipt = read_receipt(journal, "r1-000005")
    assert list(receipt.frame["seq"]) == [16, 17, 18]
    pack = export_pack(journal, tmp_path / "after.zip", progress=False)
    with zipfile.ZipFile(pack) as zf:
        chain = json.loads(zf.read("chain.json"))
    assert chain["starts_after"] == {"seq": 12, "hash": rot.head_hash}
    assert chain["rotations"][0]["sha256"] == rot.sha256 and chain["verify"]["ok"]
    assert verify_pack(pack).ok
    with pytest.raises(ValueError, match="rotated into an archive"):
        journal.verify(expected_head=(5, "ab" * 32))


def test_an_engine_keeps_trading_across_a_rotation(
    make_engine: Callable[..., cmc.Engine], tmp_path: Path
) -> None:
    eng = make_engine(journal=tmp_path / "live.sqlite")
    eng.submit("COMEX.GC", "buy", 1, price=4177.4).wait(timeout=5)
    rot = rotate(eng.journal, eng.journal.head[0])
    order = eng.submit("COMEX.GC", "sell", 1, price=4022.6)
    order.wait(timeout=5)

    assert eng.receipt(order).outcome == "FILLED"
    assert verify_chain([rot.archive, eng.journal.path]).ok
