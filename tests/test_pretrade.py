"""Pre-trade checks: each one trips with a readable reason (an OrderDenied, never an exception)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.core.hours import SessionWindow, TradingHours
from cmc_lab.core.model import Side
from cmc_lab.core.trading import OrderRequest
from cmc_lab.risk.pretrade import RiskLimits, trading_day


def rows(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


def run_checks(eng: cmc.Engine, req: OrderRequest) -> tuple[str | None, tuple[str, ...]]:
    """The checks as a hedge ticket runs them: on the engine loop, with a request built in code."""

    async def run() -> tuple[str | None, tuple[str, ...]]:
        return eng.checks.run(req, eng)

    return eng.runtime.call(run())


def denied(order: cmc.Order, check: str) -> str:
    assert order.state is cmc.OrderState.DENIED, (order, order.reason)
    assert order.reason.startswith(f"{check}: "), order.reason
    return order.reason


def resting_buy(eng: cmc.Engine, ticks_below_bid: int, qty: int = 1, **kwargs: Any) -> cmc.Order:
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    order = eng.submit("COMEX.GC", "buy", qty, price=bid - Decimal("0.1") * ticks_below_bid, **kwargs)
    assert order.state is cmc.OrderState.SUBMITTED, order.reason
    return order


# ---------------------------------------------------------------------------- every check, in order


def test_every_order_passes_the_full_check_list_and_records_it(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price="4177.4")
    assert order.wait(5) is cmc.OrderState.FILLED
    submitted = rows(eng, "OrderSubmitted")[0]
    assert submitted["checks"].split(",") == [name for name, _ in eng.checks.checks]
    assert len(eng.checks.checks) == 16


def test_halted_engine_denies_orders_until_rearmed_explicitly(eng: cmc.Engine) -> None:
    eng.kill("fat finger on the desk", who="risk-desk")
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "trading_state")
    assert "HALTED" in reason and "eng.rearm()" in reason
    eng.sleep(1.0)
    assert eng.trading_state is cmc.TradingState.HALTED
    eng.rearm(reason="checked", who="lead")
    assert eng.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5) is cmc.OrderState.FILLED


def test_reducing_state_accepts_only_orders_that_reduce_a_position(eng: cmc.Engine) -> None:
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add("position", act=1, action="block", scope="COMEX.GC")
    assert eng.trading_state is cmc.TradingState.REDUCING
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "trading_state")
    assert "REDUCING" in reason and "position +2 lots in US-FUT" in reason
    denied(eng.submit("SHFE.au", "buy", 1, price="960.24"), "trading_state")
    denied(eng.submit("COMEX.GC", "sell", 3, price="4022.6"), "trading_state")  # would flip to short
    assert eng.submit("COMEX.GC", "sell", 1, price="4022.6").wait(5) is cmc.OrderState.FILLED


def test_instrument_not_on_this_engine_or_not_tradeable_is_denied(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(venues={"COMEX": "sim"})
    au = eng.specs.instrument("SHFE.au")
    reason, passed = run_checks(eng, OrderRequest(au, Side.BUY, 1, Decimal("945.00"), "CN-FUT"))
    assert reason == f"tradeable: {AU} is not traded on this engine's venues; connect its venue first"
    assert passed == ("trading_state",)
    fx = eng.instrument("FX.USDCNH")
    reason, _ = run_checks(eng, OrderRequest(fx, Side.BUY, 1, Decimal("7.2500"), "US-FUT"))
    assert reason == "tradeable: FX.USDCNH is a fx rate, not a tradeable contract"


def test_order_for_a_disconnected_venue_is_denied(eng: cmc.Engine) -> None:
    eng.disconnect("COMEX")
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "venue_connected")
    assert reason == "venue_connected: venue 'COMEX' is not connected; wait for it to reconnect"


def test_order_outside_its_session_is_denied(make_engine: Callable[..., cmc.Engine], tmp_path: Path) -> None:
    closed = tmp_path / "closed.toml"
    closed.write_text(
        '[sessions.lme_select]\ntimezone = "Europe/London"\n'
        'windows = [{ name = "early", open = "01:00", close = "02:00", days = "mon-fri" }]\n'
    )
    eng = make_engine(instruments=closed)
    reason = denied(eng.submit("LME.CA", "buy", 1, price="9200.0"), "session_open")
    assert "LME.CA session is closed (early Mon-Fri 01:00-02:00 (Europe/London))" in reason
    assert "next opens Wed 2026-11-25 01:00 Europe/London" in reason


def test_price_off_the_tick_grid_is_denied(eng: cmc.Engine) -> None:
    gc = eng.instrument("COMEX.GC")
    reason, _ = run_checks(eng, OrderRequest(gc, Side.BUY, 1, Decimal("4100.05"), "US-FUT"))
    assert reason == f"tick: price 4100.05 is off the tick grid of {GC} (tick 0.10)"


def test_price_outside_the_days_limits_from_the_previous_settlement_is_denied(eng: cmc.Engine) -> None:
    published = eng.market.limits[AU]  # the embedded exchange publishes them at session open
    assert (published.settlement, published.low, published.high) == (
        Decimal("945.00"),
        Decimal("803.26"),
        Decimal("1086.74"),
    )  # 15 % either side (SHFE's gold limit since 2026-01-22), rounded inward to the 0.02 tick
    reason = denied(eng.submit("SHFE.au", "buy", 1, price="1086.76"), "daily_limits")
    assert reason == (
        f"daily_limits: price 1086.76 is outside the limits of {AU} for trading day {published.trading_day}: "
        f"[803.26, 1086.74], the previous settlement 945.00 ± 15% ({published.source})"
    )


def test_a_cme_contract_has_no_daily_limit_but_a_dynamic_band_around_the_last_price(eng: cmc.Engine) -> None:
    assert GC not in eng.market.limits
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4564.2"), "daily_limits")
    assert f"price 4564.2 is beyond {GC}'s dynamic price fluctuation limit: ±10% around 4100" in reason


def test_price_outside_the_band_around_the_last_mid_is_denied(eng: cmc.Engine) -> None:
    eng.limits.price_band = 0.02
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4254.7"), "price_band")
    assert "price 4254.7 is +3.77% from the reference 4100" in reason
    assert "(last mid), outside the ±2.0% band" in reason
    eng.limits.set("COMEX.GC", price_band=0.05)
    assert eng.submit("COMEX.GC", "buy", 1, price="4254.7").wait(5) is cmc.OrderState.FILLED


def test_the_price_band_decides_at_its_edge_as_the_exact_decimal_figure_does(eng: cmc.Engine) -> None:
    """The check screens with floats and leaves an order near the edge to the exact figure: tick by
    tick across both edges of the band its answer is the Decimal rule's (|price / ref - 1| <= band)."""
    eng.limits.price_band = 0.02
    gc = eng.instrument("COMEX.GC")
    ref, _ = eng.risk.reference_price(gc)
    for edge in (ref * Decimal("1.02"), ref * Decimal("0.98")):
        on_grid = gc.round_to_tick(edge)
        for ticks in range(-3, 4):
            price = on_grid + gc.tick * ticks
            req = OrderRequest(gc, Side.BUY, 1, price, "US-FUT")
            reason = eng.runtime.call(_price_band_reason(eng, req))
            inside = abs(float(price / ref - 1)) <= 0.02
            assert (reason is None) is inside, (price, ref, reason)


