"""The %cmc magics in IPython's test shell: documented, friendly on bad input, and working end to end."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp
from sim_months import AU, GC, NEXT

import cmc_lab as cmc
from cmc_lab.core.model import OrderState
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.execution.spread import Spread
from cmc_lab.ui.magics import PARSER, CmcMagics, _subparsers

COMMANDS = sorted(_subparsers())
NEEDS_ENGINE = {
    "status": "status",
    "instruments": "instruments",
    "spread": "spread au_gc SHFE.au COMEX.GC",
    "watch": "watch au_gc",
    "hedge": "hedge au_gc buy 3",
    "capital": "capital",
    "thresholds": "thresholds",
    "alerts": "alerts",
    "receipts": "receipts r1-000001",
    "audit": "audit pack.zip",
    "kill": "kill",
    "rearm": "rearm",
    "close": "close",
    "workbench": "workbench",
}


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "cmc_lab")
    return ip


@pytest.fixture
def ip(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    """The test shell with ``%cmc`` loaded and no engine, in a temporary notebook folder (where
    ``%cmc connect`` writes its journal); any engine a test connects is closed after."""
    monkeypatch.chdir(tmp_path)
    magics = shell.magics_manager.registry["CmcMagics"]
    magics.engine = None
    yield shell
    if magics.engine is not None:
        magics.engine.close()
        magics.engine = None
    shell.user_ns.pop("eng", None)


def run(ip: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str) -> tuple[Any, str]:
    """Run ``%cmc line`` as a cell: it must not raise or print a traceback. Returns (result, output)."""
    result = ip.run_cell(f"%cmc {line}", store_history=False)
    out, err = capsys.readouterr()
    assert result.error_before_exec is None, f"%cmc {line}: {result.error_before_exec!r}"
    assert result.error_in_exec is None, f"%cmc {line} raised {result.error_in_exec!r}\n{out}{err}"
    assert "Traceback" not in out + err, f"%cmc {line} printed a traceback:\n{out}{err}"
    return result.result, out + err


def refused(ip: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str) -> str:
    """Run ``%cmc line`` as a cell that must fail with IPython's UsageError; returns what the user sees.

    IPython shows a UsageError as ``UsageError: <message>`` without a traceback, and the cell
    fails (so "Run all" stops at it).
    """
    result = ip.run_cell(f"%cmc {line}", store_history=False)
    out, err = capsys.readouterr()
    assert type(result.error_in_exec) is UsageError, f"%cmc {line}: {result.error_in_exec!r}\n{out}{err}"
    assert "Traceback" not in out + err, f"%cmc {line} printed a traceback:\n{out}{err}"
    assert f"UsageError: {result.error_in_exec}" in err, "IPython shows the message"
    return str(result.error_in_exec)


def connect(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> cmc.Engine:
    eng, _ = run(ip, capsys, "connect sim --clock virtual")
    assert isinstance(eng, cmc.Engine)
    return eng


# ---------------------------------------------------------------------------- documentation


def test_help_lists_every_command_with_a_one_line_description(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run(ip, capsys, "help")
    listed = dict(re.findall(r"^  (\w+) +(\S.*)$", out, flags=re.MULTILINE))
    assert sorted(listed) == COMMANDS, "a subcommand is missing from %cmc help"
    blank = [name for name, text in listed.items() if not text.strip()]
    assert blank == [], f"commands without help text: {blank}; pass help=... to add_parser"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_of_each_command_shows_its_summary_and_usage(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    _, out = run(ip, capsys, f"help {name}")
    summary, _, rest = out.partition("\n")
    assert summary.startswith(f"%cmc {name}: ") and len(summary) > len(f"%cmc {name}: ") + 5
    assert f"usage: %cmc {name}" in rest


def test_every_argument_of_every_command_says_what_it_is() -> None:
    missing = [
        f"{name} {action.dest}"
        for name, parser in _subparsers().items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert missing == [], f"arguments without help=...: {missing}"


def test_every_command_has_a_handler() -> None:
    missing = [name for name in COMMANDS if not callable(getattr(CmcMagics, f"_do_{name}", None))]
    assert missing == [], f"add CmcMagics._do_<name> for {missing}"


def test_no_arguments_prints_the_command_list(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result, out = run(ip, capsys, "")
    assert result is None
    assert "%cmc COMMAND [ARGS]" in out and "hedge" in out


def test_parser_raises_ipythons_usage_error_instead_of_exiting_the_kernel() -> None:
    with pytest.raises(UsageError, match="the following arguments are required: spread, side, qty"):
        PARSER.parse_args(["hedge"])


def test_a_bad_magic_argument_raises_ipythons_usage_error_with_the_usage(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("cmc", "hedge au_gc up 3")
    assert type(info.value) is UsageError, "IPython shows only its own UsageError without a traceback"
    message = str(info.value)
    assert "argument side: invalid choice: 'up' (choose from 'buy', 'sell')" in message
    assert "usage: %cmc hedge [--when WHEN]" in message


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", sorted(NEEDS_ENGINE))
def test_commands_before_connect_say_how_to_connect(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    message = refused(ip, capsys, NEEDS_ENGINE[name])
    assert "no engine yet; start one with %cmc connect sim" in message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("bogus", "invalid choice: 'bogus'"),
        ("help nope", "no command 'nope'; choose one of: connect"),
        ("connect", "the following arguments are required: target"),
        ("connect nowhere", "argument target: invalid choice: 'nowhere'"),
        ("connect sim --seed seven", "argument --seed: invalid int value: 'seven'"),
        ("connect sim --clock sundial", "argument --clock: invalid choice: 'sundial'"),
        ("connect sim --bogus 1", "unrecognized arguments: --bogus 1"),
        ("hedge", "the following arguments are required: spread, side, qty"),
        ("spread x SHFE.au", "the following arguments are required: leg2"),
    ],
)
def test_bad_arguments_print_usage_without_an_engine(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, says: str
) -> None:
    message = refused(ip, capsys, line)
    assert message.startswith("cmc")
    assert says in message
    if "no command" not in says:
        assert "usage: %cmc" in message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("hedge au_gc up 3", "argument side: invalid choice: 'up' (choose from 'buy', 'sell')"),
        ("hedge au_gc buy three", "argument qty: invalid int value: 'three'"),
        ("hedge au_gc buy 2.5", "argument qty: invalid int value: '2.5'"),
        ("hedge au_gc buy 2", "qty 2 is not a multiple of the 3:1 lot ratio of au_gc; use 3 or 6 lots"),
        ("hedge au_gc buy 4", f"use 3 or 6 lots of {AU}"),
        ("hedge au_gc buy 0", f"qty must be a whole number of {AU} lots >= 1"),
        ("hedge au_gc buy -3", f"qty must be a whole number of {AU} lots >= 1"),
        ("hedge nope buy 3", "no spread 'nope'; define it with eng.spread('nope'"),
        ("hedge au_gc buy 3 --policy yolo", "argument --policy: invalid choice: 'yolo'"),
        ("hedge au_gc buy 3 --when 'ask <'", "condition 'ask <' is not understood"),
        ('hedge au_gc buy 3 --when "ask <= 2.5', "No closing quotation"),
        ("kill \\", "No escaped character in 'kill \\\\'; close every quote and end the line without"),
        ("watch nope", "no spread 'nope'"),
        ("receipts nope", "no journal events for 'nope'; pass a client order id or ticket id"),
        ("receipts", "the following arguments are required: id"),
        ("spread cu_x SHFE.cu NOPE.zz", "NOPE.zz"),
        ("spread au_gc SHFE.au COMEX.GC --kind sum", "argument --kind: invalid choice: 'sum'"),
    ],
)
def test_bad_arguments_after_connect_print_a_clear_message(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, says: str
) -> None:
    eng = connect(ip, capsys)
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    message = refused(ip, capsys, line)
    assert message.startswith("cmc")
    assert says in message
    assert not re.search(r"cmc \w+: [\"']", message), f"message wrapped in quotes: {message!r}"
    assert eng.tickets().empty, "a bad hedge must not create a ticket"


# ---------------------------------------------------------------------------- a session


def test_connect_puts_the_engine_in_the_namespace_and_a_second_connect_replaces_it(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    first = connect(ip, capsys)
    assert ip.user_ns["eng"] is first
    assert first.clock.virtual
    second = connect(ip, capsys)
    assert ip.user_ns["eng"] is second
    assert "closed" in repr(first)


def test_a_session_of_magics_returns_sensible_objects(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    eng = connect(ip, capsys)

    status, out = run(ip, capsys, "status")
    assert status is eng and "Engine(sim" in out

    instruments, _ = run(ip, capsys, "instruments")
    assert isinstance(instruments, pd.DataFrame)
    assert {AU, GC} <= set(instruments.index) | set(instruments.get("id", []))

    spread, _ = run(ip, capsys, "spread au_gc SHFE.au COMEX.GC")
    assert isinstance(spread, Spread)
    assert spread.leg_ids == (AU, GC)
    assert eng.spread("au_gc") is spread

    ticket, _ = run(ip, capsys, "hedge au_gc buy 3")
    assert isinstance(ticket, HedgeTicket)
    assert ticket.wait(timeout=10).value == "FILLED", ticket.reason
    assert ticket.qty == 3

    armed, _ = run(ip, capsys, 'hedge au_gc sell 3 --when "bid >= 1000" --policy unwind')
    assert armed.state.value == "ARMED"

    alerts, _ = run(ip, capsys, "alerts")
    assert isinstance(alerts, pd.DataFrame)

    receipts, out = run(ip, capsys, f"receipts {ticket.ticket_id}")
    assert isinstance(receipts.frame, pd.DataFrame) and len(receipts.frame) >= 6
    assert {"OrderSubmitted", "OrderFilled"} <= set(receipts.frame["kind"])
    assert "BokehModel" in out, "the receipt timeline widget is displayed"
    order_id = ticket.legs[0].orders[0].client_order_id
    by_order, _ = run(ip, capsys, f"receipts {order_id}")
    assert set(by_order.frame["order_id"].dropna()) == {order_id}

    monitor, _ = run(ip, capsys, "watch au_gc")
    assert type(monitor).__name__ == "BokehModel"

    board, _ = run(ip, capsys, "workbench")
    assert board.engine is eng and board.widget is not None

    if hasattr(eng, "capital"):
        capital, _ = run(ip, capsys, "capital")
        assert capital is not None
        thresholds, _ = run(ip, capsys, "thresholds")
        assert thresholds is not None


def test_kill_cancels_working_orders_and_journals_reason_and_who(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    eng = connect(ip, capsys)
    order = eng.submit("COMEX.GC", "buy", 1, price=round(eng.quote("COMEX.GC").bid * 0.98, 1))
    eng.sleep(0.5)
    assert order.state is OrderState.ACCEPTED

    message, _ = run(ip, capsys, "kill desk is closing")
    assert message == "HALTED: 1 working order(s) cancelled; eng.rearm() to resume"
    assert eng.trading_state is cmc.TradingState.HALTED
    eng.sleep(0.5)
    assert order.state is OrderState.CANCELED
    (row,) = [r for r in eng.journal.rows(kinds=["TradingStateChanged"])]
    assert (row["payload"]["reason"], row["payload"]["who"]) == ("desk is closing", "%cmc kill")

    again, _ = run(ip, capsys, "kill")
    assert again.startswith("HALTED: 0 working order(s)")


def test_engine_errors_are_messages_not_tracebacks(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    eng = connect(ip, capsys)
    eng.close()
    assert "this engine is closed" in refused(ip, capsys, "kill")


# ---------------------------------------------------------------------------- journal, rearm, close, options


def test_connect_keeps_the_journal_in_a_new_file_of_the_notebook_folder_and_says_where(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, out = run(ip, capsys, "connect sim --clock virtual")
    path = Path(first.journal.path).resolve()
    assert path.parent == tmp_path.resolve() and re.fullmatch(r"cmc-\d{8}-\d{6}(-\d+)?\.sqlite", path.name)
    assert f"journal: {path}" in out
    second, _ = run(ip, capsys, "connect sim --clock virtual")
    assert Path(second.journal.path).resolve() != path, "a new file per connect"
    assert first.journal.path.exists()  # the first session's audit trail stays


def test_connect_with_a_named_journal_or_in_memory_when_asked(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    named, out = run(ip, capsys, "connect sim --clock virtual --journal desk.sqlite")
    assert Path(named.journal.path).resolve() == (tmp_path / "desk.sqlite").resolve()
    assert f"journal: {(tmp_path / 'desk.sqlite').resolve()}" in out
    memory, out = run(ip, capsys, "connect sim --clock virtual --memory")
    assert str(memory.journal.path) == ":memory:" and "journal: in memory" in out
    message = refused(ip, capsys, "connect sim --memory --journal x.sqlite")
    assert message == "cmc connect: pass --journal PATH or --memory, not both"


def test_rearm_after_kill_and_close_then_commands_ask_for_a_connect(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    eng = connect(ip, capsys)
    run(ip, capsys, "kill end of day")
    message, _ = run(ip, capsys, "rearm margin restored")
    assert message == "ACTIVE: orders accepted again"
    assert eng.trading_state is cmc.TradingState.ACTIVE
    row = list(eng.journal.rows(kinds=["TradingStateChanged"]))[-1]
    assert (row["payload"]["reason"], row["payload"]["who"]) == ("margin restored", "%cmc rearm")
    closed, _ = run(ip, capsys, "close")
    assert closed.startswith("closed; the journal stays at ") and eng.closed
    assert "no engine yet" in refused(ip, capsys, "status")


def test_hedge_options_reach_the_ticket(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    connect(ip, capsys)
    run(ip, capsys, "spread au_gc SHFE.au COMEX.GC")
    line = 'hedge au_gc sell 3 --when "bid >= 1000" --dwell 250 --repeat 2 --timeout 900 --time-limit 9000'
    ticket, _ = run(ip, capsys, line + " --max-attempts 4 --chase-ticks 5 --allowance-ticks 1 --tif IOC")
    assert ticket.state.value == "ARMED"
    assert (ticket.trigger.dwell_ns, ticket.trigger.max_count) == (250_000_000, 2)
    policy = ticket.policy
    assert (policy.leg_timeout_ms, policy.time_limit_ms, policy.max_attempts) == (900, 9000, 4)
    assert (policy.chase_ticks, policy.allowance_ticks, policy.tif) == (5, 1, "IOC")
    assert "invalid int value" in refused(ip, capsys, "hedge au_gc buy 3 --repeat two")


def test_roll_moves_a_position_one_month_on(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    eng = connect(ip, capsys)
    quote = eng.quote(AU)
    eng.submit(AU, "buy", 2, price=eng.instrument(AU).round_to_tick(quote.ask + 0.1)).wait(5)
    ticket, _ = run(ip, capsys, "roll SHFE.au --policy unwind")
    assert ticket.wait(10).value == "FILLED" and ticket.policy.policy == "unwind"
    assert ticket.spread.leg_ids == (AU, NEXT["SHFE.au"])
    assert "nothing to roll" in refused(ip, capsys, f"roll {AU}")
    assert "invalid int value" in refused(ip, capsys, f"roll {NEXT['SHFE.au']} --qty two")


def test_thresholds_add_installs_a_rule_with_its_source(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    eng = connect(ip, capsys)
    line = "thresholds add margin_utilisation --warn 0.6 --act 0.8 --action alert,transfer --scope US-FUT"
    rule, _ = run(ip, capsys, line + " --source CN-FUT")
    assert (rule.metric, rule.scope, rule.warn, rule.act, rule.source) == (
        "margin_utilisation",
        "US-FUT",
        0.6,
        0.8,
        "CN-FUT",
    )
    assert "transfer" in rule.action and eng.thresholds.rules()["rule_id"].tolist() == [rule.rule_id]
    assert "name the metric" in refused(ip, capsys, "thresholds add")
    assert "unknown metric" in refused(ip, capsys, "thresholds add no_such_metric --warn 1")
