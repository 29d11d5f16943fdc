"""Book checkpoints: the book at a clean close, journaled inside the hash chain, so a reopen replays
only what came after it.

A reopen rebuilds the book by replaying every order event of the journal (``recovery.py``): its
time grows with the history. At a clean close with a quiet book (no working order, no transfer in
transit, no ticket with a naked leg) the engine journals ``BookCheckpointed`` just before
``EngineStopped``: the book (``risk/book_state.py``), the margin-rate and transfer rows so far
(few; they are replayed, as they move cash), and the other runs on the journal that had not
stopped. The row is in the chain like any other, so an edit of it breaks ``verify()``. A reopen
takes the latest checkpoint and replays only the rows after it; it falls back to the full replay,
and says why in ``EngineRecovered``, when the checkpoint is unreadable, does not fit the engine's
accounts and specs, or names another run that had not stopped (its orders may be live and are
only in the history). ``CMC_LAB_FULL_REPLAY=1`` forces the full
replay (the tests compare both). A close that is not quiet writes no checkpoint: its reopen
replays everything, as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from cmc_lab.engine.journaling import EngineJournal
from cmc_lab.journal import Journal
from cmc_lab.risk.book_state import book_state
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.transfers import TRANSFER_KINDS, TransferState

KIND = "BookCheckpointed"
#: Rows that move the book outside order events: kept in every checkpoint and replayed on reopen.
BOOK_KINDS = ("MarginRateChanged", *TRANSFER_KINDS)
FULL_REPLAY_ENV = "CMC_LAB_FULL_REPLAY"


class Checkpointing(Protocol):
    """What a checkpoint reads of the engine."""

    journal: Journal
    journal_writer: EngineJournal
    risk: RiskMonitor


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The latest checkpoint of a journal: its row, the book, the book rows and the runs left running."""

    seq: int
    book: dict[str, Any]
    book_rows: list[tuple[str, int, dict[str, Any]]]
    open_runs: dict[str, dict[str, Any]]


def latest(journal: Journal) -> tuple[Checkpoint | None, str]:
    """The journal's latest checkpoint, or None and why not (none, forced full replay, unreadable)."""
    if os.environ.get(FULL_REPLAY_ENV):
        return None, f"{FULL_REPLAY_ENV} is set"
    row = journal.last_of(KIND)
    if row is None:
        return None, "no checkpoint in the journal"
    payload = row["payload"]
    try:
        rows = [(str(kind), int(ts), dict(p)) for kind, ts, p in payload["book_rows"]]
        runs = {str(run): dict(owner) for run, owner in payload["open_runs"].items()}
        book = dict(payload["book"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return None, f"checkpoint row {row['seq']} is unreadable ({exc!r})"
    return Checkpoint(row["seq"], book, rows, runs), ""


def quiet(eng: Checkpointing, working: list[str], legged: list[str]) -> str | None:
    """Why the book cannot be checkpointed now, or None when it can."""
    if working:
        return f"{len(working)} working order(s)"
    if legged:
        return f"ticket(s) with a naked leg: {', '.join(legged)}"
    moving = [
        t.transfer_id for t in eng.risk.transfers.transfers.values() if t.state is TransferState.IN_TRANSIT
    ]
    if moving:
        return f"transfer(s) in transit: {', '.join(moving)}"
    return None


def write(eng: Checkpointing, run: str, why_not: str | None) -> int | None:
    """Journal the book at a clean close of run ``run`` (the seq of the checkpoint row), or journal
    why there is none. Reads only the rows since the previous checkpoint."""
    if why_not is not None:
        eng.journal_writer.write_raw("BookCheckpointSkipped", {"reason": why_not})
        return None
    previous, _ = latest(eng.journal)
    since = previous.seq if previous is not None else 0
    rows = list(previous.book_rows) if previous is not None else []
    open_runs = dict(previous.open_runs) if previous is not None else {}
    for r in eng.journal.rows(kinds=(*BOOK_KINDS, "EngineStarted", "EngineStopped"), after_seq=since):
        if r["kind"] == "EngineStarted":
            open_runs[str(r["payload"].get("run"))] = r["payload"]
        elif r["kind"] == "EngineStopped":
            open_runs.pop(str(r["payload"].get("run")), None)
        else:
            rows.append((r["kind"], r["ts_event"], r["payload"]))
    open_runs.pop(run, None)  # this run: stopping now
    payload = {
        "book": book_state(eng.risk.capital, eng.risk.activity),
        "book_rows": [[kind, ts, p] for kind, ts, p in rows],
        "open_runs": open_runs,
        "covers_seq": eng.journal.head[0],
    }
    eng.journal_writer.write_raw(KIND, payload)
    return eng.journal.head[0]


__all__ = ["BOOK_KINDS", "FULL_REPLAY_ENV", "KIND", "Checkpoint", "latest", "quiet", "write"]
