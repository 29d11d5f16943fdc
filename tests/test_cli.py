"""The cmc-lab command: journal verify|timeline|tail, bench, help for every command, the console script."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cmc_lab as cmc
from cmc_lab.cli import build_parser, main

LIFECYCLE = ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"]


@pytest.fixture
def session(make_engine: Callable[..., cmc.Engine], journal_path: Path) -> tuple[Path, str]:
    """A closed journal of one short session; the id of its filled order."""
    eng = make_engine(journal=journal_path)
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    order.wait(5)
    eng.submit("SHFE.au", "buy", 1, price="914.52")
    eng.sleep(0.5)
    eng.close()
    return journal_path, order.client_order_id


def tamper_one_byte(path: Path, order_id: str, kind: str) -> int:
    """Flip one byte of one row's payload with raw sqlite3, as an editor would; that row's seq."""
    db = sqlite3.connect(path)
    try:
        triggers = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        assert triggers, "the journal should refuse UPDATE and DELETE with triggers"
        for name in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        seq, payload = db.execute(
            "SELECT seq, payload FROM events WHERE order_id = ? AND kind = ?", (order_id, kind)
        ).fetchone()
        edited = payload.replace('"qty":1', '"qty":7', 1)
        assert len(edited) == len(payload) and edited != payload
        db.execute("UPDATE events SET payload = ? WHERE seq = ?", (edited, seq))
        db.commit()
    finally:
        db.close()
    return int(seq)


def subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(command path, help, parser)`` of every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                path = f"{parser.prog.removeprefix('cmc-lab').strip()} {name}".strip()
                yield path, helps.get(name, ""), sub
                yield from subparsers(sub)


def test_journal_verify_exits_0_on_an_intact_journal(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = session
    assert main(["journal", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("journal intact:") and "rows verified" in out


def test_journal_verify_with_expected_head_detects_nothing_wrong(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = session
    from cmc_lab.journal import Journal

    with Journal(path, readonly=True) as journal:
        seq, digest = journal.head
    assert main(["journal", "verify", str(path), "--expect-head", f"{seq}:{digest}"]) == 0
    assert main(["journal", "verify", str(path), "--expect-head", "nonsense"]) == 2
    assert "--expect-head takes SEQ:SHA256" in capsys.readouterr().err


def test_journal_verify_exits_1_naming_the_row_whose_payload_was_edited(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, order_id = session
    seq = tamper_one_byte(path, order_id, "OrderInitialized")
    assert main(["journal", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"journal BROKEN at row {seq}: row {seq} (OrderInitialized): hash mismatch" in out
    assert f"({seq - 1} rows before it verified)" in out


def test_journal_timeline_prints_every_kind_of_one_order(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, order_id = session
    assert main(["journal", "timeline", str(path), order_id]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["seq", "kind", "venue"]
    printed = [line.split()[1] for line in out.splitlines()[1:]]
    assert printed == LIFECYCLE


def test_journal_timeline_of_an_unknown_id_exits_2_with_a_message(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = session
    assert main(["journal", "timeline", str(path), "r9-000001"]) == 2
    assert "no events for order or ticket 'r9-000001'" in capsys.readouterr().err


def test_journal_tail_prints_the_last_rows_oldest_first(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = session
    assert main(["journal", "tail", str(path), "-n", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["seq", "ts_event", "kind"]
    assert len(lines) == 4
    assert lines[-1].split()[2] == "EngineStopped"
    seqs = [int(line.split()[0]) for line in lines[1:]]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("command", ["verify", "timeline", "tail"])
def test_journal_commands_on_a_missing_path_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "nope.sqlite"
    argv = ["journal", command, str(missing)] + (["r1-000001"] if command == "timeline" else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"cmc-lab: error: journal {missing} does not exist"
    assert not missing.exists()


def test_journal_verify_of_a_directory_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "verify", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_bench_quick_json_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["quick"] is True
    assert {"order_round_trip", "journal_append"} <= set(results)
    assert results["order_round_trip"]["in_engine"]["n"] == 100
    assert results["journal_append"]["journal_rows_per_s"] > 0
    assert results["audit_export"]["n_events"] >= 10_000 and results["audit_export"]["export_s"] > 0


def test_every_subcommand_has_help_text() -> None:
    found = {path: text for path, text, _ in subparsers(build_parser())}
    assert {"demo", "journal", "journal verify", "journal timeline", "journal tail", "bench"} <= set(found)
    assert all(text.strip() for text in found.values()), found


def test_every_subcommand_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _, _ in subparsers(build_parser()):
        with pytest.raises(SystemExit) as exited:
            main([*path.split(), "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: cmc-lab {path}")


def test_missing_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage: cmc-lab" in capsys.readouterr().err


def test_installed_console_script_verifies_a_journal(session: tuple[Path, str]) -> None:
    path, _ = session
    script = Path(sys.executable).with_name("cmc-lab")
    assert script.is_file(), f"console script missing at {script}; pip install -e . in the venv"
    done = subprocess.run(
        [str(script), "journal", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("journal intact:")


def test_audit_on_an_existing_pack_names_the_cli_flag_not_the_python_argument(
    session: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, _ = session
    pack = tmp_path / "pack.zip"
    assert main(["audit", str(pack), "--journal", str(journal), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["audit", str(pack), "--journal", str(journal), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert main(["audit", str(pack), "--journal", str(journal), "--quiet", "--overwrite"]) == 0


def test_journal_verify_of_a_truncated_file_says_broken_and_suggests_a_way_that_works(
    session: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    journal, _ = session
    with journal.open("r+b") as fh:  # cut the file in half, as a full disk or a bad copy would
        fh.truncate(journal.stat().st_size // 2)
    assert main(["journal", "verify", str(journal)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("journal BROKEN")
    assert "verify()" in out and "cannot read it either" in out
    assert ".recover" in out  # what the hint suggests is a real sqlite3 command, not the call that failed
    assert "run Journal(path, readonly=True).verify()" not in out