async def _price_band_reason(eng: cmc.Engine, req: OrderRequest) -> str | None:
    from cmc_lab.risk.pretrade import check_price_band

    return check_price_band(req, eng.router)


def test_order_above_the_maximum_quantity_is_denied(eng: cmc.Engine) -> None:
    eng.limits.max_order_qty = 5
    reason = denied(eng.submit("COMEX.GC", "buy", 6, price="4177.4"), "order_qty")
    assert reason == f"order_qty: 6 lots is above the maximum order size of 5 lots for {GC}; split the order"


def test_order_above_the_maximum_notional_is_denied(eng: cmc.Engine) -> None:
    eng.limits.max_order_notional = 1_000_000
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "notional")
    assert f"of buy 1 {GC} @ 4177.4 is above the maximum order notional 1,000,000 CNY" in reason
    assert eng.submit("SHFE.au", "buy", 1, price="960.24").wait(5) is cmc.OrderState.FILLED  # 960,240 CNY


def test_order_taking_the_position_above_its_maximum_is_denied(eng: cmc.Engine) -> None:
    eng.limits.max_position = 2
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "position")
    assert reason == (
        f"position: buy 1 {GC} @ 4177.4 would take the position in US-FUT to +3 lots (now +2, 0 more "
        "working), above the maximum of 2 lots (eng.limits.max_position)"
    )
    assert eng.submit("COMEX.GC", "sell", 1, price="4022.6").wait(5) is cmc.OrderState.FILLED


def test_working_orders_count_toward_the_position_limit(eng: cmc.Engine) -> None:
    eng.limits.max_position = 2
    resting_buy(eng, 30, qty=2)
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4022.6"), "position")
    assert "(now +0, 2 more working)" in reason


