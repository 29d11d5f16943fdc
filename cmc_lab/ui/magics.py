"""The %cmc line magic: parse, call the library, render.

Whatever %cmc refuses (bad arguments, or the library's error about them) is raised as IPython's
:class:`~IPython.core.error.UsageError`: the notebook shows its message, never a traceback, and
the cell counts as failed, so "Run all" stops there.
"""

from __future__ import annotations

import argparse
import re
import shlex
import time
from pathlib import Path
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
    p.add_argument(
        "--journal",
        default=None,
        help="SQLite journal path (default: a new cmc-YYYYMMDD-HHMMSS.sqlite in the notebook's folder)",
    )
    p.add_argument("--memory", action="store_true", help="keep the journal in memory (lost on restart)")
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
    p.add_argument("--dwell", type=float, metavar="MS", help="the trigger holds this long before it fires")
    p.add_argument("--hysteresis", type=float, help="the trigger re-arms only this far past its level")
    p.add_argument("--repeat", type=_int, metavar="N", help="one ticket per fire, at most N")
    p.add_argument("--timeout", type=float, metavar="MS", help="how long a leg may work (leg_timeout_ms)")
    p.add_argument("--time-limit", type=float, metavar="MS", help="the whole ticket's limit (time_limit_ms)")
    p.add_argument("--max-attempts", type=_int, metavar="N", help="chase attempts for a missing leg")
    p.add_argument("--chase-ticks", type=_int, metavar="N", help="how far a chase may move the price")
    p.add_argument("--allowance-ticks", type=_int, metavar="N", help="price allowance past the touch")
    p.add_argument("--tif", choices=["IOC", "GFD"], help="legs' time in force (default IOC)")
    p = sub.add_parser("roll", help="move a position to a later month as one hedged ticket", add_help=False)
    p.add_argument("month", help="the month held, e.g. SHFE.au2702 (a product: its main month)")
    p.add_argument("--to", default=None, help="the month to roll into (default: the next quoted one)")
    p.add_argument("--qty", type=_int, default=None, help="lots to roll (default: all that is held)")
    p.add_argument("--policy", choices=["chase", "unwind", "hold"], default="chase", help="if one leg misses")
    sub.add_parser("capital", help="accounts and the unified view with margin utilisation", add_help=False)
    p = sub.add_parser("thresholds", help="the threshold rules and their levels, or add one", add_help=False)
    p.add_argument(
        "op", nargs="?", choices=["add"], help="add: a rule for METRIC (see eng.thresholds.metrics())"
    )
    p.add_argument("metric", nargs="?", help="e.g. margin_utilisation")
    p.add_argument("--warn", type=float, help="level that raises an alert")
    p.add_argument("--act", type=float, help="level that runs --action")
    p.add_argument("--liquidation", type=float, help="margin metrics: level that runs halt")
    p.add_argument("--action", default="alert", help="comma-separated: alert, block, cancel, transfer, ...")
    p.add_argument("--scope", default="*", help="an account, or * for every one (default)")
    p.add_argument("--source", default=None, help="transfer action: the account the money comes from")
    sub.add_parser("alerts", help="alerts raised in this session", add_help=False)
    p = sub.add_parser("receipts", help="receipt timeline of an order or ticket", add_help=False)
    p.add_argument("id", help="client order id or ticket id")
    p = sub.add_parser("audit", help="write the audit pack (zip) of the journal", add_help=False)
    p.add_argument("path", help="the pack to write, e.g. audit-2026-11-24.zip")
    p.add_argument("--since", default=None, help="window start: ISO 8601 (UTC unless it says) or ns")
    p.add_argument("--until", default=None, help="window end (exclusive): ISO 8601 or ns")
    p = sub.add_parser("kill", help="kill switch: cancel everything, block new orders", add_help=False)
    p.add_argument("reason", nargs="*", help="why (journaled)")
    p = sub.add_parser("rearm", help="leave HALTED (or REDUCING): accept orders again", add_help=False)
    p.add_argument("reason", nargs="*", help="why (journaled)")
    sub.add_parser("close", help="disconnect the venues and close the journal", add_help=False)
    sub.add_parser("workbench", help="the whole dashboard", add_help=False)
    p = sub.add_parser("help", help="this help, or one command's", add_help=False)
    p.add_argument("topic", nargs="?", help="a command")
    return parser


