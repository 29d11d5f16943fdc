"""The engine's lifecycle on its loop: start (recover, connect), venue sessions, stop (say what is left)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from cmc_lab.core.model import VenueConnected, VenueDisconnected
from cmc_lab.engine import snapshot
from cmc_lab.engine.inbox import Inbox
from cmc_lab.engine.market import MarketState
from cmc_lab.engine.reconciliation import BookReconciler
from cmc_lab.engine.recovery import Recoverable, reconcile_recovered, recover, run_owner
from cmc_lab.execution.desk import Desk
from cmc_lab.journal import Journal, VerifyReport
from cmc_lab.venues.base import Venue


class Running(Recoverable, Protocol):
    """What the lifecycle needs of the engine beyond recovery's view: its label, market, inbox, desk."""

    label: str
    accept_damaged_journal: str | None
    market: MarketState
    inbox: Inbox
    desk: Desk
    books: BookReconciler


async def start(eng: Running) -> None:
    """Journal ``EngineStarted``, rebuild what earlier runs left, then open every venue's session."""
    eng.journal_writer.write_raw(
        "EngineStarted",
        {
            "label": eng.label,
            "venues": {n: v.kind for n, v in eng.venues.items()},
            **run_owner(eng.router.id_prefix),
        },
    )
    check_chain(eng)
    recovered = recover(eng)  # before the venues connect: their first reports must find these orders
    for venue in eng.venues.values():
        await connect_venue(eng, venue, reconcile=False)
    reconcile_recovered(eng, recovered)  # a background task: virtual time runs only while a call waits


#: Up to this many rows the whole chain is verified before trading starts; beyond it, when a book
#: checkpoint exists, the rows from the checkpoint on are, and the rest in the background.
SYNC_VERIFY_ROWS = 200_000


def check_chain(eng: Running) -> None:
    """A journal whose chain does not verify never reopens for trading silently.

    Trading starts HALTED with a critical alert naming the first bad row, unless the user said
    why to trade on it anyway (``accept_damaged_journal``), which is journaled with the damage.
    A long journal with a book checkpoint opens once the checkpoint row and everything after it
    verify (what the reopen relies on); the whole chain is walked on a thread of its own, and a
    break found there halts trading the same way, seconds later.
    """
    if str(eng.journal.path) == ":memory:":
        return
    checkpoint, _ = snapshot.latest(eng.journal)
    if checkpoint is not None and eng.journal.head[0] > SYNC_VERIFY_ROWS:
        report = eng.journal.verify_from(checkpoint.seq)
        if report.ok:
            _verify_in_background(eng)
            return
    else:
        report = eng.journal.verify()
    if not report.ok:
        on_damage(eng, report)


def on_damage(eng: Running, report: VerifyReport) -> None:
    """Halt trading on a broken chain (engine loop), or journal that the user accepted it."""
    damage = {"first_bad_seq": report.first_bad_seq, "reason": report.reason, "rows_intact": report.rows}
    if eng.accept_damaged_journal:
        eng.journal_writer.write_raw("JournalDamageAccepted", {**damage, "why": eng.accept_damaged_journal})
        eng.alert(
            "journal", "warning", f"trading on a damaged journal, accepted: {report.reason}", details=damage
        )
        return
    why = (
        f"the journal's hash chain breaks at row {report.first_bad_seq}: {report.reason}; nothing it "
        "says after that row can be trusted. Check it with eng.journal.verify(); to trade on it anyway, "
        "reopen with cmc.connect(..., accept_damaged_journal='why')"
    )
    eng.router.refuse_trading(why, damage)


def _verify_in_background(eng: Running) -> None:
    loop = eng.runtime.loop

    def walk() -> None:
        try:
            report = eng.journal.verify()
        except Exception:  # the journal closed under the walk: the next open verifies again
            return
        if not report.ok and not loop.is_closed():
            loop.call_soon_threadsafe(on_damage, eng, report)

    threading.Thread(target=walk, name="journal verify", daemon=True).start()


def run_prefix(journal: Journal) -> str:
    """Client order ids' run prefix, ``r<N>``: after every run the chain has seen, not only the meta counter.

    The counter in ``meta`` is outside the hash chain; set back, it would reuse order ids. Each
    ``EngineStarted`` row (inside the chain) names its run, so the next run comes after them all.
    """
    if str(journal.path) == ":memory:":
        return memory_prefix()
    highest = journal.run_id
    for row in journal.rows(kinds=["EngineStarted"]):
        run = row["payload"].get("run")
        if isinstance(run, str) and run[1:].isdigit():
            highest = max(highest, int(run[1:]) + 1)
    return f"r{highest}"


async def stop(eng: Running) -> str | None:
    """Close every venue session and journal ``EngineStopped`` with what is left open.

    Returns what a desk must know before walking away (signed positions, working orders, tickets
    with a naked leg), or None when the book is flat and nothing works.
    """
    await eng.books.finish()
    for venue in eng.venues.values():
        await venue.disconnect()  # also stops a reconnecting venue's back-off task
    working = [o.client_order_id for o in eng.router.orders.values() if not o.done]
    positions = {f"{p.account} {p.instrument.id}": p.qty for p in eng.risk.capital.positions() if p.qty}
    legged = [t.ticket_id for t in eng.desk.tickets.values() if t.orders and not t.is_balanced]
    if str(eng.journal.path) != ":memory:":
        snapshot.write(eng, eng.router.id_prefix, snapshot.quiet(eng, working, legged))
    eng.journal_writer.write_raw(
        "EngineStopped",
        {
            "working_orders": working,
            "positions": positions,
            "legged_tickets": legged,
            "run": eng.router.id_prefix,
        },
    )
    parts = [f"{'long' if q > 0 else 'short'} {abs(q)} {where}" for where, q in positions.items()]
    if working:
        parts.append(f"{len(working)} working order(s) left at their venues: {', '.join(working)}")
    if legged:
        parts.append(f"ticket(s) with a naked leg: {', '.join(legged)}")
    if not parts:
        return None
    return "closed with exposure: " + "; ".join(parts) + " (journaled in EngineStopped; a reopen rebuilds it)"


async def connect_venue(eng: Running, venue: Venue, reconcile: bool) -> None:
    await venue.connect(eng.inbox.receive)
    eng.router.closing.discard(venue.name)
    if not eng.market.venue_up[venue.name]:
        now = eng.now_ns()
        eng.router.on_event(VenueConnected(now, now, venue.name, "session opened"))
    if reconcile:  # the venue's VenueConnected may have started one already: wait for that one
        await eng.router.reconcile_in_background(venue)


async def disconnect_venue(eng: Running, venue: Venue) -> None:
    eng.router.closing.add(venue.name)  # asked for, not a drop: no venue alert
    await venue.disconnect()
    if eng.market.venue_up[venue.name]:
        now = eng.now_ns()
        eng.router.on_event(VenueDisconnected(now, now, venue.name, "closed by user"))


def memory_prefix() -> str:
    """Client order ids without a journal file: unique per process start (base-36 milliseconds)."""
    value = time.time_ns() // 1_000_000
    digits = ""
    while value:
        value, rem = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
    return "m" + digits[-7:]
