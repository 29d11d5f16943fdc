"""Reconciliation of the book: what each venue (or a broker statement) holds against the engine's book.

:class:`BookReconciler` is the engine part behind ``eng.reconcile()`` and ``eng.load_statement()``.
It asks every connected venue for its positions (per account and instrument, long and short) and
its working orders, and compares them with the engine's book: positions from the risk monitor's
capital, working orders from the router. Each difference is journaled (``ReconcileDifference``:
both sides, the signed difference, the order that would flatten it) and alerted; nothing in the
book is overwritten. Every run ends with one ``BookReconciled`` row (clean or not), so a clean
result is on record too. A venue that cannot answer (FIX, until the FIX issue brings
OrderMassStatus and RequestForPositions) is reported as unverified, never as flat.

It runs by itself after the venues (re)connect: a ``VenueConnected`` queues its venue, and once
the order-status reconcile the router starts for that venue is done, one check covers every
venue queued meanwhile (at start-up, after recovery: all of them at once).

Venue answers travel the same ordered link as fills, but a fill may land between the answer and
the comparison. A difference is therefore looked at again (up to three looks, one round trip
each) and reported only when every look saw it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from cmc_lab.core.display import lots
from cmc_lab.core.model import Event, OrderState, VenueConnected
from cmc_lab.core.order import register_callback
from cmc_lab.core.ports import AlertSink, JournalWriter
from cmc_lab.core.runner import Runner
from cmc_lab.engine.routing import OrderRouter
from cmc_lab.engine.statement import Statement, read_statement
from cmc_lab.risk.capital import Capital
from cmc_lab.venues.base import OrderStatusReport, PositionReport, Venue, VenueCannotReport, VenueNotConnected

#: Looks at a venue before a difference is reported (each one round trip).
LOOKS = 3
#: Seconds a venue has to answer one query before it counts as not answering.
QUERY_TIMEOUT_S = 5.0

Number = int | Decimal


@dataclass(frozen=True, slots=True)
class Line:
    """One comparison: what a venue (or the statement) reports against the engine's book.

    ``check`` is ``"position"`` (signed lots), ``"long lots"`` (SHFE/INE, same net but long and
    short held apart differently), ``"working order"`` (lots still to fill) or ``"cash"``; ``item`` the instrument id, client order id or currency; ``action`` the order
    that would flatten the difference, or what to do about it.
    """

    source: str
    check: str
    account: str
    item: str
    reported: Number
    engine: Number
    action: str = ""
    message: str = ""
    level: str = "warning"
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> Number:
        """Signed: what the source reports less what the engine's book holds."""
        return self.reported - self.engine

    @property
    def differs(self) -> bool:
        return self.difference != 0

    def ids(self) -> dict[str, str]:
        """The journal row's ids: the instrument, and the order of a working-order line."""
        if self.check in ("position", "long lots"):
            return {"instrument": self.item}
        if self.check == "working order":
            return {"order_id": self.item, "instrument": str(self.details["instrument_id"])}
        return {}

    def payload(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "check": self.check,
            "account": self.account,
            "item": self.item,
            "reported": self.reported,
            "engine": self.engine,
            "difference": self.difference,
            "action": self.action,
            "message": self.message,
            **self.details,
        }


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of one reconciliation: every comparison, the differences, what could not be checked.

    ``frame`` has one row per comparison (source, check, account, item, reported, engine,
    difference, status, action); ``unverified`` names each venue that could not answer and why.

    Examples
    --------
    >>> result = eng.reconcile()           # doctest: +SKIP
    >>> result.clean, len(result.differences)   # doctest: +SKIP
    (True, 0)
    >>> result.frame                       # doctest: +SKIP
    """

    source: str
    ts_event: int
    lines: tuple[Line, ...]
    unverified: Mapping[str, str]
    frame: pd.DataFrame = field(repr=False, compare=False)

    @property
    def differences(self) -> list[Line]:
        return [line for line in self.lines if line.differs]

    @property
    def clean(self) -> bool:
        """Everything checked agrees and nothing was left unverified."""
        return not self.differences and not self.unverified

    def __repr__(self) -> str:
        parts = [f"{len(self.lines)} compared", f"{len(self.differences)} difference(s)"]
        if self.unverified:
            parts.append(f"unverified: {', '.join(self.unverified)}")
        return f"Reconciliation({self.source}: {', '.join(parts)})"

    def _repr_html_(self) -> str:
        verdict = "clean" if self.clean else "differences" if self.differences else "incomplete"
        unverified = "".join(f"<li>{escape(v)}: {escape(why)}</li>" for v, why in self.unverified.items())
        return (
            f"<div class='cmc-reconciliation'><b>{escape(repr(self))}</b> ({verdict})"
            + (f"<ul>{unverified}</ul>" if unverified else "")
            + self.frame.to_html(index=False)
            + "</div>"
        )


class BookReconciler:
    """Compares venues and broker statements with the engine's book (engine loop).

    Built with the venues, the router (working orders; it tells of ``VenueConnected``), the
    capital (positions, cash), the journal writer, the alerts and the runner. It subscribes to
    the router's events itself, so a venue that (re)connects is checked once its order-status
    reconcile is done.
    """

    def __init__(
        self,
        *,
        venues: Mapping[str, Venue],
        router: OrderRouter,
        capital: Capital,
        writer: JournalWriter,
        alerts: AlertSink,
        runner: Runner,
    ) -> None:
        self.venues = venues
        self.router = router
        self.capital = capital
        self.writer = writer
        self.alerts = alerts
        self.runner = runner
        self.last: Reconciliation | None = None
        self._queued: dict[str, None] = {}  # venues that (re)connected and wait for their check
        self._task: asyncio.Task[None] | None = None
        self._told_unverified: set[tuple[str, str]] = set()  # alerted once per venue and reason
        register_callback(router.event_callbacks, self.on_event, False)

    # ------------------------------------------------------------------ automatic

    def on_event(self, event: Event) -> None:
        """Queue a venue that (re)connected; one background task checks every queued venue."""
        if not isinstance(event, VenueConnected) or event.venue not in self.venues:
            return
        self._queued[event.venue] = None
        if self._task is None or self._task.done():
            self._task = self.runner.loop.create_task(self._after_connect(), name="book reconcile")
            self._task.add_done_callback(self._on_done)

    def stop(self) -> None:
        """No background check after the engine starts closing (any thread)."""
        task = self._task
        if task is not None:
            self.runner.loop.call_soon_threadsafe(task.cancel)

    async def finish(self) -> None:
        """Cancel a background check and wait for it to end (engine loop, before the venues close),
        so no task is left pending when the loop stops."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _after_connect(self) -> None:
        while self._queued:
            names = list(self._queued)
            self._queued.clear()
            pending = [t for n in names if (t := self.router.reconciling.get(n)) is not None and not t.done()]
            if pending:  # the router's order-status reconcile first: it closes what the venue lost
                await asyncio.wait(pending)
            live = [n for n in names if self.venues[n].connected]
            if live:
                await self.reconcile(live)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.runner.report(
                [f"book reconcile failed: {task.exception()!r}; eng.reconcile() runs it again"]
            )

    # ------------------------------------------------------------------ venues

    async def reconcile(self, names: Iterable[str] | None = None) -> Reconciliation:
        """Ask these venues (default: every one) for positions and working orders; compare, journal, alert."""
        chosen = list(self.venues) if names is None else list(names)
        checked = await asyncio.gather(*(self._check_venue(self.venues[n]) for n in chosen))
        lines = [line for venue_lines, _ in checked for line in venue_lines]
        unverified = {name: why for name, (_, why) in zip(chosen, checked, strict=True) if why}
        return self._record("venues", lines, unverified, {"venues": chosen})

    async def _check_venue(self, venue: Venue) -> tuple[list[Line], str]:
        """The lines of one venue and why it could not be checked ("" if it could).

        A look that differs is repeated until a look agrees, two looks in a row see the same
        differences, or :data:`LOOKS` looks were taken (then the last one stands).
        """
        if not venue.connected:
            return [], f"{venue.name} is not connected; it is checked when it reconnects"
        before: set[tuple[str, str, Number]] | None = None
        for _ in range(LOOKS):
            positions, position_why = await self._ask(venue, venue.positions)
            working, working_why = await self._ask(venue, venue.working_orders)
            lines = self._positions(venue.name, positions) if positions is not None else []
            lines += self._working(venue.name, working) if working is not None else []
            seen = {(line.check, line.item, line.difference) for line in lines if line.differs}
            if not seen or seen == before:
                break
            before = seen
        return lines, "; ".join(w for w in (position_why, working_why) if w)

    async def _ask(self, venue: Venue, query: Callable[[], Any]) -> tuple[Any, str]:
        try:
            return await asyncio.wait_for(query(), QUERY_TIMEOUT_S), ""
        except VenueCannotReport as exc:
            return None, str(exc)
        except VenueNotConnected as exc:
            return None, f"{venue.name} went down while being asked: {exc}"
        except TimeoutError:
            return (
                None,
                f"{venue.name} did not answer within {QUERY_TIMEOUT_S:g} s; run eng.reconcile() again",
            )

    def _positions(self, source: str, reports: list[PositionReport]) -> list[Line]:
        held = {(r.account, r.instrument_id): r for r in reports}
        book = {
            (p.account, p.instrument.id)
            for p in self.capital.positions()
            if p.qty and p.instrument.venue == source
        }
        lines = []
        for account, iid in sorted(held.keys() | book):
            report = held.get((account, iid))
            reported = report.net_qty if report is not None else 0
            sides = {"long_qty": report.long_qty, "short_qty": report.short_qty} if report else {}
            engine = self.capital.position(account, iid)
            lines.append(position_line(source, account, iid, reported, engine, sides))
            if report is not None and reported == engine:
                lines += self._sides(source, report)
        return lines

    def _sides(self, source: str, report: PositionReport) -> list[Line]:
        """Where the venue keeps long and short apart (SHFE, INE): the same net held apart otherwise."""
        inst = self.capital.instruments.get(report.instrument_id)
        if inst is None or not self.capital.offsets.keeps(inst):
            return []
        book = self.capital.offsets.view(report.account, inst, self.router.market.now_ns())
        if (book.long.total, book.short.total) == (report.long_qty, report.short_qty):
            return []
        iid, theirs, ours = inst.id, (report.long_qty, report.short_qty), (book.long.total, book.short.total)
        message = (
            f"{iid} in {report.account}: {source} holds long {theirs[0]} / short {theirs[1]}, the engine's book "
            f"long {ours[0]} / short {ours[1]}: the same net, long and short held apart differently; close "
            "the locked lots with close orders (offset='close_today' or 'close_yesterday') (the book is not changed)"
        )
        sides = {"long_qty": report.long_qty, "short_qty": report.short_qty}
        return [
            Line(source, "long lots", report.account, iid, theirs[0], ours[0], "", message, "warning", sides)
        ]

    def _working(self, source: str, reports: list[OrderStatusReport]) -> list[Line]:
        listed = {r.client_order_id: r for r in reports}
        ours = {
            o.client_order_id: o
            for o in self.router.orders.values()
            if o.instrument.venue == source and not o.done
        }
        lines = []
        for cid in sorted(listed.keys() | ours.keys()):
            report, order = listed.get(cid), ours.get(cid)
            if order is not None:
                if report is None and order.state is OrderState.SUBMITTED:
                    continue  # on its way: the venue may not have it yet
                seen = (order.account, order.instrument_id, order.side.value, order.leaves_qty)
            elif report is not None:
                side = report.side.value if report.side is not None else "?"
                seen = (report.account or "", report.instrument_id, side, 0)
            lines.append(self._order_line(source, cid, report, *seen))
        return lines

    def _order_line(
        self,
        source: str,
        cid: str,
        report: OrderStatusReport | None,
        account: str,
        instrument_id: str,
        side: str,
        engine: int,
    ) -> Line:
        reported = report.leaves_qty if report is not None else 0
        what = f"{side} {instrument_id} {cid} of {account or 'an unnamed account'}"
        settle = f"eng.reconnect({source!r}) settles {cid} by its order status"
        if engine == 0:
            known = "believes done" if cid in self.router.orders else "does not know"
            message = (
                f"{source} works {reported} lot(s) of {what}, which the engine {known}; it can fill: "
                "cancel it at the venue"
            )
            level, action = "critical", f"cancel {cid} at {source}"
        elif report is None:
            message = f"the engine believes {what} works {engine} lot(s), but {source} lists no such order"
            level, action = "warning", settle
        else:
            message = f"{what}: {source} has {reported} lot(s) left to fill, the engine {engine}"
            level, action = "warning", settle
        details = {"instrument_id": instrument_id, "side": side}
        return Line(source, "working order", account, cid, reported, engine, action, message, level, details)

    # ------------------------------------------------------------------ a broker statement

    def read_statement(self, path: str | Path) -> Statement:
        """Read a broker statement (see :mod:`cmc_lab.engine.statement`); any thread, the book untouched."""
        cap = self.capital
        return read_statement(
            path, cap.instruments.values(), cap.account_name, lambda account: cap.accounts[account].currency
        )

    async def reconcile_statement(self, statement: Statement) -> Reconciliation:
        """Compare a parsed statement's positions and cash with the book; journal and alert as for venues.

        Only the accounts the statement names are compared; an instrument it does not list for
        such an account is flat at the broker.
        """
        source = "statement"
        lines = []
        for account in statement.accounts:
            book = {
                p.instrument.id: p.qty for p in self.capital.positions() if p.account == account and p.qty
            }
            listed = {
                iid: (long, short)
                for (acct, iid), (long, short) in statement.positions.items()
                if acct == account
            }
            for iid in sorted(listed.keys() | book.keys()):
                long, short = listed.get(iid, (0, 0))
                sides = {"long_qty": long, "short_qty": short}
                lines.append(
                    position_line(
                        source, account, iid, long - short, self.capital.position(account, iid), sides
                    )
                )
            if account in statement.cash:
                lines.append(self._cash(account, *statement.cash[account]))
        extra = {"statement": str(statement.path), "sha256": statement.sha256}
        return self._record(f"statement {statement.path.name}", lines, {}, extra)

    def _cash(self, account: str, reported: Decimal, currency: str) -> Line:
        held = self.capital.accounts[account].cash
        difference = reported - held
        message = (
            f"cash of {account}: the statement says {reported} {currency}, the engine's book {held} "
            f"{currency} ({difference:+} {currency}); fees, interest or a transfer the engine has not booked"
        )
        return Line(
            "statement", "cash", account, currency, reported, held, "check the account's cash", message
        )

    # ------------------------------------------------------------------ journal and alerts

    def _record(
        self, source: str, lines: list[Line], unverified: dict[str, str], extra: dict[str, Any]
    ) -> Reconciliation:
        now = self.router.now_ns()
        result = Reconciliation(source, now, tuple(lines), unverified, _frame(lines, unverified))
        differences = result.differences
        with self.writer.batch():
            for line in differences:
                ids = line.ids()
                venue = line.source if line.source in self.venues else None
                self.writer.write_raw("ReconcileDifference", line.payload(), venue=venue, **ids)
                details = {"check": line.check, "difference": line.difference, "action": line.action}
                self.alerts.alert("reconcile", line.level, line.message, details, venue=venue, **ids)
            for name, why in unverified.items():
                if (name, why) not in self._told_unverified and self.venues[name].connected:
                    self._told_unverified.add((name, why))
                    self.alerts.alert("reconcile", "warning", f"{name} is not reconciled: {why}", venue=name)
            self.writer.write_raw(
                "BookReconciled",
                {
                    "source": source,
                    **extra,
                    "compared": len(lines),
                    "differences": len(differences),
                    "unverified": unverified,
                    "clean": result.clean,
                },
            )
        self.last = result
        return result


