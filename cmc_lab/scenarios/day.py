"""An accelerated trading day on the embedded exchange, and the audit pack of its records.

:func:`trading_day` drives an engine (virtual clock) through market hours of random activity:
hedge tickets on the four cross-market spreads with every policy and mode, plain orders and
cancels, transfers, margin-rate changes, the kill switch and, with ``faults=True``, scripted
venue and transfer faults at random. Scenario 5 journals a session with it; the soak test runs
it with invariants checked at every step. :func:`audit_pack` times ``eng.audit`` on a window.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmc_lab.core.order import Order
from cmc_lab.engine.errors import NoQuote
from cmc_lab.engine.facade import Engine
from cmc_lab.journal.pack import verify_pack

#: The cross-market spreads the day trades: domestic leg bought, overseas leg sold.
SPREADS: dict[str, dict[str, float]] = {
    "au_gc": {"SHFE.au": 1, "COMEX.GC": -1},
    "ag_si": {"SHFE.ag": 1, "COMEX.SI": -1},
    "cu_lme": {"SHFE.cu": 1, "LME.CA": -1},
    "sc_cl": {"INE.sc": 1, "NYMEX.CL": -1},
}
TRADING_VENUES = ("SHFE", "INE", "COMEX", "NYMEX", "LME")
_ACTIONS = ("hedge", "order", "cancel", "transfer", "margin", "kill", "fault")
_WEIGHTS = (0.34, 0.2, 0.1, 0.05, 0.03, 0.02, 0.26)
_FAULTS = (
    "reject",
    "partial",
    "no_ack",
    "disconnect",
    "stale",
    "halt",
    "close",
    "duplicate_fill",
    "late_fill",
)

StepCallback = Callable[[Engine, int, dict[str, int]], None]


def trading_day(
    eng: Engine,
    hours: float,
    *,
    seed: int = 7,
    faults: bool = True,
    step_s: tuple[float, float] = (5.0, 30.0),
    on_step: StepCallback | None = None,
) -> dict[str, int]:
    """Run ``hours`` market hours of random trading (and faults); counts of what was done.

    Between two actions the market runs a random ``step_s`` seconds; ``on_step(eng, step,
    counts)`` is called after each (the caller's thread), for invariant checks.

    Examples
    --------
    >>> eng = cmc.connect("sim", seed=7, clock="virtual")          # doctest: +SKIP
    >>> trading_day(eng, 0.5, seed=7)["tickets"] > 0                # doctest: +SKIP
    True
    """
    if not eng.clock.virtual:
        raise ValueError("trading_day runs market hours in seconds: connect with clock='virtual'")
    rng = random.Random(seed)
    for name, legs in SPREADS.items():
        if name not in eng.spreads:
            eng.spread(name, legs=legs)
    counts = dict.fromkeys(
        ("steps", "tickets", "orders", "cancels", "transfers", "margin", "kills", "faults", "skipped"), 0
    )
    plain: list[Order] = []
    killed = False
    end = eng.now_ns() + round(hours * 3600e9)
    while eng.now_ns() < end:
        if killed:
            eng.rearm("random kill switch lifted", who="trading_day")
            killed = False
        action = rng.choices(_ACTIONS, _WEIGHTS)[0]
        if action == "fault" and not faults:
            action = "hedge"
        try:
            killed = _act(eng, action, rng, plain, counts)
        except NoQuote:  # a venue down or stale: its quotes are gone for now
            counts["skipped"] += 1
        eng.sleep(rng.uniform(*step_s))
        counts["steps"] += 1
        if on_step is not None:
            on_step(eng, counts["steps"], counts)
    if killed:
        eng.rearm("random kill switch lifted", who="trading_day")
    return counts


def _act(eng: Engine, action: str, rng: random.Random, plain: list[Order], counts: dict[str, int]) -> bool:
    """Do one action; True when it was the kill switch (lifted at the next step)."""
    if action == "hedge":
        name = rng.choice(list(SPREADS))
        sp = eng.spread(name)
        qty = sp.lots[sp.leg_ids[0]] * rng.randint(1, 2)
        policy = rng.choices(("chase", "unwind", "hold"), (0.6, 0.25, 0.15))[0]
        mode = rng.choices(("concurrent", "lead_lag"), (0.75, 0.25))[0]
        eng.hedge(
            name,
            rng.choice(("buy", "sell")),
            qty,
            policy=policy,
            mode=mode,
            min_top_cover=rng.choice((0, 1)),
            max_legged_exposure=rng.choice((5_000_000.0, 1_500_000.0)),  # the lower one is hit often
        )
        counts["tickets"] += 1
    elif action == "order":
        iid = rng.choice([i for legs in SPREADS.values() for i in legs])
        inst, quote = eng.instrument(iid), eng.quote(iid)
        side = rng.choice(("buy", "sell"))
        if rng.random() < 0.5:  # rests a few ticks away from the touch
            away = inst.tick * rng.randint(1, 10) * (-1 if side == "buy" else 1)
            price, tif = inst.round_to_tick(quote.bid if side == "buy" else quote.ask) + away, "GFD"
        else:  # crosses now
            price = inst.round_to_tick(quote.ask if side == "buy" else quote.bid) + inst.tick * 2 * (
                1 if side == "buy" else -1
            )
            tif = "IOC"
        plain.append(eng.submit(iid, side, rng.randint(1, 3), max(price, inst.tick), tif=tif))
        counts["orders"] += 1
    elif action == "cancel":
        working = [o for o in plain if not o.done]
        plain[:] = working
        if working:
            eng.cancel(rng.choice(working))
            counts["cancels"] += 1
    elif action == "transfer":
        source, dest = rng.sample(["CN-FUT", "US-FUT"], 2)
        eng.transfer(source, dest, rng.randint(10, 200) * 1000, reason="trading_day")
        counts["transfers"] += 1
    elif action == "margin":
        eng.set_margin_rate("COMEX.GC", rng.randint(8, 12) / 100)  # 8-12 % of notional
        counts["margin"] += 1
    elif action == "kill":
        eng.kill("random kill switch (trading_day)", who="trading_day")
        counts["kills"] += 1
        return True
    else:
        _inject(eng, rng)
        counts["faults"] += 1
    return False


def _inject(eng: Engine, rng: random.Random) -> None:
    if rng.random() < 0.1:
        eng.risk.transfers.inject("fail", times=1, at=rng.choice(("request", "transit")))
        return
    venue: Any = eng.venues[rng.choice(TRADING_VENUES)]
    kind = rng.choice(_FAULTS)
    if kind == "reject":
        if rng.random() < 0.5:
            venue.inject("reject", times=3, probability=0.3)
        else:
            venue.inject("reject", times=rng.randint(1, 2))
    elif kind == "partial":
        venue.inject("partial", ratio=rng.choice((0.3, 0.5, 0.7)))
    elif kind == "no_ack":
        venue.inject("no_ack", lost=rng.random() < 0.5)
    elif kind == "disconnect":
        venue.inject("disconnect", duration=rng.uniform(0.5, 3.0))
    elif kind in ("stale", "halt", "close"):
        venue.inject(kind, duration=rng.uniform(1.0, 10.0))
    else:
        venue.inject(kind)


# =========================================================================== audit pack


def audit_pack(eng: Engine, path: Path, since_ns: int, until_ns: int) -> dict[str, Any]:
    """Write the audit pack of ``[since_ns, until_ns)`` with ``eng.audit`` and time it; then check it.

    Returns the seconds ``eng.audit`` took (it verifies the whole chain too), the window's rows,
    the pack's bytes, and whether :func:`~cmc_lab.journal.pack.verify_pack` finds it intact and
    drawn from this journal (checked after the timing).
    """
    t0 = time.perf_counter()
    made = eng.audit(path, since=since_ns, until=until_ns, progress=False)
    elapsed = time.perf_counter() - t0
    report = verify_pack(made, eng.journal)
    return {
        "seconds": elapsed,
        "rows": int(report.window.get("rows") or 0),
        "bytes": made.stat().st_size,
        "verified": report.ok,
        "files": report.files,
    }
