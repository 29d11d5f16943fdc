"""Threshold rules: validation, crossings with hysteresis, each action, rate limiting, the benches."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sim_months import GC

import cmc_lab as cmc
from cmc_lab.bench.risk import pretrade_cost, threshold_action_latency


def kinds(eng: cmc.Engine, *wanted: str) -> list[str]:
    return [r["kind"] for r in eng.journal.rows(kinds=list(wanted))]


def payloads(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def crossings(eng: cmc.Engine) -> list[tuple[str, str, str]]:
    frame = eng.thresholds.crossings()
    return list(zip(frame["key"], frame["level"], frame["kind"], strict=True)) if not frame.empty else []


@pytest.fixture
def small(make_engine: Callable[..., cmc.Engine], journal_path: Any) -> cmc.Engine:
    """US-FUT with 100,000 USD and 2 GC lots bought: utilisation 0.33 at 16,500 a lot."""
    eng = make_engine(journal=journal_path, accounts={"US-FUT": 100_000})
    eng.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")  # a clearing firm that charges per lot
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    return eng


def utilisation(eng: cmc.Engine, account: str = "US-FUT") -> float:
    return float(eng.capital().accounts.loc[account, "utilisation"])


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("metric", "kwargs", "message"),
    [
        (
            "margin_utilization",
            {"act": 0.8},
            r"unknown metric 'margin_utilization'; did you mean 'margin_utilisation'",
        ),
        (
            "margin_utilisation",
            {"warn": 0.9, "act": 0.8},
            r"warn=0\.9 must be below act=0\.8 \(danger is above",
        ),
        ("margin_utilisation", {"act": 0.8, "liquidation": 0.8}, r"act=0\.8 must be below liquidation=0\.8"),
        ("available_funds", {"warn": 100, "act": 500}, r"warn=100 must be above act=500 \(danger is below"),
        ("position", {"act": -5}, r"position: act=-5 is negative; every metric is >= 0"),
        ("margin_utilisation", {"act": 80}, r"act=80 looks like a percentage; utilisation is a fraction"),
        ("margin_utilisation", {}, r"give warn=\.\.\. and/or act=\.\.\.; a rule without levels never fires"),
        ("position", {"act": 5, "liquidation": 9}, r"a liquidation level applies to margin metrics only"),
        (
            "margin_utilisation",
            {"act": 0.8, "action": "panic"},
            r"unknown action 'panic'; actions: alert, block",
        ),
        (
            "quote_staleness",
            {"act": 5, "action": "transfer"},
            r"action 'transfer' does not apply; for quote_",
        ),
        (
            "margin_utilisation",
            {"warn": 0.7, "action": "block"},
            r"runs when the act level is crossed; give act",
        ),
        ("margin_utilisation", {"act": 0.8, "action": "transfer", "scope": "unified"}, r"not 'unified'"),
        (
            "margin_utilisation",
            {"act": 0.8, "scope": "HK-FUT"},
            r"scope 'HK-FUT' is not known; give an account",
        ),
        (
            "position",
            {"act": 3, "scope": "COMEX.XX"},
            r"scope 'COMEX\.XX' is not known; give a instrument or",
        ),
        (
            "margin_utilisation",
            {"act": 0.8, "action": "transfer", "target": 0.9},
            r"target=0\.9 must be above 0",
        ),
        ("margin_utilisation", {"act": 0.8, "hysteresis": -0.1}, r"hysteresis=-0\.1 must be >= 0"),
        ("margin_utilisation", {"act": 0.8, "min_buffer": -1}, r"min_buffer=-1 must be >= 0"),
        ("reject_rate", {"act": 20}, r"reject_rate: act=20 must be a fraction <= 1"),
        ("position", {"act": "high"}, r"position: act='high' must be a number"),
        ("position", {"act": 5, "reduce_fraction": 0}, r"reduce_fraction=0 must be above 0 and at most 1"),
    ],
)
def test_nonsense_rules_are_refused_with_the_fix(
    eng: cmc.Engine, metric: str, kwargs: dict[str, Any], message: str
) -> None:
    head = eng.journal.head
    with pytest.raises(ValueError, match=message):
        eng.thresholds.add(metric, **kwargs)
    assert len(eng.thresholds) == 0
    assert eng.journal.head == head


def test_rules_are_listed_journaled_and_replaced_by_metric_and_scope(eng: cmc.Engine) -> None:
    eng.thresholds.add("margin_utilisation", warn=0.7, act=0.8, action="transfer", scope="COMEX")
    rule = eng.thresholds.add("margin_utilisation", warn=0.6, act=0.8, action="transfer", scope="US-FUT")
    assert rule.rule_id == "margin_utilisation[US-FUT]" and rule.target == pytest.approx(0.588)
    assert len(eng.thresholds) == 1
    assert [p["replaced"] for p in payloads(eng, "ThresholdAdded")] == [False, True]
    assert "margin_utilisation[US-FUT]: warn 60%, act 80%; act -> transfer" in repr(eng.thresholds)
    assert list(eng.thresholds.metrics().index)[:2] == ["margin_utilisation", "available_funds"]
    eng.thresholds.remove(rule)
    assert len(eng.thresholds) == 0 and kinds(eng, "ThresholdRemoved") == ["ThresholdRemoved"]
    with pytest.raises(KeyError, match=r"no threshold rule 'x'"):
        eng.thresholds.remove("x")


# ---------------------------------------------------------------------------- crossings


def test_warn_crossing_alerts_with_value_and_threshold(small: cmc.Engine) -> None:
    small.thresholds.add("margin_utilisation", warn=0.5, scope="US-FUT")
    small.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")  # 60,000 on about 100,000
    assert crossings(small) == [("US-FUT", "warn", "crossed")]
    alert = small.alerts().iloc[0]
    assert alert["source"] == "threshold" and alert["level"] == "warning"
    assert alert["threshold"] == 0.5 and alert["value"] == pytest.approx(utilisation(small))
    assert alert["message"].startswith("margin_utilisation of US-FUT is 60.")
    crossed = payloads(small, "ThresholdCrossed")[0]
    assert (crossed["level"], crossed["threshold"], crossed["crossing_id"]) == (
        "warn",
        0.5,
        alert["crossing"],
    )


def test_hysteresis_keeps_a_level_raised_until_the_value_is_clearly_back(small: cmc.Engine) -> None:
    small.thresholds.add("margin_utilisation", warn=0.5, hysteresis=0.05, scope="US-FUT")
    for rate in (25_500, 24_500, 23_500, 25_500, 22_000, 24_000, 25_500):  # about 0.51 .. 0.44
        small.set_margin_rate("COMEX.GC", rate, kind="per_lot")
    assert crossings(small) == [
        ("US-FUT", "warn", "crossed"),
        ("US-FUT", "warn", "cleared"),
        ("US-FUT", "warn", "crossed"),
    ]
    assert len(small.alerts()) == 2
    cleared = small.thresholds.crossings().iloc[1]
    assert cleared["threshold"] == pytest.approx(0.45) and cleared["value"] < 0.45


def test_a_jump_past_several_levels_crosses_each_in_order(small: cmc.Engine) -> None:
    small.thresholds.add("margin_utilisation", warn=0.5, act=0.6, liquidation=0.9, action="alert", scope="*")
    small.set_margin_rate("COMEX.GC", 50_000, kind="per_lot")
    assert crossings(small) == [
        ("US-FUT", "warn", "crossed"),
        ("US-FUT", "act", "crossed"),
        ("US-FUT", "liquidation", "crossed"),
    ]
    assert small.trading_state is cmc.TradingState.HALTED  # on_liquidation defaults to halt
    assert payloads(small, "TradingStateChanged")[0]["who"] == "thresholds"


def test_evaluations_are_rate_limited_per_rule(small: cmc.Engine) -> None:
    calls: list[int] = []
    real = small.risk.values

    def counting(rule: Any) -> Any:
        calls.append(small.clock.mono_ns())
        return real(rule)

    small.risk.values = counting  # type: ignore[method-assign]
    small.thresholds.add("margin_utilisation", warn=0.9, scope="US-FUT", min_interval_ms=1000)
    small.sleep(5.0)  # quotes mark the GC position five times a second
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 5 <= len(calls) <= 7
    assert min(gaps) >= 1_000_000_000


# ---------------------------------------------------------------------------- actions


def test_block_sets_reducing_and_lifts_it_when_the_level_clears(small: cmc.Engine) -> None:
    small.thresholds.add("margin_utilisation", warn=0.4, act=0.5, action="block", scope="US-FUT")
    small.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    assert small.trading_state is cmc.TradingState.REDUCING
    assert small.submit("COMEX.GC", "buy", 1, price="4177.4").state is cmc.OrderState.DENIED
    assert small.submit("COMEX.GC", "sell", 1, price="4022.6").wait(5) is cmc.OrderState.FILLED
    small.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")
    assert small.trading_state is cmc.TradingState.ACTIVE
    changes = payloads(small, "TradingStateChanged")
    assert [(c["state"], c["who"]) for c in changes] == [("REDUCING", "thresholds"), ("ACTIVE", "thresholds")]
    action = payloads(small, "ThresholdAction")[0]
    assert action["action"] == "block" and action["ok"] is True and action["delay_ns"] == 0
    assert (
        action["crossing_id"] == small.thresholds.crossings().query("level == 'act'")["crossing_id"].iloc[0]
    )


def test_cancel_action_cancels_the_working_orders_in_scope(eng: cmc.Engine) -> None:
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    gc = [eng.submit("COMEX.GC", "buy", 1, price=bid - 3 - i) for i in range(3)]
    au = eng.submit("SHFE.au", "buy", 1, price="914.52")
    eng.thresholds.add("order_count", warn=2, act=3, action="cancel", scope="COMEX.GC")
    eng.sleep(1.0)
    assert [o.state for o in gc] == [cmc.OrderState.CANCELED] * 3
    assert au.state is cmc.OrderState.ACCEPTED
    detail = eng.thresholds.actions().query("action == 'cancel'")["detail"].iloc[0]
    assert detail == f"cancel sent for 3 working order(s) of {GC}"


def test_halt_action_kills_and_clearing_never_rearms(small: cmc.Engine) -> None:
    resting = small.submit("COMEX.GC", "buy", 1, price="4022.6")
    small.thresholds.add("margin_utilisation", act=0.5, action="halt", scope="US-FUT")
    small.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    assert small.trading_state is cmc.TradingState.HALTED
    assert resting.wait(5) is cmc.OrderState.CANCELED
    small.set_margin_rate("COMEX.GC", 10_000, kind="per_lot")
    assert crossings(small)[-1] == ("US-FUT", "act", "cleared")
    assert small.trading_state is cmc.TradingState.HALTED
    small.rearm(reason="margin restored", who="lead")
    assert small.trading_state is cmc.TradingState.ACTIVE


def test_transfer_action_respects_the_minimum_buffer_of_the_source(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 100_000, "CN-FUT": 1_000_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add("margin_utilisation", act=0.5, action="transfer", scope="US-FUT", min_buffer=900_000)
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    t = next(iter(eng.risk.transfers.transfers.values()))
    assert t.source == "CN-FUT" and t.amount <= Decimal(100_000)
    assert "(capped by the source's buffer)" in eng.thresholds.actions()["detail"].iloc[-1]
    eng.sleep(2.5)
    assert eng.capital().accounts.loc["CN-FUT", "available"] >= 900_000


def test_transfer_action_without_headroom_fails_readably(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(accounts={"US-FUT": 100_000, "CN-FUT": 1_000_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add("margin_utilisation", act=0.5, action="transfer", scope="US-FUT", min_buffer=5_000_000)
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    last = eng.thresholds.actions().iloc[-1]
    assert (last["action"], last["ok"]) == ("transfer", False)
    assert last["detail"] == "no account has funds above its minimum buffer of 5,000,000 CNY"


def test_reduce_action_unwinds_hedged_spreads_with_opposite_tickets(eng: cmc.Engine) -> None:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    first = eng.hedge("au_gc", side="buy", qty=6, policy="chase")
    assert first.wait(10).value == "FILLED", first.reason
    assert eng.desk.hedged_units() == {"au_gc": 2}
    eng.thresholds.add("spread_position", warn=1, act=2, action="reduce", scope="au_gc", reduce_fraction=0.5)
    eng.sleep(5.0)
    tickets = eng.tickets()
    assert list(tickets["side"]) == ["buy", "sell"]
    assert tickets["state"].iloc[1] in ("FILLED", "UNWOUND"), tickets["reason"].iloc[1]
    assert tickets["units"].iloc[1] == 1
    detail = eng.thresholds.actions().query("action == 'reduce'")["detail"].iloc[0]
    assert "unwind tickets: sell 1 unit(s) of au_gc" in detail


def test_reduce_action_on_a_position_sends_an_ioc_back_to_the_warn_level(eng: cmc.Engine) -> None:
    assert eng.submit("COMEX.GC", "buy", 5, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add("position", warn=2, act=4, action="reduce", scope="COMEX.GC")
    eng.sleep(1.0)
    assert eng.risk.capital.net_position(GC) == 2
    assert crossings(eng)[-1] == (GC, "act", "cleared")


def test_stale_quotes_and_fx_cross_when_a_feed_stops(eng: cmc.Engine) -> None:
    eng.thresholds.add("quote_staleness", act=2.0, scope="COMEX.GC")
    eng.thresholds.add("fx_staleness", act=2.0)
    eng.sleep(1.0)
    assert crossings(eng) == []
    eng.venues["FX"].inject("stale", duration=10.0)
    eng.disconnect("COMEX")
    eng.sleep(3.0)
    assert sorted(crossings(eng)) == [(GC, "act", "crossed"), ("engine", "act", "crossed")]
    assert f"quote_staleness of {GC} is ∞" in " ".join(eng.alerts()["message"])
    journaled = payloads(eng, "Alert")
    assert len(journaled) == 2 and "inf" in {a["value"] for a in journaled}
    assert not [e for e in eng.errors if "threshold" in e]


def test_ack_latency_and_reject_rate_cross_on_slow_or_rejecting_venues(eng: cmc.Engine) -> None:
    eng.thresholds.add("ack_latency_ms", act=100.0, scope="COMEX")
    eng.thresholds.add("reject_rate", warn=0.5, scope="NYMEX", min_count=2)
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED  # 120-240 ms
    eng.venues["NYMEX"].inject("reject", times=2)
    for price in ("61.00", "61.01"):
        eng.submit("NYMEX.CL", "buy", 1, price=price).wait(5)
    eng.sleep(0.5)
    assert sorted(crossings(eng)) == [("COMEX", "act", "crossed"), ("NYMEX", "warn", "crossed")]
    state = eng.thresholds.state().set_index("key")
    assert state.loc["COMEX", "value"] > 100.0 and state.loc["NYMEX", "value"] == 1.0


def test_slippage_against_the_touch_is_measured_in_ticks(eng: cmc.Engine) -> None:
    eng.thresholds.add("slippage_ticks", warn=1.0, scope="COMEX.GC")
    quote = eng.quote("COMEX.GC")
    big = quote.ask_size + 5  # walks past the top of the book
    order = eng.submit("COMEX.GC", "buy", big, price=Decimal(str(quote.ask)) + 10, tif="IOC")
    assert order.wait(5) is cmc.OrderState.FILLED
    eng.sleep(0.2)
    assert crossings(eng) == [(GC, "warn", "crossed")]
    worst = max(f.last_px for f in order.fills)
    value = eng.thresholds.state()["value"].iloc[0]
    assert value == pytest.approx(float((worst - Decimal(str(quote.ask))) / Decimal("0.1")))


# ---------------------------------------------------------------------------- benches


def test_bench_functions_report_latency_and_cost() -> None:
    latency = threshold_action_latency(20)
    assert set(latency) == {"block", "transfer"}
    assert (
        latency["transfer"]["n"] == 20 and 0 < latency["transfer"]["p50_us"] <= latency["transfer"]["p99_us"]
    )
    cost = pretrade_cost(200)
    assert cost["checks"] == 16 and cost["per_order"]["n"] == 200
    assert cost["per_order"]["p50_us"] > 0 and set(cost["per_check_us"]) >= {"margin", "self_match"}
