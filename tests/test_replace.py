"""Replace through the engine on the embedded exchange: ``o.replace(price=..., qty=...)``, journaled."""

from __future__ import annotations

import pytest

import cmc_lab as cmc
from cmc_lab.core.model import OrderReplaced, OrderReplaceRejected, OrderState
from cmc_lab.core.order import OrderNotWorking
from cmc_lab.core.specs import load_specs
from cmc_lab.engine.errors import InvalidOrder

GC = load_specs().instruments["COMEX.GC"]
HIGH = GC.round_to_tick(GC.reference_price * (1 + GC.price_band / 2))  # crosses any ask
LOW = GC.round_to_tick(GC.reference_price * (1 - GC.price_band / 2))  # rests below any bid


def resting(eng: cmc.Engine, qty: int = 2) -> cmc.Order:
    order = eng.submit("COMEX.GC", "buy", qty, price=LOW)
    order.wait(0.5)  # the market runs on the virtual clock while we wait
    assert order.state is OrderState.ACCEPTED, order
    return order


def kinds(eng: cmc.Engine, order: cmc.Order) -> list[str]:
    return list(eng.journal.timeline(order.client_order_id)["kind"])


def test_a_resting_order_replaced_at_a_crossing_price_fills_there(eng: cmc.Engine) -> None:
    order = resting(eng)

    answer = order.replace(price=float(HIGH))

    assert isinstance(answer, OrderReplaced) and (answer.qty, answer.price) == (2, HIGH)
    assert order.wait(5) is OrderState.FILLED and (order.qty, order.price) == (2, HIGH)
    assert kinds(eng, order)[:5] == [
        "OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderReplaceRequested", "OrderReplaced",
    ]  # fmt: skip
    assert order.filled_qty == 2 and eng.journal.verify().ok


def test_a_replace_that_only_lowers_the_quantity_is_exempt_from_the_risk_controls(eng: cmc.Engine) -> None:
    order = resting(eng, qty=3)
    eng.limits.max_order_qty = 1  # the order is above the desk's cap now

    assert isinstance(order.replace(qty=2), OrderReplaced)
    requested = eng.journal.rows_of(order.client_order_id)[-2]
    assert requested["kind"] == "OrderReplaceRequested"
    assert "reduces: quantity 3 -> 2" in requested["payload"]["reason"]

    raised = order.replace(qty=3)  # adds exposure: the cap applies
    assert isinstance(raised, OrderReplaceRejected) and raised.reason.startswith("denied:")
    assert order.qty == 2 and order.state is OrderState.ACCEPTED


def test_a_replace_the_venue_refuses_is_journaled_and_the_order_works_on_unchanged(eng: cmc.Engine) -> None:
    order = resting(eng)
    eng.venues["COMEX"].inject("reject", times=1)

    answer = order.replace(price=str(LOW + GC.tick))

    assert isinstance(answer, OrderReplaceRejected) and "(COMEX)" in answer.reason, answer
    assert (order.qty, order.price, order.state) == (2, LOW, OrderState.ACCEPTED)
    assert kinds(eng, order)[-2:] == ["OrderReplaceRequested", "OrderReplaceRejected"]
    assert order.replace(qty=1) is not None and order.qty == 1  # still in the book, still replaceable


def test_replace_of_a_finished_order_or_with_nothing_to_change_says_what_to_do(eng: cmc.Engine) -> None:
    order = resting(eng)
    with pytest.raises(InvalidOrder, match="nothing to replace"):
        order.replace(price=float(LOW), qty=2)
    with pytest.raises(InvalidOrder, match="quantity must be at least 1 lot"):
        order.replace(qty=0)
    denied = order.replace(price=str(GC.round_to_tick(GC.reference_price * (1 + GC.price_band * 2))))
    assert (
        isinstance(denied, OrderReplaceRejected) and "denied: daily_limits" in denied.reason
    )  # nothing sent
    order.cancel()
    order.wait(1)
    with pytest.raises(OrderNotWorking, match="only working orders can be replaced"):
        order.replace(price=float(HIGH))
