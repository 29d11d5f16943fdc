"""Restart recovery: rebuild the live orders of earlier runs from the journal, then reconcile them.

After ``kill -9`` a new engine on the same journal calls :func:`recover` on its loop right after
``EngineStarted`` and before any venue connects, so that the venues' first reports (a FIX
resend of what the dead process never processed) find their orders; once the venues are up
:func:`reconcile_recovered` asks each venue about them. The rules, from the guarantees users
rely on (no order sent twice, none forgotten):

- An order whose last journaled state is not final is live. It is rebuilt by replaying its
  journaled events through the order transition table (fills included, so a resent fill is
  recognised by its trade id), registered under its old client order id (the run prefix keeps
  ids unique) and reconciled with its venue. A FIX venue adopts it, so its cancels and reports
  map to it as before.
- Nothing is ever re-sent. Intents commit before their message leaves, so the journal cannot
  prove an intent never left: an order the venue does not know is closed by the reconcile
  ("the venue does not know this order"), not sent again. Only an intent without its send
  decision (``OrderInitialized`` alone) provably never left; it is denied.
- A venue report for an order the journal has never seen (impossible with commit-before-send)
  raises a critical alert.
- The book survives, clean close or crash: every order event of the journal goes once through
  the engine's own path (``OrderRouter.apply``: order, then the risk hook), so positions, realized
  P&L, cash, margin held by working orders and the per-exchange-day order and cancel counts are
  what they were; margin-rate changes are applied again and transfers rebuilt (one in transit
  completes or fails after its remaining delay, money conserved).
- A book checkpoint written at the last clean close (``snapshot.py``) stands for the history
  before it: the book is restored from it and only the rows after it are replayed.
- Orders of a run whose process still runs on this host (another notebook on the same journal)
  are left to it. Hedge tickets are not resumed: an open one is named in a critical alert.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from cmc_lab.core.instruments import MarginKind
from cmc_lab.core.model import (
    EVENT_TYPES,
    CancelOrder,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderInitialized,
    OrderState,
    SubmitOrder,
    event_from_payload,
)
from cmc_lab.core.order import Order
from cmc_lab.core.specs import Specs
from cmc_lab.engine import snapshot
from cmc_lab.engine.journaling import EngineJournal
from cmc_lab.engine.routing import OrderRouter
from cmc_lab.engine.runtime import Runtime
from cmc_lab.execution.ticket import TicketState
from cmc_lab.journal import Journal
from cmc_lab.risk.book_state import BookStateError, restore_book
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.transfers import TRANSFER_KINDS
from cmc_lab.venues.base import Venue
from cmc_lab.venues.fix.gateway import FixVenue


class Recoverable(Protocol):
    """What recovery needs of the engine: its journal, venues and parts (the facade is one)."""

    journal: Journal
    specs: Specs
    venues: dict[str, Venue]
    runtime: Runtime
    router: OrderRouter
    journal_writer: EngineJournal
    risk: RiskMonitor

    def now_ns(self) -> int: ...

    def alert(
        self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
    ) -> None: ...


#: Journal kinds of order events: what the replay reads.
ORDER_KINDS = tuple(
    sorted(kind for kind, cls in EVENT_TYPES.items() if issubclass(cls, OrderEvent) and cls is not OrderEvent)
)
_BOOK = ("MarginRateChanged", *TRANSFER_KINDS)
_READ = (*ORDER_KINDS, *_BOOK, "EngineStarted", "EngineStopped", "EngineRecovered", "HedgeStateChanged")
_TASKS: set[asyncio.Task[None]] = set()  # background reconciles, kept alive until done


@dataclass
class Recovered:
    """What :func:`recover` found: the live orders it registered and the ids the journal knows."""

    orders: list[Order] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    since_ns: int = 0
    history: bool = False  # the journal held orders or tickets of earlier runs


def run_owner(prefix: str) -> dict[str, Any]:
    """Who writes this run (journaled in ``EngineStarted``), so a later engine can tell whether it still runs."""
    pid = os.getpid()
    stat = _proc_stat(pid)
    owner: dict[str, Any] = {"run": prefix, "pid": pid, "host": socket.gethostname()}
    if stat is not None:
        owner["proc_start"] = stat[1]
    return owner


def recover(eng: Recoverable) -> Recovered:
    """Rebuild and register the live orders of earlier runs; journal ``EngineRecovered`` (engine loop)."""
    if str(eng.journal.path) == ":memory:":
        return Recovered()
    since_ns = eng.now_ns()
    owners: dict[str, dict[str, Any]] = {}
    stopped: set[str] = set()
    tickets: dict[str, tuple[str, str]] = {}  # ticket id -> (its run, last state)
    reported: set[str] = set()  # open tickets an earlier recovery has alerted about
    traces: dict[str, _Trace] = {}
    checkpoint, no_checkpoint = _from_checkpoint(eng)
    # margin rates and transfers, in journal order (a checkpoint's first, then the rows after it)
    book: list[tuple[str, int, dict[str, Any]]] = list(checkpoint.book_rows) if checkpoint else []
    after = checkpoint.seq if checkpoint else 0
    unreadable: list[int] = []
    for row in eng.journal.rows(kinds=_READ, after_seq=after):
        kind, payload = row["kind"], row["payload"]
        if kind == "EngineStarted":
            if isinstance(payload.get("run"), str):
                owners[payload["run"]] = payload
        elif kind == "EngineStopped":
            stopped.add(str(payload.get("run")))
        elif kind == "EngineRecovered":
            reported.update(payload.get("open_tickets") or ())
        elif kind == "HedgeStateChanged":
            if row["ticket_id"]:
                tickets[row["ticket_id"]] = (_run_of(row["ticket_id"][1:]), str(payload.get("to")))
        elif kind in _BOOK:
            book.append((kind, row["ts_event"], payload))
        elif row["order_id"]:
            _trace(traces, row["order_id"], row["seq"], kind, payload, unreadable)
    this_run = eng.router.id_prefix
    elsewhere = {
        run: owner["pid"]
        for run, owner in owners.items()
        if run != this_run and run not in stopped and _still_running(owner)
    }
    events = _events(traces, set(elsewhere), unreadable)
    _restore_rates(eng, book)
    orders, orphans, fills = _replay(eng, events)
    in_transit = eng.risk.transfers.restore([row for row in book if row[0] != "MarginRateChanged"])
    left = sum(_run_of(cid) in elsewhere for cid in traces)
    recovered = Recovered(known=set(traces), since_ns=since_ns)
    recovered.history = bool(traces or tickets or book or checkpoint)
    if not recovered.history:
        return recovered
    live = [o for o in orders.values() if not o.done]
    elsewhere_venues = sorted(o.client_order_id for o in live if o.instrument.venue not in eng.venues)
    recovered.orders = [o for o in live if o.instrument.venue in eng.venues]
    never_sent = [o for o in recovered.orders if o.state is OrderState.INITIALIZED]
    open_tickets = {
        tid: state
        for tid, (run, state) in tickets.items()
        if tid not in reported
        and run not in stopped | set(elsewhere)
        and run != this_run
        and not _terminal(state)
    }
    for order in recovered.orders:
        eng.router.orders[order.client_order_id] = order
        _adopt(eng, order)
    eng.journal_writer.write_raw(
        "EngineRecovered",
        {
            "orders_read": len(traces),
            "orders_rebuilt": len(orders),
            "recovered": [o.client_order_id for o in recovered.orders],
            "states": dict(Counter(o.state.value for o in recovered.orders)),
            "book_from_seq": after,
            "full_replay_because": no_checkpoint,
            "transfers_in_transit": [tr.transfer_id for tr in in_transit],
            "fills_replayed": fills,
            "never_sent": [o.client_order_id for o in never_sent],
            "on_other_venues": elsewhere_venues,
            "left_to_running": {run: elsewhere[run] for run in sorted(elsewhere)},
            "left_orders": left,
            "open_tickets": open_tickets,
            "unreadable_rows": unreadable + orphans,
        },
    )
    now = eng.now_ns()
    for order in never_sent:
        why = "recovery: its intent has no send decision in the journal, so it never left; not sent"
        eng.router.on_event(OrderDenied(now, now, order.client_order_id, order.instrument_id, why))
    _alerts(eng, elsewhere, elsewhere_venues, open_tickets, unreadable + orphans)
    return recovered


def _from_checkpoint(eng: Recoverable) -> tuple[snapshot.Checkpoint | None, str]:
    """The latest book checkpoint, restored into the engine's book; or None and why the history is
    replayed in full instead (the book is untouched then)."""
    checkpoint, why = snapshot.latest(eng.journal)
    if checkpoint is None:
        return None, why
    if checkpoint.open_runs:
        runs = ", ".join(sorted(checkpoint.open_runs))
        return (
            None,
            f"run(s) {runs} had not stopped at checkpoint row {checkpoint.seq}: their orders may be live",
        )
    try:
        restore_book(eng.risk.capital, eng.risk.activity, checkpoint.book)
    except BookStateError as exc:
        eng.alert(
            "recovery",
            "warning",
            f"book checkpoint row {checkpoint.seq} does not fit this engine ({exc}); the whole journal is replayed",
        )
        return None, str(exc)
    return checkpoint, ""


def reconcile_recovered(eng: Recoverable, recovered: Recovered) -> None:
    """Once the venues are up: reconcile the recovered orders in the background, then journal the outcome."""
    if not recovered.history:
        return
    task = eng.runtime.loop.create_task(_reconcile(eng, recovered), name="reconcile of recovered orders")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    task.add_done_callback(eng.router.on_reconcile_done)


async def _reconcile(eng: Recoverable, recovered: Recovered) -> None:
    failed: dict[str, str] = {}
    for name in dict.fromkeys(o.instrument.venue for o in recovered.orders):
        waiting = [o for o in recovered.orders if o.instrument.venue == name and not o.done]
        if not waiting:
            continue
        # The venue's VenueConnected started a reconcile of every order, these included: wait for it.
        task = eng.router.reconciling.get(name)
        try:
            if task is not None and not (task.done() and (task.cancelled() or task.exception())):
                await task
            else:
                await eng.router.reconcile(eng.venues[name], waiting)
            _cancel_again(eng, [o for o in waiting if o.state is OrderState.PENDING_CANCEL])
        except Exception as exc:
            failed[name] = repr(exc)
            eng.alert(
                "recovery",
                "warning",
                f"{len(waiting)} recovered orders on {name} could not be reconciled ({exc!r}); they stay "
                f"as journaled and are reconciled when {name} reconnects",
                venue=name,
            )
    reported = {
        str(row["payload"].get("client_order_id"))
        for row in eng.journal.rows(since_ns=recovered.since_ns, kinds=["UnknownOrderReport"])
    }
    venue_only = sorted(  # late reports of orders the journal closed are not alarming; strangers are
        cid for cid in reported if cid.partition(".")[0] not in recovered.known | set(eng.router.orders)
    )
    if venue_only:
        eng.alert(
            "recovery",
            "critical",
            f"venues report orders the journal does not know: {', '.join(venue_only)}; they were not sent by "
            "this journal's engines; check them at the venue",
        )
    eng.journal_writer.write_raw(
        "RecoveryReconciled",
        {
            "working": [o.client_order_id for o in recovered.orders if not o.done],
            "closed": {o.client_order_id: o.state.value for o in recovered.orders if o.done},
            "failed": failed,
            "venue_only": venue_only,
        },
    )


# ---------------------------------------------------------------------------- helpers


@dataclass(slots=True)
class _Trace:
    """One order's journal rows, kept as read: most orders are done and never become events."""

    qty: int
    rows: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What :func:`~cmc_lab.core.model.next_state` reads of an event: its kind."""

    kind: str


def _trace(
    traces: dict[str, _Trace], cid: str, seq: int, kind: str, payload: dict[str, Any], unreadable: list[int]
) -> None:
    trace = traces.get(cid)
    if trace is None:
        qty = payload.get("qty")
        if kind != OrderInitialized.kind or not isinstance(qty, int):
            unreadable.append(seq)
            return
        trace = traces[cid] = _Trace(qty)
    trace.rows.append((seq, kind, payload))


def _events(
    traces: dict[str, _Trace], elsewhere: set[str], unreadable: list[int]
) -> list[tuple[int, OrderEvent]]:
    """The events, in journal order, of every order but those of runs whose process still runs."""
    events: list[tuple[int, OrderEvent]] = []
    for cid, trace in traces.items():
        if _run_of(cid) in elsewhere:
            continue
        for seq, kind, payload in trace.rows:
            try:
                event = event_from_payload(kind, payload)
            except (TypeError, ValueError):
                unreadable.append(seq)
                continue
            if isinstance(event, OrderEvent):
                events.append((seq, event))
    events.sort(key=lambda item: item[0])
    return events


def _replay(
    eng: Recoverable, events: list[tuple[int, OrderEvent]]
) -> tuple[dict[str, Order], list[int], int]:
    """Orders rebuilt from their events, each event once through the router's path (the book with it)."""
    orders: dict[str, Order] = {}
    fills = 0
    orphans: list[int] = []
    for seq, event in events:
        cid = event.client_order_id
        order = orders.get(cid)
        if order is None:
            inst = eng.specs.recorded(event.instrument_id)
            if not isinstance(event, OrderInitialized) or inst is None:
                orphans.append(seq)
                continue
            order = orders[cid] = Order(
                eng.runtime,
                eng.router.request_cancel,
                cid,
                inst,
                event.side,
                event.qty,
                event.price,
                event.tif,
                event.account,
                event.ticket_id,
                replace=eng.router.request_replace,
            )
        if order.instrument.venue in eng.venues:
            eng.router.apply(order, event)
            fills += isinstance(event, OrderFilled)
        else:
            order.apply(event)
    if events:  # replayed messages are not new traffic: keep them out of rate limits and latency series
        risk = eng.risk
        risk.activity.messages.clear()
        for series in (risk.sent, risk.acks, risk.rejects, risk.slippage):
            series.clear()
    return orders, orphans, fills


