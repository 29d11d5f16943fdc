"""The ``cmc-lab`` command: parse, call one library function, turn errors into messages."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cmc_lab.journal import CorruptJournal, Journal, JournalError

QUICKSTART = "01_quickstart.ipynb"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def shipped_notebooks() -> Path:
    """The notebooks this install carries: ``cmc_lab/_notebooks`` in a wheel (copied there from the
    repository's ``notebooks/`` at build time), the repository's ``notebooks/`` in a clone."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_notebooks", package.parent / "notebooks"):
        if (candidate / QUICKSTART).is_file():
            return candidate
    raise CliError(
        f"this install of cmc_lab has no notebooks ({package / '_notebooks'} is missing); reinstall it "
        "from its wheel (pip install cmc_lab) or from a clone (pip install -e .)"
    )


def demo_folder(folder: Path) -> Path:
    """The working folder of the demo: the shipped notebooks copied in on first run; a notebook
    already there is kept as the user left it (delete it to get the shipped one again)."""
    source = shipped_notebooks()
    if folder.resolve() == source.resolve():
        return folder
    if folder.exists() and not folder.is_dir():
        raise CliError(f"demo folder {folder} is a file; pass another with --dir")
    folder.mkdir(parents=True, exist_ok=True)
    copied = [nb.name for nb in sorted(source.glob("*.ipynb")) if not (folder / nb.name).exists()]
    for name in copied:
        shutil.copyfile(source / name, folder / name)
    if copied:
        print(f"copied {len(copied)} notebook(s) into {folder.resolve()}")
    return folder


