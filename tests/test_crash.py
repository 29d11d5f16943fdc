"""Crash survival: an engine killed by SIGKILL at any moment restarts with no order sent twice and none forgotten.

A child process (``tests/_crash_child.py``) runs an engine against the served exchange (another
process, behind a FIX 4.4 acceptor on loopback, every venue over one session) with a file
journal, the same path every round, and trades: hedge tickets, IOC and resting orders, cancels.
It dies by SIGKILL at a named crash point (``CMC_LAB_CRASH_AT``, see ``cmc_lab/crashpoints.py``)
or by the test's own SIGKILL at a random moment. The test then restarts an engine on the same
journal and checks:

1. ``journal.verify()`` passes;
2. every ExecutionReport the dead process acknowledged (MsgSeqNum below the next incoming number
   in its sequence store) is in the journal it left: fills by trade id, other reports by order
   and kind;
3. no ClOrdID reached the exchange twice (NewOrderSingle in the exchange's message log);
4. every order the exchange took had its intent journaled, and every journaled order it never
   took is closed, not re-sent;
5. once the restart has reconciled, every order the exchange took agrees with the journal (state,
   filled quantity; an OrderStatusRequest sweep), every one it still works is a live order of the
   new engine, and no trade is counted twice.

``CMC_LAB_CRASH_ROUNDS=N`` adds N rounds of random crash points and kills (the long form).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.crashpoints import CRASH_POINTS, ENV, CrashPointError, parse
from cmc_lab.core.model import (
    IllegalTransition,
    OrderEvent,
    OrderFilled,
    OrderInitialized,
    OrderState,
    OrderSubmitted,
    event_from_payload,
    next_state,
)
from cmc_lab.core.specs import load_specs
from cmc_lab.engine.recovery import ORDER_KINDS
from cmc_lab.journal import Journal
from cmc_lab.venues.base import OrderStatusReport, VenueNotConnected
from cmc_lab.venues.fix.store import store_path

CHILD = Path(__file__).with_name("_crash_child.py")
SENDERS = ["CLIENT1", "CRASH1", "CRASH2", "CRASH3", "CRASH4", "CRASH5", "CRASH6"]
#: The CI form: every crash point at several depths, plus kills from outside at random moments.
SCHEDULE: list[tuple[str, int]] = [
    ("after_intent_commit", 1),
    ("after_send", 1),
    ("fill_before_journal", 1),
    ("mid_commit", 1),
    ("before_answer_journaled", 2),
    ("external", 0),
    ("after_answer_journaled", 9),
    ("after_intent_commit", 4),
    ("after_send", 3),
    ("fill_before_journal", 2),
    ("mid_commit", 8),
    ("before_answer_journaled", 14),
    ("external", 0),
    ("after_answer_journaled", 25),
    ("after_intent_commit", 9),
    ("after_send", 8),
    ("fill_before_journal", 5),
    ("mid_commit", 30),
    ("before_answer_journaled", 45),
    ("external", 0),
    ("after_answer_journaled", 60),
    ("mid_commit", 70),
    ("external", 0),
    ("before_answer_journaled", 90),
]
EXTRA_ROUNDS = int(os.environ.get("CMC_LAB_CRASH_ROUNDS", "0"))
_SENT = re.compile(r"EXECUTOR->(\w+) OUT (.*)$")
_RECEIVED = re.compile(r"EXECUTOR->(\w+) IN  (.*)$")
_REPORT_KINDS = {"0": "OrderAccepted", "4": "OrderCanceled", "8": "OrderRejected", "C": "OrderExpired"}


# --------------------------------------------------------------------------- harness


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """``(port, message log)`` of the served exchange, one process for the module."""
    log = tmp_path_factory.mktemp("crash") / "exchange.log"
    targets = [f"--target={s}" for s in SENDERS]
    with served_exchange(*targets, "--log", str(log), "--quote-interval", "0.2") as (port, _):
        yield port, log


@dataclass
class Setup:
    port: int
    log: Path
    sender: str
    journal: Path
    hours: Path

    @property
    def address(self) -> str:
        return f"fix://127.0.0.1:{self.port}?sender={self.sender}&target=EXECUTOR&heartbeat=5"


def make_setup(exchange: tuple[int, Path], sender: str, tmp_path: Path, hours: Path) -> Setup:
    return Setup(exchange[0], exchange[1], sender, tmp_path / "crash.sqlite", hours)


def run_child(setup: Setup, point: str, count: int, seed: int, mode: str) -> str:
    """Run the child until it dies or ends: ``killed at NAME``, ``killed from outside`` or ``not reached``."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if point != "external":
        env[ENV] = f"{point}:{count}"
    args = [str(setup.port), setup.sender, str(setup.journal), str(setup.hours), str(seed), mode]
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty child never blocks on it
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, stderr=errors, text=True, env=env
        )
        try:
            if point == "external":
                _wait_for_line(proc, "ready", 30)
                time.sleep(random.Random(seed).uniform(0.05, 1.2))
                proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()  # reaped: a zombie would still look like a running engine to recovery
        errors.seek(0)
        err = errors.read()
    if proc.returncode == -signal.SIGKILL and point == "external":
        return "killed from outside"
    if proc.returncode == -signal.SIGKILL:
        assert f"crash point {point} reached" in err, err[-3000:]
        return f"killed at {point}"
    assert proc.returncode == 0 and "done" in out, f"child failed ({proc.returncode}): {err[-3000:]}"
    return "not reached"