def rebuild_order(eng: Recoverable, client_order_id: str) -> Order | None:
    """An order of an earlier run, rebuilt from its journal rows (state, fills, log); None if unknown.

    Read-only in effect: its run is over, so it is done, or it is live and registered by recovery.
    """
    events = []
    for row in eng.journal.rows_of(client_order_id):
        if row["order_id"] != client_order_id or row["kind"] not in ORDER_KINDS:
            continue
        try:
            event = event_from_payload(row["kind"], row["payload"])
        except (TypeError, ValueError):
            continue
        if isinstance(event, OrderEvent):
            events.append((row["seq"], event))
    orders: dict[str, Order] = {}
    for _, event in events:
        order = orders.get(client_order_id)
        if order is None:
            inst = eng.specs.recorded(event.instrument_id)
            if not isinstance(event, OrderInitialized) or inst is None:
                return None
            order = orders[client_order_id] = Order(
                eng.runtime, eng.router.request_cancel, client_order_id, inst, event.side, event.qty,
                event.price, event.tif, event.account, event.ticket_id, replace=eng.router.request_replace,
            )  # fmt: skip
        order.apply(event)
    return orders.get(client_order_id)


def _restore_rates(eng: Recoverable, book: list[tuple[str, int, dict[str, Any]]]) -> None:
    """Margin rates changed by earlier runs hold again (the last change of each instrument wins)."""
    for kind, _, payload in book:
        known = (
            payload.get("instrument") in eng.specs.instruments
            or payload.get("instrument") in eng.specs.aliases
        )
        if kind != "MarginRateChanged" or not known:
            continue
        try:
            rate_kind, rate, maintenance = payload["new"]
            eng.risk.capital.set_rate(
                payload["instrument"], Decimal(rate), MarginKind(rate_kind), Decimal(maintenance)
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            eng.runtime.report(
                [f"recovery: margin rate row {payload!r} unreadable ({exc}); kept the spec's rate"]
            )


def _adopt(eng: Recoverable, order: Order) -> None:
    venue = eng.venues[order.instrument.venue]
    if not isinstance(venue, FixVenue):
        return
    init = order.events[0]
    command = SubmitOrder(
        order.client_order_id,
        order.instrument_id,
        order.side,
        order.qty,
        order.price,
        order.tif,
        order.account,
        init.ts_init,
        order.ticket_id,
    )
    venue.adopt(command, amendments=sum(isinstance(e, OrderCancelRequested) for e in order.events))


def _cancel_again(eng: Recoverable, orders: list[Order]) -> None:
    """A cancel journaled by the dead process that the venue has not acted on: the user asked for it, send it.

    A cancel is safe to repeat (the venue refuses a second one for the same order); an order is not.
    """
    for order in orders:
        now = eng.now_ns()
        cid = order.client_order_id
        eng.journal_writer.write_raw(
            "RecoveryCancelResent",
            {"reason": "recovery: the venue still works this order after its journaled cancel request"},
            order_id=cid,
            venue=order.instrument.venue,
            instrument=order.instrument_id,
        )
        eng.venues[order.instrument.venue].cancel(
            CancelOrder(cid, order.instrument_id, now, order.venue_order_id)
        )


def _alerts(
    eng: Recoverable,
    elsewhere: dict[str, int],
    other_venues: list[str],
    open_tickets: dict[str, str],
    unreadable: list[int],
) -> None:
    for run, pid in sorted(elsewhere.items()):
        eng.alert(
            "recovery",
            "warning",
            f"run {run} (process {pid}) still runs on this journal: its orders are left to it",
        )
    if other_venues:
        eng.alert(
            "recovery",
            "critical",
            f"working orders of an earlier run are on venues this engine does not connect: "
            f"{', '.join(other_venues)}; connect their venues to reconcile them",
        )
    if open_tickets:
        listed = ", ".join(f"{tid} ({state})" for tid, state in open_tickets.items())
        eng.alert(
            "recovery",
            "critical",
            f"hedge tickets were open when their engine stopped without a clean close: {listed}; they are "
            "not resumed (their orders are recovered and reconciled): check their legs with eng.receipt(id)",
        )
    if unreadable:
        eng.alert(
            "recovery",
            "critical",
            f"journal rows {unreadable[:20]} could not be replayed (unknown order or instrument, or a bad "
            "payload); run eng.journal.verify() and check those orders at their venues",
        )


def _run_of(client_order_id: str) -> str:
    """``r12`` of ``r12-000005`` (and of a cancel's ``r12-000005.C1``)."""
    return client_order_id.partition(".")[0].rpartition("-")[0]


def _terminal(state: str) -> bool:
    try:
        return TicketState(state).is_terminal
    except ValueError:
        return False


def _still_running(owner: dict[str, Any]) -> bool:
    """Whether the process that wrote a run is alive (same host; not this process; pid not reused)."""
    pid = owner.get("pid")
    if (
        not isinstance(pid, int)
        or pid <= 0
        or pid == os.getpid()
        or owner.get("host") != socket.gethostname()
    ):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state != "Z" and started == owner.get("proc_start", started)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process from ``/proc``; None where there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


__all__ = ["ORDER_KINDS", "Recovered", "reconcile_recovered", "recover", "run_owner"]
