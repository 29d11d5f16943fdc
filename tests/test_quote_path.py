"""The per-quote fast path: the same numbers and decisions as the plain code it short-cuts."""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.core.hours import SessionWindow, TradingHours
from cmc_lab.core.model import Quote, Side, VenueConnected, VenueDisconnected
from cmc_lab.core.specs import load_specs
from cmc_lab.execution.desk import Desk, _trigger_acts
from cmc_lab.execution.spread import _FIELDS, _RATIO_FIELDS
from cmc_lab.execution.ticket import TicketState
from cmc_lab.execution.trigger import Condition, RollingZ, TriggerRule
from cmc_lab.pricing import FxRates, spread_quote
from cmc_lab.risk.capital import Capital


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
    eng.runtime.call(_feed(eng, moved))
    after = sp.quote()
    quotes = dict(zip(sp.leg_ids, after.legs, strict=True))
    ref = spread_quote(sp.defn, quotes, FxRates(usdcnh=moved.mid), sp.lots)
    assert after.fx == moved.mid and after.bid == ref.bid and after.bid != before.bid


async def _feed(eng: cmc.Engine, quote: Quote) -> None:
    eng.inbox.receive(quote)


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


# --------------------------------------------------------------------------- live spreads, any history

FX = "FX.USDCNH"
# Spreads that share their legs (a diff, a ratio and another lot ratio of au/GC), import parity
# costs, legs in one money (no FX), three legs and a formula: every branch of the per-quote path.
LIVE = {
    "au_gc": ({"SHFE.au": 1, "COMEX.GC": -1}, "diff", {}),
    "au_gc_r": ({"SHFE.au": 1, "COMEX.GC": -1}, "ratio", {}),
    "au_gc_28": ({"SHFE.au": 1, "COMEX.GC": -1}, "diff", {"lots": {"SHFE.au": 28, "COMEX.GC": 9}}),
    "cu_lme": ({"SHFE.cu": 1, "LME.CA": -1}, "diff", {}),
    "au_ag": ({"SHFE.au": 1, "SHFE.ag": -1}, "ratio", {}),
    "three": ({"SHFE.au": 1, "COMEX.GC": -1, "SHFE.ag": 0.5}, "diff", {}),
    "au_gc_f": ({"SHFE.au": 1, "COMEX.GC": -1}, "diff", {"formula": "au - GC * USDCNH / 31.1034768"}),
}
IDS = sorted({iid for legs, _, _ in LIVE.values() for iid in legs} | {FX})

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("quote"),
            st.sampled_from(IDS),
            st.integers(-3, 3),  # ticks moved
            st.sampled_from(["fresh", "fresh", "fresh", "stale", "empty", "same"]),
        ),
        st.tuples(st.sampled_from(["down", "up"]), st.sampled_from(["SHFE", "COMEX", "LME", "FX"])),
    ),
    min_size=1,
    max_size=60,
)


class Live(SimpleNamespace):
    """An engine with the LIVE spreads, the books it was last fed and a reference z per spread."""

    eng: cmc.Engine
    books: dict[str, tuple[float, float]]
    zs: dict[str, RollingZ]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    engine = cmc.connect("sim", seed=11, clock="virtual")
    for name, (legs, kind, options) in LIVE.items():
        engine.spread(name, legs=legs, kind=kind, **options)
    books = {iid: (engine.quote(iid).bid, engine.quote(iid).ask) for iid in IDS}
    yield Live(eng=engine, books=books, zs={name: RollingZ(300, 30) for name in LIVE})
    engine.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_live_spreads_are_spread_quote_of_their_legs_through_any_history(
    live: Live, history: list[tuple[Any, ...]]
) -> None:
    """Whatever came before (stale or empty books, venues dropping, FX quoting the same mid, a
    leg landed long ago), each recomputation is quotable exactly when not_quotable_reason says
    so, and its numbers are spread_quote's of the quotes it names, to the bit."""
    live.eng.runtime.call(_replay(live, history), timeout=60)


async def _replay(live: Live, history: list[tuple[Any, ...]]) -> None:
    eng, now = live.eng, live.eng.now_ns()
    for venue in ("SHFE", "COMEX", "LME", "FX"):  # each example starts from an open market
        eng.router.on_event(VenueConnected(now, now, venue))
    for iid in IDS:
        _check_after(eng, live.zs, _quote(live, iid, 0, "fresh"))
    for step in history:
        if step[0] == "quote":
            _check_after(eng, live.zs, _quote(live, *step[1:]))
        else:
            cls = VenueDisconnected if step[0] == "down" else VenueConnected
            eng.router.on_event(cls(now, now, step[1]))