def _wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else ""
        if line.strip() == wanted:
            return
        if not line and proc.poll() is not None:
            return  # died before (a crash point during startup)
    raise AssertionError(f"the child did not print {wanted!r} within {timeout} s")


def restart(setup: Setup) -> cmc.Engine:
    """A new engine on the same journal, retrying while the acceptor still holds the dead process's session."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return cmc.connect(setup.address, journal=setup.journal, instruments=setup.hours)
        except VenueNotConnected:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --------------------------------------------------------------------------- the exchange's side


def fix_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split("|"):
        tag, sep, value = part.partition("=")
        if sep:
            fields.setdefault(tag, value)
    return fields


def orders_received(log: Path, sender: str) -> Counter[str]:
    """ClOrdID -> NewOrderSingle messages the exchange received with it (resends included)."""
    taken: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        found = _RECEIVED.search(line)
        if found and found.group(1) == sender and "|35=D|" in found.group(2):
            taken[fix_fields(found.group(2))["11"]] += 1
    return taken


def reports_sent(log: Path, sender: str) -> dict[int, dict[str, str]]:
    """MsgSeqNum -> fields of every ExecutionReport and OrderCancelReject the exchange wrote to ``sender``."""
    sent: dict[int, dict[str, str]] = {}
    for line in log.read_text().splitlines():
        found = _SENT.search(line)
        if found and found.group(1) == sender and ("|35=8|" in found.group(2) or "|35=9|" in found.group(2)):
            fields = fix_fields(found.group(2))
            sent.setdefault(int(fields["34"]), fields)
    return sent


def acknowledged_in(setup: Setup) -> int:
    """The next incoming MsgSeqNum the dead process had stored: every report below it was processed."""
    path = store_path(setup.journal, setup.sender, "EXECUTOR")
    return int(json.loads(path.read_text())["next_in"]) if path.exists() else 1


# --------------------------------------------------------------------------- the journal's side


@dataclass
class Journaled:
    """One order as its journal rows tell it (replayed through the model's transition table)."""

    qty: int
    state: OrderState = OrderState.INITIALIZED
    trade_ids: list[str] = field(default_factory=list)
    filled: int = 0


def journal_rows(path: Path) -> list[dict[str, Any]]:
    with Journal(path, readonly=True) as journal:
        return list(journal.rows())


def journaled_orders(rows: list[dict[str, Any]]) -> dict[str, Journaled]:
    orders: dict[str, Journaled] = {}
    for row in rows:
        if row["kind"] not in ORDER_KINDS:
            continue
        event = event_from_payload(row["kind"], row["payload"])
        assert isinstance(event, OrderEvent)
        if isinstance(event, OrderInitialized):
            orders[event.client_order_id] = Journaled(event.qty)
            continue
        order = orders[event.client_order_id]
        if isinstance(event, OrderFilled):
            order.trade_ids.append(event.trade_id)
            order.filled += event.last_qty
        with contextlib.suppress(IllegalTransition):  # a late report: an anomaly, the state stands
            order.state = next_state(order.state, event, order.filled, order.qty)
    return orders


def submitted(rows: list[dict[str, Any]]) -> set[str]:
    return {r["order_id"] for r in rows if r["kind"] == OrderSubmitted.kind}


def unjournaled_reports(
    reports: dict[int, dict[str, str]], next_in: int, rows: list[dict[str, Any]]
) -> list[str]:
    """Reports the dead process acknowledged that its journal lacks."""
    trade_ids: set[str] = set()
    kinds: Counter[tuple[str, str]] = Counter()
    for row in rows:
        payload = row["payload"]
        kind = payload.get("event") if row["kind"] == "UnknownOrderReport" else row["kind"]
        if kind in (OrderFilled.kind, "DuplicateFillIgnored"):
            trade_ids.add(str(payload.get("trade_id")))
        order = str(payload.get("client_order_id") or row["order_id"]).partition(".")[0]
        kinds[(order, str(kind))] += 1
    wanted: Counter[tuple[str, str]] = Counter()
    missing = []
    for seq, fields in sorted(reports.items()):
        if seq >= next_in:
            continue
        root = (fields.get("41") or fields["11"]).partition(".")[0]
        if fields["35"] == "9":
            wanted[(root, "OrderCancelRejected")] += 1
        elif fields["150"] == "F":
            if fields["17"] not in trade_ids:
                missing.append(f"fill {fields['17']} of {root} (seq {seq})")
        elif fields["150"] in _REPORT_KINDS:
            wanted[(root, _REPORT_KINDS[fields["150"]])] += 1
    missing += [f"{kind} of {order}" for (order, kind), n in wanted.items() if kinds[(order, kind)] < n]
    return missing


# --------------------------------------------------------------------------- the checks after a restart


def exchange_view(eng: cmc.Engine, ids: list[str]) -> dict[str, OrderStatusReport]:
    """What the exchange says of each order (one OrderStatusRequest each, over the engine's session)."""
    venue = eng.venues["COMEX"]  # every venue shares one session: it answers for all
    reports = eng.runtime.call(venue.order_status(ids), timeout=30)
    return {r.client_order_id: r for r in reports}


def disagreements(eng: cmc.Engine, setup: Setup) -> list[str]:
    rows = list(eng.journal.rows())
    journaled = journaled_orders(rows)
    intents = submitted(rows)
    taken = orders_received(setup.log, setup.sender)
    held = exchange_view(eng, sorted(taken))
    problems = [f"{cid} reached the exchange {n} times" for cid, n in taken.items() if n > 1]
    for cid in sorted(taken):
        order, report = journaled.get(cid), held.get(cid)
        if order is None or cid not in intents:
            problems.append(f"the exchange took {cid}, whose intent the journal never committed")
        elif report is None:
            problems.append(f"the exchange took {cid} but does not know it")
        elif (order.state, order.filled) != (report.state, report.filled_qty):
            problems.append(
                f"{cid}: journal {order.state} filled {order.filled}, "
                f"exchange {report.state} filled {report.filled_qty}"
            )
        elif report.state.is_working and (cid not in eng.router.orders or eng.order(cid).done):
            problems.append(f"{cid} works at the exchange but is not a live order of the restarted engine")
        if order is not None and len(order.trade_ids) != len(set(order.trade_ids)):
            problems.append(f"{cid}: a trade journaled twice: {order.trade_ids}")
    for cid in sorted(intents - set(taken)):
        if not journaled[cid].state.is_terminal:
            problems.append(f"{cid} never reached the exchange but the journal says {journaled[cid].state}")
    return problems


def check_restart(setup: Setup) -> dict[str, Any]:
    """Restart on the journal the dead process left and check the invariants; a summary of the restart."""
    before = journal_rows(setup.journal)
    missing = unjournaled_reports(reports_sent(setup.log, setup.sender), acknowledged_in(setup), before)
    assert not missing, f"acknowledged reports missing from the journal: {missing}"
    history = any(r["kind"] in ORDER_KINDS for r in before)
    eng = restart(setup)
    try:
        head = before[-1]["seq"] if before else 0
        deadline = time.monotonic() + 10
        while history and not [r for r in eng.journal.rows(kinds=["RecoveryReconciled"]) if r["seq"] > head]:
            assert time.monotonic() < deadline, f"no RecoveryReconciled after the restart: {eng.errors}"
            time.sleep(0.02)
        report = eng.journal.verify()
        assert report.ok, str(report)
        problems = disagreements(eng, setup)
        for _ in range(30):  # reports still in flight (a cancel the recovery sent again)
            if not problems:
                break
            time.sleep(0.1)
            problems = disagreements(eng, setup)
        assert not problems, problems
        recovered = [r["payload"] for r in eng.journal.rows(kinds=["EngineRecovered"]) if r["seq"] > head]
        assert len(recovered) == int(history)
        return recovered[0] if recovered else {}
    finally:
        eng.close()


# --------------------------------------------------------------------------- tests


def test_engine_killed_at_crash_points_and_at_random_restarts_with_nothing_sent_twice_or_forgotten(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CLIENT1", tmp_path, open_hours)
    rng = random.Random(20261124)
    points = [*CRASH_POINTS, "external"]
    schedule = SCHEDULE + [
        (point, rng.randint(1, 80)) for point in (rng.choice(points) for _ in range(EXTRA_ROUNDS))
    ]
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    for round_no, (point, count) in enumerate(schedule):
        outcome = run_child(setup, point, count, seed=round_no, mode="burst:2.5")
        outcomes[outcome] += 1
        check_restart(setup)
        print(f"round {round_no}: {point}:{count} -> {outcome}")
    print(f"{len(schedule)} rounds in {time.monotonic() - started:.0f} s: {dict(outcomes)}")
    assert sum(n for outcome, n in outcomes.items() if outcome.startswith("killed")) >= 20, outcomes
    assert all(outcomes[f"killed at {point}"] for point in CRASH_POINTS), outcomes
    assert len(orders_received(setup.log, setup.sender)) > 50  # the bursts really traded


def test_order_killed_between_intent_commit_and_send_is_closed_on_restart_and_never_sent(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH1", tmp_path, open_hours)
    assert run_child(setup, "after_intent_commit", 1, seed=1, mode="rest") == "killed at after_intent_commit"
    recovered = check_restart(setup)
    assert recovered["recovered"] == ["r1-000001"] and recovered["states"] == {"SUBMITTED": 1}
    assert orders_received(setup.log, setup.sender) == Counter()
    with Journal(setup.journal, readonly=True) as journal:
        timeline = journal.timeline("r1-000001")
    assert list(timeline["kind"]) == ["OrderInitialized", "OrderSubmitted", "OrderRejected"]
    assert "the venue does not know this order" in timeline["reason"].iloc[-1]


def test_order_killed_right_after_send_is_adopted_on_restart_and_its_cancel_reaches_the_exchange(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH2", tmp_path, open_hours)
    assert run_child(setup, "after_send", 1, seed=2, mode="rest") == "killed at after_send"
    recovered = check_restart(setup)  # restart 1: reconciles it as working, closes cleanly
    assert recovered["recovered"] == ["r1-000001"]
    eng = restart(setup)  # restart 2 (the order survived a clean stop too): cancel it
    try:
        order = eng.order("r1-000001")
        deadline = time.monotonic() + 5
        while order.state is not OrderState.ACCEPTED and time.monotonic() < deadline:
            time.sleep(0.02)
        assert order.state is OrderState.ACCEPTED, order
        order.cancel()
        assert order.wait(5) is OrderState.CANCELED, order
        assert eng.orders(working=True).empty
    finally:
        eng.close()
    assert orders_received(setup.log, setup.sender) == Counter({"r1-000001": 1})


def test_fill_killed_before_its_journal_row_comes_back_by_resend_and_counts_once(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH3", tmp_path, open_hours)
    assert run_child(setup, "fill_before_journal", 1, seed=3, mode="cross") == "killed at fill_before_journal"
    assert [r["kind"] for r in journal_rows(setup.journal) if r["order_id"] == "r1-000001"][
        -1
    ] == "OrderAccepted"
    check_restart(setup)
    rows = journal_rows(setup.journal)
    fills = [r["payload"] for r in rows if r["kind"] == "OrderFilled"]
    assert len(fills) == 1 and not fills[0]["trade_id"].startswith("r1-000001-reconciled"), fills
    assert journaled_orders(rows)["r1-000001"].state is OrderState.FILLED


def test_fill_killed_after_its_journal_row_is_resent_and_not_counted_twice(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH4", tmp_path, open_hours)
    # Each venue's VenueConnected passes the crash point once, then the order's acceptance, then its fill.
    count = len(load_specs(open_hours).venues) + 2
    outcome = run_child(setup, "after_answer_journaled", count, seed=4, mode="cross")
    assert outcome == "killed at after_answer_journaled"
    check_restart(setup)
    rows = journal_rows(setup.journal)
    fill = next(r["payload"] for r in rows if r["kind"] == "OrderFilled")
    # The fill closed the order, so the restart does not hold it: the resent report is journaled as
    # a report for an order this session does not hold, with the same trade id, and changes nothing.
    late = [r["payload"] for r in rows if r["kind"] == "UnknownOrderReport"]
    assert [(p["event"], p["trade_id"]) for p in late] == [("OrderFilled", fill["trade_id"])]
    assert [r["kind"] for r in rows].count("OrderFilled") == 1
    assert journaled_orders(rows)["r1-000001"].filled == 1


def test_cancel_journaled_but_not_sent_before_the_kill_is_sent_on_restart(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH6", tmp_path, open_hours)
    # Each venue's VenueConnected, the order's acceptance, then its cancel request: die once it is journaled.
    count = len(load_specs(open_hours).venues) + 2
    assert run_child(setup, "after_answer_journaled", count, seed=6, mode="rest-cancel") == (
        "killed at after_answer_journaled"
    )
    assert [r["kind"] for r in journal_rows(setup.journal)][-1] == "OrderCancelRequested"
    check_restart(setup)  # the exchange and the journal agree: CANCELED
    kinds = [r["kind"] for r in journal_rows(setup.journal) if r["order_id"] == "r1-000001"]
    assert kinds[-3:] == ["OrderCancelRequested", "RecoveryCancelResent", "OrderCanceled"], kinds
    assert orders_received(setup.log, setup.sender) == Counter({"r1-000001": 1})


def test_crash_point_kills_its_process_with_sigkill_on_the_nth_pass() -> None:
    code = "from cmc_lab.core.crashpoints import crash_point\nfor n in range(5):\n    print(n, flush=True)\n    crash_point('after_send')"
    env = {**os.environ, ENV: "after_send:3"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split() == ["0", "1", "2"] and "crash point after_send reached" in proc.stderr


def test_crash_points_are_named_and_counted_or_refused_with_what_to_write() -> None:
    assert parse("after_send:3, mid_commit:1") == {"after_send": 3, "mid_commit": 1}
    assert parse("") == {}
    with pytest.raises(CrashPointError, match="unknown crash point 'after_sned'; known: after_intent_commit"):
        parse("after_sned:1")
    with pytest.raises(CrashPointError, match=re.escape("write NAME:N with N >= 1, e.g. mid_commit:3")):
        parse("mid_commit:0")


def test_journal_write_killed_mid_commit_keeps_nothing_of_it_and_verifies(
    exchange: tuple[int, Path], tmp_path: Path, open_hours: Path
) -> None:
    setup = make_setup(exchange, "CRASH5", tmp_path, open_hours)
    # Writes: EngineStarted, one VenueConnected per venue, then the order's intent: die committing it.
    count = len(load_specs(open_hours).venues) + 2
    assert run_child(setup, "mid_commit", count, seed=5, mode="cross") == "killed at mid_commit"
    rows = journal_rows(setup.journal)
    assert "OrderSubmitted" not in {r["kind"] for r in rows}
    check_restart(setup)
    assert orders_received(setup.log, setup.sender) == Counter()
