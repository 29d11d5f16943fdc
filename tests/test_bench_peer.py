"""The peer comparison's plumbing: the exported quotes are the replayed ones, a missing peer says so."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cmc_lab.bench.peer import PEER_LEGS, compare, export_quotes, peer_script
from cmc_lab.data.synthetic import synthetic_quotes


def test_export_writes_each_legs_quotes_with_integer_nanosecond_stamps(tmp_path: Path) -> None:
    ds = synthetic_quotes(rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="1min")
    count = export_quotes(ds, tmp_path / "q.npz")
    data = np.load(tmp_path / "q.npz")
    assert count == 3 * 600  # three legs quoting at 10 a second for a minute
    for name, iid in PEER_LEGS.items():
        stamps = data[f"{name}_ts"]
        assert stamps.dtype == np.int64
        assert stamps[0] == np.datetime64("2026-11-24T14:00:00.1", "ns").astype(np.int64)
        assert np.all(np.diff(stamps) > 0)
        np.testing.assert_array_equal(data[f"{name}_bid"], ds["bid"].sel(instrument=iid).values)


def test_a_peer_without_nautilus_trader_fails_with_its_own_error() -> None:
    assert peer_script().name == "nautilus_replay.py"
    with pytest.raises(RuntimeError, match="nautilus_trader"):
        compare(sys.executable, minutes=0.1)