PARSER = build_parser()

#: %cmc hedge's options and the eng.hedge keywords they set.
HEDGE_OPTIONS = {
    "dwell": "dwell_ms",
    "hysteresis": "hysteresis",
    "repeat": "repeat",
    "timeout": "leg_timeout_ms",
    "time_limit": "time_limit_ms",
    "max_attempts": "max_attempts",
    "chase_ticks": "chase_ticks",
    "allowance_ticks": "allowance_ticks",
    "tif": "tif",
}


def new_journal_path(folder: Path) -> Path:
    """A journal file name not yet taken in ``folder``: ``cmc-YYYYMMDD-HHMMSS.sqlite`` (UTC now)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, n = folder / f"cmc-{stamp}.sqlite", 1
    while path.exists():
        n += 1
        path = folder / f"cmc-{stamp}-{n}.sqlite"
    return path


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
        if args.memory and args.journal:
            raise UsageError("cmc connect: pass --journal PATH or --memory, not both")
        journal = ":memory:" if args.memory else args.journal or new_journal_path(Path.cwd())
        if self.engine is not None:
            self.engine.close()
        self.engine = connect(args.target, seed=args.seed, journal=journal, clock=args.clock)
        self.shell.user_ns["eng"] = self.engine  # type: ignore[union-attr]
        if args.memory:
            print("journal: in memory (lost when the kernel stops; --journal PATH keeps it)")
        else:
            print(f"journal: {Path(journal).resolve()}")
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
        options = {
            key: getattr(args, name) for name, key in HEDGE_OPTIONS.items() if getattr(args, name) is not None
        }
        return self._engine().hedge(
            args.spread, args.side, args.qty, when=args.when, policy=args.policy, mode=args.mode, **options
        )

    def _do_roll(self, args: argparse.Namespace) -> Any:
        return self._engine().roll(args.month, args.to, qty=args.qty, policy=args.policy)

    def _do_capital(self, args: argparse.Namespace) -> Any:
        return self._engine().capital()

    def _do_thresholds(self, args: argparse.Namespace) -> Any:
        thresholds = self._engine().thresholds
        if args.op is None:
            if args.metric is not None:
                raise UsageError(
                    f"cmc thresholds: {args.metric!r} needs add first: %cmc thresholds add METRIC ..."
                )
            return thresholds
        if args.metric is None:
            raise UsageError(
                "cmc thresholds add: name the metric, e.g. %cmc thresholds add margin_utilisation --warn 0.8"
            )
        actions = [a.strip() for a in args.action.split(",") if a.strip()]
        extra = {} if args.source is None else {"source": args.source}
        return thresholds.add(
            args.metric,
            warn=args.warn,
            act=args.act,
            liquidation=args.liquidation,
            action=actions,
            scope=args.scope,
            **extra,
        )

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

    def _do_rearm(self, args: argparse.Namespace) -> str:
        engine = self._engine()
        engine.rearm(" ".join(args.reason) or "re-armed from %cmc rearm", who="%cmc rearm")
        return f"{engine.trading_state.value}: orders accepted again"

    def _do_close(self, args: argparse.Namespace) -> str:
        engine = self._engine()
        engine.close()
        self.engine = None
        where = engine.journal.path
        return (
            f"closed; the journal stays at {Path(where).resolve()}" if str(where) != ":memory:" else "closed"
        )

    def _do_workbench(self, args: argparse.Namespace) -> Any:
        from cmc_lab.ui.workbench import workbench

        return workbench(self._engine())

    def _do_help(self, args: argparse.Namespace) -> None:
        print(help_text(args.topic))


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(CmcMagics)