def cmd_demo(args: argparse.Namespace) -> int:
    notebooks = demo_folder(Path(args.dir))
    notebook = notebooks / QUICKSTART
    if args.headless:
        out = Path(args.output).resolve()
        out.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "nbconvert",  # the module, not the jupyter-nbconvert script: found without PATH
            "--to",
            "html",
            "--execute",
            f"--ExecutePreprocessor.timeout={args.timeout}",
            "--output-dir",
            str(out),
            str(notebook),
        ]
        done = subprocess.run(command, check=False)
        if done.returncode:
            raise CliError(f"the quickstart notebook failed (exit {done.returncode}); see the output above")
        print(f"executed {notebook.name}; HTML copy at {out / notebook.with_suffix('.html').name}")
        return 0
    command = [sys.executable, "-m", "jupyterlab", QUICKSTART, f"--port={args.port}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    if args.no_browser:
        command.append("--no-browser")
    return subprocess.call(command, cwd=notebooks)


def _open_journal(path: str) -> Journal:
    if not Path(path).exists():
        raise CliError(f"journal {path} does not exist")
    return Journal(path, readonly=True)


def cmd_journal_verify(args: argparse.Namespace) -> int:
    expected = None
    if args.expect_head:
        seq, _, digest = args.expect_head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise CliError("--expect-head takes SEQ:SHA256, as printed by a previous verify")
        expected = (int(seq), digest)
    try:
        with _open_journal(args.path) as journal:
            report = journal.verify(expected_head=expected)
    except (
        CorruptJournal
    ) as exc:  # damaged beneath the rows (cut short, overwritten): a finding, not a usage error
        print(f"journal BROKEN: {exc}")
        return 1
    print(report)
    return 0 if report.ok else 1


def cmd_journal_timeline(args: argparse.Namespace) -> int:
    with _open_journal(args.path) as journal:
        frame = journal.timeline(args.id)
    if frame.empty:
        raise CliError(f"no events for order or ticket {args.id!r} in {args.path}")
    columns = [
        c
        for c in ("seq", "kind", "venue", "hop_ns", "elapsed_ns", "reason", "last_px", "last_qty")
        if c in frame
    ]
    print(frame[columns].to_string(index=False))
    return 0


def cmd_journal_tail(args: argparse.Namespace) -> int:
    with _open_journal(args.path) as journal:
        frame = journal.tail(args.n)
    columns = [c for c in ("seq", "ts_event", "kind", "order_id", "ticket_id", "venue") if c in frame]
    print(frame[columns].to_string(index=False) if not frame.empty else "(empty journal)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from cmc_lab.bench import runner as bench

    results = bench.run(quick=args.quick, progress=lambda m: print(m, file=sys.stderr), peer=args.peer)
    print(json.dumps(results, indent=2, default=str) if args.json else bench.table(results))
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from cmc_lab.scenarios import runner as scenarios

    results = scenarios.run_all(
        quick=args.quick,
        only=args.only,
        seed=args.seed,
        journal_dir=args.journal_dir,
        progress=lambda m: print(m, file=sys.stderr),
    )
    print(json.dumps(results, indent=2, default=str) if args.json else scenarios.table(results))
    return 0


def _time_arg(text: str | None) -> str | int | None:
    """--since/--until: ns since the epoch (digits) or ISO 8601 text."""
    return int(text) if text is not None and text.isdigit() and len(text) > 8 else text


def cmd_audit(args: argparse.Namespace) -> int:
    from cmc_lab.journal.audit import export_pack
    from cmc_lab.journal.pack import verify_pack

    if args.path == "verify":
        if args.pack is None:
            raise CliError("cmc-lab audit verify PACK: name the audit pack (.zip) to check")
        journal = _open_journal(args.journal) if args.journal else None
        try:
            report = verify_pack(args.pack, journal)
        finally:
            if journal is not None:
                journal.close()
        print(report)
        return 0 if report.ok else 1
    if args.pack is not None:
        raise CliError(
            f"unexpected argument {args.pack!r}: cmc-lab audit PATH --journal JOURNAL, or audit verify PACK"
        )
    if not args.journal:
        raise CliError(f"cmc-lab audit {args.path} needs --journal JOURNAL: the journal to export")
    if Path(args.path).exists() and not Path(args.path).is_dir() and not args.overwrite:
        raise CliError(f"{args.path} exists; pass another path, or --overwrite to replace it")
    with _open_journal(args.journal) as journal:
        pack = export_pack(
            journal,
            args.path,
            _time_arg(args.since),
            _time_arg(args.until),
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    print(f"wrote {pack} ({pack.stat().st_size:,} bytes); check it with: cmc-lab audit verify {pack}")
    return 0


def cmd_venue_serve(args: argparse.Namespace) -> int:
    from cmc_lab.venues.fix.serve import serve

    return serve(
        args.fix,
        sender=args.sender,
        targets=args.target or ["CLIENT1"],
        reset_on_logon=args.reset_on_logon,
        sessions=args.sessions,
        seed=args.seed,
        quote_interval=args.quote_interval,
        password_env=args.password_env,
        store_dir=args.store,
        log_path=args.log,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        allow_remote=args.allow_remote,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmc-lab", description="cmc_lab: cross-market arbitrage workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="open the quickstart notebook in JupyterLab (simulated venues)")
    demo.add_argument(
        "--headless", action="store_true", help="execute the notebook and write an HTML copy instead"
    )
    demo.add_argument(
        "--output", default="demo-output", help="where --headless writes the HTML (default demo-output)"
    )
    demo.add_argument(
        "--dir",
        default="cmc-lab-demo",
        help="working folder: the notebooks are copied there on first run (default cmc-lab-demo)",
    )
    demo.add_argument("--timeout", type=int, default=300, help="seconds per cell with --headless")
    demo.add_argument("--port", type=int, default=8888, help="JupyterLab port")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.set_defaults(func=cmd_demo)

    journal = sub.add_parser("journal", help="inspect a journal: verify, timeline, tail")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    verify = jsub.add_parser("verify", help="check the hash chain; exit 1 naming the first bad row")
    verify.add_argument("path")
    verify.add_argument(
        "--expect-head", metavar="SEQ:SHA256", help="also detect truncation against a known head"
    )
    verify.set_defaults(func=cmd_journal_verify)
    timeline = jsub.add_parser("timeline", help="every event of one order or ticket, with latency per hop")
    timeline.add_argument("path")
    timeline.add_argument("id", help="client order id or ticket id")
    timeline.set_defaults(func=cmd_journal_timeline)
    tail = jsub.add_parser("tail", help="the last events")
    tail.add_argument("path")
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.set_defaults(func=cmd_journal_tail)

    bench = sub.add_parser("bench", help="measure latency and throughput against their references")
    bench.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke test that every benchmark runs"
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument(
        "--peer",
        metavar="PYTHON",
        help="the Python of an environment with nautilus_trader (bash scripts/peer/setup.sh): "
        "replay the gold spread through it too and print our ratio",
    )
    bench.set_defaults(func=cmd_bench)

    scen = sub.add_parser(
        "scenarios",
        help="replay the seed's five scenarios on the embedded exchange; our figures beside theirs",
    )
    scen.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke test that every scenario runs"
    )
    scen.add_argument("--json", action="store_true", help="print JSON instead of a table")
    scen.add_argument("--only", type=int, choices=range(1, 6), metavar="N", help="run scenario N (1-5) only")
    scen.add_argument("--seed", type=int, default=7, help="seed of the simulated market (default 7)")
    scen.add_argument(
        "--journal-dir", metavar="DIR", help="keep each scenario's journal as DIR/scenario-N.sqlite"
    )
    scen.set_defaults(func=cmd_scenarios)

    audit = sub.add_parser(
        "audit",
        help="write an audit pack (zip) of a journal's order events, or check one: audit verify PACK",
        description="cmc-lab audit PATH --journal J [--since T] [--until T] writes the pack; "
        "cmc-lab audit verify PACK checks it against its manifest (exit 1 naming the altered file).",
    )
    audit.add_argument("path", help="the pack to write (.zip), or the word verify")
    audit.add_argument("pack", nargs="?", help="with verify: the pack to check")
    audit.add_argument(
        "--journal", metavar="J", help="the journal to export (with verify: also check against it)"
    )
    audit.add_argument("--since", metavar="T", help="window start: ISO 8601 (UTC unless it says) or ns")
    audit.add_argument("--until", metavar="T", help="window end (exclusive): ISO 8601 or ns")
    audit.add_argument("--overwrite", action="store_true", help="replace an existing pack at PATH")
    audit.add_argument("--quiet", action="store_true", help="no progress bar")
    audit.set_defaults(func=cmd_audit)

    venue = sub.add_parser("venue", help="run a venue of your own: the embedded exchange over FIX 4.4")
    vsub = venue.add_subparsers(dest="venue_command", required=True)
    serve = vsub.add_parser(
        "serve", help="serve the embedded exchange as a FIX 4.4 acceptor (order entry, market data)"
    )
    serve.add_argument(
        "--fix", required=True, metavar="HOST:PORT", help="where to listen, e.g. 127.0.0.1:9878 (0: any port)"
    )
    serve.add_argument("--sender", default="EXECUTOR", metavar="ID", help="our CompID (default EXECUTOR)")
    serve.add_argument(
        "--target", action="append", metavar="ID", help="a client CompID to accept (repeat; default CLIENT1)"
    )
    serve.add_argument(
        "--reset-on-logon", action="store_true", help="start new sequence numbers at every Logon"
    )
    serve.add_argument(
        "--sessions",
        choices=("always", "honour"),
        default="always",
        help="always: accept orders at any hour (paper, default); honour: each instrument's trading hours",
    )
    serve.add_argument("--seed", type=int, default=7, help="seed of the simulated market (default 7)")
    serve.add_argument("--quote-interval", type=float, default=0.2, help="seconds between quotes")
    serve.add_argument(
        "--password-env", metavar="VAR", help="require the Logon password held by this environment variable"
    )
    serve.add_argument("--store", metavar="DIR", help="keep sequence numbers in DIR across restarts")
    serve.add_argument("--log", metavar="PATH", help="write every FIX message (passwords redacted) to PATH")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --fix address (set a password too)"
    )
    serve.set_defaults(func=cmd_venue_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CliError, JournalError, ValueError, OSError) as exc:
        print(f"cmc-lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