def test_order_beyond_the_maximum_working_orders_is_denied(eng: cmc.Engine) -> None:
    eng.limits.max_working_orders = 2
    resting_buy(eng, 30)
    resting_buy(eng, 31)
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4022.6"), "working_orders")
    assert reason.startswith("working_orders: 2 orders are working, the maximum is 2; cancel some")


def test_orders_and_cancels_above_the_message_rate_are_denied(eng: cmc.Engine) -> None:
    eng.limits.max_messages_per_s = 3
    first = resting_buy(eng, 30)
    resting_buy(eng, 31)
    first.cancel()  # a cancel is a message too
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4022.6"), "message_rate")
    assert reason.startswith(
        "message_rate: 3 orders and cancels went out in the last second, the maximum is 3/s"
    )
    eng.sleep(1.1)
    assert eng.submit("COMEX.GC", "buy", 1, price="4022.6").state is cmc.OrderState.SUBMITTED


def test_duplicate_of_a_working_order_within_the_window_is_denied(eng: cmc.Engine) -> None:
    first = resting_buy(eng, 30)
    twin = eng.submit("COMEX.GC", "buy", 1, price=first.price)
    reason = denied(twin, "duplicate")
    assert f"buy 1 {GC} @ {first.price} duplicates order {first.client_order_id}, still SUBMITTED" in reason
    assert resting_buy(eng, 31).state is cmc.OrderState.SUBMITTED  # another price is another order
    eng.sleep(1.1)
    assert eng.submit("COMEX.GC", "buy", 1, price=first.price).state is cmc.OrderState.SUBMITTED


def test_order_that_would_trade_against_our_own_resting_order_is_denied(eng: cmc.Engine) -> None:
    ask = Decimal(str(eng.quote("COMEX.GC").ask))
    rest = eng.submit("COMEX.GC", "sell", 1, price=ask + Decimal("5.0"))
    eng.sleep(0.5)
    assert rest.state is cmc.OrderState.ACCEPTED
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price=ask + Decimal("6.0")), "self_match")
    assert reason == (
        f"self_match: buy 1 {GC} @ {ask + Decimal('6.0')} would trade against our own resting sell "
        f"{rest.client_order_id} @ {rest.price}; cancel it first"
    )
    assert eng.submit("COMEX.GC", "buy", 1, price=ask + Decimal("4.0")).wait(5) is cmc.OrderState.FILLED


def test_cancels_per_contract_warn_first_then_deny_new_orders(eng: cmc.Engine) -> None:
    eng.limits.cancel_warn_per_day = 2
    eng.limits.max_cancels_per_day = 3
    for i in range(3):
        resting_buy(eng, 30 + i).cancel()
    alerts = eng.alerts()
    assert list(alerts["source"]) == ["pretrade"]
    assert alerts["message"][0].startswith(
        f"{GC}: 2 cancels this trading day; new orders on it are denied at 3"
    )
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4022.6"), "cancel_count")
    assert reason.startswith(f"cancel_count: 3 cancels on {GC} this trading day reached the limit of 3")
    assert eng.submit("COMEX.SI", "buy", 1, price="46.000").state is cmc.OrderState.SUBMITTED


def test_order_without_the_margin_available_is_denied(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(accounts={"US-FUT": 40_000})
    eng.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")  # a clearing firm that charges per lot
    resting_buy(eng, 30, qty=2)  # holds 33,000 USD of margin while it works
    reason = denied(eng.submit("COMEX.GC", "buy", 1, price="4022.6"), "margin")
    assert reason == (
        f"margin: buy 1 {GC} @ 4022.6 needs 16,500.00 USD initial margin; US-FUT has 7,000.00 available "
        "(equity 40,000.00, margin 0.00, held by orders 33,000.00); transfer funds with eng.transfer(...) "
        "or trade smaller"
    )


def test_closing_order_passes_the_margin_check_of_an_account_in_deficit(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 40_000})
    eng.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")  # a clearing firm that charges per lot
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")  # 60,000 of margin on 40,000 of equity
    denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "margin")
    assert eng.submit("COMEX.GC", "sell", 1, price="4022.6").wait(5) is cmc.OrderState.FILLED


def test_order_for_an_unknown_account_is_refused_before_anything_is_journaled(eng: cmc.Engine) -> None:
    rows = eng.journal.head[0]
    with pytest.raises(cmc.InvalidOrder, match=r"account 'HK-FUT' is not known; use one of CN-FUT, US-FUT"):
        eng.submit("COMEX.GC", "buy", 1, price="4177.4", account="HK-FUT")
    assert eng.journal.head[0] == rows


