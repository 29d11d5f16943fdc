"""Journal tickets layer: the audit pack's tickets table, one row per hedge ticket with each leg in
columns and its latencies in milliseconds, built from the journal rows as they stream by (no IO).

Legs are numbered in the order they were first sent (the lead leg first in lead/lag mode; the
spread's order when sent together); a leg never sent comes after, by instrument. Each leg has
``legN_instrument, legN_side, legN_qty`` (the target), ``legN_filled, legN_net`` (filled, and net of
unwinds), ``legN_decision_px, legN_avg_px``, ``legN_slippage_ticks`` and ``legN_slippage`` (money in
``legN_currency``, against the decision price, positive = worse), as many legs as the widest ticket
of the window. Latencies are ``mono_ns`` differences between journal rows, in ms with three decimals:
from the ``HedgeDecision`` row to the first leg's order submitted (``decide_to_first_sent_ms``), to
every leg's (``decide_to_all_sent_ms``), to the ticket FILLED (``decide_to_hedged_ms``); and the
ticket's own time between its legs' first fills (``between_first_fills_ms``). A latency across a
restart (the monotonic clock restarts) or of a step that never happened is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The columns before the legs' (see the module docstring for the legs' and the latencies').
TICKET_FIELDS = _names(
    "ticket_id first_seq spread side units policy mode trigger decision_seq decision decision_reason "
    "spread_bid spread_ask state reason attempts unwind_attempts hedged_units decide_to_first_sent_ms "
    "decide_to_all_sent_ms decide_to_hedged_ms between_first_fills_ms"
)
LEG_FIELDS = _names("instrument side qty filled net decision_px avg_px slippage_ticks slippage currency")
#: What the audit pack's summary shows of each ticket.
SUMMARY_FIELDS = ("ticket_id", "spread", "side", "units", "policy", "state", "reason", "decide_to_hedged_ms")
_LEG_SUMMARY = ("instrument", "filled", "avg_px", "slippage", "currency")


@dataclass
class Ticket:
    """What the rows of one ticket said so far."""

    values: dict[str, Any]
    legs: dict[str, tuple[str, str]] = field(default_factory=dict)  # instrument -> (side, decision px)
    targets: dict[str, int] = field(default_factory=dict)
    decision: tuple[int, str] | None = None
    decision_mono: int | None = None
    sent: dict[str, int] = field(default_factory=dict)  # instrument -> mono of its first order submitted
    hedged_mono: int | None = None
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # the report's legs

    def order(self) -> list[str]:
        """The legs in the order they were first sent, then those never sent."""
        sent = sorted(self.sent, key=self.sent.__getitem__)
        return sent + sorted(i for i in {*self.legs, *self.figures} if i not in self.sent)


class TicketTable:
    """The tickets of an export, fed row by row: :meth:`hedge` for the ticket's own rows,
    :meth:`order_submitted` for its orders leaving."""

    def __init__(self) -> None:
        self.tickets: dict[str, Ticket] = {}

    def get(self, ticket_id: str | None) -> Ticket | None:
        return self.tickets.get(ticket_id or "")

    def hedge(self, seq: int, kind: str, ticket_id: str, p: dict[str, Any], mono: int) -> None:
        """One ``Hedge*`` row of ``ticket_id`` (its decoded payload ``p``)."""
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            ticket = self.tickets[ticket_id] = Ticket({"ticket_id": ticket_id, "first_seq": seq})
        values = ticket.values
        if kind == "HedgeCreated":
            policy = p.get("policy") or {}
            values.update(
                spread=p.get("spread"),
                side=p.get("side"),
                units=p.get("units"),
                policy=policy.get("policy"),
                mode=policy.get("mode"),
                trigger=p.get("trigger") or "immediate",
                state="NEW",
            )
        elif kind == "HedgeDecision":
            legs = p.get("legs") or {}
            ticket.legs = {i: (v[0], v[2]) for i, v in legs.items()}
            ticket.targets = {i: v[1] for i, v in legs.items()}
            ticket.decision = (seq, f"HedgeDecision {p.get('action')}: {p.get('reason')}")
            ticket.decision_mono, ticket.sent = mono, {}
            values.update(
                decision_seq=seq,
                decision=p.get("action"),
                decision_reason=p.get("reason"),
                spread_bid=p.get("spread_bid"),
                spread_ask=p.get("spread_ask"),
            )
        elif kind in ("HedgeChase", "HedgeUnwind"):
            ticket.decision = (seq, f"{kind}: {p.get('reason')}")
        elif kind == "HedgeStateChanged":
            values.update(state=p.get("to"), reason=p.get("reason"))
            if p.get("to") == "FILLED":
                ticket.hedged_mono = mono
            report = p.get("report")
            if isinstance(report, dict):
                for key in ("attempts", "unwind_attempts", "hedged_units"):
                    values[key] = report.get(key)
                values["between_first_fills_ms"] = _ms(report.get("time_between_legs_ns"))
                legs = report.get("legs")
                ticket.figures = legs if isinstance(legs, dict) else {}

    def order_submitted(
        self, ticket_id: str | None, instrument: str | None, side: str | None, mono: int
    ) -> None:
        """An order of a ticket left: the first of each leg on the leg's own side after the decision
        marks when that leg was sent (unwinds go the other way; chases come later)."""
        ticket = self.get(ticket_id)
        if ticket is None or instrument is None or ticket.decision_mono is None:
            return
        leg = ticket.legs.get(instrument)
        if leg is not None and leg[0] == side and instrument not in ticket.sent:
            ticket.sent[instrument] = mono

    def fields(self) -> list[str]:
        """The table's header: TICKET_FIELDS, then LEG_FIELDS for each leg of the widest ticket."""
        widest = max((len(t.order()) for t in self.tickets.values()), default=0)
        return [*TICKET_FIELDS, *(f"leg{n}_{f}" for n in range(1, widest + 1) for f in LEG_FIELDS)]

    def rows(self) -> Iterator[dict[str, Any]]:
        """One dict per ticket, keyed by :meth:`fields`; text for money, ms to three decimals."""
        for ticket in self.tickets.values():
            row = dict(ticket.values)
            start = ticket.decision_mono
            if start is not None and ticket.sent:
                row["decide_to_first_sent_ms"] = _since(start, min(ticket.sent.values()))
                if len(ticket.sent) == len(ticket.legs):
                    row["decide_to_all_sent_ms"] = _since(start, max(ticket.sent.values()))
            if start is not None and ticket.hedged_mono is not None:
                row["decide_to_hedged_ms"] = _since(start, ticket.hedged_mono)
            for n, instrument in enumerate(ticket.order(), start=1):
                row.update({f"leg{n}_{k}": v for k, v in _leg(ticket, instrument).items()})
            yield row

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (for the summary)."""
        return pd.DataFrame(list(self.rows()), columns=self.fields())

    def summary_fields(self) -> list[str]:
        """The columns the summary shows: the ticket, then each leg's fill and slippage."""
        legs = [f for f in self.fields() if f.startswith("leg") and f.split("_", 1)[1] in _LEG_SUMMARY]
        return [*SUMMARY_FIELDS, *legs]


