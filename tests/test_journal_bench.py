"""Journal benchmarks: hand-computed figures from a stopwatch the test drives, and the work they time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pytest

from cmc_lab.bench import journal as bench
from cmc_lab.journal import Journal

MS = 1_000_000  # ns
US = 1_000  # ns


class Stopwatch:
    """Reads the given times (ns), one per call; says if the benchmark read more or fewer."""

    def __init__(self, durations_ns: Iterable[int]) -> None:
        self.times: list[int] = []
        now = 0
        for duration in durations_ns:  # each timed section: a start and a stop
            self.times += [now, now + duration]
            now += duration + 7 * MS  # time passes between sections too; it must not count
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.times[self.reads - 1]

    def all_read(self) -> bool:
        return self.reads == len(self.times)


def rows_of(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()


def test_append_rate_is_rows_over_the_median_time_of_three_runs_per_side(tmp_path: Path) -> None:
    # runs alternate raw, journal: raw takes 300, 100, 200 ms; the journal 600, 900, 300 ms
    watch = Stopwatch([300 * MS, 600 * MS, 100 * MS, 900 * MS, 200 * MS, 300 * MS])
    result = bench.append_rate(300, tmpdir=tmp_path, stopwatch=watch)

    assert watch.all_read(), "each of the six runs is timed once"
    assert result == pytest.approx(
        {"raw_rows_per_s": 1500.0, "journal_rows_per_s": 500.0, "ratio": 1 / 3}
    )  # 300 rows in the medians, 200 ms and 600 ms


def test_append_rate_times_the_same_rows_on_both_sides(tmp_path: Path) -> None:
    result = bench.append_rate(300, tmpdir=tmp_path)

    for attempt in range(3):
        journaled = rows_of(tmp_path / f"journal-{attempt}.sqlite")
        assert len(journaled) == 300
        assert rows_of(tmp_path / f"raw-{attempt}.sqlite") == journaled, (
            "raw and journal wrote different rows"
        )
        with Journal(tmp_path / f"journal-{attempt}.sqlite", readonly=True) as journal:
            assert journal.verify().ok
    assert result["journal_rows_per_s"] > 0 and result["raw_rows_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["journal_rows_per_s"] / result["raw_rows_per_s"])


def test_append_latency_reports_hand_computed_percentiles_in_microseconds(tmp_path: Path) -> None:
    watch = Stopwatch([10 * US, 40 * US, 20 * US, 30 * US])
    result = bench.append_latency(4, tmpdir=tmp_path, stopwatch=watch)

    assert watch.all_read(), "each append is timed once"
    # sorted 10, 20, 30, 40 us: p50 halfway between 20 and 30, p99 at 0.99 * 3 = 2.97 of the way
    assert result == pytest.approx({"n": 4, "p50_us": 25.0, "p99_us": 39.7, "max_us": 40.0})
    with Journal(tmp_path / "latency.sqlite", readonly=True) as journal:
        assert len(list(journal.rows())) == 4, "every timed append was committed"


def test_append_latency_percentiles_are_ordered(tmp_path: Path) -> None:
    result = bench.append_latency(30, tmpdir=tmp_path)

    assert result["n"] == 30
    assert 0 < result["p50_us"] <= result["p99_us"] <= result["max_us"]


def test_timeline_latency_reports_hand_computed_figures_in_their_units(tmp_path: Path) -> None:
    # the build takes 2 s, then four lookups take 4, 1, 3 and 2 ms
    watch = Stopwatch([2_000 * MS, 4 * MS, 1 * MS, 3 * MS, 2 * MS])
    result = bench.timeline_latency(1_000, n_lookups=4, tmpdir=tmp_path, stopwatch=watch)

    assert watch.all_read()
    assert result == pytest.approx(
        {"n_events": 1_000, "events_per_lookup": 10.0, "p50_ms": 2.5, "p99_ms": 3.97, "build_s": 2.0}
    )


def test_timeline_latency_builds_orders_of_ten_events_and_finds_them_all(tmp_path: Path) -> None:
    result = bench.timeline_latency(1_000, n_lookups=10, tmpdir=tmp_path)

    with sqlite3.connect(tmp_path / "timeline.sqlite") as conn:
        per_order = conn.execute("SELECT COUNT(*) FROM events GROUP BY order_id").fetchall()
    assert len(per_order) == 100 and {n for (n,) in per_order} == {10}
    assert result["n_events"] == 1_000
    assert result["events_per_lookup"] == 10, "each lookup finds its order's ten events"
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["build_s"] > 0
