"""A ticket's report carries every order, the unwind's prices and what it cost, the fees the book
charged and the ticket's realised P&L gross and net, in the leg's money and CNY as Decimal (issue 13,
finding 7)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.execution.hedge import HedgeTicket, TicketState

TS = TicketState


pytestmark = pytest.mark.usefixtures("au_gc")  # every test here hedges the gold spread


def avg(fills: list) -> Decimal:
    return sum((f.last_px * f.last_qty for f in fills), Decimal(0)) / sum(f.last_qty for f in fills)


def final_report(eng: cmc.Engine, t: HedgeTicket) -> dict:
    rows = [r for r in eng.journal.rows(kinds=["HedgeStateChanged"]) if r["ticket_id"] == t.ticket_id]
    return rows[-1]["payload"]["report"]


def test_unwound_ticket_report_shows_unwind_orders_and_their_cost(eng: cmc.Engine) -> None:
    eng.venues["COMEX"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="unwind")
    assert t.wait(timeout=30) is TS.UNWOUND
    report = t.report()
    au_buy, gc_sell, au_sell = t.orders[0], t.legs[1].orders[0], t.legs[0].orders[1]
    assert [o["client_order_id"] for o in report["orders"]] == [
        au_buy.client_order_id,
        gc_sell.client_order_id,
        au_sell.client_order_id,
    ]
    first, rejected, unwind = report["orders"]
    assert first == {
        "client_order_id": au_buy.client_order_id,
        "leg": AU,
        "purpose": "leg",
        "side": "buy",
        "qty": 3,
        "price": au_buy.price,
        "state": "FILLED",
        "filled": 3,
        "avg_px": au_buy.avg_px,
        "fills": [
            {"trade_id": f.trade_id, "px": f.last_px, "qty": f.last_qty, "ts": f.ts_event}
            for f in au_buy.fills
        ],
    }
    assert rejected["purpose"] == "leg" and rejected["state"] == "REJECTED" and rejected["filled"] == 0
    assert unwind["purpose"] == "unwind" and unwind["side"] == "sell" and unwind["filled"] == 3
    bought, sold = avg(au_buy.fills), avg(au_sell.fills)
    cost = (bought - sold) * 3 * 1000
    assert report["unwind"] == {
        AU: {
            "orders": [au_sell.client_order_id],
            "side": "sell",
            "qty": 3,
            "avg_px": sold,
            "forward_avg_px": bought,
            "currency": "CNY",
            "cost": cost,
            "cost_cny": cost,
        }
    }
    assert report["unwind_cost_cny"] == cost and isinstance(cost, Decimal) and cost > 0
    assert report["realised_pnl_cny"] == -cost
    assert report["realised_pnl"] == {"CNY": -cost}
    # the book's fees (fees.toml): SHFE au 10 CNY a lot to open, close today free; the rejected GC order paid none
    assert report["fees"] == {
        AU: {
            "amount": Decimal("30.00"),
            "currency": "CNY",
            "fills": len(au_buy.fills) + len(au_sell.fills),
        }
    }
    assert report["fees_cny"] == Decimal("30.00")
    assert report["realised_pnl_net_cny"] == -cost - Decimal("30.00")
    journaled = final_report(eng, t)
    assert Decimal(journaled["unwind_cost_cny"]) == cost
    assert Decimal(journaled["unwind"][AU]["avg_px"]) == sold
    assert Decimal(journaled["fees_cny"]) == Decimal("30.00")
    assert Decimal(journaled["realised_pnl_net_cny"]) == -cost - Decimal("30.00")
    assert [o["client_order_id"] for o in journaled["orders"]] == [
        o["client_order_id"] for o in report["orders"]
    ]


def test_unwind_of_a_dollar_leg_costs_in_dollars_and_in_cny_at_the_decision_rate(eng: cmc.Engine) -> None:
    eng.venues["SHFE"].inject("reject", times=1)
    t = eng.hedge("au_gc", "buy", 3, policy="unwind")
    assert t.wait(timeout=30) is TS.UNWOUND
    report = t.report()
    gc_sell, gc_buy = t.legs[1].orders
    cost = (avg(gc_buy.fills) - avg(gc_sell.fills)) * 100
    fx = Decimal(str(report["fx_usdcnh"]))
    figures = report["unwind"][GC]
    assert figures["currency"] == "USD" and figures["side"] == "buy" and figures["cost"] == cost
    assert figures["cost_cny"] == cost * fx
    assert report["unwind_cost_cny"] == cost * fx
    assert report["realised_pnl"] == {"USD": -cost} and report["realised_pnl_cny"] == -cost * fx


def test_filled_ticket_report_lists_both_legs_and_no_unwind(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    assert t.wait(timeout=30) is TS.FILLED
    report = t.report()
    assert [(o["leg"], o["purpose"], o["state"]) for o in report["orders"]] == [
        (AU, "leg", "FILLED"),
        (GC, "leg", "FILLED"),
    ]
    assert report["unwind"] == {} and report["unwind_cost_cny"] == Decimal(0)
    assert report["realised_pnl_cny"] == Decimal(0)


def test_filled_ticket_report_charges_each_legs_fees_and_nets_them_from_the_pnl(eng: cmc.Engine) -> None:
    t = eng.hedge("au_gc", "buy", 3)
    assert t.wait(timeout=30) is TS.FILLED
    report = t.report()
    gc_lots = t.legs[1].orders[0].filled_qty
    booked = {
        b.fee.currency: b.fee.amount
        for o in t.orders
        for b in eng.risk.capital.bookings_of(o.client_order_id)
    }
    assert report["fees"][AU]["amount"] == Decimal("30.00")  # open 3 x 10 CNY/lot
    assert report["fees"][GC] == {
        "amount": booked["USD"],
        "currency": "USD",
        "fills": len(t.legs[1].orders[0].fills),
    }
    assert booked["USD"] == (Decimal("2.47") * gc_lots).quantize(
        Decimal("0.01")
    )  # CME + NFA + broker per contract
    fx = Decimal(str(report["fx_usdcnh"]))
    assert report["fees_cny"] == Decimal("30.00") + booked["USD"] * fx
    assert report["realised_pnl_net_cny"] == -report["fees_cny"]  # nothing closed: the fees are the P&L
