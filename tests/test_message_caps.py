"""Message caps that follow the programmatic-trading thresholds (issue 14): the default per-second and
per-trading-day caps derive from core/compliance.toml and sit below its 300/s and 20,000/day; a
warning alert comes before the daily cap; a cancel, and an order that only reduces exposure, are
never blocked by them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sim_months import GC

import cmc_lab as cmc
from cmc_lab.core.compliance import SHIPPED_COMPLIANCE, load_compliance
from cmc_lab.core.specs import load_specs
from cmc_lab.risk.limits import RiskLimits
from cmc_lab.risk.pretrade import OrderActivity


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1e9)


def checks_of(eng: cmc.Engine, order: cmc.Order) -> list[str]:
    rows = eng.journal.rows(kinds=["OrderSubmitted"])
    return next(r["payload"]["checks"].split(",") for r in rows if r["order_id"] == order.client_order_id)


def resting_buy(eng: cmc.Engine, ticks_below_bid: int, **kwargs: Any) -> cmc.Order:
    inst = eng.instrument("COMEX.GC")
    bid = inst.round_to_tick(eng.quote("COMEX.GC").bid)
    return eng.submit("COMEX.GC", "buy", 1, price=bid - inst.tick * ticks_below_bid, **kwargs)


def test_default_caps_derive_from_compliance_toml_and_sit_below_the_high_frequency_thresholds() -> None:
    rules = load_compliance()
    limits = RiskLimits()
    assert limits.max_messages_per_s == rules.caps.messages_per_s < rules.thresholds.per_second == 300
    assert limits.max_messages_per_day == rules.caps.messages_per_day < rules.thresholds.per_day == 20_000
    assert limits.message_warn_per_day == rules.caps.message_warn_per_day < limits.max_messages_per_day
    assert limits.max_cancels_per_day == rules.caps.cancels_per_day < rules.abnormal.cancels == 500
    assert limits.cancel_warn_per_day == rules.caps.cancel_warn_per_day < limits.max_cancels_per_day


def test_an_edited_compliance_file_moves_the_caps_with_its_thresholds(tmp_path: Path) -> None:
    text = SHIPPED_COMPLIANCE.read_text()
    edited = tmp_path / "compliance.toml"
    edited.write_text(text.replace("messages_per_second = 300", "messages_per_second = 100"))
    assert load_compliance(edited).caps.messages_per_s == 80  # the same share of the new threshold
    edited.write_text(text.replace("message_warn_share = 0.75", "message_warn_share = 0.95"))
    with pytest.raises(ValueError, match=r"each warning share must be below its cap's share"):
        load_compliance(edited)
    edited.write_text(text.replace("messages_per_day_share = 0.9", "messages_per_day_share = 1.2"))
    with pytest.raises(
        ValueError, match=r"messages_per_day_share = 1.2 must be a fraction above 0 and below 1"
    ):
        load_compliance(edited)


def test_a_daily_cap_at_or_below_its_warning_is_refused_and_left_as_it_was() -> None:
    limits = RiskLimits()
    with pytest.raises(
        ValueError, match=r"message_warn_per_day \(15000\) must be below max_messages_per_day \(9\)"
    ):
        limits.max_messages_per_day = 9
    assert limits.max_messages_per_day == 18_000


def test_the_daily_cap_warns_first_then_denies_new_orders_but_never_a_cancel_or_a_reducing_order(
    eng: cmc.Engine,
) -> None:
    gc = eng.instrument("COMEX.GC")
    held = eng.submit("COMEX.GC", "buy", 1, price=gc.round_to_tick(eng.quote("COMEX.GC").ask) + 5 * gc.tick)
    assert held.wait(5) is cmc.OrderState.FILLED  # message 1 of US-FUT today
    eng.limits.message_warn_per_day = 3
    eng.limits.max_messages_per_day = 4
    working = [resting_buy(eng, 30 + i) for i in range(3)]  # messages 2, 3 (the warning) and 4
    assert all(o.state is cmc.OrderState.SUBMITTED for o in working), [o.reason for o in working]
    warning = eng.alerts()
    assert list(warning["level"]) == ["warning"]
    assert warning["message"][0].startswith(
        "US-FUT: 3 orders and cancels this trading day (2026-11-24); its new orders are denied at 4"
    )

    refused = resting_buy(eng, 40)
    assert refused.state is cmc.OrderState.DENIED
    assert refused.reason.startswith("message_rate: US-FUT sent 4 orders and cancels this trading day")
    au = eng.instrument("SHFE.au")
    other = eng.submit("SHFE.au", "buy", 1, price=au.round_to_tick(eng.quote("SHFE.au").bid) - 5 * au.tick)
    assert other.state is cmc.OrderState.SUBMITTED, other.reason  # CN-FUT has its own count

    working[0].cancel()  # a cancel is never blocked: it leaves and the venue cancels
    assert working[0].wait(5) is cmc.OrderState.CANCELED
    bid = gc.round_to_tick(eng.quote("COMEX.GC").bid)
    closing = eng.submit("COMEX.GC", "sell", 1, price=bid - 5 * gc.tick)  # reduces the long 1
    assert closing.wait(5) is cmc.OrderState.FILLED, closing.reason
    assert f"message_rate: exempt (reduces long 1 {GC} in US-FUT)" in checks_of(eng, closing)
    assert eng.risk.activity.messages_today("US-FUT", gc, eng.now_ns()) == 6  # 4, the cancel, the close


def test_the_daily_count_is_per_account_and_exchange_trading_day_friday_night_counting_toward_monday() -> (
    None
):
    au = load_specs().instrument("SHFE.au")
    activity = OrderActivity()
    friday_night = ns("2026-11-27 13:30:00")  # 21:30 in Shanghai: Monday's trading day
    monday = ns("2026-11-30 02:00:00")  # 10:00 in Shanghai
    for ts in (friday_night, monday):
        activity.on_cancel_requested(SimpleNamespace(instrument=au, account="CN-FUT"), ts)  # type: ignore[arg-type]
    activity.on_cancel_requested(SimpleNamespace(instrument=au, account="CN-OTHER"), monday)  # type: ignore[arg-type]
    assert activity.messages_today("CN-FUT", au, monday) == 2
    assert activity.messages_today("CN-FUT", au, ns("2026-11-27 06:00:00")) == 0  # Friday's own day
    assert activity.messages_today("CN-OTHER", au, friday_night) == 1


@pytest.mark.parametrize("per_day", [None, 10**6])
def test_the_daily_cap_can_be_widened_or_switched_off(eng: cmc.Engine, per_day: int | None) -> None:
    eng.limits.message_warn_per_day = None
    eng.limits.max_messages_per_day = per_day
    assert resting_buy(eng, 30).state is cmc.OrderState.SUBMITTED