def _leg(ticket: Ticket, instrument: str) -> dict[str, Any]:
    side, decision_px = ticket.legs.get(instrument, (None, None))
    fig = ticket.figures.get(instrument) or {}
    ticks = fig.get("slippage_ticks")
    return {
        "instrument": instrument,
        "side": fig.get("side") or side,
        "qty": fig.get("target", ticket.targets.get(instrument)),
        "filled": fig.get("filled"),
        "net": fig.get("net"),
        "decision_px": fig.get("decision_px") or decision_px,
        "avg_px": fig.get("avg_px"),
        "slippage_ticks": None if ticks is None else f"{round(ticks, 2) + 0.0:.2f}",
        "slippage": _money(fig.get("slippage_money")),
        "currency": fig.get("currency"),
    }


def _money(value: Any) -> str | None:
    """Exact money text, never ``-0.00``."""
    if value is None:
        return None
    try:
        money = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return str(money if money else money.copy_abs())


def _since(start: int, end: int) -> str | None:
    return _ms(end - start) if end >= start else None


def _ms(ns: Any) -> str | None:
    """Nanoseconds as milliseconds with three decimals (microsecond resolution)."""
    return None if ns is None else f"{ns / 1e6:.3f}"


__all__ = ["LEG_FIELDS", "SUMMARY_FIELDS", "TICKET_FIELDS", "Ticket", "TicketTable"]
