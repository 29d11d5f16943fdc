"""A long append_many is chained and inserted a slice at a time: the same rows, all or nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmc_lab.journal import Journal, JournalRow
from cmc_lab.journal import store as journal_store

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
