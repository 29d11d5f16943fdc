"""Scenarios 2 and 4, leg by leg: an overseas leg rejected mid-hedge, and legs sent together or by hand.

Drivers for :mod:`cmc_lab.scenarios.runner` on an engine under the virtual clock, each returning the
figures it measured. :func:`rejected_leg_figures` fires gold hedge tickets whose COMEX leg is
scripted to be rejected; :func:`by_hand` and :func:`synchronized` trade the same schedule of
decisions the two ways, and :func:`compare_legs` sets their failures and slippage side by side.
"""

from __future__ import annotations

import random
import statistics
from decimal import Decimal
from typing import Any

from cmc_lab.bench.stats import quantile
from cmc_lab.engine.facade import Engine
from cmc_lab.execution.hedge import HedgeTicket

Schedule = list[tuple[float, float]]  # per decision: market seconds to wait first, the hand's gap


# =========================================================================== 2. rejected leg


def rejected_leg_figures(eng: Engine, n: int, rng: random.Random) -> dict[str, Any]:
    """``n`` tickets of 3 au : 1 GC (chase), each with COMEX scripted to reject its next GC order."""
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    comex: Any = eng.venues["COMEX"]
    tickets: list[HedgeTicket] = []
    for i in range(n):
        eng.sleep(rng.uniform(2.0, 20.0))
        fault = comex.inject("reject", times=1, instrument="GC", reason="rejected by venue (scenario)")
        t = eng.hedge("au_gc", "buy" if i % 2 == 0 else "sell", 3, policy="chase")
        t.wait(60)
        fault.remove()  # unused when the ticket was denied before sending
        tickets.append(t)
    sent = [t for t in tickets if t.legs[1].orders]
    rejected = [t for t in sent if t.legs[1].orders[0].state.value == "REJECTED"]
    completed = [t for t in rejected if t.state.value == "FILLED"]
    first_reorder_filled = [
        t
        for t in rejected
        if len(t.legs[1].orders) > 1 and t.legs[1].orders[1].filled_qty == t.legs[1].orders[1].qty
    ]
    completion = [t.report()["time_to_hedged_ns"] / 1e9 for t in completed]
    reorder_ms = _reject_to_reorder_ms(eng, rejected)
    return {
        "tickets": n,
        "denied_before_sending": n - len(sent),
        "gc_rejected": len(rejected),
        "completed": len(completed),
        "reorder_success": len(completed) / len(rejected) if rejected else None,
        "first_reorder_filled": len(first_reorder_filled) / len(rejected) if rejected else None,
        "completion_s_p50": quantile(completion, 0.5) if completion else None,
        "completion_s_p95": quantile(completion, 0.95) if completion else None,
        "completion_s_max": max(completion, default=None),
        "reject_to_reorder_market_ms_max": max(reorder_ms, default=None),
        "outcomes": {
            s: sum(t.state.value == s for t in tickets) for s in sorted({t.state.value for t in tickets})
        },
    }


def _reject_to_reorder_ms(eng: Engine, rejected: list[HedgeTicket]) -> list[float]:
    """Market ms from each rejected GC order's OrderRejected row to its ticket's first chase order."""
    rejects: dict[str, int] = {}
    chases: dict[str, int] = {}
    for r in eng.journal.rows(kinds=["OrderRejected", "HedgeOrderSent"]):
        if r["kind"] == "OrderRejected":
            rejects.setdefault(r["order_id"], r["mono_ns"])
        elif r["payload"]["purpose"] == "chase":
            chases.setdefault(r["ticket_id"], r["mono_ns"])
    out = []
    for t in rejected:
        reject = rejects.get(t.legs[1].orders[0].client_order_id)
        chase = chases.get(t.ticket_id)
        if reject is not None and chase is not None:
            out.append((chase - reject) / 1e6)
    return out


# =========================================================================== 4. together or by hand


def _touch(eng: Engine, iid: str, side: str) -> Decimal:
    q = eng.quote(iid)
    return eng.instrument(iid).round_to_tick(q.ask if side == "buy" else q.bid)


def _slip(eng: Engine, iid: str, side: str, decision: Decimal, order: Any) -> float | None:
    if order.avg_px is None:
        return None
    sign = 1 if side == "buy" else -1
    return float((order.avg_px - decision) * sign / eng.instrument(iid).tick)


