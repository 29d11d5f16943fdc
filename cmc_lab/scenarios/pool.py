"""Scenario 3's lighter model: a month of hourly marks through the capital and transfer modules.

A full simulated month through the engine loop would tick the exchange every 0.2 s for weeks;
this model takes the same price model (:class:`~cmc_lab.data.market.SimMarket`, one step an
hour) and the engine's own :class:`~cmc_lab.risk.capital.Capital` and
:class:`~cmc_lab.risk.transfers.Transfers`, and marks a hedged gold book (3 SHFE au long in
CN-FUT, 1 COMEX GC short in US-FUT per unit) every market hour of 21 trading days.

Two set-ups hold the same total capital. **Siloed**: the best fixed split between the accounts,
no transfers. **Pooled**: the split that starts both accounts at the same utilisation, and the
desk's rule: an account at or past ``act`` gets a transfer from the other that brings it back to
``target``, or to the pool's own utilisation when that is higher (the source gives only what keeps
itself at or below the same level), credited before the next mark. Each set-up holds the largest whole number of units with which no account
reaches ``liquidation`` utilisation at any mark of any path.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

from cmc_lab.core.ids import USDCNH_ID
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.listing import products_of
from cmc_lab.core.model import Quote, Side
from cmc_lab.core.specs import Specs
from cmc_lab.data.market import SimMarket
from cmc_lab.risk.capital import CENT, Capital
from cmc_lab.risk.fx_book import convert
from cmc_lab.risk.margin_rate import MarginRate
from cmc_lab.risk.transfers import Transfer, Transfers

AU, GC = "SHFE.au", "COMEX.GC"
AU_LOTS = 3  # au lots per GC lot: the gold spread's lot ratio
HOUR_NS = 3_600_000_000_000

Marks = list[tuple[float, float, float]]  # (au mid, GC mid, USDCNH) per hourly mark


def price_path(specs: Specs, seed: int, days: int) -> Marks:
    """Hourly fair mids of SHFE au, COMEX GC and USDCNH from the embedded exchange's price model."""
    market = SimMarket(specs, seed, dt=3600.0)
    marks = [(market.quotes[AU].mid, market.quotes[GC].mid, market.quotes[USDCNH_ID].mid)]
    for _ in range(days * 24):
        q = market.step()
        marks.append((q[AU].mid, q[GC].mid, q[USDCNH_ID].mid))
    return marks


def capital_month(
    specs: Specs,
    seeds: Sequence[int],
    *,
    days: int = 21,
    act: float = 0.8,
    target: float = 0.7,
    liquidation: float = 0.95,
) -> dict[str, Any]:
    """Largest safe book and mean capital utilisation, siloed and pooled, over the seeds' paths."""
    specs = products_of(specs)  # hourly marks of the products' paths: the model holds no months
    paths = [price_path(specs, seed, days) for seed in seeds]
    au, gc = specs.instruments[AU], specs.instruments[GC]
    fx0 = paths[0][0][2]
    total = sum(
        (convert(a.cash, a.currency, "CNY", Decimal(str(fx0))) for a in specs.accounts.values()),
        Decimal(0),
    )
    # Siloed: each account must survive its own leg alone. With m_t the margin and p_t the P&L of
    # one unit, utilisation N m_t / (C + N p_t) < L holds while N (m_t - L p_t) < L C: the worst
    # mark of every path fixes the capital each account needs per unit.
    lot_au, lot_gc = float(au.lot_size), float(gc.lot_size)
    rate_au = float(au.margin_rate)
    need_cn = max(
        AU_LOTS * lot_au * (rate_au * a - liquidation * (a - p[0][0])) for p in paths for a, _, _ in p
    )
    need_us = max(_lot_margin(gc, g) + liquidation * (g - p[0][1]) * lot_gc for p in paths for _, g, _ in p)
    per_unit = need_cn + need_us * fx0  # CNY of capital per unit, both accounts
    siloed_units = math.floor(liquidation * float(total) / per_unit)
    cn_share = need_cn / per_unit
    siloed = _largest(
        lambda n: _month(specs, paths, n, total, cn_share, None, liquidation),
        siloed_units - 3,
        siloed_units + 1,
    )
    m_cn = AU_LOTS * lot_au * rate_au * paths[0][0][0]
    m_us = _lot_margin(gc, paths[0][0][1]) * fx0
    rule = (act, target)
    upper = math.floor(liquidation * float(total) / (m_cn + m_us))
    pooled = _largest(
        lambda n: _month(specs, paths, n, total, m_cn / (m_cn + m_us), rule, liquidation), siloed[0], upper
    )
    return {
        "paths": len(paths),
        "days": days,
        "total_capital_cny": float(total),
        "siloed_units": siloed[0],
        "pooled_units": pooled[0],
        "siloed_utilisation": siloed[1]["mean"],
        "pooled_utilisation": pooled[1]["mean"],
        "utilisation_gain": pooled[1]["mean"] - siloed[1]["mean"],
        "siloed_peak_account_utilisation": siloed[1]["peak"],
        "pooled_peak_account_utilisation": pooled[1]["peak"],
        "pooled_transfers_per_month": pooled[1]["transfers"] / len(paths),
        "money_conserved": siloed[1]["conserved"] and pooled[1]["conserved"],
    }


