"""Journal: appending, reading back, timelines, reopening and concurrent use."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cmc_lab.core.model import (
    OrderAccepted,
    OrderFilled,
    OrderInitialized,
    OrderSubmitted,
    Side,
    TimeInForce,
    VenueConnected,
    event_from_payload,
)
from cmc_lab.journal import GENESIS, Journal, JournalClosed, JournalRow
from cmc_lab.journal import store as journal_store

BASE_COLUMNS = [
    "seq",
    "ts_event",
    "ts_init",
    "mono_ns",
    "kind",
    "order_id",
    "ticket_id",
    "venue",
    "instrument",
    "hop_ns",
    "elapsed_ns",
]


def row(
    i: int, order_id: str | None = "C-1-1", ticket_id: str | None = None, **payload: object
) -> JournalRow:
    return JournalRow(
        "OrderFilled",
        ts_event=1_000 + i,
        ts_init=2_000 + i,
        mono_ns=10 * i,
        payload={"i": i, **payload},
        order_id=order_id,
        ticket_id=ticket_id,
        venue="COMEX",
        instrument="COMEX.GC",
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "run.sqlite") as j:
        yield j


def test_append_returns_consecutive_seqs_and_reads_back_every_field(journal: Journal) -> None:
    first = journal.append(
        "OrderSubmitted",
        ts_event=11,
        ts_init=12,
        mono_ns=13,
        payload={"qty": 3, "side": "buy"},
        order_id="C-1-1",
        ticket_id="TK-1",
        venue="SHFE",
        instrument="SHFE.au",
    )
    second = journal.append("OrderDenied", ts_event=21, ts_init=22, mono_ns=23, payload={"reason": "halted"})

    assert (first, second) == (1, 2)
    rows = list(journal.rows())
    assert {k: rows[0][k] for k in ("seq", "ts_event", "ts_init", "mono_ns", "kind")} == {
        "seq": 1,
        "ts_event": 11,
        "ts_init": 12,
        "mono_ns": 13,
        "kind": "OrderSubmitted",
    }
    assert (rows[0]["order_id"], rows[0]["ticket_id"], rows[0]["venue"], rows[0]["instrument"]) == (
        "C-1-1",
        "TK-1",
        "SHFE",
        "SHFE.au",
    )
    assert rows[0]["payload"] == {"qty": 3, "side": "buy"}
    assert rows[0]["prev_hash"] == GENESIS
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[1]["order_id"] is None
    assert journal.head == (2, rows[1]["hash"])


def test_empty_journal_head_is_genesis_and_frames_are_empty_with_base_columns(journal: Journal) -> None:
    assert journal.head == (0, GENESIS)
    frame = journal.timeline("C-404")
    assert list(frame.columns) == BASE_COLUMNS
    assert frame.empty
    assert str(frame["seq"].dtype) == "int64"
    assert list(journal.tail().columns) == BASE_COLUMNS
    assert list(journal.rows()) == []


def test_append_many_writes_all_rows_and_returns_the_last_seq(journal: Journal) -> None:
    assert journal.append_many(row(i) for i in range(100)) == 100
    assert journal.append_many([]) == 100
    assert journal.append_many([row(100)]) == 101
    assert journal.verify().ok


def test_payload_is_stored_as_canonical_json(journal: Journal, tmp_path: Path) -> None:
    journal.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={"b": 1, "a": "é", "c": [1, None]})
    stored = sqlite3.connect(tmp_path / "run.sqlite").execute("SELECT payload FROM events").fetchone()[0]
    assert stored == '{"a":"é","b":1,"c":[1,null]}'


def test_decimal_payloads_round_trip_as_exact_strings(journal: Journal) -> None:
    prices = {"last_px": Decimal("2650.10"), "tiny": Decimal("1E-12"), "big": Decimal("123456789.123456789")}
    journal.append("OrderFilled", ts_event=1, ts_init=1, mono_ns=1, payload=prices, order_id="C-1")

    (only,) = journal.rows()
    assert only["payload"] == {"last_px": "2650.10", "tiny": "1E-12", "big": "123456789.123456789"}
    assert Decimal(only["payload"]["last_px"]) == Decimal("2650.10")
    assert journal.timeline("C-1")["last_px"].tolist() == ["2650.10"]


def test_empty_ids_are_stored_as_absent(journal: Journal) -> None:
    journal.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={}, order_id="", venue="", ticket_id="")
    (only,) = journal.rows()
    assert (only["order_id"], only["ticket_id"], only["venue"]) == (None, None, None)
    assert journal.verify().ok


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"ts_event": 1.5}, TypeError, "ints"),
        ({"mono_ns": None}, TypeError, "ints"),
        ({"kind": ""}, TypeError, "non-empty str"),
        ({"payload": ["not", "a", "dict"]}, TypeError, "payload a dict"),
        ({"payload": {"when": object()}}, TypeError, "cannot be journaled"),
        ({"payload": {"px": float("nan")}}, ValueError, "not JSON compliant"),
        ({"order_id": "C-1\x1fX"}, ValueError, "control character"),
    ],
)
def test_a_row_that_cannot_be_journaled_is_refused_with_its_reason(
    journal: Journal, changes: dict[str, object], error: type[Exception], message: str
) -> None:
    fields: dict[str, object] = {"ts_event": 1, "ts_init": 1, "mono_ns": 1, "payload": {}, "kind": "X"}
    fields.update(changes)
    kind = fields.pop("kind")
    with pytest.raises(error, match=message):
        journal.append(kind, **fields)  # type: ignore[arg-type]
    assert journal.head == (0, GENESIS)


def test_reopen_continues_the_chain_and_counts_a_new_run(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as first:
        first.append_many(row(i) for i in range(3))
        head = first.head
        assert first.run_id == 1

    with Journal(path) as second:
        assert second.run_id == 2
        assert second.head == head
        assert second.append("OrderCanceled", ts_event=9, ts_init=9, mono_ns=9, payload={}) == 4
        fourth = list(second.rows())[-1]
        assert fourth["prev_hash"] == head[1]
        assert second.verify().ok

    with Journal(path, readonly=True) as reader:
        assert reader.run_id == 2
    with Journal(path) as third:
        assert third.run_id == 3


def test_memory_journal_writes_reads_and_verifies() -> None:
    with Journal(":memory:") as j:
        j.append_many(row(i, order_id=f"C-{i % 2}") for i in range(6))
        assert j.run_id == 1
        assert j.timeline("C-1")["seq"].tolist() == [2, 4, 6]
        assert j.verify().ok
        assert "rows" in repr(j)


def test_timeline_has_base_columns_then_payload_fields_and_hops(journal: Journal) -> None:
    for i, mono in enumerate((100, 160, 400)):
        journal.append(
            ("OrderSubmitted", "OrderAccepted", "OrderFilled")[i],
            ts_event=50 + i,
            ts_init=60 + i,
            mono_ns=mono,
            payload={"ts_event": 50 + i, "step": i, **({"last_px": "2650.1"} if i == 2 else {})},
            order_id="C-1-7",
            venue="COMEX",
            instrument="COMEX.GC",
        )
    journal.append("OrderSubmitted", ts_event=1, ts_init=1, mono_ns=999, payload={}, order_id="C-1-8")

    frame = journal.timeline("C-1-7")

    assert list(frame.columns) == [*BASE_COLUMNS, "step", "last_px"]
    assert frame["seq"].tolist() == [1, 2, 3]
    assert frame["hop_ns"].tolist() == [0, 60, 240]
    assert frame["elapsed_ns"].tolist() == [0, 60, 300]
    assert frame["kind"].tolist() == ["OrderSubmitted", "OrderAccepted", "OrderFilled"]
    assert frame["last_px"].isna().tolist() == [True, True, False]
    assert frame["last_px"].iloc[2] == "2650.1"
    assert frame["ts_event"].tolist() == [50, 51, 52]


def test_timeline_of_a_ticket_gathers_both_legs_in_journal_order(journal: Journal) -> None:
    journal.append_many(
        [
            row(0, order_id="C-1-1", ticket_id="TK-9"),
            row(1, order_id="C-1-5"),
            row(2, order_id="C-1-2", ticket_id="TK-9"),
            row(3, order_id=None, ticket_id="TK-9"),
            row(4, order_id="C-1-1"),
        ]
    )

    assert journal.timeline("TK-9")["seq"].tolist() == [1, 3, 4]
    assert journal.timeline("C-1-1")["seq"].tolist() == [1, 5]


def test_tail_gives_the_last_rows_oldest_first(journal: Journal) -> None:
    journal.append_many(row(i) for i in range(30))

    frame = journal.tail(5)

    assert frame["seq"].tolist() == [26, 27, 28, 29, 30]
    assert frame["hop_ns"].tolist() == [0, 10, 10, 10, 10]
    assert len(journal.tail()) == 20
    assert journal.tail(0).empty
    assert len(journal.tail(frame["seq"].iloc[0] - 24)) == 2
    with pytest.raises(ValueError, match="whole number"):
        journal.tail(-1)


def test_rows_filter_on_ts_event_window_and_kinds_across_chunks(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_store, "_ROWS_CHUNK", 3)
    journal.append_many(row(i) for i in range(20))
    journal.append("OrderDenied", ts_event=1_005, ts_init=1, mono_ns=1, payload={})

    window = [r["seq"] for r in journal.rows(since_ns=1_004, until_ns=1_013)]
    denied = [r["seq"] for r in journal.rows(kinds="OrderDenied")]
    both = [
        r["seq"] for r in journal.rows(since_ns=1_005, until_ns=1_006, kinds=["OrderDenied", "OrderFilled"])
    ]

    assert window == [5, 6, 7, 8, 9, 10, 11, 12, 13, 21]
    assert denied == [21]
    assert both == [6, 21]
    assert list(journal.rows(kinds=[])) == []
    last_fill_ts = journal.tail(2)["ts_event"].iloc[0]  # a numpy int, as a notebook would pass it
    assert [r["seq"] for r in journal.rows(since_ns=last_fill_ts - 1, kinds="OrderFilled")] == [19, 20]
    with pytest.raises(TypeError, match=r"since_ns=1\.5 is not a whole number"):
        list(journal.rows(since_ns=1.5))  # type: ignore[arg-type]
    assert [r["seq"] for r in journal.rows()] == list(range(1, 22))


def test_record_journals_model_events_with_ids_venue_and_exact_prices(journal: Journal) -> None:
    events = [
        OrderInitialized(
            1, 2, "C-1-1", "COMEX.GC", Side.BUY, 2, Decimal("2650.1"), TimeInForce.GFD, "acc", "TK-1"
        ),
        OrderSubmitted(3, 4, "C-1-1", "COMEX.GC"),
        OrderAccepted(5, 6, "C-1-1", "COMEX.GC", "V-1"),
        OrderFilled(7, 8, "C-1-1", "COMEX.GC", "V-1", "T-1", Side.BUY, Decimal("2650.10"), 2),
    ]
    for mono, event in enumerate(events):
        journal.record(event, mono_ns=100 * mono, ticket_id="TK-1" if mono else None)
    journal.record(VenueConnected(9, 10, "SHFE", "logon"), mono_ns=500)

    frame = journal.timeline("C-1-1")
    assert frame["kind"].tolist() == ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"]
    assert set(frame["venue"]) == {"COMEX"}
    assert set(frame["ticket_id"]) == {"TK-1"}
    assert frame["last_px"].tolist()[-1] == "2650.10"
    assert frame["ts_init"].tolist() == [2, 4, 6, 8]
    rebuilt = [event_from_payload(r["kind"], r["payload"]) for r in journal.rows()]
    assert rebuilt[:4] == events
    assert list(journal.rows())[-1]["venue"] == "SHFE"


def test_close_is_idempotent_and_later_calls_say_the_journal_is_closed(tmp_path: Path) -> None:
    j = Journal(tmp_path / "run.sqlite")
    j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})
    j.timeline("C-1")
    j.close()
    j.close()

    with pytest.raises(JournalClosed, match="closed"):
        j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})
    with pytest.raises(JournalClosed):
        j.timeline("C-1")
    assert "closed" in repr(j)
    assert not (tmp_path / "run.sqlite-wal").exists()


def test_close_from_another_thread_stops_the_writer(tmp_path: Path) -> None:
    j = Journal(tmp_path / "run.sqlite")
    j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})
    closer = threading.Thread(target=j.close)
    closer.start()
    closer.join()
    with pytest.raises(JournalClosed):
        j.append("X", ts_event=1, ts_init=1, mono_ns=1, payload={})


def test_a_notebook_thread_reads_while_the_engine_thread_writes(journal: Journal) -> None:
    errors: list[BaseException] = []

    def engine() -> None:
        try:
            for i in range(300):
                journal.append_many([row(i, order_id=f"C-{i % 7}")])
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=engine)
    writer.start()
    while writer.is_alive():
        assert journal.timeline("C-3")["seq"].is_monotonic_increasing
    writer.join()

    assert not errors
    assert len(journal.timeline("C-3")) == len(range(3, 300, 7))
    assert journal.verify().ok


def test_two_writers_on_one_file_extend_a_single_chain(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as a, Journal(path) as b:
        assert (a.run_id, b.run_id) == (1, 2)
        seqs = [
            (a if i % 2 else b).append("X", ts_event=i, ts_init=i, mono_ns=i, payload={"i": i})
            for i in range(10)
        ]
        assert seqs == list(range(1, 11))
        assert a.verify().ok
        assert a.head == b.head


def test_payload_ints_beyond_64_bits_read_back_exactly(tmp_path):
    """The fast reader (orjson) would read a 30-digit int as a float: such rows go to the exact one."""
    big = 123456789012345678901234567890
    with Journal(tmp_path / "j.sqlite") as j:
        j.append("Note", ts_event=1, ts_init=1, mono_ns=1, payload={"big": big, "small": 7, "id": "x" * 3})
        (row,) = list(j.rows())
    assert row["payload"] == {"big": big, "small": 7, "id": "xxx"}
    assert type(row["payload"]["big"]) is int
