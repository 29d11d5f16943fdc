"""Start-up benchmark: how long an engine takes to open a journal with a long history.

Opening verifies the whole hash chain, then rebuilds the book: from every order event of the
journal (``engine/recovery.py``), or from the book checkpoint of the last clean close and the rows
after it (``engine/snapshot.py``). Verification and the full replay grow with the journal. The journal here holds whole order lives
(intent, send, ack, fill) of a day's trading, written through the journal itself.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cmc_lab.core.clock import SIM_START_NS
from cmc_lab.core.model import (
    Event,
    OrderAccepted,
    OrderFilled,
    OrderInitialized,
    OrderSubmitted,
    Side,
    TimeInForce,
    event_payload,
)
from cmc_lab.engine.connect import connect
from cmc_lab.engine.errors import OpenExposureWarning
from cmc_lab.journal import Journal, JournalRow

_ROWS_PER_ORDER = 4


def startup_seconds(n_events: int, tmpdir: Path | None = None) -> dict[str, Any]:
    """Seconds to ``cmc.connect`` on a journal of ``n_events`` order events: replaying the whole
    history (the first open), then again from the book checkpoint that open's clean close wrote;
    and the hash-chain verification alone, which every open runs over the whole journal."""
    with tempfile.TemporaryDirectory(prefix="cmc-startup-", dir=tmpdir) as tmp:
        path = Path(tmp) / "history.sqlite"
        _write_history(path, n_events // _ROWS_PER_ORDER)
        started = time.perf_counter()
        with Journal(path, readonly=True) as journal:
            report = journal.verify()
        if not report.ok:
            raise RuntimeError(f"the benchmark's own journal does not verify: {report}")
        verify_s = time.perf_counter() - started
        open_s = _open_and_close(path)  # replays every order event, then checkpoints at close
        checkpoint_s = _open_and_close(path)
    return {
        "n_events": n_events,
        "open_s": open_s,
        "open_from_checkpoint_s": checkpoint_s,
        "verify_s": verify_s,
        "rebuild_s": open_s - verify_s,
        "per_100k_events_s": open_s / n_events * 100_000,
        "speedup": open_s / checkpoint_s,
    }


def _open_and_close(path: Path) -> float:
    started = time.perf_counter()
    eng = connect("sim", seed=7, clock="virtual", journal=path)
    elapsed = time.perf_counter() - started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenExposureWarning)
        eng.close()
    return elapsed


def _write_history(path: Path, orders: int) -> None:
    with Journal(path) as journal:
        batch: list[JournalRow] = []
        for row in _rows(orders):
            batch.append(row)
            if len(batch) >= 20_000:
                journal.append_many(batch)
                batch = []
        journal.append_many(batch)


def _rows(orders: int) -> Iterator[JournalRow]:
    """Alternating one-lot buys and sells of COMEX GC, each filled: the book stays within a lot."""
    for n in range(orders):
        cid = f"r1-{n + 1:06d}"
        t = SIM_START_NS - (orders - n) * 10_000_000  # a day of history before the anchored start
        side = Side.BUY if n % 2 == 0 else Side.SELL
        price = Decimal("2650.0") + Decimal(n % 50) / 10
        events: list[Event] = [
            OrderInitialized(t, t, cid, "COMEX.GC", side, 1, price, TimeInForce.GFD, "US-FUT", None, "bench"),
            OrderSubmitted(t, t, cid, "COMEX.GC", "trading_state,tick"),
            OrderAccepted(t + 1_000, t + 2_000, cid, "COMEX.GC", f"V{n}"),
            OrderFilled(t + 3_000, t + 4_000, cid, "COMEX.GC", f"V{n}", f"X{n}", side, price, 1),
        ]
        for i, event in enumerate(events):
            yield JournalRow(
                event.kind,
                event.ts_event,
                event.ts_init,
                i,
                event_payload(event),
                order_id=cid,
                venue="COMEX",
                instrument="COMEX.GC",
            )