def _quote(live: Live, iid: str, ticks: int, how: str) -> Quote:
    """The next quote of ``iid``: its book moved ``ticks``, stale, one side empty, or the same."""
    now = live.eng.now_ns()
    bid, ask = live.books[iid]
    if how != "same":  # "same": a new quote object with the same book
        step = ticks * float(live.eng.instrument(iid).tick)
        bid, ask = live.books[iid] = (bid + step, ask + step)
    if how == "empty":
        bid = math.nan
    stamp = now - 5_000_000_000 if how == "stale" else now
    return Quote(iid, bid, ask, 20, 30, stamp, now)


def _check_after(eng: cmc.Engine, zs: dict[str, RollingZ], quote: Quote) -> None:
    spreads = eng.desk._by_leg.get(quote.instrument_id, ())
    before = {sp.name: sp._state for sp in spreads}
    eng.inbox.receive(quote)
    for sp in spreads:
        updated = sp._state is not before[sp.name]
        assert updated == (sp.not_quotable_reason() is None), (sp.name, sp.not_quotable_reason())
        if not updated:
            continue
        snap = sp.last
        assert snap.legs == tuple(eng.market.quotes[i] for i in sp.leg_ids)
        fx = FxRates(usdcnh=snap.fx) if snap.fx is not None else None
        ref = spread_quote(sp.defn, dict(zip(sp.leg_ids, snap.legs, strict=True)), fx, sp.lots)
        assert [x.hex() for x in (snap.bid, snap.ask, snap.mid)] == [
            float(x).hex() for x in (ref.bid, ref.ask, ref.mid)
        ]
        assert (snap.bid_size, snap.ask_size) == (ref.bid_size, ref.ask_size)
        assert snap.z == zs[sp.name].update(snap.mid)
        assert type(snap.bid) is float and type(snap.ask) is float


def test_a_callback_that_moves_a_venue_is_seen_by_the_next_spread_on_the_same_legs(
    eng: cmc.Engine,
) -> None:
    """Spreads on the same legs share one check per quote, but not across foreign code: after a
    subscriber's callback has run, the next spread checks its legs again."""
    first, second = (
        eng.spread(n, legs={"SHFE.au": 1, "COMEX.GC": -1}, kind=k) for n, k in (("a", "diff"), ("b", "ratio"))
    )
    assert eng.desk._by_leg[AU][:2] == (first, second)
    now = eng.now_ns()
    eng.desk.on_spread("a", lambda snap: eng.router.on_event(VenueDisconnected(now, now, "COMEX")))
    kept = second._state
    au = eng.quote("SHFE.au")
    eng.runtime.call(_feed(eng, Quote(au.instrument_id, au.bid + 0.02, au.ask + 0.02, 5, 5, now, now)))
    assert first._state is not None and second._state is kept  # b saw COMEX go
    assert second.not_quotable_reason() == f"leg {GC}: venue COMEX is not connected"


# --------------------------------------------------------------------------- the desk's quick look

fields = st.sampled_from(["bid", "ask", "mid", "z", "ratio"])
readings = st.one_of(st.none(), st.floats(-3, 3), st.just(math.nan), st.just(math.inf))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(rules, st.sampled_from(list(TicketState)[:3]), st.booleans()), min_size=1, max_size=4),
    st.lists(
        st.tuples(
            st.booleans(), st.fixed_dictionaries({f: readings for f in ("bid", "ask", "mid", "z", "ratio")})
        ),
        max_size=25,
    ),
    st.booleans(),
)
def test_the_desk_feeds_exactly_the_tickets_whose_trigger_acts(
    tickets: list[tuple[TriggerRule, TicketState, bool]],
    feed: list[tuple[bool, dict[str, float | None]]],
    ratio_kind: bool,
) -> None:
    """Desk.on_quote reads most triggers without a call; the tickets it feeds are exactly those
    for which _trigger_acts holds (whatever their state: pending, owed a release, used up,
    disarmed, or armed on a spread since redefined)."""
    now = [0]
    desk = Desk(  # only the ports the quote hook touches
        specs=None,  # type: ignore[arg-type]
        market=SimpleNamespace(now_ns=lambda: now[0], mono_ns=lambda: now[0]),  # type: ignore[arg-type]
        orders=None,  # type: ignore[arg-type]
        journal=SimpleNamespace(batch=contextlib.nullcontext),  # type: ignore[arg-type]
        runner=SimpleNamespace(report=lambda errors: None),  # type: ignore[arg-type]
        alerts=None,  # type: ignore[arg-type]
    )
    spread = _FakeSpread(ratio_kind)
    other = _FakeSpread(ratio_kind)
    armed = [_FakeTicket(rule, state, spread if ours else other) for rule, state, ours in tickets]
    desk._by_leg["L"] = (spread,)  # type: ignore[assignment]
    desk._armed["x"] = armed  # type: ignore[assignment]
    for ts, (quotable, values) in enumerate(feed):
        now[0] = ts * 10
        spread.set(quotable, values)
        expected = [t for t in armed if t.spread is spread and _trigger_acts(t, spread, quotable)]  # type: ignore[arg-type]
        for t in armed:
            t.fed = False
        desk.on_quote(SimpleNamespace(instrument_id="L"))  # type: ignore[arg-type]
        assert [t for t in armed if t.fed] == expected


