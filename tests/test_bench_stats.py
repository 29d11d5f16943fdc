"""The one quantile function of the benchmarks and scenarios, and its latency summary."""

from __future__ import annotations

import doctest
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmc_lab.bench import stats
from cmc_lab.bench.stats import percentiles, quantile


def test_p99_of_one_to_a_hundred_interpolates_below_the_maximum() -> None:
    samples = list(range(1, 101))
    assert quantile(samples, 0.99) == pytest.approx(99.01)
    assert quantile(samples, 0.5) == 50.5
    assert quantile(samples, 0.0) == 1 and quantile(samples, 1.0) == 100


def test_quantile_ignores_the_order_of_the_samples() -> None:
    assert quantile([5, 1, 4, 2, 3], 0.25) == 2.0


@given(st.lists(st.floats(-1e9, 1e9), min_size=2, max_size=60), st.integers(1, 99))
def test_quantile_is_statistics_quantiles_inclusive(samples: list[float], percent: int) -> None:
    expected = statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]
    assert quantile(samples, percent / 100) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_quantile_of_no_samples_or_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match=r"must be between 0 and 1 \(0.99 is p99\)"):
        quantile([1.0], 99)


def test_percentiles_summarises_nanoseconds_in_microseconds() -> None:
    summary = percentiles([1_000 * i for i in range(1, 101)])
    assert summary["n"] == 100
    assert summary["p50_us"] == 50.5
    assert summary["p99_us"] == pytest.approx(99.01)
    assert summary["max_us"] == 100.0
    assert summary["p99_us"] == float(np.quantile(np.arange(1, 101) * 1_000, 0.99)) / 1e3


def test_percentiles_of_no_samples_is_zero_with_n_zero() -> None:
    assert percentiles([]) == {"n": 0, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0}


def test_docstring_examples_run() -> None:
    result = doctest.testmod(stats)
    assert result.attempted > 0
    assert result.failed == 0
