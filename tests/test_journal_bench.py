"""Journal benchmarks: each runs at a tiny size and reports sane figures."""

from __future__ import annotations

from pathlib import Path

from cmc_lab.bench import journal as bench


def test_append_rate_compares_journal_and_raw_inserts(tmp_path: Path) -> None:
    result = bench.append_rate(300, tmpdir=tmp_path)

    assert result["journal_rows_per_s"] > 0 and result["raw_rows_per_s"] > 0
    assert result["ratio"] == result["journal_rows_per_s"] / result["raw_rows_per_s"]


def test_append_latency_reports_percentiles_in_microseconds(tmp_path: Path) -> None:
    result = bench.append_latency(30, tmpdir=tmp_path)

    assert result["n"] == 30
    assert 0 < result["p50_us"] <= result["p99_us"]


def test_timeline_latency_looks_up_orders_that_exist(tmp_path: Path) -> None:
    result = bench.timeline_latency(1_000, n_lookups=10, tmpdir=tmp_path)

    assert result["n_events"] == 1_000
    assert result["events_per_lookup"] == 10
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["build_s"] > 0


def test_timeline_benchmark_orders_have_ten_events_each(tmp_path: Path) -> None:
    window = 1_000
    orders = [bench._order_of(i, window) for i in range(3 * window)]

    assert len(set(orders)) == 300
    assert all(orders.count(order) == 10 for order in set(orders))
