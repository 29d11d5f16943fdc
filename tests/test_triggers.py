"""Triggers: conditions, dwell, hysteresis, counts, rolling z-score; armed, disarmed and repeating tickets."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import cmc_lab as cmc
from cmc_lab.execution.hedge import HedgeTicket, TicketNotArmed, TicketState
from cmc_lab.execution.trigger import BadCondition, Condition, RollingZ, TriggerRule

TS = TicketState
S = 1_000_000_000


@pytest.fixture
def eng(make_engine: Callable[..., cmc.Engine], tmp_path: Path) -> cmc.Engine:
    engine = make_engine(journal=tmp_path / "j.sqlite")
    engine.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    return engine


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ask <= 2.5", Condition("ask", "<=", 2.5)),
        ("  bid>3", Condition("bid", ">", 3.0)),
        ("mid < -1.25", Condition("mid", "<", -1.25)),
        ("z >= 2", Condition("z", ">=", 2.0)),
        ("ratio > 1.002", Condition("ratio", ">", 1.002)),
        ("mid <= 1e-3", Condition("mid", "<=", 0.001)),
        ("ask <= .5", Condition("ask", "<=", 0.5)),
    ],
)
def test_conditions_parse(text: str, expected: Condition) -> None:
    assert Condition.parse(text) == expected


@pytest.mark.parametrize("text", ["spread < 2", "ask == 2", "ask <= ", "ask <= 2 and bid", "ask <= inf", ""])
def test_unreadable_conditions_show_the_form_to_use(text: str) -> None:
    with pytest.raises(BadCondition, match=r"FIELD OP NUMBER|finite"):
        Condition.parse(text)


def test_holds_and_releases_with_hysteresis() -> None:
    below = Condition.parse("ask <= 2.5")
    assert below.holds(2.5) and not below.holds(2.51)
    assert not below.released(2.55, hysteresis=0.1) and below.released(2.61, hysteresis=0.1)
    above = Condition.parse("z > 2")
    assert above.released(1.4, hysteresis=0.5) and not above.released(1.6, hysteresis=0.5)
    assert str(above) == "z > 2"


# --------------------------------------------------------------------------- trigger rules


def test_a_trigger_fires_only_after_its_dwell() -> None:
    rule = TriggerRule(Condition.parse("mid > 3"), dwell_ns=2 * S)
    assert not rule.update(3.5, 0)
    assert not rule.update(3.6, 1 * S)
    assert rule.update(3.4, 2 * S)
    assert rule.count == 1 and rule.exhausted


def test_the_dwell_restarts_when_the_condition_breaks_or_the_value_is_missing() -> None:
    rule = TriggerRule(Condition.parse("mid > 3"), dwell_ns=2 * S)
    rule.update(3.5, 0)
    rule.update(2.9, 1 * S)  # broken: start again
    assert not rule.update(3.5, 2 * S)
    rule.update(None, 3 * S)  # not quotable: start again
    assert not rule.update(3.5, 4 * S)
    assert not rule.update(math.nan, 5 * S)
    assert not rule.update(3.5, 6 * S)
    assert rule.update(3.5, 8 * S)


def test_a_repeating_trigger_rearms_only_past_its_hysteresis_and_stops_at_its_count() -> None:
    rule = TriggerRule(Condition.parse("ask <= 2.5"), hysteresis=0.2, max_count=2)
    assert rule.update(2.4, 0)
    assert not rule.update(2.3, 1)  # still below: no second fire without a release
    assert not rule.update(2.6, 2)  # back above, but within the hysteresis band
    assert not rule.update(2.4, 3)
    assert not rule.update(2.75, 4)  # released
    assert rule.update(2.5, 5)
    assert rule.exhausted
    assert not rule.update(2.75, 6) and not rule.update(2.0, 7)
    unlimited = TriggerRule(Condition.parse("ask <= 2.5"), max_count=None)
    fires = sum(unlimited.update(v, i) for i, v in enumerate([2.4, 2.6, 2.4, 2.6, 2.4]))
    assert fires == 3 and not unlimited.exhausted


def test_a_disarmed_trigger_does_not_fire_and_forgets_its_dwell() -> None:
    rule = TriggerRule(Condition.parse("mid > 3"), dwell_ns=2 * S)
    rule.update(3.5, 0)
    rule.disarm()
    assert not rule.update(3.5, 3 * S)
    rule.arm()
    assert not rule.update(3.5, 4 * S)  # the dwell starts again after arming
    assert rule.update(3.5, 6 * S)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"dwell_ns": -1}, "dwell"), ({"hysteresis": -0.1}, "hysteresis"), ({"max_count": 0}, "max_count")],
)
def test_bad_trigger_rules_are_refused(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        TriggerRule(Condition.parse("mid > 3"), **kwargs)


# --------------------------------------------------------------------------- rolling z


def test_rolling_z_waits_for_its_samples_then_matches_numpy() -> None:
    rz = RollingZ(window=50, min_samples=10)
    values = np.random.default_rng(3).normal(2.3, 0.1, 200)
    out = [rz.update(float(v)) for v in values]
    assert out[:9] == [None] * 9 and out[9] is not None
    window = values[-50:]
    assert out[-1] == pytest.approx((values[-1] - window.mean()) / window.std(), rel=1e-9)


def test_rolling_z_read_after_pushes_is_what_update_returns() -> None:
    """A live spread pushes every mid and reads the z-score only when asked."""
    values = np.random.default_rng(5).normal(620.0, 3.0, 700)
    eager, lazy = RollingZ(window=300, min_samples=30), RollingZ(window=300, min_samples=30)
    for i, v in enumerate(values):
        z = eager.update(float(v))
        lazy.push(float(v))
        if i % 97 == 0:
            assert lazy.current() == z
    assert lazy.current() == z


def test_rolling_z_of_a_flat_series_is_zero_and_bad_windows_are_refused() -> None:
    rz = RollingZ(window=5, min_samples=2)
    assert [rz.update(1.0) for _ in range(4)][-1] == 0.0
    with pytest.raises(ValueError, match="window"):
        RollingZ(window=5, min_samples=6)


# --------------------------------------------------------------------------- triggers on the engine


def decision_reason(eng: cmc.Engine, t: HedgeTicket) -> str:
    rows = [r for r in eng.journal.rows(kinds=["HedgeDecision"]) if r["ticket_id"] == t.ticket_id]
    return rows[0]["payload"]["reason"]


def test_an_armed_ticket_fires_when_the_executable_price_crosses(eng: cmc.Engine) -> None:
    level = round(eng.spread("au_gc").quote().ask + 1, 2)
    t = eng.hedge("au_gc", "buy", 3, when=f"ask <= {level}")
    assert t.state is TS.ARMED and t.orders == []
    assert t.wait(10) is TS.FILLED
    reason = decision_reason(eng, t)
    assert reason.startswith(f"trigger ask <= {level:g} met at") and "fire" not in reason


def test_an_armed_ticket_waits_and_can_be_cancelled(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3, when="ask <= -100")
    eng.sleep(5)
    assert t.state is TS.ARMED and t.orders == []
    t.cancel()
    assert t.state is TS.CANCELLED and eng.desk._armed["au_gc"] == []


def test_a_disarmed_ticket_does_not_fire_until_armed_again(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3, when="ask <= 100")
    t.disarm()
    assert t.state is TS.DISARMED
    eng.sleep(3)
    assert t.state is TS.DISARMED and t.orders == []
    t.arm()
    assert t.state is TS.ARMED
    assert t.wait(10) is TS.FILLED
    moves = [
        (r["payload"]["to"], r["payload"]["reason"]) for r in eng.journal.rows(kinds=["HedgeStateChanged"])
    ]
    assert ("DISARMED", "disarmed by user") in moves and ("ARMED", "armed by user") in moves


def test_arming_a_ticket_that_is_not_waiting_says_so(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    t.wait(10)
    with pytest.raises(TicketNotArmed, match="only a ticket waiting for its trigger"):
        t.disarm()


def test_mid_ratio_and_z_fields_trigger(eng: cmc.Engine) -> None:
    snap = eng.spread("au_gc").quote()
    assert snap.ratio == pytest.approx(1.0069, abs=0.002)  # au a little rich of landed GC
    by_ratio = eng.hedge("au_gc", "buy", 3, when="ratio > 0.5")
    assert by_ratio.wait(10) is TS.FILLED
    assert "trigger ratio > 0.5 met at 1.00" in decision_reason(eng, by_ratio)
    by_z = eng.hedge("au_gc", "sell", 3, when="z > -1000")
    eng.sleep(0.5)
    assert by_z.state is TS.ARMED  # no z-score before 30 samples
    assert by_z.wait(30) is TS.FILLED
    by_mid = eng.hedge("au_gc", "buy", 3, when=f"mid >= {snap.mid - 100:.4f}")
    assert by_mid.wait(10) is TS.FILLED


def test_dwell_holds_the_fire_back(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3, when="ask <= 100", dwell_ms=2000)
    eng.sleep(1.5)
    assert t.state is TS.ARMED
    assert t.wait(10) is TS.FILLED
    armed_at, fired_at = t.history[0][0], t.history[1][0]
    assert (fired_at - armed_at) / 1e9 >= 2.0


def test_an_unquotable_spread_never_fires_its_trigger(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("stale", instrument="GC")
    eng.sleep(4)
    t = eng.hedge("au_gc", "buy", 3, when="ask <= 100")
    eng.sleep(3)
    assert t.state is TS.ARMED
    eng.venues["COMEX"].clear_faults()
    assert t.wait(10) is TS.FILLED


def test_a_repeating_trigger_makes_one_ticket_per_fire_up_to_its_count(eng: cmc.Engine) -> None:
    level = eng.spread("au_gc").quote().mid
    first = eng.hedge("au_gc", "buy", 3, when=f"mid <= {level:.6f}", repeat=3)
    eng.sleep(300)
    series = first.series
    assert len(series) == 3 and all(t.series is series for t in series)
    assert [t.state for t in series] == [TS.FILLED] * 3
    assert len({t.ticket_id for t in series}) == 3
    created = [r["payload"] for r in eng.journal.rows(kinds=["HedgeCreated"])]
    assert [(c["series"], c["series_index"], c["repeat"]) for c in created] == [
        (first.ticket_id, i, 3) for i in (1, 2, 3)
    ]
    assert "(fire 3 of 3)" in decision_reason(eng, series[2])


def test_disarming_a_series_pauses_its_next_ticket(eng: cmc.Engine) -> None:
    first = eng.hedge("au_gc", "buy", 3, when="ask <= 100", repeat=5, hysteresis=0.0)
    assert first.wait(10) is TS.FILLED
    waiting = first.series[-1]
    assert waiting is not first and waiting.state is TS.ARMED
    first.disarm()
    assert waiting.state is TS.DISARMED
    first.arm()
    assert waiting.state is TS.ARMED
    waiting.cancel()
    assert waiting.state is TS.CANCELLED and len(first.series) == 2
    with pytest.raises(TicketNotArmed):
        first.arm()


def test_the_z_window_is_set_per_spread(eng: cmc.Engine) -> None:
    short = eng.spread("au_gc_short", legs={"SHFE.au": 1, "COMEX.GC": -1}, z_window=5)
    assert (short.z_window, eng.spread("au_gc").z_window) == (5, 300)
    quick = eng.hedge("au_gc_short", "sell", 3, when="z > -1000")
    slow = eng.hedge("au_gc", "sell", 3, when="z > -1000")
    assert quick.wait(10) is TS.FILLED  # a z-score after 5 updates ...
    assert slow.state is TS.ARMED  # ... while the default window still waits for its 30th
    with pytest.raises(ValueError, match=r"z_window=1 must be a whole number of updates >= 2"):
        eng.spread("bad", legs={"SHFE.au": 1, "COMEX.GC": -1}, z_window=1)


def test_conditions_combine_with_and_or_read_by_pattern() -> None:
    both = Condition.parse("z <= -1.5 and ask <= 3")
    assert str(both) == "z <= -1.5 and ask <= 3"
    assert both.read({"z": -2.0, "ask": 2.5}.get) == 1.0
    assert both.read({"z": -1.0, "ask": 2.5}.get) == 0.0
    assert both.read({"z": None, "ask": 2.5}.get) is None  # no z-score yet: not judged
    either = Condition.parse("bid >= 9 or ask <= 1")
    assert either.read({"bid": 1.0, "ask": 0.5}.get) == 1.0
    assert either.read({"bid": 1.0, "ask": 2.0}.get) == 0.0
    with pytest.raises(BadCondition, match="mixes 'and' with 'or'"):
        Condition.parse("z <= -1 and ask <= 3 or bid >= 2")
    for bad in ("ask <= 3 and __import__('os')", "ask <= 3 and", "and ask <= 3", "ask <= 3 && z < 1"):
        with pytest.raises(BadCondition, match="is not understood"):
            Condition.parse(bad)


def test_a_combined_trigger_waits_for_every_part_then_fires(eng: cmc.Engine) -> None:
    ask = eng.spread("au_gc").quote().ask
    never = eng.hedge("au_gc", "buy", 3, when=f"ask <= {ask + 100:.4f} and bid >= 1000")
    either = eng.hedge("au_gc", "buy", 3, when=f"ask <= {ask + 100:.4f} or bid >= 1000")
    both = eng.hedge("au_gc", "sell", 3, when=f"z > -1000 and ask <= {ask + 100:.4f}")
    assert either.wait(10) is TS.FILLED
    assert both.state is TS.ARMED  # no z-score before 30 updates: the 'and' waits
    assert both.wait(30) is TS.FILLED
    assert "trigger z > -1000 and ask <=" in decision_reason(eng, both)
    assert never.state is TS.ARMED


def test_the_readme_trigger_waits_on_seed_7_then_fires(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(seed=7)
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    assert eng.spread("au_gc").quote().ask > 6.38  # the ask opens above the level ...
    t = eng.hedge("au_gc", side="buy", qty=3, when="z <= -1.5 and ask <= 6.38", policy="chase")
    eng.sleep(5)
    assert t.state is TS.ARMED  # ... so the ticket waits
    assert t.wait(120) is TS.FILLED
    fired_at = t.history[1][0] - t.history[0][0]
    assert 5e9 < fired_at < 60e9
