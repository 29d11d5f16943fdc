"""Soak: an accelerated trading day with faults injected at random, invariants checked throughout.

The short form runs 2 market hours under the virtual clock (quotes every 0.5 s); set
``CMC_LAB_SOAK_HOURS=8`` (or any number) for a longer one. The day (``scenario_day.trading_day``)
fires hedge tickets on four spreads with every policy and mode, plain orders, cancels,
transfers, margin changes and kill switches, and scripts venue faults (rejects, partial fills,
lost acks, disconnects, stale feeds, halts, closed books, duplicate and late fills) and failed
transfers at random. Checked at every step (and at every fill, on the engine thread):

- naked exposure: a ticket above its notional limit is unwinding by the time its fill is seen;
  none stays legged past ``max_legged_ms`` without unwinding; none outlives ``time_limit_ms +
  max_legged_ms``; a BROKEN one has raised an alert;
- money: for every currency, cash + in transit = start + settled P&L + bought - sold;
- journal: the chain verifies, and every head seen before is still part of it;
- no client order id is handed to a venue twice; the engine thread is alive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc
from cmc_lab.core.model import OrderFilled, SubmitOrder
from cmc_lab.execution.hedge import HedgeTicket, TicketState
from cmc_lab.scenarios.day import trading_day

HOURS = float(os.environ.get("CMC_LAB_SOAK_HOURS", "2"))
TS = TicketState
SLACK_MS = 1.0  # timers fire at their virtual instant; a check may run in that same instant


@dataclass
class Watch:
    """What the invariant checks saw: violations, the journal heads verified, client ids sent."""

    eng: cmc.Engine
    violations: list[str] = field(default_factory=list)
    heads: list[tuple[int, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    checks: int = 0
    fills_checked: int = 0


def record_sends(watch: Watch) -> None:
    for venue in watch.eng.venues.values():
        original = venue.submit

        def recording(command: SubmitOrder, original: Any = original) -> None:
            watch.sent.append(command.client_order_id)
            original(command)

        venue.submit = recording  # type: ignore[method-assign]


def ticket_problems(eng: cmc.Engine, t: HedgeTicket, now_mono: int) -> list[str]:
    """The naked-exposure invariants of one ticket, read on the engine loop."""
    p = t.policy
    out = []
    if t.state is TS.BROKEN and not t.alerts:
        out.append(f"{t.ticket_id} BROKEN without an alert")
    if t.done or t._t_decision is None:
        return out
    age_ms = (now_mono - t._t_decision) / 1e6
    if age_ms > p.time_limit_ms + p.max_legged_ms + SLACK_MS:
        out.append(f"{t.ticket_id} still {t.state.value} {age_ms:.0f} ms after firing: {t.history[-3:]}")
    if not t.is_balanced and t._legged_since is not None and t.state is not TS.UNWINDING:
        legged_ms = (now_mono - t._legged_since) / 1e6
        if legged_ms > p.max_legged_ms + SLACK_MS:
            out.append(f"{t.ticket_id} legged {legged_ms:.0f} ms and {t.state.value}, not unwinding")
    return out


def on_fill_event(watch: Watch) -> Any:
    """Engine thread, after a fill is journaled and applied: an over-limit ticket is unwinding."""
    eng = watch.eng

    def check(event: Any) -> None:
        if not isinstance(event, OrderFilled):
            return
        watch.fills_checked += 1
        for t in list(eng.desk.tickets.values()):
            if t.done or t.is_balanced:
                continue
            exposure = t.legged_exposure()
            if t.exposure_limit is not None and exposure > t.exposure_limit and t.state is not TS.UNWINDING:
                watch.violations.append(
                    f"{t.ticket_id}: naked {exposure:,.0f} CNY above its limit and {t.state.value}"
                )

    return check


async def _loop_checks(eng: cmc.Engine) -> list[str]:
    out = []
    now = eng.clock.mono_ns()
    for t in list(eng.desk.tickets.values()):
        out += ticket_problems(eng, t, now)
    for ccy, e in eng.risk.transfers.ledger().items():
        if e["cash"] + e["in_transit"] != e["start"] + e["settled"] + e["bought"] - e["sold"]:
            out.append(f"money not conserved in {ccy}: {e}")
    return out


def check_step(watch: Watch, verify_every: int = 10) -> Any:
    def step(eng: cmc.Engine, n: int, counts: dict[str, int]) -> None:
        watch.checks += 1
        watch.violations += eng.runtime.call(_loop_checks(eng))
        if not eng.runtime.thread.is_alive():
            watch.violations.append(f"step {n}: the engine thread died")
        if n % verify_every == 0:
            verify_journal(watch, f"step {n}")

    return step


def verify_journal(watch: Watch, where: str) -> None:
    journal = watch.eng.journal
    for head in watch.heads[-1:]:  # the last head seen must still be in the chain
        report = journal.verify(expected_head=head)
        if not report.ok:
            watch.violations.append(f"{where}: journal chain broken: {report}")
    watch.heads.append(journal.head)


@pytest.mark.skipif(HOURS <= 0, reason="CMC_LAB_SOAK_HOURS is 0")
def test_an_accelerated_day_with_random_faults_keeps_every_invariant(tmp_path: Path) -> None:
    eng = cmc.connect("sim", seed=11, clock="virtual", journal=tmp_path / "soak.sqlite", quote_interval=0.5)
    watch = Watch(eng)
    try:
        record_sends(watch)
        eng.on_event(on_fill_event(watch))
        eng.thresholds.add("margin_utilisation", warn=0.7, act=0.8, action="transfer", scope="US-FUT")
        eng.thresholds.add("legged_exposure", warn=2_000_000)
        verify_journal(watch, "start")

        counts = trading_day(eng, HOURS, seed=11, faults=True, on_step=check_step(watch))

        for venue in eng.venues.values():
            venue.clear_faults()  # type: ignore[attr-defined]
        if eng.trading_state is not cmc.TradingState.ACTIVE:
            eng.rearm("soak over")
        eng.sleep(120.0)  # every ticket's limits have run out by now
        watch.violations += eng.runtime.call(_loop_checks(eng))
        verify_journal(watch, "end")

        assert not watch.violations, "\n".join(watch.violations[:20])
        assert counts["tickets"] >= 50 * HOURS and counts["faults"] >= 30 * HOURS, counts
        assert watch.checks == counts["steps"] and watch.fills_checked > 0
        tickets = list(eng.desk.tickets.values())
        outcomes = {s: sum(t.state is s for t in tickets) for s in TS}
        assert all(t.done for t in tickets), {t.ticket_id: t.state.value for t in tickets if not t.done}
        for t in tickets:
            if t.state is not TS.BROKEN:
                assert t.is_balanced, f"{t.ticket_id} {t.state.value}: naked {t.imbalance_lots()}"
                assert all(o.done for o in t.orders), f"{t.ticket_id} ended with working orders"
        assert outcomes[TS.FILLED] > len(tickets) / 3, outcomes
        assert len(watch.sent) == len(set(watch.sent)), "a client order id was handed to a venue twice"
        journaled = {r["order_id"] for r in eng.journal.rows(kinds=["OrderInitialized"])}
        assert set(watch.sent) <= journaled, "an order left without its intent in the journal"
        assert eng.runtime.thread.is_alive()
        crashes = [e for e in eng.errors if "Traceback" in e or "callback" in e]
        assert not crashes, crashes[:5]
    finally:
        eng.close()
