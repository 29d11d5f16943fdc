"""The %cmc line magic: parse, call the library, render.

Whatever %cmc refuses (bad arguments, or the library's error about them) is raised as IPython's
:class:`~IPython.core.error.UsageError`: the notebook shows its message, never a traceback, and
the cell counts as failed, so "Run all" stops there.
"""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from cmc_lab.engine.connect import connect
from cmc_lab.engine.facade import Engine


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --w is not --when: a typo must not pass
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # argparse would sys.exit() the kernel's cell
        raise UsageError(f"cmc: {message}\nusage: %{self.format_usage().removeprefix('usage: ').strip()}")


def _int(text: str) -> int:
    """A whole number written in the digits 0-9 (``int()`` would also read other scripts' digits)."""
    if re.fullmatch(r"[-+]?[0-9]+", text.strip()) is None:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cmc", add_help=False, description="cmc_lab in a notebook")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("connect", help="start an engine on the embedded exchange", add_help=False)
    p.add_argument("target", choices=["sim"], help="sim: every venue on the embedded exchange")
    p.add_argument("--seed", type=_int, default=7, help="market seed (default 7)")
    p.add_argument("--journal", default=None, help="SQLite journal path (default: in memory)")
    p.add_argument("--clock", choices=["real", "virtual"], default="real", help="real (default) or virtual")
    sub.add_parser("status", help="venues, sessions, quotes and trading state", add_help=False)
    sub.add_parser("instruments", help="the instruments with lot, tick, margin and sessions", add_help=False)
    p = sub.add_parser("spread", help="define a spread: first leg bought, second sold", add_help=False)
    p.add_argument("name", help="the spread's name, e.g. au_gc")
    p.add_argument("leg1", help="instrument bought, e.g. SHFE.au")
    p.add_argument("leg2", help="instrument sold, e.g. COMEX.GC")
    p.add_argument("--kind", choices=["diff", "ratio"], default="diff", help="diff (default) or ratio")
    p = sub.add_parser("watch", help="live chart of a spread (bid/ask band, mid, z-score)", add_help=False)
    p.add_argument("spread", help="a spread defined with %%cmc spread or eng.spread")
    p = sub.add_parser("hedge", help="trade a spread with legs sent together", add_help=False)
    p.add_argument("spread", help="a spread defined with %%cmc spread or eng.spread")
    p.add_argument("side", choices=["buy", "sell"], help="buy (first leg bought) or sell")
    p.add_argument("qty", type=_int, help="lots of the first leg, a multiple of the spread's lot ratio")
    p.add_argument("--when", default=None, help='trigger, e.g. "ask <= 2.5"')
    p.add_argument(
        "--policy",
        choices=["chase", "unwind", "hold"],
        default="chase",
        help="if one leg misses (default chase)",
    )
    p.add_argument(
        "--mode", choices=["concurrent", "lead_lag"], default="concurrent", help="legs together or lead first"
    )
    sub.add_parser("capital", help="accounts and the unified view with margin utilisation", add_help=False)
    sub.add_parser("thresholds", help="the threshold rules and their levels", add_help=False)
    sub.add_parser("alerts", help="alerts raised in this session", add_help=False)
    p = sub.add_parser("receipts", help="receipt timeline of an order or ticket", add_help=False)
    p.add_argument("id", help="client order id or ticket id")
    p = sub.add_parser("audit", help="write the audit pack (zip) of the journal", add_help=False)
    p.add_argument("path", help="the pack to write, e.g. audit-2026-11-24.zip")
    p.add_argument("--since", default=None, help="window start: ISO 8601 (UTC unless it says) or ns")
    p.add_argument("--until", default=None, help="window end (exclusive): ISO 8601 or ns")
    p = sub.add_parser("kill", help="kill switch: cancel everything, block new orders", add_help=False)
    p.add_argument("reason", nargs="*", help="why (journaled)")
    sub.add_parser("workbench", help="the whole dashboard", add_help=False)
    p = sub.add_parser("help", help="this help, or one command's", add_help=False)
    p.add_argument("topic", nargs="?", help="a command")
    return parser


