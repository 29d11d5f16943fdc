"""A long append_many is chained and inserted a slice at a time: the same rows, all or nothing.

A write of more than one slice chains the next slice on a helper thread ("journal-chain") while
the slice before is inserted by one multi-row statement; every way out of the write stops it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from cmc_lab.journal import Journal, JournalReadOnly, JournalRow, JournalWriteError
from cmc_lab.journal import store as journal_store
from cmc_lab.journal.chain import GENESIS, chained_slices, encode_payload, row_hash
from cmc_lab.journal.rows import inserts

LONG = 2 * journal_store._BATCH + 50  # three slices, the last one short


def fill(i: int) -> JournalRow:
    return JournalRow(
        "OrderFilled",
        ts_event=1_000 + i,
        ts_init=2_000 + i,
        mono_ns=10 * i,
        payload={"i": i, "last_px": "2650.1", "side": "buy"},
        order_id=f"C-1-{i // 10}",
        ticket_id=f"TK-{i // 20}" if i % 3 else None,
        venue="COMEX",
        instrument="COMEX.GC",
    )


def stored(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "run.sqlite") as j:
        yield j


def test_a_write_of_several_slices_stores_the_rows_single_appends_store(tmp_path: Path) -> None:
    with Journal(tmp_path / "many.sqlite") as many, Journal(tmp_path / "one.sqlite") as one:
        assert many.append_many(fill(i) for i in range(LONG)) == LONG
        for i in range(LONG):
            fields = fill(i)._asdict()
            one.append(fields.pop("kind"), **fields)
        assert many.head == one.head
        assert many.verify().ok
    assert stored(tmp_path / "many.sqlite") == stored(tmp_path / "one.sqlite")


def test_a_bad_row_in_a_later_slice_refuses_the_whole_write_naming_its_place(journal: Journal) -> None:
    journal.append_many(fill(i) for i in range(3))
    head = journal.head
    rows = [fill(i) for i in range(3, 3 + LONG)]
    rows[-10] = rows[-10]._replace(payload={"when": object()})

    with pytest.raises(
        TypeError, match=rf"journal row {LONG - 9} of this write was refused \(nothing was written\)"
    ):
        journal.append_many(rows)

    assert journal.head == head
    assert journal.append_many(fill(i) for i in range(3, 6)) == 6
    assert journal.verify().ok


def test_a_generator_interrupted_after_the_first_slice_rolls_back(journal: Journal) -> None:
    head = journal.head

    def interrupted() -> Iterator[JournalRow]:
        yield from (fill(i) for i in range(journal_store._BATCH + 5))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        journal.append_many(interrupted())

    assert journal.head == head
    assert journal.verify().ok


def helpers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "journal-chain"]


def reference(rows: list[JournalRow]) -> list[object]:
    """The stored values of ``rows`` from genesis by row_hash alone (the verifier's rule), flat."""
    flat: list[object] = []
    prev = GENESIS
    for seq, (kind, ts_event, ts_init, mono, payload, *ids) in enumerate(rows, 1):
        text = encode_payload(payload)
        digest = row_hash(seq, ts_event, ts_init, mono, kind, *ids, text, prev)
        flat += [seq, ts_event, ts_init, mono, kind, *(i or None for i in ids), text, prev, digest]
        prev = digest
    return flat


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 511, 512, 513, 1000])
def test_slices_chained_ahead_hold_the_rows_row_hash_gives_in_order(count: int) -> None:
    rows = [fill(i) for i in range(count)]
    tip = [(0, GENESIS)]

    slices = list(chained_slices(iter(rows), tip, 256))

    assert [len(flat) // 12 for flat in slices] == [256] * (count // 256) + (
        [count % 256] if count % 256 else []
    )
    flat = [value for part in slices for value in part]
    assert flat == reference(rows)
    assert tip[0] == ((count, flat[-1]) if count else (0, GENESIS))
    assert not helpers_alive()


def test_inserts_split_a_slice_into_power_of_two_statements_within_the_limit() -> None:
    flat = list(range(12 * 300))

    parts = list(inserts(flat, 256))

    assert [len(values) // 12 for _, values in parts] == [256, 32, 8, 4]
    assert [value for _, values in parts for value in values] == flat
    assert [len(values) // 12 for _, values in inserts(flat[: 12 * 100], 64)] == [64, 32, 4]


def test_a_generator_failing_while_a_slice_is_chained_ahead_rolls_back_and_stops_the_helper(
    journal: Journal,
) -> None:
    head = journal.head

    def interrupted() -> Iterator[JournalRow]:
        yield from (fill(i) for i in range(3 * journal_store._BATCH + 5))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        journal.append_many(interrupted())

    assert journal.head == head
    assert not helpers_alive()
    assert journal.verify().ok


def test_a_long_write_sqlite_refuses_raises_its_error_and_stops_the_helper(journal: Journal) -> None:
    journal.append_many(fill(i) for i in range(3))
    head = journal.head
    conn = journal._conn
    assert conn is not None
    conn.execute("PRAGMA query_only = ON")  # fails the first slice's insert while the next is chained

    with pytest.raises(JournalReadOnly):
        journal.append_many(fill(i) for i in range(3, 3 + LONG))

    assert not helpers_alive()
    conn.execute("PRAGMA query_only = OFF")
    assert journal.head == head
    assert journal.append_many(fill(i) for i in range(3, 3 + LONG)) == 3 + LONG
    assert journal.verify().ok


def test_a_disk_that_fills_in_a_later_slice_keeps_nothing_of_the_write(journal: Journal) -> None:
    journal.append_many(fill(i) for i in range(3))
    head = journal.head
    conn = journal._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 8}")  # room for a slice or so, not for three

    with pytest.raises(JournalWriteError, match="nothing of this write was kept"):
        journal.append_many(fill(i) for i in range(3, 3 + 4 * journal_store._BATCH))

    assert not helpers_alive()
    assert journal.head == head
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert journal.verify().ok


@pytest.mark.parametrize("count", [1, 2, 3, journal_store._FEW - 1, journal_store._FEW, 300])
@pytest.mark.parametrize("container", [list, tuple, iter])
def test_a_write_of_any_length_stores_the_rows_row_hash_gives(
    tmp_path: Path, count: int, container: Callable[[list[JournalRow]], Iterable[JournalRow]]
) -> None:
    rows = [fill(i) for i in range(count)]
    path = tmp_path / "run.sqlite"
    with Journal(path) as journal:
        assert journal.append_many(container(rows)) == count
    flat = reference(rows)
    assert stored(path) == [tuple(flat[i : i + 12]) for i in range(0, len(flat), 12)]
