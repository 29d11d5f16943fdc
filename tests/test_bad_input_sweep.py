"""Bad input sweep: hypothesis throws junk at every way in, and each junk input is refused.

Each sweep starts from a call that works and spoils one argument with junk: a value the
argument's contract (written out below, independently of the code) does not allow. The call
must raise the library's named error, whose message names the argument and says what to do
instead; nothing is journaled and the engine thread records no exception. Magic arguments,
spread formulas and legs, threshold configs, order and hedge parameters, and journal files
(random bytes, a real journal with a flipped byte) are swept.
"""

from __future__ import annotations

import argparse
import math
import numbers
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp

import cmc_lab as cmc
from cmc_lab.cli import main as cli_main
from cmc_lab.execution.spread import SpreadNotQuotable
from cmc_lab.journal import Journal, JournalError
from cmc_lab.risk.metrics import ACTIONS, METRICS
from cmc_lab.ui.magics import build_parser

SWEEP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
#: A message says what to do: a verb of advice, the allowed values, or the usage line.
SAYS_THE_FIX = re.compile(
    r"\b(use|pass|write|give|e\.g\.|must|did you mean|known|one of|choose|define|split|leave|needs|"
    r"drop|close|may use|pair|check|run|restore|upgrade)\b|usage: %cmc|metrics: |actions: "
)
PLAIN_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*", re.ASCII)

junk_numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e9", "0.8", "-1", "nan", "inf", "1_000", "０.５", "", " ", "3"]),
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
    engine.sleep(1.0)
    yield engine
    with warnings.catch_warnings():  # the last test leaves its fill open on purpose
        warnings.simplefilter("ignore", cmc.OpenExposureWarning)
        engine.close()


@pytest.fixture(scope="module")
def watch(eng: cmc.Engine) -> LoopWatch:
    return LoopWatch(eng)


