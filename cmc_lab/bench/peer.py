"""Peer comparison for ``cmc-lab bench --peer PYTHON``: the gold-spread replay, ours beside nautilus_trader's.

The same quotes (synthetic SHFE au, COMEX GC and USD/CNH at 10 a second each: 108,000 in an hour)
are replayed through cmc_lab's engine with the z-score trigger armed (:func:`run_replay`, every
order journaled) and through nautilus_trader's ``BacktestEngine`` with a strategy that computes
the same spread and z-score and sends both legs (``scripts/peer/nautilus_replay.py``, run by the
Python of a separate environment: nautilus_trader is not a dependency of cmc_lab). Both figures
are measured in the same run, one after the other, so their ratio holds on a shared machine.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from cmc_lab.bench.data import quotes_only_rate
from cmc_lab.core.ids import USDCNH_ID
from cmc_lab.data.synthetic import synthetic_quotes

#: The replayed instruments and their names in the exported file.
PEER_LEGS = {"au": "SHFE.au", "gc": "COMEX.GC", "fx": USDCNH_ID}


def peer_script() -> Path:
    """The nautilus_trader side, kept in the repository's scripts/ (it does not run in cmc_lab's env)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "peer" / "nautilus_replay.py"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the peer comparison runs from a clone of the cmc_lab repository"
        )
    return path


def export_quotes(ds: xr.Dataset, path: Path) -> int:
    """Write the legs' quotes (integer ns timestamps, bid, ask, sizes) to ``path`` (.npz); returns their count."""
    times = ds["time"].values.astype("datetime64[ns]").astype(np.int64)
    arrays: dict[str, np.ndarray] = {}
    count = 0
    for name, iid in PEER_LEGS.items():
        row = ds.sel(instrument=iid)
        bid, ask = row["bid"].values, row["ask"].values
        keep = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
        arrays[f"{name}_ts"] = times[keep]
        arrays[f"{name}_bid"] = bid[keep]
        arrays[f"{name}_ask"] = ask[keep]
        arrays[f"{name}_bid_size"] = row["bid_size"].values[keep]
        arrays[f"{name}_ask_size"] = row["ask_size"].values[keep]
        count += int(keep.sum())
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return count


def _theirs(peer_python: str, data: Path, *flags: str) -> dict[str, Any]:
    run = subprocess.run(
        [peer_python, str(peer_script()), str(data), *flags], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"the peer replay failed ({peer_python}):\n{run.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def compare(peer_python: str, minutes: float = 60.0, seed: int = 7) -> dict[str, Any]:
    """Replay ``minutes`` of quotes through both engines, armed and quotes only; quotes/s and ratios.

    Armed, ours: :func:`~cmc_lab.research.run_replay` with ``z <= -2``, 100 tickets, journal on;
    theirs: ``peer_python scripts/peer/nautilus_replay.py quotes.npz``. Quotes only: the same
    quotes through our engine with no spread (:func:`~cmc_lab.research.replay_engine`) and through
    theirs with no strategy (``--quotes-only``). Raises with nautilus_trader's own error when the
    peer environment cannot run it (``bash scripts/peer/setup.sh`` makes one).
    """
    from cmc_lab.research import run_replay

    peer_script()
    ds = synthetic_quotes(rate_hz=10.0, seed=seed, start="2026-11-24 14:00", day_length=f"{minutes}min")
    ds = ds.sel(instrument=list(PEER_LEGS.values()))
    with tempfile.TemporaryDirectory(prefix="cmc-peer-") as tmp:
        data = Path(tmp) / "quotes.npz"
        exported = export_quotes(ds, data)
        theirs = _theirs(peer_python, data)
        theirs_plain = _theirs(peer_python, data, "--quotes-only")
    armed = run_replay(ds, when="z <= -{level}", level=2.0, repeat=100, latency_ms=None, seed=seed)
    stats = armed.attrs["replay"]
    ours = {
        "quotes": stats["quotes"],
        "tickets": len(armed),
        "wall_s": stats["wall_s"],
        "quotes_per_s": stats["events_per_s"],
    }
    plain = quotes_only_rate(ds, seed)
    ours_plain = {"quotes": plain["quotes"], "wall_s": plain["wall_s"], "quotes_per_s": plain["events_per_s"]}
    return {
        "minutes": minutes,
        "quotes_exported": exported,
        "armed": {"cmc_lab": ours, "nautilus_trader": theirs, "ratio": _ratio(ours, theirs)},
        "quotes_only": {
            "cmc_lab": ours_plain,
            "nautilus_trader": theirs_plain,
            "ratio": _ratio(ours_plain, theirs_plain),
        },
    }


def _ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> float | None:
    return ours["quotes_per_s"] / theirs["quotes_per_s"] if theirs.get("quotes_per_s") else None


__all__ = ["PEER_LEGS", "compare", "export_quotes", "peer_script"]
