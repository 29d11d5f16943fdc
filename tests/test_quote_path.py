"""The per-quote fast path: the same numbers and decisions as the plain code it short-cuts."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cmc_lab as cmc
from cmc_lab.execution.desk import _trigger_acts
from cmc_lab.execution.ticket import TicketState
from cmc_lab.execution.trigger import Condition, TriggerRule
from cmc_lab.model import Quote, SessionWindow, TradingHours
from cmc_lab.pricing import FxRates, spread_quote
from cmc_lab.specs import load_specs


@pytest.fixture
def eng() -> cmc.Engine:
    engine = cmc.connect("sim", seed=11, clock="virtual")
    yield engine
    engine.close()


def test_live_spread_numbers_are_spread_quote_of_the_same_quotes(eng: cmc.Engine) -> None:
    eng.spread("cu_lme", legs={"SHFE.cu": 1, "LME.CA": -1})
    eng.spread("au_gc_r", legs={"SHFE.au": 1, "COMEX.GC": -1}, kind="ratio")
    seen = []
    for name in ("cu_lme", "au_gc_r"):
        eng.desk.on_spread(name, seen.append)
    eng.sleep(5)
    assert len(seen) > 20
    for snap in seen[-10:]:
        sp = eng.spreads[snap.name]
        quotes = dict(zip(sp.leg_ids, snap.legs, strict=True))
        ref = spread_quote(sp.defn, quotes, FxRates(usdcnh=snap.fx), sp.lots)
        assert (snap.bid, snap.ask, snap.mid) == (ref.bid, ref.ask, ref.mid)
        assert (snap.bid_size, snap.ask_size) == (ref.bid_size, ref.ask_size)


def test_quote_of_a_spread_recomputes_from_scratch_after_fx_moves(eng: cmc.Engine) -> None:
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    before = sp.quote()
    fx = eng.quote("FX.USDCNH")
    moved = Quote(
        fx.instrument_id, fx.bid + 0.01, fx.ask + 0.01, fx.bid_size, fx.ask_size, fx.ts_event, fx.ts_init
    )
    eng._call(_feed(eng, moved))
    after = sp.quote()
    quotes = dict(zip(sp.leg_ids, after.legs, strict=True))
    ref = spread_quote(sp.defn, quotes, FxRates(usdcnh=moved.mid), sp.lots)
    assert after.fx == moved.mid and after.bid == ref.bid and after.bid != before.bid


async def _feed(eng: cmc.Engine, quote: Quote) -> None:
    eng._on_venue_message(quote)


rules = st.builds(
    lambda field, op, level, dwell, hyst, count: TriggerRule(
        Condition(field, op, level), dwell_ns=dwell, hysteresis=hyst, max_count=count
    ),
    st.sampled_from(["bid", "ask", "mid", "z", "ratio"]),
    st.sampled_from(["<", "<=", ">", ">="]),
    st.floats(-2, 2),
    st.sampled_from([0, 5, 50]),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([1, 3, None]),
)
values = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.floats(-3, 3), st.just(float("nan")))), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(rules, values, st.booleans())
def test_a_trigger_the_desk_skips_would_not_have_changed(
    rule: TriggerRule, feed: list[tuple[bool, float | None]], pause: bool
) -> None:
    ticket = SimpleNamespace(state=TicketState.ARMED, trigger=rule)
    for ts, (quotable, value) in enumerate(feed):
        if pause and ts == len(feed) // 2:
            rule.disarm()
        spread = SimpleNamespace(_value=lambda field, v=value: v)
        acts = _trigger_acts(ticket, spread, quotable)  # type: ignore[arg-type]
        state = copy.copy(vars(rule))
        fired = rule.update(value if quotable else None, ts * 10)
        if not acts:
            assert not fired and vars(rule) == state


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Shanghai", "America/Chicago"])
def test_cached_session_answer_matches_the_calendar_across_dst(zone: str) -> None:
    hours = TradingHours(
        zone,
        (
            SessionWindow("early", time(1, 30), time(2, 30), (6,)),
            SessionWindow("day", time(2, 15), time(17, 0), (0, 1, 2, 3, 4)),
            SessionWindow("night", time(21, 0), time(2, 30), (0, 1, 2, 3, 6)),
        ),
    )
    rng = random.Random(zone)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    t = start
    while t < start + 400 * 86_400 * 10**9:
        t += rng.choice([1, 10**6, 60 * 10**9, 1800 * 10**9, rng.randrange(1, 9 * 3600 * 10**9)])
        assert hours.is_open(t) == (hours.session_at(t) is not None), t
        until = hours.open_until(t)
        if until is not None:
            assert hours.session_at(until - 1) is not None


def test_shipped_sessions_open_until_is_within_a_day() -> None:
    for inst in load_specs().instruments.values():
        now = int(datetime(2026, 11, 24, 14, 0, tzinfo=UTC).timestamp()) * 10**9
        until = inst.hours.open_until(now)
        assert until is None or now < until <= now + 2 * 86_400 * 10**9