class _FakeSpread:
    """What the desk reads of a spread: its update, its numbers and their snapshot."""

    def __init__(self, ratio_kind: bool) -> None:
        self.defn = SimpleNamespace(name="x")
        self._fields = _RATIO_FIELDS if ratio_kind else _FIELDS
        self._ratio_kind = ratio_kind
        self.set(False, {})

    def set(self, quotable: bool, values: dict[str, float | None]) -> None:
        self._quotable = quotable
        self._values = dict(values)
        if self._ratio_kind:
            self._values["ratio"] = values.get("mid")  # a ratio spread's ratio is its mid
        self._state = (
            (values.get("bid"), values.get("ask"), values.get("mid"), None, 0, (), ()) if quotable else None
        )

    def _update(self, now: int) -> bool:
        return self._quotable

    def _value(self, field: str) -> float | None:
        return self._values.get(field) if self._state is not None else None

    @property
    def last(self) -> Any:
        return SimpleNamespace(value=self._value, ts_ns=0)


class _FakeTicket:
    """HedgeTicket._on_quote_snapshot's part: an ARMED ticket feeds its trigger."""

    def __init__(self, rule: TriggerRule, state: TicketState, spread: _FakeSpread) -> None:
        self.trigger, self.state, self.spread, self.fed = rule, state, spread, False

    def _on_quote_snapshot(self, snap: Any) -> None:
        self.fed = True
        if self.state is TicketState.ARMED:
            value = snap.value(self.trigger.condition.field) if snap is not None else None
            self.trigger.update(value, 0)


# --------------------------------------------------------------------------- capital marks


def test_marks_are_the_mid_of_the_last_quote_when_read() -> None:
    """Quotes only keep themselves on the capital; the Decimal mid is worked out when a figure is
    read, and is the one the quote gives (a one-sided book: its side; an empty one: no mark)."""
    specs = load_specs()
    cap = Capital(specs, specs.instruments.values())
    gc = specs.instrument("COMEX.GC")
    cap.apply_fill("US-FUT", gc, Side.BUY, Decimal("2650.0"), 2)
    pos = cap.accounts["US-FUT"].positions["COMEX.GC"]
    assert pos.mark == Decimal("2650.0")
    version = cap.version
    assert cap.on_quote(Quote("COMEX.GC", 2651.1, 2651.3, 5, 5, 10, 10))
    assert cap.on_quote(Quote("COMEX.GC", 2652.1, 2652.4, 5, 5, 20, 20)) and cap.version == version + 2
    assert pos.mark == Decimal("2652.25") and pos.mark_ts == 20
    assert not cap.on_quote(Quote("COMEX.GC", math.nan, -1.0, 5, 5, 30, 30))
    assert pos.mark == Decimal("2652.25")
    assert cap.on_quote(Quote("COMEX.GC", 0.0, 2653.0, 5, 5, 40, 40)) and pos.mark == Decimal("2653.0")
    assert cap.fx_book.live(FX) is None and cap.rate_used("CNH").source == "reference"
    assert cap.on_quote(Quote(FX, 7.1012, 7.1016, 5, 5, 50, 50))
    assert cap.fx_book.live(FX) == Decimal("7.1014") and cap.fx_book.ts[FX] == 50
