"""The engine's journal side: rows committed in batches, a failed write halting trading, reading back.

A part of :class:`~cmc_lab.engine.facade.Engine`, which inherits it (``eng._journal_raw(...)``,
``eng.journal_batch()`` and the rest are the engine's own methods); kept apart so engine.py
stays the loop, the lifecycle and incoming messages. Every row the engine writes passes
through here; receipts and the audit pack read them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmc_lab.core.clock import Clock
from cmc_lab.core.model import Event, event_payload
from cmc_lab.core.order import Order
from cmc_lab.core.specs import Specs
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.journal import Journal, JournalError, JournalRow
from cmc_lab.journal.audit import export_pack
from cmc_lab.journal.receipts import Receipt, read_receipt
from cmc_lab.risk.pretrade import TradingState


class EngineJournal:
    """Journal writing and reading of :class:`~cmc_lab.engine.facade.Engine`."""

    # Engine state used here; Engine.__init__ sets it.
    journal: Journal
    clock: Clock
    specs: Specs
    trading_state: TradingState
    errors: list[str]
    _pending_rows: list[JournalRow]
    _batch_depth: int
    _journal_fault: dict[str, Any] | None  # the write failure that HALTED trading
    _alerts: list[dict[str, Any]]

    if TYPE_CHECKING:  # defined by Engine and its desk part

        def now_ns(self) -> int: ...
        def alert(
            self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
        ) -> None: ...

    # ------------------------------------------------------------------ writing

    def journal_batch(self) -> _JournalBatch:
        """Rows journaled inside commit in one transaction when the outermost batch ends.

        A decision and its legs cost one commit instead of six. Intents still commit before
        any order leaves: :meth:`_submit_batch` flushes whatever is pending first.
        """
        return _JournalBatch(self)

    def _commit_pending(self) -> None:
        rows, self._pending_rows = self._pending_rows, []
        if rows:
            self.journal.append_many(rows)

    def _journal(self, events: list[Event], ticket_id: str | None = None, *, now: bool = False) -> None:
        """Journal events; outside a batch (or with ``now``) they are committed before this returns."""
        mono = self.clock.mono_ns()
        for event in events:
            iid = getattr(event, "instrument_id", None)
            venue = getattr(event, "venue", None) or (iid.split(".", 1)[0] if iid else None)
            self._pending_rows.append(
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
        if now or not self._batch_depth:
            self._commit_pending()

    def _journal_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> None:
        now = self.now_ns()
        self._pending_rows.append(
            JournalRow(
                kind=kind,
                ts_event=now,
                ts_init=now,
                mono_ns=self.clock.mono_ns(),
                payload=payload,
                order_id=ids.get("order_id"),
                ticket_id=ids.get("ticket_id"),
                venue=ids.get("venue"),
                instrument=ids.get("instrument"),
            )
        )
        if self._batch_depth:
            return
        try:
            self._commit_pending()
        except JournalError as exc:
            self._journal_failed(exc)

    def _journal_failed(self, exc: JournalError) -> None:
        """Without a journal we cannot prove what we sent: stop sending, and say why in an alert."""
        self.errors.append(f"journal write failed: {exc}")
        if self.trading_state is not TradingState.HALTED:
            self.trading_state = TradingState.HALTED
            self.errors.append("trading HALTED: the journal cannot be written; fix it and eng.rearm()")
        if self._journal_fault is None:  # the first failure of an outage alerts (journaled if it can be)
            self._journal_fault = {
                "error": str(exc),
                "since_ns": self.now_ns(),
                "alert": len(self._alerts) + 1,
            }
            self.alert(
                "journal",
                "critical",
                f"trading HALTED: the journal cannot be written, so no order is sent until it can ({exc}); "
                "fix the disk or the file, then eng.rearm()",
            )

    @property
    def halt_reason(self) -> str | None:
        """Why trading is HALTED when the kill switch did not do it (the journal cannot be written)."""
        fault = self._journal_fault
        return None if fault is None else f"the journal cannot be written: {fault['error']}"

    # ------------------------------------------------------------------ reading back

    def receipt(self, order_or_ticket: Order | HedgeTicket | str) -> Receipt:
        """The complete receipt of one order or hedge ticket, from the journal (see :class:`Receipt`).

        Decision and the quotes it saw, checks, intent, send, ack, each fill, re-orders and
        unwinds, final state; latency per hop and slippage. ``receipt.timeline()`` charts it.
        """
        if isinstance(order_or_ticket, Order):
            order_or_ticket = order_or_ticket.client_order_id
        elif isinstance(order_or_ticket, HedgeTicket):
            order_or_ticket = order_or_ticket.ticket_id
        return read_receipt(self.journal, order_or_ticket, self.specs.instruments)

    def audit(self, path: str | Path, since: object = None, until: object = None, **options: Any) -> Path:
        """Write the audit pack (zip) of the journal rows from ``since`` to ``until``; its path.

        ``since``/``until``: int ns, datetimes or ISO 8601 text (UTC unless it says otherwise).
        Options of :func:`cmc_lab.journal.audit.export_pack`: ``progress``, ``overwrite``. Check a
        pack later with ``cmc-lab audit verify PACK``.
        """
        return export_pack(self.journal, path, since, until, instruments=self.specs.instruments, **options)


class _JournalBatch:
    """``with engine.journal_batch():`` (a plain class: the desk opens one per quote with armed tickets)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: EngineJournal) -> None:
        self._engine = engine

    def __enter__(self) -> None:
        self._engine._batch_depth += 1

    def __exit__(self, *exc: object) -> None:
        engine = self._engine
        engine._batch_depth -= 1
        if not engine._batch_depth:
            try:
                engine._commit_pending()
            except JournalError as error:
                engine._journal_failed(error)