def test_a_request_for_an_unknown_account_is_denied_by_the_margin_check(eng: cmc.Engine) -> None:
    gc = eng.instrument("COMEX.GC")
    reason, _ = run_checks(eng, OrderRequest(gc, Side.BUY, 1, Decimal("4177.4"), "HK-FUT"))
    assert reason == "margin: account 'HK-FUT' is not known; accounts: CN-FUT, US-FUT"


def test_a_hedge_ticket_leg_runs_the_same_checks(eng: cmc.Engine) -> None:
    eng.limits.set("COMEX.GC", max_order_qty=1)
    gc = eng.instrument("COMEX.GC")
    reason, passed = run_checks(eng, OrderRequest(gc, Side.SELL, 2, Decimal("4090.0"), "US-FUT", "T-1"))
    assert reason is not None and reason.startswith("order_qty: 2 lots is above the maximum order size of 1")
    assert "price_band" in passed


# ---------------------------------------------------------------------------- kill switch


def test_kill_cancels_on_every_venue_journals_who_and_why_and_stays_until_rearm(eng: cmc.Engine) -> None:
    gc = resting_buy(eng, 30)
    au = eng.submit("SHFE.au", "buy", 1, price="914.52")
    eng.sleep(0.5)
    eng.thresholds.add("position", act=1000, action="halt")  # a rule that clears must not re-arm
    assert eng.kill("limit breach in US-FUT", who="risk-desk") == 2
    assert gc.wait(5) is cmc.OrderState.CANCELED and au.wait(5) is cmc.OrderState.CANCELED
    changes = rows(eng, "TradingStateChanged")
    assert [(c["state"], c["who"], c["reason"]) for c in changes] == [
        ("HALTED", "risk-desk", "limit breach in US-FUT")
    ]
    eng.sleep(2.0)
    assert eng.trading_state is cmc.TradingState.HALTED
    denied(eng.submit("COMEX.GC", "buy", 1, price="4177.4"), "trading_state")
    eng.rearm(reason="limits checked", who="lead")
    assert eng.trading_state is cmc.TradingState.ACTIVE


# ---------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_position", -1, r"max_position = -1 must be a whole number >= 0, or None for no limit"),
        ("max_order_qty", 0, r"max_order_qty = 0 must be a whole number >= 1"),
        ("max_order_qty", 2.5, r"max_order_qty = 2.5 must be a whole number >= 1"),
        ("price_band", 5, r"price_band = 5 must be a fraction above 0 and below 1: 0.05 is ±5 %"),
        ("max_order_notional", -10, r"max_order_notional = -10 must be above zero \(base currency\)"),
        ("duplicate_window_s", -1.0, r"duplicate_window_s = -1.0 must be >= 0 seconds"),
        ("check_margin", "yes", r"check_margin = 'yes' must be True or False"),
        (
            "max_cancels_per_day",
            400,
            r"cancel_warn_per_day \(400\) must be below max_cancels_per_day \(400\)",
        ),
    ],
)
def test_nonsense_limits_are_refused_with_the_fix(name: str, value: Any, message: str) -> None:
    limits = RiskLimits()
    before = getattr(limits, name)
    with pytest.raises(ValueError, match=message):
        setattr(limits, name, value)
    assert getattr(limits, name) == before


def test_limit_that_is_not_per_instrument_is_refused_by_set() -> None:
    with pytest.raises(
        ValueError, match=r"'max_working_orders' cannot be set per instrument; per-instrument"
    ):
        RiskLimits().set("COMEX.GC", max_working_orders=3)


def test_limits_can_be_switched_off_with_none(eng: cmc.Engine) -> None:
    eng.limits.price_band = None
    eng.limits.max_position = None
    eng.limits.max_order_notional = None
    assert eng.submit("COMEX.GC", "buy", 40, price="4332.1").wait(5) is cmc.OrderState.FILLED


def test_trading_day_of_new_hours_at_a_freed_hours_address_is_its_own() -> None:
    """The trading-day cache once keyed on ``id(hours)``: hours made where freed hours lived read their day."""
    weekdays = (0, 1, 2, 3, 4)
    ts = int(datetime(2026, 11, 24, 13, 30, tzinfo=UTC).timestamp()) * 10**9  # 21:30 in Shanghai
    for _ in range(50):
        night = TradingHours("Asia/Shanghai", (SessionWindow("night", time(21), time(2, 30), weekdays),))
        assert trading_day(night, ts) == date(2026, 11, 25)  # a night session counts toward the next day
        del night
        gc.collect()
        day_only = TradingHours("Asia/Shanghai", (SessionWindow("day", time(9), time(15), weekdays),))
        assert trading_day(day_only, ts) == date(2026, 11, 24)
        del day_only
        gc.collect()