def _limit(eng: Engine, iid: str, side: str, touch: Decimal, ticks: int) -> Decimal:
    step = eng.instrument(iid).tick * ticks
    return touch + step if side == "buy" else touch - step


def by_hand(eng: Engine, schedule: Schedule, allowance_ticks: int = 2) -> list[dict[str, Any]]:
    """Each decision by hand: the au leg at once, the GC leg ``gap`` seconds later, both IOC at the
    prices on screen at the decision plus the allowance. A failed trade is closed out."""
    trials = []
    for i, (wait, gap) in enumerate(schedule):
        eng.sleep(wait)
        au_side, gc_side = ("buy", "sell") if i % 2 == 0 else ("sell", "buy")
        au_px, gc_px = _touch(eng, "SHFE.au", au_side), _touch(eng, "COMEX.GC", gc_side)
        au = eng.submit(
            "SHFE.au", au_side, 3, _limit(eng, "SHFE.au", au_side, au_px, allowance_ticks), tif="IOC"
        )
        eng.sleep(gap)
        gc = eng.submit(
            "COMEX.GC", gc_side, 1, _limit(eng, "COMEX.GC", gc_side, gc_px, allowance_ticks), tif="IOC"
        )
        au.wait(10)
        gc.wait(10)
        failed = au.filled_qty < 3 or gc.filled_qty < 1
        if failed:
            _flatten(eng)
        slips = (_slip(eng, "SHFE.au", au_side, au_px, au), _slip(eng, "COMEX.GC", gc_side, gc_px, gc))
        trials.append({"failed": failed, "slippage": [s for s in slips if s is not None], "between_s": gap})
    return trials


def _flatten(eng: Engine) -> None:
    """Close whatever a failed hand trade left open, so the next decision starts flat."""
    positions = eng.capital().positions
    for iid, qty in zip(positions["instrument"], positions["qty"], strict=True):
        if qty:
            side = "sell" if qty > 0 else "buy"
            price = _limit(eng, iid, side, _touch(eng, iid, side), 20)
            eng.submit(iid, side, abs(int(qty)), price, tif="IOC").wait(10)


def synchronized(eng: Engine, schedule: Schedule) -> list[dict[str, Any]]:
    """Each decision as a hedge ticket: both legs in one loop turn (policy chase, no minimum size)."""
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    trials = []
    for i, (wait, _gap) in enumerate(schedule):
        eng.sleep(wait)
        t = eng.hedge("au_gc", "buy" if i % 2 == 0 else "sell", 3, policy="chase", min_top_cover=0)
        t.wait(60)
        report = t.report()
        first_orders = [leg.orders[0] for leg in t.legs if leg.orders]
        between = report["time_between_legs_ns"]
        trials.append(
            {
                "failed": len(first_orders) < 2 or any(o.filled_qty < o.qty for o in first_orders),
                "outcome": t.state.value,
                "slippage": [
                    leg["slippage_ticks"]
                    for leg in report["legs"].values()
                    if leg["slippage_ticks"] is not None
                ],
                "between_s": None if between is None else between / 1e9,
            }
        )
    return trials


def compare_legs(manual: list[dict[str, Any]], synced: list[dict[str, Any]]) -> dict[str, Any]:
    """Failure rates, their reduction, and mean slippage per filled leg, by hand and synchronized."""

    def rate(trials: list[dict[str, Any]]) -> float:
        return sum(t["failed"] for t in trials) / len(trials)

    def mean_slip(trials: list[dict[str, Any]]) -> float | None:
        values = [s for t in trials for s in t["slippage"]]
        return statistics.fmean(values) if values else None

    manual_rate, synced_rate = rate(manual), rate(synced)
    between = [t["between_s"] for t in synced if t["between_s"] is not None]
    return {
        "trades": len(manual),
        "manual_failure_rate": manual_rate,
        "synchronized_failure_rate": synced_rate,
        "failure_reduction": 1 - synced_rate / manual_rate if manual_rate else None,
        "manual_slippage_ticks_mean": mean_slip(manual),
        "synchronized_slippage_ticks_mean": mean_slip(synced),
        "synchronized_completed": sum(t["outcome"] == "FILLED" for t in synced) / len(synced),
        "manual_left_legged": sum(t["failed"] for t in manual),
        "synchronized_between_legs_ms_p50": quantile(between, 0.5) * 1e3 if between else None,
    }
