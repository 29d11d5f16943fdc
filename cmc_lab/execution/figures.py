"""Hedge ticket figures (pure): naked exposure as the account holds it, every order, the unwind's
cost, the fees the book charged and the ticket's realised P&L, gross and net, from the legs and their orders.

Naked lots are stated as the account holds them: a signed position (+ long, - short) beyond the
balanced part and the order that flattens it ("short 3 SHFE.au; buy 3 to flatten"), never relative
to a leg's side. Money is Decimal: each leg's in its own currency, and in CNY at the ticket's
decision USDCNH (journaled in its ``HedgeDecision``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from cmc_lab.core.display import flatten_text
from cmc_lab.core.model import OrderFilled, Side
from cmc_lab.core.ports import BookedFill
from cmc_lab.execution.ticket import Leg, imbalance
from cmc_lab.pricing.units import needs_fx
from cmc_lab.risk.fx_book import convert


def naked_positions(legs: Sequence[Leg]) -> dict[str, int]:
    """Per leg with naked lots, the lots the account holds beyond the balanced part, signed."""
    lots = imbalance(legs)
    return {leg.id: lots[leg.id] * leg.side.sign for leg in legs if lots[leg.id]}


def naked_text(positions: Mapping[str, int]) -> str:
    """What is naked, leg by leg, as the account holds it; ``balanced`` when nothing is."""
    naked = [flatten_text(iid, lots) for iid, lots in positions.items() if lots]
    return "naked: " + ", ".join(naked) if naked else "balanced"


def naked_lines(positions: Mapping[str, int]) -> list[dict[str, Any]]:
    """The report's ``naked``: one entry per naked leg with its flattening order."""
    return [
        {
            "instrument": iid,
            "position": lots,
            "flatten": {"side": (Side.SELL if lots > 0 else Side.BUY).value, "qty": abs(lots)},
            "text": flatten_text(iid, lots),
        }
        for iid, lots in positions.items()
        if lots
    ]


def leg_figures(legs: Sequence[Leg]) -> tuple[dict[str, dict[str, Any]], int | None]:
    """Per leg: fills, average price, slippage against the decision price (ticks and money in the
    leg's currency, positive = worse); and the ns between the legs' first fills (None if < 2)."""
    figures: dict[str, dict[str, Any]] = {}
    first_fill: dict[str, int] = {}
    for leg in legs:
        fills = leg.forward_fills()
        qty = sum(f.last_qty for f in fills)
        avg = leg.avg_forward_px()
        slip_ticks = slip_money = None
        if avg is not None and leg.decision_px:
            worse = (avg - leg.decision_px) * leg.side.sign
            slip_ticks = float(worse / leg.instrument.tick)
            slip_money = worse * leg.instrument.lot_size * qty
        if fills:
            first_fill[leg.id] = min(f.ts_init for f in fills)
        figures[leg.id] = {
            "side": leg.side.value,
            "target": leg.target,
            "filled": qty,
            "net": leg.net,
            "decision_px": leg.decision_px,
            "avg_px": avg,
            "slippage_ticks": slip_ticks,
            "slippage_money": slip_money,
            "currency": leg.instrument.currency,
            "orders": len(leg.orders),
        }
    between = max(first_fill.values()) - min(first_fill.values()) if len(first_fill) > 1 else None
    return figures, between