def message_of(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def assert_refused(
    eng: cmc.Engine,
    call: Callable[[], object],
    kind: type[Exception] | tuple[type[Exception], ...],
    names: Sequence[str],
) -> str:
    """``call()`` raises ``kind``, naming one of ``names`` and saying the fix; nothing is journaled."""
    head = eng.journal.head
    with pytest.raises(kind) as info:
        call()
    message = message_of(info.value)
    assert any(name in message for name in names), f"{message!r} does not name {' or '.join(names)}"
    assert SAYS_THE_FIX.search(message), f"{message!r} does not say what to do instead"
    assert "Traceback" not in message
    assert eng.journal.head == head, "a refused call journaled something"
    return message


def assert_alive(eng: cmc.Engine, watch: LoopWatch) -> None:
    assert eng.runtime.thread.is_alive()
    assert not watch.seen, watch.seen[:3]


@dataclass(frozen=True)
class Junk:
    """Values an argument must refuse (drawn from ``values``, kept if ``allowed`` says no) and the
    words one of which the refusal must contain."""

    values: st.SearchStrategy[Any]
    allowed: Callable[[Any], bool]
    names: tuple[str, ...]

    def strategy(self) -> st.SearchStrategy[Any]:
        return self.values.filter(lambda v: not self.allowed(v))


# --------------------------------------------------------------------------- contracts, written out


def is_real(v: Any) -> bool:
    """A real number that is not a bool (int, float, numpy numbers; Decimal counts separately)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def finite_real(v: Any) -> bool:
    return is_real(v) and math.isfinite(v)


def whole_lots(v: Any) -> int | None:
    """What ``eng.submit`` takes as a quantity: an int, or a float or Decimal without a fraction."""
    if isinstance(v, (bool, str)):
        return None
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, float | Decimal) and (v.is_finite() if isinstance(v, Decimal) else math.isfinite(v)):
        return int(v) if v == int(v) else None
    return None


def gc_price_ok(v: Any) -> bool:
    """A COMEX.GC limit price: a positive finite number on its 0.10 grid, below 10**18 ticks; as
    text, plain ASCII decimal notation."""
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal | str):
        return False
    if isinstance(v, str) and PLAIN_NUMBER.fullmatch(v) is None:
        return False
    try:
        price = Decimal(str(v))
    except InvalidOperation:
        return False
    return price.is_finite() and 0 < price < Decimal("1e18") and price % Decimal("0.1") == 0


def one_of_words(*words: str, case: Callable[[str], str] = str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and case(v.strip()) in words


def condition_ok(v: Any) -> bool:
    """``FIELD OP NUMBER``: FIELD bid/ask/mid/ratio/z, OP < <= > >=, a finite ASCII number; several
    joined by one of ``and`` / ``or`` (not both)."""
    if not isinstance(v, str):
        return False
    words = re.split(r"\s+(and|or)\s+", v.strip())
    if len(set(words[1::2])) > 1:
        return False
    for part in words[0::2]:
        m = re.fullmatch(r"\s*(?:bid|ask|mid|ratio|z)\s*(?:<=|>=|<|>)\s*(\S+)\s*", part, re.ASCII)
        if m is None or PLAIN_NUMBER.fullmatch(m.group(1)) is None or not math.isfinite(float(m.group(1))):
            return False
    return True


def whole_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def positive_finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf


def between(low: float, high: float, *, low_open: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not (finite_real(v) or (isinstance(v, Decimal) and v.is_finite())):
            return False
        return (low < v if low_open else low <= v) and v <= high

    return ok


def at_least_zero(v: Any) -> bool:
    return finite_real(v) and v >= 0


words = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers(), max_size=2))


# =========================================================================== orders

GC_BASE: dict[str, Any] = {
    "instrument_id": "COMEX.GC",
    "side": "buy",
    "qty": 1,
    "price": "3867.9",
    "tif": "GFD",
}


#: Contract months written wrong: the other exchange's code, no such month, a product without months,
#: case and spaces (a month the rules can name but no venue lists is refused by the venue, not here).
BAD_MONTHS = [
    "COMEX.GC2702",
    "SHFE.auG27",
    "SHFE.au2713",
    "SHFE.au27",
    "shfe.au2702",
    "SHFE.au2702 ",
    "LME.CAG27",
]


def order_junk(eng: cmc.Engine) -> dict[str, Junk]:
    tradeable = {i for i, inst in eng.specs.instruments.items() if inst.tradeable} | set(eng.specs.aliases)
    return {
        "instrument_id": Junk(
            st.one_of(
                words,
                st.sampled_from(["GC", "comex.gc", "COMEX.XX", "FX.USDCNH", "", "COMEX.GC ", *BAD_MONTHS]),
            ),
            lambda v: isinstance(v, str) and v in tradeable,
            ("instrument", "FX.USDCNH"),
        ),
        "side": Junk(
            st.one_of(words, st.sampled_from(["b", "", "BUYY", "sell!", "long"])),
            one_of_words("buy", "sell", case=str.lower),
            ("side",),
        ),
        "qty": Junk(
            st.one_of(junk_numbers, st.integers(-10, 1000), st.floats(0, 1000)),
            lambda v: (n := whole_lots(v)) is not None and 1 <= n <= 500,
            ("quantity",),
        ),
        "price": Junk(
            st.one_of(
                junk_numbers, st.floats(0, 5000), st.sampled_from(["2500.05", "２５００", "2_500", "2500,0"])
            ),
            gc_price_ok,
            ("price",),
        ),
        "tif": Junk(
            st.one_of(words, st.sampled_from(["FOK", "DAY", "", "G F D"])),
            one_of_words("GFD", "IOC", case=str.upper),
            ("time in force",),
        ),
        "account": Junk(
            st.one_of(
                st.integers(),
                st.lists(st.integers(), max_size=1),
                st.sampled_from(["", " ", " US-FUT", "US-FUT\n"]),
            ),
            lambda v: False,
            ("account",),
        ),
    }


def submit(eng: cmc.Engine, args: dict[str, Any]) -> cmc.Order:
    args = dict(args)
    return eng.submit(args.pop("instrument_id"), args.pop("side"), args.pop("qty"), args.pop("price"), **args)


def test_the_order_the_sweep_spoils_is_accepted(eng: cmc.Engine) -> None:
    order = submit(eng, GC_BASE)
    assert order.state is cmc.OrderState.SUBMITTED, order.reason
    eng.cancel(order)


@pytest.mark.parametrize("field", ["instrument_id", "side", "qty", "price", "tif", "account"])
@SWEEP
@given(data=st.data())
def test_an_order_with_one_junk_argument_is_refused_naming_it(
    eng: cmc.Engine, watch: LoopWatch, field: str, data: st.DataObject
) -> None:
    junk = order_junk(eng)[field]
    value = data.draw(junk.strategy(), label=field)
    assert_refused(eng, lambda: submit(eng, {**GC_BASE, field: value}), cmc.InvalidOrder, junk.names)
    assert_alive(eng, watch)


# =========================================================================== hedges

HEDGE_BASE: dict[str, Any] = {
    "spread": "au_gc",
    "side": "buy",
    "qty": 3,
    "when": "ask <= -1000",
    "policy": "chase",
}


def hedge_junk(eng: cmc.Engine) -> dict[str, Junk]:
    sp = eng.spread("au_gc")
    max_units = min(eng.instrument(leg).max_order_qty // sp.lots[leg] for leg in sp.leg_ids)
    return {
        "spread": Junk(
            st.one_of(words, st.sampled_from(["", "nope", "AU_GC", "au_gc "])),
            lambda v: isinstance(v, str) and v in eng.spreads,
            ("spread",),
        ),
        "side": Junk(
            st.one_of(words, st.sampled_from(["b", "", "short"])),
            one_of_words("buy", "sell", case=str.lower),
            ("side",),
        ),
        "qty": Junk(
            st.one_of(junk_numbers, st.integers(-10, 2000)),
            lambda v: whole_at_least(1)(v) and v % 3 == 0 and v // 3 <= max_units,
            ("qty",),
        ),
        "when": Junk(
            st.one_of(
                st.text(max_size=20),
                st.integers(),
                st.sampled_from(
                    [
                        "ask <=",
                        "price < 3",
                        "ask <= nan",
                        "mid < inf",
                        "ask <= ０",
                        "ask <= 1_0",
                        "ask =< 2",
                        "ask == 2",
                        "z >= 1e400",
                        "",
                        "ask <= 2.5 or",
                        "ask <= 2.5 and bid > 1 or z < 1",
                        "ask <= 2.5 && bid > 1",
                    ]
                ),
            ),
            condition_ok,
            ("condition",),
        ),
        "policy": Junk(
            st.one_of(words, st.sampled_from(["CHASE", "yolo", ""])),
            one_of_words("chase", "unwind", "hold"),
            ("policy",),
        ),
    }


HEDGE_OPTIONS: dict[str, tuple[Callable[[Any], bool], tuple[str, ...]]] = {
    "mode": (lambda v: isinstance(v, str) and v in ("concurrent", "lead_lag"), ("mode",)),
    "tif": (lambda v: isinstance(v, str) and v.strip().upper() in ("GFD", "IOC"), ("time in force",)),
    "allowance_ticks": (whole_at_least(0), ("allowance_ticks",)),
    "chase_ticks": (whole_at_least(0), ("chase_ticks",)),
    "max_attempts": (whole_at_least(0), ("max_attempts",)),
    "unwind_ticks": (whole_at_least(0), ("unwind_ticks",)),
    "max_unwind_attempts": (whole_at_least(1), ("max_unwind_attempts",)),
    "chase_window_ms": (positive_finite, ("chase_window_ms",)),
    "leg_timeout_ms": (positive_finite, ("leg_timeout_ms",)),
    "max_legged_ms": (positive_finite, ("max_legged_ms",)),
    "max_legged_exposure": (lambda v: v is None or positive_finite(v), ("max_legged_exposure",)),
    "time_limit_ms": (positive_finite, ("time_limit_ms",)),
    "retry_ms": (positive_finite, ("retry_ms",)),
    "min_top_cover": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1,
        ("min_top_cover",),
    ),
    "repeat": (whole_at_least(1), ("repeat",)),
    "dwell_ms": (at_least_zero, ("dwell_ms",)),
    "hysteresis": (at_least_zero, ("hysteresis",)),
    "bogus": (lambda v: False, ("unknown hedge option",)),
}


def hedge(eng: cmc.Engine, args: dict[str, Any]) -> Any:
    args = dict(args)
    return eng.hedge(args.pop("spread"), args.pop("side"), args.pop("qty"), **args)


def test_the_hedge_the_sweep_spoils_is_accepted(eng: cmc.Engine) -> None:
    ticket = hedge(eng, HEDGE_BASE)
    assert ticket.state.value == "ARMED"
    ticket.cancel("sweep")


@pytest.mark.parametrize("field", ["spread", "side", "qty", "when", "policy"])
@SWEEP
@given(data=st.data())
def test_a_hedge_with_one_junk_argument_is_refused_naming_it(
    eng: cmc.Engine, watch: LoopWatch, field: str, data: st.DataObject
) -> None:
    junk = hedge_junk(eng)[field]
    value = data.draw(junk.strategy(), label=field)
    assert_refused(eng, lambda: hedge(eng, {**HEDGE_BASE, field: value}), (ValueError, KeyError), junk.names)
    assert_alive(eng, watch)


@pytest.mark.parametrize("option", sorted(HEDGE_OPTIONS))
@SWEEP
@given(data=st.data())
def test_a_hedge_with_one_junk_option_is_refused_naming_it(
    eng: cmc.Engine, watch: LoopWatch, option: str, data: st.DataObject
) -> None:
    allowed, names = HEDGE_OPTIONS[option]
    values = st.one_of(junk_numbers, st.sampled_from(["FOK", "lead-lag", "ioc", 0, -0.5, 1.5, 10**20]))
    value = data.draw(values.filter(lambda v: not allowed(v)), label=option)
    assert_refused(eng, lambda: hedge(eng, {**HEDGE_BASE, option: value}), ValueError, names)
    assert_alive(eng, watch)


# =========================================================================== spreads

LEGS = {"SHFE.au": 1, "COMEX.GC": -1}
VALID_FORMULAS = [
    "au - GC * USDCNH / 31.1034768",
    "SHFE_au - COMEX_GC * USDCNY / 31.1",
    "log(au) - log(GC * USDCNH / 31.1034768)",
    "max(au, GC) - min(au, GC)",
    "abs(au - GC) ** 0.5",
]
SPOILED: list[tuple[str, Callable[[str], object]]] = [
    ("unknown name", lambda f: f + " + x"),
    ("attribute", lambda f: f + " + au.real"),
    ("unknown function", lambda f: f + " + open(au)"),
    ("text constant", lambda f: f + " + 'x'"),
    ("lambda", lambda f: f + " + (lambda: 1)()"),
    ("subscript", lambda f: f + " + au[0]"),
    ("comparison", lambda f: f + " == GC"),
    ("statement", lambda f: f + "; 1"),
    ("unbalanced", lambda f: "(" + f),
    ("matmul", lambda f: f + " @ GC"),
    ("fullwidth digit", lambda f: f + " + ３"),
    ("import", lambda f: f + " + __import__('os')"),
    ("too long", lambda f: "(" * 600 + f + ")" * 600),
    ("one leg only", lambda f: "au * 2"),
    ("no leg", lambda f: "USDCNH"),
    ("empty", lambda f: ""),
    ("blank", lambda f: "   "),
    ("not text", lambda f: [f]),
    ("a number", lambda f: 1.5),
]

formula_leaves = st.sampled_from(
    ["au", "GC", "SHFE_au", "COMEX_GC", "USDCNH", "USDCNY", "31.1034768", "2", "0.5"]
)
formula_bodies = st.recursive(
    formula_leaves,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(["abs", "exp", "log", "sqrt"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        inner.map(lambda e: f"-{e}"),
    ),
    max_leaves=8,
)


@SWEEP
@given(
    base=st.sampled_from(VALID_FORMULAS),
    spoil=st.sampled_from(SPOILED),
    kind=st.sampled_from(["diff", "ratio"]),
)
def test_a_junk_formula_is_refused_naming_it(
    eng: cmc.Engine, watch: LoopWatch, base: str, spoil: tuple[str, Callable[[str], object]], kind: str
) -> None:
    formula = spoil[1](base)
    assert_refused(
        eng, lambda: eng.spread("fuzz", legs=LEGS, kind=kind, formula=formula), ValueError, ("formula",)
    )
    assert_alive(eng, watch)


@SWEEP
@given(body=formula_bodies)
def test_a_formula_of_the_grammar_is_accepted_and_quotes_or_says_why_not(
    eng: cmc.Engine, watch: LoopWatch, body: str
) -> None:
    """Any formula of the grammar is accepted; where it has no value at today's prices (log of a
    negative, 0 * inf) its quote is NaN, never an infinity or an exception on the engine thread."""
    spread = eng.spread("grammar", legs=LEGS, formula=f"au - GC * USDCNH / 31.1034768 + 0 * {body}")
    eng.sleep(0.5)  # the desk recomputes it on every quote of its legs, on the engine thread
    try:
        quote = spread.quote()
    except SpreadNotQuotable as exc:
        assert "grammar" in str(exc)
    else:
        values = (quote.bid, quote.mid, quote.ask)
        assert all(math.isnan(v) for v in values) or quote.bid <= quote.mid <= quote.ask, values
    assert_alive(eng, watch)


def spread_junk(eng: cmc.Engine) -> dict[str, tuple[st.SearchStrategy[Any], tuple[str, ...]]]:
    instruments = set(eng.specs.instruments) | set(eng.specs.aliases)
    not_an_id = st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(BAD_MONTHS)).filter(
        lambda v: v not in instruments
    )
    bad_weight = junk_numbers.filter(lambda v: not (finite_real(v) and v != 0))
    return {
        "legs not a mapping": (
            st.one_of(st.lists(st.text(max_size=4), max_size=2), st.text(max_size=6), st.integers()),
            ("legs",),
        ),
        "fewer than two legs": (st.sampled_from([{}, {"SHFE.au": 1}, {"COMEX.GC": -1}]), ("legs",)),
        "unknown leg": (not_an_id.map(lambda i: {"SHFE.au": 1, i: -1}), ("instrument",)),
        "FX rate as a leg": (st.just({"SHFE.au": 1, "FX.USDCNH": -1}), ("FX.USDCNH",)),
        "junk weight": (bad_weight.map(lambda w: {"SHFE.au": w, "COMEX.GC": -1}), ("weight",)),
    }


@pytest.mark.parametrize(
    "case", ["legs not a mapping", "fewer than two legs", "unknown leg", "FX rate as a leg", "junk weight"]
)
@SWEEP
@given(data=st.data())
def test_spread_legs_with_junk_are_refused_naming_them(
    eng: cmc.Engine, watch: LoopWatch, case: str, data: st.DataObject
) -> None:
    values, names = spread_junk(eng)[case]
    legs = data.draw(values, label=case)
    assert_refused(eng, lambda: eng.spread("legs_sweep", legs=legs), ValueError, names)
    assert_alive(eng, watch)


@SWEEP
@given(
    name=st.one_of(
        st.integers(),
        st.none(),
        st.sampled_from(["", " ", "au gc", "au_gc\n", "\t"]),
        st.text(max_size=6).filter(lambda t: t == "" or any(c.isspace() for c in t)),
    )
)
def test_a_junk_spread_name_is_refused(eng: cmc.Engine, watch: LoopWatch, name: Any) -> None:
    assert_refused(eng, lambda: eng.spread(name, legs=LEGS), ValueError, ("spread name",))
    assert_alive(eng, watch)


@SWEEP
@given(
    kind=st.one_of(words, st.sampled_from(["sum", "DIFF", "Ratio", ""])).filter(
        lambda k: k not in ("diff", "ratio")
    )
)
def test_a_junk_spread_kind_is_refused(eng: cmc.Engine, watch: LoopWatch, kind: Any) -> None:
    assert_refused(eng, lambda: eng.spread("kind_sweep", legs=LEGS, kind=kind), ValueError, ("kind",))
    assert_alive(eng, watch)


# =========================================================================== thresholds

RULE_BASE: dict[str, Any] = {
    "metric": "margin_utilisation",
    "warn": 0.7,
    "act": 0.8,
    "action": "transfer",
    "scope": "*",
}


def threshold_junk(eng: cmc.Engine) -> dict[str, Junk]:
    actions = METRICS["margin_utilisation"].actions
    scopes = {"*", *eng.risk.scope_names("account")}
    number = st.one_of(junk_numbers, st.floats(-2, 10), st.decimals(-2, 10, places=2))

    def action_ok(v: Any) -> bool:
        items = [v] if isinstance(v, str) else v if isinstance(v, list | tuple) else None
        return bool(items) and all(isinstance(a, str) and a in actions for a in items)

    def money_ok(v: Any) -> bool:
        if isinstance(v, str):
            return PLAIN_NUMBER.fullmatch(v.replace("_", "")) is not None and Decimal(v.replace("_", "")) >= 0
        return (finite_real(v) or (isinstance(v, Decimal) and v.is_finite())) and v >= 0

    return {
        "metric": Junk(
            st.one_of(words, st.sampled_from(["margin", "Margin_Utilisation", ""])),
            lambda v: isinstance(v, str) and v in METRICS,
            ("metric",),
        ),
        "warn": Junk(number, lambda v: v is None or (between(0, 0.8)(v) and v < 0.8), ("warn",)),
        "act": Junk(number, lambda v: v is None or between(0.7, 5, low_open=True)(v), ("act",)),
        "liquidation": Junk(
            number, lambda v: v is None or between(0.8, 5, low_open=True)(v), ("liquidation",)
        ),
        "action": Junk(
            st.one_of(
                words,
                st.lists(st.sampled_from([*ACTIONS, "nuke", 1]), max_size=3),
                st.sampled_from(["", [], "Alert"]),
            ),
            action_ok,
            ("action",),
        ),
        "scope": Junk(
            st.one_of(words, st.sampled_from(["us-fut", "COMEX.GC", "au_gc", "?"])),
            lambda v: isinstance(v, str) and v in scopes,
            ("scope",),
        ),
        "hysteresis": Junk(number, lambda v: v is None or between(0, math.inf)(v), ("hysteresis",)),
        "min_interval_ms": Junk(number, between(0, math.inf), ("min_interval_ms",)),
        "window_s": Junk(number, between(0, math.inf, low_open=True), ("window_s",)),
        "min_count": Junk(number, whole_at_least(1), ("min_count",)),
        "min_buffer": Junk(number, money_ok, ("min_buffer",)),
        "target": Junk(
            number, lambda v: v is None or (between(0, 0.8, low_open=True)(v) and v < 0.8), ("target",)
        ),
        "reduce_fraction": Junk(number, between(0, 1, low_open=True), ("reduce_fraction",)),
    }


def add_rule(eng: cmc.Engine, args: dict[str, Any]) -> Any:
    args = dict(args)
    return eng.thresholds.add(args.pop("metric"), **args)


def test_the_rule_the_sweep_spoils_is_accepted(eng: cmc.Engine) -> None:
    for scope in ["*", *eng.specs.accounts]:
        eng.thresholds.remove(add_rule(eng, {**RULE_BASE, "scope": scope}))


@pytest.mark.parametrize(
    "field",
    [
        "metric",
        "warn",
        "act",
        "liquidation",
        "action",
        "scope",
        "hysteresis",
        "min_interval_ms",
        "window_s",
        "min_count",
        "min_buffer",
        "target",
        "reduce_fraction",
    ],
)
@SWEEP
@given(data=st.data())
def test_a_threshold_rule_with_one_junk_setting_is_refused_naming_it(
    eng: cmc.Engine, watch: LoopWatch, field: str, data: st.DataObject
) -> None:
    junk = threshold_junk(eng)[field]
    value = data.draw(junk.strategy(), label=field)
    assert_refused(eng, lambda: add_rule(eng, {**RULE_BASE, field: value}), ValueError, junk.names)
    assert_alive(eng, watch)


# =========================================================================== magics


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "cmc_lab")
    magics = ip.magics_manager.registry["CmcMagics"]
    magics.engine = cmc.connect("sim", seed=7, clock="virtual")  # its own: a sweep never trades on it
    magics.engine.spread("au_gc", legs=LEGS)
    yield ip
    magics.engine.close()
    magics.engine = None


#: Every %cmc command, read from the parser: a junk word drawn as "unknown" must never be a real one
#: (a hard-coded list lacked roll, rearm and close; drawing "close" closed the sweep's engine).
COMMANDS = frozenset(
    next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
)
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ABC", min_size=1, max_size=8)
not_int = st.one_of(word, st.sampled_from(["2.5", "1e3", "３", "0x3"]))

#: (what is spoiled, a line with junk in it, what the refusal must say)
MAGIC_JUNK: dict[str, tuple[st.SearchStrategy[str], Callable[[str], str]]] = {
    "unknown command": (word.filter(lambda w: w not in COMMANDS), lambda w: "invalid choice: "),
    "hedge side": (
        word.filter(lambda w: w not in ("buy", "sell")).map(lambda w: f"hedge au_gc {w} 3"),
        lambda line: "argument side: invalid choice",
    ),
    "hedge qty": (
        not_int.map(lambda w: f"hedge au_gc buy {w}"),
        lambda line: "argument qty: invalid int value",
    ),
    "hedge qty off the lot ratio": (
        st.integers(-20, 20).filter(lambda n: n < 1 or n % 3).map(lambda n: f"hedge au_gc buy -- {n}"),
        lambda line: "cmc hedge: qty",
    ),
    "hedge policy": (
        word.filter(lambda w: w not in ("chase", "unwind", "hold")).map(
            lambda w: f"hedge au_gc buy 3 --policy {w}"
        ),
        lambda line: "argument --policy: invalid choice",
    ),
    "hedge mode": (
        word.filter(lambda w: w not in ("concurrent", "lead_lag")).map(
            lambda w: f"hedge au_gc buy 3 --mode {w}"
        ),
        lambda line: "argument --mode: invalid choice",
    ),
    "hedge trigger": (
        word.filter(lambda w: w not in ("bid", "ask", "mid", "ratio", "z")).map(
            lambda w: f"hedge au_gc buy 3 --when '{w} <= 1'"
        ),
        lambda line: "cmc hedge: condition",
    ),
    "unknown spread": (
        word.filter(lambda w: w != "au_gc").map(lambda w: f"hedge {w} buy 3"),
        lambda line: "cmc hedge: no spread",
    ),
    "spread kind": (
        word.filter(lambda w: w not in ("diff", "ratio")).map(
            lambda w: f"spread x SHFE.au COMEX.GC --kind {w}"
        ),
        lambda line: "argument --kind: invalid choice",
    ),
    "spread leg": (
        word.map(lambda w: f"spread x SHFE.au NOPE.{w}"),
        lambda line: "cmc spread: unknown instrument",
    ),
    "connect target": (
        word.filter(lambda w: w != "sim").map(lambda w: f"connect {w}"),
        lambda line: "argument target: invalid choice",
    ),
    "connect seed": (
        not_int.map(lambda w: f"connect sim --seed {w}"),
        lambda line: "argument --seed: invalid int value",
    ),
    "connect clock": (
        word.filter(lambda w: w not in ("real", "virtual")).map(lambda w: f"connect sim --clock {w}"),
        lambda line: "argument --clock: invalid choice",
    ),
    "missing arguments": (
        st.sampled_from(
            [
                "hedge",
                "hedge au_gc",
                "hedge au_gc buy",
                "spread x SHFE.au",
                "receipts",
                "audit",
                "connect",
                "watch",
            ]
        ),
        lambda line: "the following arguments are required",
    ),
    "unknown flag": (
        st.tuples(st.sampled_from(["status", "capital", "hedge au_gc buy 3", "alerts"]), word).map(
            lambda t: (
                f"{t[0]} --zz{t[1]} 1"
            )  # "zz": no real flag starts so (argparse takes "--dwell" for --dwell_ms)
        ),
        lambda line: "unrecognized arguments: --",
    ),
    "unclosed quote": (
        st.tuples(st.sampled_from(["hedge au_gc buy 3 --when", "kill", "receipts"]), word).map(
            lambda t: f'{t[0]} "{t[1]}'
        ),
        lambda line: "No closing quotation",
    ),
    "unknown help topic": (
        word.filter(lambda w: w not in COMMANDS).map(lambda w: f"help {w}"),
        lambda line: "cmc help: no command",
    ),
}


@pytest.mark.parametrize("case", sorted(MAGIC_JUNK))
@SWEEP
@given(data=st.data())
def test_a_magic_with_junk_arguments_raises_ipythons_usage_error_naming_it(
    shell: InteractiveShell, case: str, data: st.DataObject
) -> None:
    magics = shell.magics_manager.registry["CmcMagics"]
    lines, says = MAGIC_JUNK[case]
    line = data.draw(lines, label=case)
    head = magics.engine.journal.head
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("cmc", line)
    assert type(info.value) is UsageError, "IPython shows only its own UsageError without a traceback"
    message = str(info.value)
    assert message.startswith("cmc") and says(line) in message, message
    assert SAYS_THE_FIX.search(message), f"{message!r} does not say what to do instead"
    assert magics.engine.journal.head == head and magics.engine.tickets().empty
    assert magics.engine.runtime.thread.is_alive()


# =========================================================================== journal files


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("journal") / "good.sqlite"
    engine = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    engine.submit("COMEX.GC", "buy", 1, price=Decimal("4177.4")).wait(5)
    with pytest.warns(cmc.OpenExposureWarning):
        engine.close()
    with Journal(path, readonly=True) as journal:
        return path, list(journal.rows())


@SWEEP
@given(data=st.binary(min_size=1, max_size=2048), header=st.booleans())
def test_a_file_of_random_bytes_is_refused_as_a_journal_and_left_untouched(
    tmp_path: Path, data: bytes, header: bool
) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes((b"SQLite format 3\x00" if header else b"") + data)
    before = path.read_bytes()
    for readonly in (True, False):
        with pytest.raises(JournalError) as info:
            Journal(path, readonly=readonly).close()
        message = str(info.value)
        assert str(path) in message and SAYS_THE_FIX.search(message), message
    assert path.read_bytes() == before, "a file that is not a journal must be left untouched"


def test_an_empty_file_is_a_new_journal_to_write_and_nothing_to_read(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(JournalError, match="is an empty file, not a journal yet; check the path"):
        Journal(path, readonly=True)
    with Journal(path) as journal:
        assert journal.verify().ok and list(journal.rows()) == []


@SWEEP
@given(offset=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_a_journal_with_one_byte_flipped_is_refused_or_reported_or_reads_the_same(
    tmp_path: Path,
    good_journal: tuple[Path, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    offset: int,
    value: int,
) -> None:
    good, rows = good_journal
    path = tmp_path / "flipped.sqlite"
    data = bytearray(good.read_bytes())
    data[offset % len(data)] = value
    path.write_bytes(bytes(data))
    intact = opens_intact(path, True, rows)
    code = cli_main(["journal", "verify", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert (code == 0) is (intact is True), (code, captured.out, captured.err)
    opens_intact(path, False, rows)  # a writer may tidy SQLite's own bookkeeping, never the rows


def opens_intact(path: Path, readonly: bool, rows: list[dict[str, Any]]) -> bool | None:
    """True: verified intact and reads the very rows written; False: verify() reports the break;
    None: refused to open, saying which file and what to do."""
    try:
        journal = Journal(path, readonly=readonly)
    except JournalError as exc:
        assert str(path) in str(exc) and SAYS_THE_FIX.search(str(exc)), str(exc)
        return None
    with journal:
        report = journal.verify()
        if report.ok:
            assert list(journal.rows()) == rows, "a damaged journal verified as intact"
        else:
            assert report.first_bad_seq is not None or SAYS_THE_FIX.search(report.reason), f"where? {report}"
        return report.ok


def test_the_engine_still_trades_after_the_sweep(eng: cmc.Engine, watch: LoopWatch) -> None:
    if eng.trading_state is not cmc.TradingState.ACTIVE:
        eng.rearm("after the sweep")
    eng.cancel_all()
    eng.sleep(1.0)
    ask = eng.quote("COMEX.GC").ask
    order = eng.submit("COMEX.GC", "sell", 1, price=eng.instrument("COMEX.GC").round_to_tick(ask - 5))
    assert order.wait(5) in (cmc.OrderState.FILLED, cmc.OrderState.CANCELED)
    assert_alive(eng, watch)