PARSER = build_parser()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in PARSER._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def help_text(topic: str | None = None) -> str:
    commands = _subparsers()
    helps = {a.dest: a.help or "" for a in PARSER._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    if topic:
        if topic not in commands:
            raise UsageError(f"cmc help: no command {topic!r}; choose one of: {', '.join(commands)}")
        usage = commands[topic].format_help().replace("usage: ", "usage: %")
        return f"%cmc {topic}: {helps.get(topic, '')}\n\n{usage}"
    lines = ["%cmc COMMAND [ARGS]   (%cmc help COMMAND for details)", ""]
    lines += [f"  {name:<12} {helps.get(name, '')}" for name in commands]
    return "\n".join(lines)


@magics_class
class CmcMagics(Magics):
    """``%cmc``: a thin notebook front for the engine. ``%cmc help`` lists the commands."""

    engine: Engine | None = None

    @line_magic
    def cmc(self, line: str) -> Any:
        """Run one %cmc command; what it refuses raises IPython's UsageError with the fix in its message."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(
                f"cmc: {exc} in {line!r}; close every quote and end the line without a lone backslash"
            ) from None
        args = PARSER.parse_args(words)
        if args.command is None:
            print(help_text())
            return None
        try:
            return getattr(self, f"_do_{args.command}")(args)
        except (ValueError, KeyError, LookupError, RuntimeError, OSError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError quotes
            raise UsageError(f"cmc {args.command}: {message}") from None

    def _engine(self) -> Engine:
        if self.engine is None:
            raise UsageError(
                "cmc: no engine yet; start one with %cmc connect sim [--seed N] [--journal PATH]"
            )
        return self.engine

    def _do_connect(self, args: argparse.Namespace) -> Engine:
        if self.engine is not None:
            self.engine.close()
        self.engine = connect(args.target, seed=args.seed, journal=args.journal, clock=args.clock)
        self.shell.user_ns["eng"] = self.engine  # type: ignore[union-attr]
        return self.engine

    def _do_status(self, args: argparse.Namespace) -> Engine:
        return self._engine()

    def _do_instruments(self, args: argparse.Namespace) -> Any:
        return self._engine().instruments

    def _do_spread(self, args: argparse.Namespace) -> Any:
        return self._engine().spread(args.name, legs={args.leg1: 1, args.leg2: -1}, kind=args.kind)

    def _do_watch(self, args: argparse.Namespace) -> Any:
        from cmc_lab.ui.spread_monitor import SpreadMonitor

        return SpreadMonitor(self._engine(), args.spread).widget

    def _do_hedge(self, args: argparse.Namespace) -> Any:
        return self._engine().hedge(
            args.spread, args.side, args.qty, when=args.when, policy=args.policy, mode=args.mode
        )

    def _do_capital(self, args: argparse.Namespace) -> Any:
        return self._engine().capital()

    def _do_thresholds(self, args: argparse.Namespace) -> Any:
        return self._engine().thresholds

    def _do_alerts(self, args: argparse.Namespace) -> Any:
        return self._engine().alerts()

    def _do_receipts(self, args: argparse.Namespace) -> Any:
        from cmc_lab.ui.receipt import receipt_timeline

        receipt = self._engine().receipt(args.id)
        display(receipt_timeline(receipt))
        return receipt

    def _do_audit(self, args: argparse.Namespace) -> Any:
        since, until = (int(t) if t and t.isdigit() else t for t in (args.since, args.until))
        return self._engine().audit(args.path, since=since, until=until)

    def _do_kill(self, args: argparse.Namespace) -> str:
        reason = " ".join(args.reason) or "kill from %cmc kill"
        cancelled = self._engine().kill(reason, who="%cmc kill")
        return f"HALTED: {cancelled} working order(s) cancelled; eng.rearm() to resume"

    def _do_workbench(self, args: argparse.Namespace) -> Any:
        from cmc_lab.ui.workbench import workbench

        return workbench(self._engine())

    def _do_help(self, args: argparse.Namespace) -> None:
        print(help_text(args.topic))


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(CmcMagics)