def order_rows(legs: Sequence[Leg], purposes: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every order of the ticket in the order it was sent: what it asked and what it got.

    ``purposes`` maps each client order id to why it was sent (``leg``, ``lead``, ``hedge``,
    ``chase``, ``unwind``), in sending order.
    """
    by_id = {o.client_order_id: (leg, o) for leg in legs for o in leg.orders}
    rows = []
    for cid, purpose in purposes.items():
        leg, order = by_id[cid]
        rows.append(
            {
                "client_order_id": cid,
                "leg": leg.id,
                "purpose": purpose,
                "side": order.side.value,
                "qty": order.qty,
                "price": order.price,
                "state": order.state.value,
                "filled": order.filled_qty,
                "avg_px": order.avg_px,
                "fills": [_fill(f) for f in order.fills],
            }
        )
    return rows


def realised_by_leg(leg: Leg) -> Decimal:
    """Money the leg's own trades locked in, in its currency: the lots it both bought and sold,
    each side at its average price (the ticket's own fills, not the account's book)."""
    bought = [f for o in leg.orders if o.side is Side.BUY for f in o.fills]
    sold = [f for o in leg.orders if o.side is Side.SELL for f in o.fills]
    matched = min(_qty(bought), _qty(sold))
    if not matched:
        return Decimal(0)
    return (_avg(sold) - _avg(bought)) * matched * leg.instrument.lot_size


def money_figures(legs: Sequence[Leg], purposes: Mapping[str, str], usdcnh: Decimal | None) -> dict[str, Any]:
    """The unwind's orders, prices and cost per leg, its total in CNY, and the realised P&L.

    An unwind's cost is what rolling the leg back lost against the leg's own fills (positive =
    money lost); with no other closing trades in a ticket it is minus the realised P&L. CNY
    figures are None when a dollar amount meets an unknown rate.
    """
    unwind: dict[str, dict[str, Any]] = {}
    realised: dict[str, Decimal] = {}
    total_cost: Decimal | None = Decimal(0)
    total_pnl: Decimal | None = Decimal(0)
    for leg in legs:
        currency = leg.instrument.currency
        pnl = realised_by_leg(leg)
        if pnl or any(o.fills for o in leg.orders if o.side is not leg.side):
            realised[currency] = realised.get(currency, Decimal(0)) + pnl
        pnl_cny = _to_cny(pnl, currency, usdcnh)
        total_pnl = None if total_pnl is None or pnl_cny is None else total_pnl + pnl_cny
        orders = [o for o in leg.orders if purposes.get(o.client_order_id) == "unwind"]
        if not orders:
            continue
        fills = [f for o in orders for f in o.fills]
        cost = -pnl if pnl else Decimal(0)
        cost_cny = _to_cny(cost, currency, usdcnh)
        total_cost = None if total_cost is None or cost_cny is None else total_cost + cost_cny
        unwind[leg.id] = {
            "orders": [o.client_order_id for o in orders],
            "side": orders[0].side.value,
            "qty": _qty(fills),
            "avg_px": _avg(fills) if fills else None,
            "forward_avg_px": leg.avg_forward_px(),
            "currency": currency,
            "cost": cost,
            "cost_cny": cost_cny,
        }
    return {
        "unwind": unwind,
        "unwind_cost_cny": total_cost,
        "realised_pnl": realised,
        "realised_pnl_cny": total_pnl,
    }


def fee_figures(
    legs: Sequence[Leg], bookings_of: Callable[[str], Sequence[BookedFill]], usdcnh: Decimal | None
) -> dict[str, Any]:
    """The fees the book charged for the ticket's fills: per leg in its currency, and the total in
    CNY (None when a dollar fee meets an unknown rate); and the P&L the book realised on them against
    the account's lots (``book_realised_pnl_cny``: a roll's close of the near month, which the
    ticket's own round trip does not see)."""
    fees: dict[str, dict[str, Any]] = {}
    total: Decimal | None = Decimal(0)
    realised: Decimal | None = Decimal(0)
    for leg in legs:
        booked = [b for o in leg.orders for b in bookings_of(o.client_order_id)]
        if not booked:
            continue
        amount = sum((b.fee.amount for b in booked), Decimal(0))
        currency = booked[0].fee.currency
        fees[leg.id] = {"amount": amount, "currency": currency, "fills": len(booked)}
        in_cny = _to_cny(amount, currency, usdcnh)
        total = None if total is None or in_cny is None else total + in_cny
        pnl = _to_cny(sum((b.realized for b in booked), Decimal(0)), leg.instrument.currency, usdcnh)
        realised = None if realised is None or pnl is None else realised + pnl
    return {"fees": fees, "fees_cny": total, "book_realised_pnl_cny": realised}


def _to_cny(amount: Decimal, currency: str, usdcnh: Decimal | None) -> Decimal | None:
    if not amount or not needs_fx(currency, "CNY"):
        return amount
    return None if usdcnh is None else convert(amount, currency, "CNY", usdcnh)


def _fill(fill: OrderFilled) -> dict[str, Any]:
    return {"trade_id": fill.trade_id, "px": fill.last_px, "qty": fill.last_qty, "ts": fill.ts_event}


def _qty(fills: Sequence[OrderFilled]) -> int:
    return sum(f.last_qty for f in fills)


def _avg(fills: Sequence[OrderFilled]) -> Decimal:
    return sum((f.last_px * f.last_qty for f in fills), Decimal(0)) / _qty(fills)


__all__ = [
    "fee_figures",
    "leg_figures",
    "money_figures",
    "naked_lines",
    "naked_positions",
    "naked_text",
    "order_rows",
    "realised_by_leg",
]