def _largest(run: Callable[[int], dict[str, Any] | None], low: int, high: int) -> tuple[int, dict[str, Any]]:
    """The largest units in ``[low, high]`` whose month survives (binary search; low is lowered if needed)."""
    low = max(low, 1)
    best = run(low)
    while best is None and low > 1:
        low = max(1, low // 2)
        best = run(low)
    if best is None:
        raise RuntimeError("even one unit of the book reaches liquidation; the capital is too small")
    while low < high:
        mid = (low + high + 1) // 2
        figures = run(mid)
        if figures is None:
            high = mid - 1
        else:
            low, best = mid, figures
    return low, best


def _month(
    specs: Specs,
    paths: list[Marks],
    units: int,
    total: Decimal,
    cn_share: float,
    rule: tuple[float, float] | None,
    liquidation: float,
) -> dict[str, Any] | None:
    """Mean unified utilisation over every path, or None if an account reached liquidation."""
    means, peaks, transfers, conserved = [], [], 0, True
    for path in paths:
        out = _one_path(specs, path, units, total, cn_share, rule, liquidation)
        if out is None:
            return None
        means.append(out["mean"])
        peaks.append(out["peak"])
        transfers += out["transfers"]
        conserved = conserved and out["conserved"]
    return {
        "mean": statistics.fmean(means),
        "peak": max(peaks),
        "transfers": transfers,
        "conserved": conserved,
    }


def _one_path(
    specs: Specs,
    path: Marks,
    units: int,
    total: Decimal,
    cn_share: float,
    rule: tuple[float, float] | None,
    liquidation: float,
) -> dict[str, Any] | None:
    fx0 = Decimal(str(path[0][2]))
    cn_cash = (total * Decimal(str(cn_share))).quantize(CENT, rounding=ROUND_DOWN)
    us_cash = ((total - cn_cash) / fx0).quantize(CENT, rounding=ROUND_DOWN)
    au, gc = specs.instruments[AU], specs.instruments[GC]
    cap = Capital(specs, [au, gc, specs.instruments[USDCNH_ID]], {"CN-FUT": cn_cash, "US-FUT": us_cash})
    arriving: list[Callable[[], None]] = []
    clock = [0]

    def changed(_t: Transfer) -> None:
        cap.version += 1  # cash moved: figures are recomputed

    def later(_delay: float, callback: Callable[[], None]) -> None:
        arriving.append(callback)  # the wire lands within the hour, before the next mark

    transfers = Transfers(
        cap.accounts,
        resolve=cap.account_name,
        withdrawable=lambda name: cap.figures(name).withdrawable,
        live_rate=cap.fx_book.live_rate,
        call_later=later,
        journal=lambda _kind, _payload: None,
        now_ns=lambda: clock[0],
        mono_ns=lambda: clock[0],
        delay_s=specs.capital.transfer_delay_s,
        id_prefix="X-pool",
        on_change=changed,
    )
    _mark(cap, path[0], 0)
    cap.apply_fill("CN-FUT", au, Side.BUY, au.round_to_tick(path[0][0]), AU_LOTS * units)
    cap.apply_fill("US-FUT", gc, Side.SELL, gc.round_to_tick(path[0][1]), units)
    utilisation = []
    peak = 0.0
    for hour, mark in enumerate(path):
        clock[0] = hour * HOUR_NS
        _mark(cap, mark, clock[0])
        worst = max(cap.figures(name).utilisation for name in cap.accounts)
        if worst >= liquidation:
            return None
        peak = max(peak, worst)
        utilisation.append(cap.unified()["utilisation"])
        if rule is not None:
            _rebalance(cap, transfers, *rule)
            while arriving:
                arriving.pop(0)()
    ledger = transfers.ledger()
    conserved = all(
        e["cash"] + e["in_transit"] == e["start"] + e["settled"] + e["bought"] - e["sold"]
        for e in ledger.values()
    )
    return {
        "mean": statistics.fmean(utilisation),
        "peak": peak,
        "transfers": len(transfers.transfers),
        "conserved": conserved,
    }


def _lot_margin(inst: Instrument, price: float) -> float:
    """Initial margin of one lot at ``price`` at the specs' rate (a share of notional or money per lot)."""
    rate = MarginRate(inst.margin_kind, inst.margin_rate, Decimal(1))
    return float(rate.initial(inst, 1, Decimal(str(price))))


def _mark(cap: Capital, mark: tuple[float, float, float], ts: int) -> None:
    for iid, mid in zip((AU, GC, USDCNH_ID), mark, strict=True):
        cap.on_quote(Quote(iid, mid, mid, 1, 1, ts, ts))


def _rebalance(
    cap: Capital, transfers: Transfers, act: float, target: float, hysteresis: float = 0.02
) -> None:
    """The desk's rule: an account at ``act`` or above is brought back to ``target`` from the other,
    or, when the pool as a whole is above ``target``, to the pool's utilisation (both accounts level).
    An account less than ``hysteresis`` above the pool is left alone: no wire for a rounding error.
    """
    pool = cap.unified()["utilisation"]
    goal = Decimal(str(max(target, pool)))
    for name in cap.accounts:
        f = cap.figures(name)
        if f.utilisation < act or f.utilisation < pool + hysteresis:
            continue
        needed = f.initial_margin / goal - f.equity - transfers.incoming(name)
        for source in cap.accounts:
            if source == name or needed <= 0:
                continue
            s = cap.figures(source)
            room = min(s.cash, s.equity - s.initial_margin / goal).quantize(CENT, rounding=ROUND_DOWN)
            wanted = cap.convert(needed, f.currency, s.currency).quantize(Decimal(1), rounding=ROUND_CEILING)
            amount = min(wanted, room)
            if amount > 0:
                transfers.request(source, name, amount, s.currency, reason="pool rule")
                needed -= cap.convert(amount, s.currency, f.currency)
