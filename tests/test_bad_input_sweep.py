"""Bad input sweep: hypothesis throws junk at every way in, and each gets a clear error.

Magic arguments, spread formulas, threshold configs, order and hedge parameters, and journal
files (random bytes, a real journal with a flipped byte). A clear error is one of the library's
named errors (a ValueError such as InvalidOrder, a KeyError naming what is missing, a journal
error) with a message, never a TypeError or a traceback from deep inside; and nothing crashes
the engine thread: its loop records no exception and it still trades afterwards.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp

import cmc_lab as cmc
from cmc_lab.cli import main as cli_main
from cmc_lab.journal import Journal, JournalError
from cmc_lab.risk.metrics import ACTIONS, METRICS

SWEEP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLEAR = (ValueError, KeyError, LookupError)  # InvalidOrder, NoQuote, BadCondition are among them

junk_numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e9", "0.8", "-1", "nan", "inf", "1_000", "０.５", "", " "]),
    st.lists(st.integers(), max_size=2),
)


class LoopWatch:
    """Every exception the engine loop would otherwise only log."""

    def __init__(self, eng: cmc.Engine) -> None:
        self.seen: list[str] = []
        eng.runtime.loop.call_soon_threadsafe(eng.runtime.loop.set_exception_handler, self._handler)

    def _handler(self, loop: Any, context: dict[str, Any]) -> None:
        self.seen.append(f"{context.get('message')}: {context.get('exception')!r}")


@pytest.fixture(scope="module")
def eng() -> Iterator[cmc.Engine]:
    engine = cmc.connect("sim", seed=7, clock="virtual")
    engine.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def watch(eng: cmc.Engine) -> LoopWatch:
    return LoopWatch(eng)


def assert_clear(exc: BaseException) -> None:
    assert isinstance(exc, CLEAR), f"{type(exc).__name__}: {exc}"
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    assert isinstance(message, str) and len(message) > 10 and "Traceback" not in message, repr(exc)


def assert_alive(eng: cmc.Engine, watch: LoopWatch) -> None:
    assert eng.runtime.thread.is_alive()
    assert not watch.seen, watch.seen[:3]


# =========================================================================== orders and hedges

instrument_ids = st.one_of(
    st.sampled_from(["COMEX.GC", "SHFE.au", "LME.CA", "FX.USDCNH", "COMEX.XX", "GC", "", "comex.gc"]),
    st.text(max_size=15),
)
sides = st.one_of(
    st.sampled_from(["buy", "sell", "BUY", " Sell ", "b", ""]), st.text(max_size=6), st.integers()
)


@SWEEP
@given(
    iid=instrument_ids,
    side=sides,
    qty=junk_numbers,
    price=junk_numbers,
    tif=st.one_of(st.sampled_from(["GFD", "IOC", "ioc", "FOK"]), st.text(max_size=5)),
    account=st.one_of(st.none(), st.sampled_from(["US-FUT", "CN-FUT", "XX"]), st.text(max_size=8)),
)
def test_order_parameters(
    eng: cmc.Engine, watch: LoopWatch, iid: Any, side: Any, qty: Any, price: Any, tif: Any, account: Any
) -> None:
    try:
        order = eng.submit(iid, side, qty, price, tif=tif, account=account)
    except Exception as exc:
        assert_clear(exc)
    else:
        assert order.state in (cmc.OrderState.SUBMITTED, cmc.OrderState.DENIED)
        assert order.state is not cmc.OrderState.DENIED or order.reason
        if not order.done:
            eng.cancel(order)
    assert_alive(eng, watch)


option_names = st.sampled_from(
    [
        "mode",
        "tif",
        "allowance_ticks",
        "chase_ticks",
        "max_attempts",
        "leg_timeout_ms",
        "min_top_cover",
        "max_legged_exposure",
        "time_limit_ms",
        "repeat",
        "dwell_ms",
        "hysteresis",
        "bogus",
    ]
)


@SWEEP
@given(
    spread=st.one_of(st.sampled_from(["au_gc", "nope", ""]), st.text(max_size=8)),
    side=sides,
    qty=junk_numbers,
    when=st.one_of(
        st.none(),
        st.sampled_from(
            ["ask <= 2.5", "bid > -1e9", "z >= nan", "mid < inf", "ask <=", "price < 3", "ask<=2"]
        ),
        st.text(max_size=20),
    ),
    policy=st.one_of(st.sampled_from(["chase", "unwind", "hold", "yolo"]), st.text(max_size=6)),
    options=st.dictionaries(option_names, junk_numbers, max_size=3),
)
def test_hedge_parameters(
    eng: cmc.Engine, watch: LoopWatch, spread: Any, side: Any, qty: Any, when: Any, policy: Any, options: Any
) -> None:
    try:
        ticket = eng.hedge(spread, side, qty, when=when, policy=policy, **options)
    except Exception as exc:
        assert_clear(exc)
    else:
        ticket.cancel("sweep")
    assert_alive(eng, watch)


# =========================================================================== spread formulas

formula_tokens = st.sampled_from(
    [
        "au",
        "GC",
        "SHFE_au",
        "COMEX_GC",
        "USDCNH",
        "USDCNY",
        "+",
        "-",
        "*",
        "/",
        "**",
        "(",
        ")",
        "log(",
        "exp(",
        "sqrt(",
        "abs(",
        "min(",
        "max(",
        ",",
        "1e308",
        "0",
        "31.1034768",
        "__import__('os')",
        "lambda x: x",
        "[1]",
        "'x'",
        "x",
        ".real",
        "if",
        "au.__class__",
        "9**9**9",
        "1/0",
        "-au",
        "open(",
        "@",
        "==",
        ";",
    ]
)
formulas = st.one_of(
    st.lists(formula_tokens, min_size=1, max_size=10).map(" ".join),
    st.text(max_size=40),
    st.sampled_from(["au - GC * USDCNH / 31.1034768", "log(au - GC)", "au / (GC - GC)", "(" * 500 + "au"]),
)


@SWEEP
@given(formula=formulas, kind=st.sampled_from(["diff", "ratio", "sum"]))
def test_spread_formulas(eng: cmc.Engine, watch: LoopWatch, formula: str, kind: str) -> None:
    try:
        spread = eng.spread("fuzz", legs={"SHFE.au": 1, "COMEX.GC": -1}, kind=kind, formula=formula)
    except Exception as exc:
        assert_clear(exc)
    else:
        eng.sleep(0.5)  # the desk recomputes it on every quote of its legs, on the engine thread
        with contextlib.suppress(RuntimeError):  # SpreadNotQuotable: a clear answer too
            spread.quote()
    assert_alive(eng, watch)


@SWEEP
@given(
    legs=st.dictionaries(
        st.one_of(
            st.sampled_from(["SHFE.au", "COMEX.GC", "LME.CA", "SHFE.cu", "FX.USDCNH"]), st.text(max_size=8)
        ),
        junk_numbers,
        max_size=3,
    ),
    name=st.one_of(st.sampled_from(["ok", ""]), st.text(max_size=5)),
)
def test_spread_legs(eng: cmc.Engine, watch: LoopWatch, legs: Any, name: Any) -> None:
    try:
        eng.spread(name or "", legs=legs)
    except Exception as exc:
        assert_clear(exc)
    assert_alive(eng, watch)


# =========================================================================== thresholds

scopes = st.one_of(
    st.sampled_from(["*", "US-FUT", "CN-FUT", "unified", "COMEX", "COMEX.GC", "au_gc", "?"]),
    st.text(max_size=6),
)
actions = st.one_of(
    st.sampled_from(ACTIONS), st.lists(st.sampled_from([*ACTIONS, "nuke"]), max_size=3), st.text(max_size=6)
)


@SWEEP
@given(
    metric=st.one_of(st.sampled_from(sorted(METRICS)), st.text(max_size=12)),
    levels=st.fixed_dictionaries({"warn": junk_numbers, "act": junk_numbers, "liquidation": junk_numbers}),
    action=actions,
    scope=scopes,
    extra=st.dictionaries(
        st.sampled_from(
            [
                "hysteresis",
                "min_interval_ms",
                "window_s",
                "min_count",
                "min_buffer",
                "target",
                "reduce_fraction",
            ]
        ),
        junk_numbers,
        max_size=3,
    ),
)
def test_threshold_configs(
    eng: cmc.Engine, watch: LoopWatch, metric: Any, levels: Any, action: Any, scope: Any, extra: Any
) -> None:
    try:
        rule = eng.thresholds.add(metric, action=action, scope=scope, **levels, **extra)
    except Exception as exc:
        assert_clear(exc)
    else:
        eng.sleep(1.0)  # evaluated on the timer and on events, on the engine thread
        eng.thresholds.remove(rule)
        failed = [e for e in eng.errors if "threshold" in e and "failed" in e]
        assert not failed, failed
        if eng.trading_state is not cmc.TradingState.ACTIVE:
            eng.rearm("sweep")
    assert_alive(eng, watch)


# =========================================================================== magics


@pytest.fixture(scope="module")
def shell(eng: cmc.Engine) -> Iterator[InteractiveShell]:
    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "cmc_lab")
    magics = ip.magics_manager.registry["CmcMagics"]
    magics.engine = cmc.connect("sim", seed=7, clock="virtual")  # its own: %cmc kill halts it
    yield ip
    magics.engine.close()
    magics.engine = None


magic_words = st.sampled_from(
    [
        "status",
        "instruments",
        "spread",
        "hedge",
        "capital",
        "thresholds",
        "alerts",
        "receipts",
        "kill",
        "help",
        "au_gc",
        "SHFE.au",
        "COMEX.GC",
        "buy",
        "sell",
        "3",
        "-1",
        "0",
        "1e9",
        "--when",
        "ask <= 2.5",
        "--policy",
        "chase",
        "--mode",
        "lead_lag",
        "--kind",
        "ratio",
        "--seed",
        '"',
        "'",
        "--",
        "-h",
        "--help",
        "nan",
        "\\",
    ]
)
magic_lines = st.one_of(
    st.lists(st.one_of(magic_words, st.text(max_size=8)), max_size=6).map(" ".join),
    st.text(max_size=30),
)


@SWEEP
@given(line=magic_lines)
def test_magic_arguments(shell: InteractiveShell, line: str) -> None:
    magics = shell.magics_manager.registry["CmcMagics"]
    if line.split()[:1] == ["connect"]:
        return  # would start a real-clock engine; covered by test_magics
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        result = shell.run_line_magic("cmc", line)
    printed = out.getvalue()
    assert "Traceback" not in printed, printed
    if result is None:
        assert printed.strip(), f"%cmc {line!r} returned nothing and said nothing"
    assert magics.engine.runtime.thread.is_alive()


# =========================================================================== journal files


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("journal") / "good.sqlite"
    engine = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    engine.submit("COMEX.GC", "buy", 1, price=Decimal("2700.0")).wait(5)
    engine.close()
    return path


def open_every_way(path: Path) -> None:
    """Each way a user opens a journal either works or raises a JournalError with a message."""
    for mode in ("readonly", "writer"):
        try:
            with Journal(path, readonly=mode == "readonly") as journal:
                journal.verify()  # a damaged file is reported, not raised
                for read in (journal.tail, lambda: list(journal.rows())):
                    try:
                        read()
                    except JournalError as exc:
                        assert str(exc)
        except JournalError as exc:
            assert len(str(exc)) > 10


@SWEEP
@given(data=st.binary(max_size=2048), header=st.booleans())
def test_journal_files_of_random_bytes(tmp_path: Path, data: bytes, header: bool) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes((b"SQLite format 3\x00" if header else b"") + data)
    before = path.read_bytes()
    open_every_way(path)
    assert path.read_bytes() == before or not before, "a file that is not a journal must be left untouched"


@SWEEP
@given(offset=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_a_journal_with_one_byte_flipped(
    tmp_path: Path, good_journal: Path, capsys: pytest.CaptureFixture[str], offset: int, value: int
) -> None:
    path = tmp_path / "flipped.sqlite"
    shutil.copyfile(good_journal, path)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] = value
    path.write_bytes(bytes(data))
    open_every_way(path)
    code = cli_main(["journal", "verify", str(path)])
    captured = capsys.readouterr()
    assert code in (0, 1, 2) and "Traceback" not in captured.out + captured.err


def test_the_engine_still_trades_after_the_sweep(eng: cmc.Engine, watch: LoopWatch) -> None:
    if eng.trading_state is not cmc.TradingState.ACTIVE:
        eng.rearm("after the sweep")
    eng.cancel_all()
    eng.sleep(1.0)
    ask = eng.quote("COMEX.GC").ask
    order = eng.submit("COMEX.GC", "sell", 1, price=eng.instrument("COMEX.GC").round_to_tick(ask - 5))
    assert order.wait(5) in (cmc.OrderState.FILLED, cmc.OrderState.CANCELED)
    assert_alive(eng, watch)
