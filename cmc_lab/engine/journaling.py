"""The engine's journal writer: rows committed alone or in batches; a failed write halts trading.

Every row the engine writes passes through :class:`EngineJournal`. The one rule for a failure,
whichever method met it: the rows are kept pending, ``on_failure`` is told (the engine halts
trading and raises an alert: without a journal we cannot prove what we sent), and the method
returns False so its caller can refuse what it was about to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmc_lab.core.clock import Clock
from cmc_lab.core.ids import venue_of
from cmc_lab.core.model import Event, event_payload
from cmc_lab.journal import Journal, JournalError, JournalRow


class EngineJournal:
    """Writes the engine's rows (the :class:`~cmc_lab.core.ports.JournalWriter` port).

    ``with writer.batch():`` makes a decision and its legs one commit instead of six; an order's
    intent still commits before it leaves (``write(..., now=True)`` flushes what is pending).
    """

    def __init__(self, journal: Journal, clock: Clock, on_failure: Callable[[JournalError], None]) -> None:
        self.journal = journal
        self._clock = clock
        self._on_failure = on_failure
        self._pending: list[JournalRow] = []
        self._depth = 0

    def write(self, events: list[Event], ticket_id: str | None = None, *, now: bool = False) -> bool:
        """Journal events; outside a batch (or with ``now``) they are committed before this returns."""
        mono = self._clock.mono_ns()
        for event in events:
            iid = getattr(event, "instrument_id", None)
            venue = getattr(event, "venue", None) or (venue_of(iid) if iid else None)
            self._pending.append(
                JournalRow(
                    kind=event.kind,
                    ts_event=event.ts_event,
                    ts_init=event.ts_init,
                    mono_ns=mono,
                    payload=event_payload(event),
                    order_id=getattr(event, "client_order_id", None),
                    ticket_id=ticket_id,
                    venue=venue,
                    instrument=iid,
                )
            )
        return self._commit() if now or not self._depth else True

    def write_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> bool:
        """Journal one row that is not a model event (alerts, decisions, recovery notes)."""
        now = self._clock.now_ns()
        self._pending.append(
            JournalRow(
                kind=kind,
                ts_event=now,
                ts_init=now,
                mono_ns=self._clock.mono_ns(),
                payload=payload,
                order_id=ids.get("order_id"),
                ticket_id=ids.get("ticket_id"),
                venue=ids.get("venue"),
                instrument=ids.get("instrument"),
            )
        )
        return self._commit() if not self._depth else True

    def batch(self) -> _Batch:
        """Rows written inside commit in one transaction when the outermost batch ends."""
        return _Batch(self)

    def _commit(self) -> bool:
        rows, self._pending = self._pending, []
        if not rows:
            return True
        try:
            self.journal.append_many(rows)
        except JournalError as exc:
            self._on_failure(exc)
            return False
        return True


class _Batch:
    """``with writer.batch():`` (a plain class: the desk opens one per quote with armed tickets)."""

    __slots__ = ("_writer",)

    def __init__(self, writer: EngineJournal) -> None:
        self._writer = writer

    def __enter__(self) -> None:
        self._writer._depth += 1

    def __exit__(self, *exc: object) -> None:
        writer = self._writer
        writer._depth -= 1
        if not writer._depth:
            writer._commit()
