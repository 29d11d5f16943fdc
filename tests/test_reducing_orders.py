"""Controls never trap a leg (issue 13, finding 2): an order that only reduces exposure passes the
kill switch, REDUCING, the caps and the rate limits, each with its own journaled exemption; the
checks of what can be sent at all (price, tick, session, venue) still hold."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.execution.hedge import HedgeTicket, TicketState

TS = TicketState


pytestmark = pytest.mark.usefixtures("au_gc")  # every test here hedges the gold spread


def checks_of(eng: cmc.Engine, order: cmc.Order) -> list[str]:
    rows = eng.journal.rows(kinds=["OrderSubmitted"])
    return next(r["payload"]["checks"].split(",") for r in rows if r["order_id"] == order.client_order_id)


def take(eng: cmc.Engine, iid: str, side: str, qty: int, **kwargs: Any) -> cmc.Order:
    """A marketable order that fills now."""
    quote, inst = eng.quote(iid), eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    return eng.submit(iid, side, qty, price=price, **kwargs)


def legged(eng: cmc.Engine) -> HedgeTicket:
    """A ticket holding +3 SHFE.au naked: its GC leg rejected, policy hold for a second."""
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=1000)
    eng.sleep(0.5)
    assert t.state is TS.LEGGED and t.imbalance_lots()[AU] == 3
    return t


def unwind_order(t: HedgeTicket) -> cmc.Order:
    orders = t.legs[0].orders
    assert len(orders) == 2, orders
    return orders[1]


# ---------------------------------------------------------------------------- finding 2, as found


def test_legged_ticket_unwinds_after_the_kill_switch(eng: cmc.Engine) -> None:
    t = legged(eng)
    eng.kill("desk risk check")
    assert t.wait(timeout=30) is TS.UNWOUND, t.reason
    assert eng.risk.capital.position("CN-FUT", AU) == 0
    assert f"trading_state: exempt (reduces long 3 {AU} in CN-FUT)" in checks_of(eng, unwind_order(t))
    assert eng.trading_state is cmc.TradingState.HALTED  # the kill still stands


def test_legged_ticket_unwinds_after_its_leg_reached_the_cancel_cap(eng: cmc.Engine) -> None:
    t = legged(eng)
    eng.limits.set("SHFE.au", max_cancels_per_day=2)
    bid = Decimal(str(eng.quote("SHFE.au").bid))
    for i in range(2):
        eng.submit("SHFE.au", "buy", 1, price=bid - Decimal("2.00") - i).cancel()
    eng.sleep(0.2)
    assert eng.risk.activity.cancels_today(eng.instrument("SHFE.au"), eng.now_ns()) == 2
    assert t.wait(timeout=30) is TS.UNWOUND, t.reason
    assert f"cancel_count: exempt (reduces long 3 {AU} in CN-FUT)" in checks_of(eng, unwind_order(t))
    assert eng.risk.capital.position("CN-FUT", AU) == 0


# ---------------------------------------------------------------------------- one test per control


def test_closing_order_passes_the_kill_switch_and_an_opening_one_does_not(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 2).wait(5) is cmc.OrderState.FILLED
    eng.kill("fat finger")
    opening = take(eng, "COMEX.GC", "buy", 1)
    assert opening.state is cmc.OrderState.DENIED
    assert opening.reason.startswith(
        "trading_state: trading is HALTED (kill switch): only orders that reduce"
    )
    flipping = take(eng, "COMEX.GC", "sell", 3)  # closes 2 and opens 1 short: adds exposure
    assert flipping.state is cmc.OrderState.DENIED
    closing = take(eng, "COMEX.GC", "sell", 2)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert checks_of(eng, closing)[0] == f"trading_state: exempt (reduces long 2 {GC} in US-FUT)"
    assert eng.risk.capital.position("US-FUT", GC) == 0


def test_closing_order_at_a_nonsense_price_is_still_refused_under_the_kill_switch(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 1).wait(5) is cmc.OrderState.FILLED
    eng.kill("fat finger")
    far = eng.submit("COMEX.GC", "sell", 1, price="3682.3")  # below the daily limit of 3690.0
    assert far.state is cmc.OrderState.DENIED and far.reason.startswith("daily_limits:")
    eng.limits.price_band = 0.01
    banded = eng.submit("COMEX.GC", "sell", 1, price="4022.6")
    assert banded.state is cmc.OrderState.DENIED and banded.reason.startswith("price_band:")


def test_closing_order_passes_reducing_with_its_exemption(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 2).wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add("position", act=1, action="block", scope="COMEX.GC")
    assert eng.trading_state is cmc.TradingState.REDUCING
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert checks_of(eng, closing)[0] == f"trading_state: exempt (reduces long 2 {GC} in US-FUT)"


def test_closing_order_passes_the_cancel_cap(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 1).wait(5) is cmc.OrderState.FILLED
    eng.limits.cancel_warn_per_day = 1
    eng.limits.max_cancels_per_day = 2
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    for i in range(2):
        eng.submit("COMEX.GC", "buy", 1, price=bid - 30 - i).cancel()
    eng.sleep(0.5)
    assert take(eng, "COMEX.GC", "buy", 1).reason.startswith(f"cancel_count: 2 cancels on {GC}")
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert f"cancel_count: exempt (reduces long 1 {GC} in US-FUT)" in checks_of(eng, closing)


def test_closing_order_passes_the_message_rate_limit(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 1).wait(5) is cmc.OrderState.FILLED
    eng.sleep(1.1)
    eng.limits.max_messages_per_s = 1
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    assert eng.submit("COMEX.GC", "buy", 1, price=bid - 30).state is cmc.OrderState.SUBMITTED
    assert eng.submit("COMEX.GC", "buy", 1, price=bid - 31).reason.startswith("message_rate:")
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.state is not cmc.OrderState.DENIED, closing.reason
    assert f"message_rate: exempt (reduces long 1 {GC} in US-FUT)" in checks_of(eng, closing)


def test_closing_order_passes_a_position_limit_set_below_the_position(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 3).wait(5) is cmc.OrderState.FILLED
    eng.limits.max_position = 1
    assert take(eng, "COMEX.GC", "buy", 1).reason.startswith("position:")
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert "position" in checks_of(eng, closing)  # going from 3 to 2 lots is within the rule


def test_closing_order_passes_the_margin_check_of_an_account_in_deficit(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 40_000})
    eng.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")  # a clearing firm that charges per lot
    assert take(eng, "COMEX.GC", "buy", 2).wait(5) is cmc.OrderState.FILLED
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")  # 60,000 of margin on about 40,000 of equity
    assert take(eng, "COMEX.GC", "buy", 1).reason.startswith("margin:")
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert f"margin: exempt (reduces long 2 {GC} in US-FUT)" in checks_of(eng, closing)


def test_closing_order_passes_the_working_order_cap(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 1).wait(5) is cmc.OrderState.FILLED
    eng.limits.max_working_orders = 1
    bid = Decimal(str(eng.quote("COMEX.GC").bid))
    assert eng.submit("COMEX.GC", "buy", 1, price=bid - 30).state is cmc.OrderState.SUBMITTED
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.wait(5) is cmc.OrderState.FILLED
    assert f"working_orders: exempt (reduces long 1 {GC} in US-FUT)" in checks_of(eng, closing)


def test_closing_order_above_the_notional_and_size_caps_passes(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 4).wait(5) is cmc.OrderState.FILLED
    eng.limits.max_order_qty = 2
    eng.limits.max_order_notional = 1_000_000
    closing = take(eng, "COMEX.GC", "sell", 4)
    assert closing.wait(5) is cmc.OrderState.FILLED
    checks = checks_of(eng, closing)
    assert f"order_qty: exempt (reduces long 4 {GC} in US-FUT)" in checks
    assert f"notional: exempt (reduces long 4 {GC} in US-FUT)" in checks


def test_working_orders_on_the_closing_side_count_against_the_exemption(eng: cmc.Engine) -> None:
    assert take(eng, "COMEX.GC", "buy", 2).wait(5) is cmc.OrderState.FILLED
    ask = Decimal(str(eng.quote("COMEX.GC").ask))
    resting = eng.submit("COMEX.GC", "sell", 1, price=ask + 30)
    eng.kill("desk")  # cancels the resting sell, which stays working until the venue confirms
    assert resting.state is cmc.OrderState.PENDING_CANCEL
    too_much = take(eng, "COMEX.GC", "sell", 2)  # with the resting sell: 3 to close of 2 held
    assert too_much.state is cmc.OrderState.DENIED
    closing = take(eng, "COMEX.GC", "sell", 1)
    assert closing.state is not cmc.OrderState.DENIED, closing.reason
    assert checks_of(eng, closing)[0] == (
        f"trading_state: exempt (reduces long 2 {GC} in US-FUT with 1 more working)"
    )
