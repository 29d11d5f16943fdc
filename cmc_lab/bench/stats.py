"""Sample statistics for the benchmarks and the scenarios: one quantile function, one latency summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 <= q <= 1) of ``samples``, by linear interpolation between order statistics.

    numpy's default method (``"linear"``, Hyndman & Fan type 7, the same as
    ``statistics.quantiles(method="inclusive")``): the sorted samples sit at positions
    ``0 .. n-1`` and the quantile is read at position ``q * (n - 1)``. So p50 is the median and
    p99 of fewer than 101 samples lies below their maximum.

    Examples
    --------
    >>> quantile(range(1, 101), 0.99)
    99.01
    >>> quantile([3, 1, 2], 0.5)
    2.0
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile q = {q!r} must be between 0 and 1 (0.99 is p99)")
    if len(samples) == 0:
        raise ValueError("quantile of no samples; measure at least one")
    return float(np.quantile(np.asarray(samples, dtype=np.float64), q))


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    """``n``, p50, p99 and max of nanosecond samples, the latencies in microseconds (all 0 when empty).

    Examples
    --------
    >>> percentiles([1_000 * i for i in range(1, 101)])
    {'n': 100, 'p50_us': 50.5, 'p99_us': 99.01, 'max_us': 100.0}
    """
    if len(samples_ns) == 0:
        return {"n": 0, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0}
    return {
        "n": len(samples_ns),
        "p50_us": quantile(samples_ns, 0.5) / 1e3,
        "p99_us": quantile(samples_ns, 0.99) / 1e3,
        "max_us": max(samples_ns) / 1e3,
    }