def position_line(
    source: str, account: str, instrument_id: str, reported: int, engine: int, sides: Mapping[str, int]
) -> Line:
    """One position compared: the message states both sides signed, the difference and the order that flattens it."""
    difference = reported - engine
    action = message = ""
    if difference:
        side = "sell" if difference > 0 else "buy"
        action = f"{side} {abs(difference)} {instrument_id}"
        who = source if source != "statement" else "the statement"
        message = (
            f"{instrument_id} in {account}: {who} holds {lots(reported)}, the engine's book "
            f"{lots(engine)}: {difference:+d} lot(s) the book does not have; {action} to flatten the "
            "difference (the book is not changed)"
        )
    return Line(
        source, "position", account, instrument_id, reported, engine, action, message, "critical", dict(sides)
    )


def _frame(lines: list[Line], unverified: Mapping[str, str]) -> pd.DataFrame:
    rows = [
        {
            "source": line.source,
            "check": line.check,
            "account": line.account,
            "item": line.item,
            "reported": line.reported,
            "engine": line.engine,
            "difference": line.difference,
            "status": "differs" if line.differs else "ok",
            "action": line.action,
        }
        for line in lines
    ]
    rows += [
        {"source": name, "check": "venue", "status": "unverified", "action": why}
        for name, why in unverified.items()
    ]
    columns = ["source", "check", "account", "item", "reported", "engine", "difference", "status", "action"]
    return pd.DataFrame(rows, columns=columns)


__all__ = ["BookReconciler", "Line", "Reconciliation", "position_line"]
