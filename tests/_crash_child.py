"""Crash-test child: an engine on the served exchange (every venue over one FIX session) that trades until killed.

``python tests/_crash_child.py PORT SENDER JOURNAL INSTRUMENTS SEED MODE``, started by
``tests/test_crash.py``, usually with ``CMC_LAB_CRASH_AT`` armed so that it dies by SIGKILL at a
crash point, or killed by the test at a random moment. It prints ``ready`` once connected (the
restart's recovery done), then by MODE:

- ``burst:SECONDS``: hedge tickets on au_gc (SHFE.au against COMEX.GC, both legs over FIX),
  crossing IOC orders, resting orders far from the market and cancels, among them cancels of
  orders an earlier (killed) process left working;
- ``rest``: one COMEX.GC buy resting far below the market;
- ``rest-cancel``: the same, cancelled once the exchange has accepted it;
- ``cross``: one COMEX.GC buy IOC through the ask (it fills).

If nothing kills it, it prints ``done`` and closes cleanly. Not collected by pytest (its name starts
with an underscore).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from decimal import Decimal

import cmc_lab as cmc
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.venues.base import VenueNotConnected

SPREAD_LEGS = {"SHFE.au": 1, "COMEX.GC": -1}
NEEDED_QUOTES = {"SHFE.au", "COMEX.GC", "FX.USDCNH"}


def connect(port: str, sender: str, journal: str, instruments: str) -> cmc.Engine:
    """Connect, retrying while the acceptor still holds the session of the process just killed."""
    address = f"fix://127.0.0.1:{port}?sender={sender}&target=EXECUTOR&heartbeat=5"
    deadline = time.monotonic() + 10
    while True:
        try:
            return cmc.connect(address, journal=journal, instruments=instruments)
        except VenueNotConnected:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def crossing(eng: cmc.Engine, iid: str, side: str) -> Decimal:
    inst, quote = eng.instrument(iid), eng.quote(iid)
    price = quote.ask * 1.002 if side == "buy" else quote.bid * 0.998
    return inst.round_to_tick(price)


def far(eng: cmc.Engine, iid: str, side: str, rng: random.Random) -> Decimal:
    """A price 5-6 % through the touch: it rests, inside the pre-trade price band."""
    inst, quote = eng.instrument(iid), eng.quote(iid)
    away = rng.uniform(0.05, 0.06)
    return inst.round_to_tick(quote.bid * (1 - away) if side == "buy" else quote.ask * (1 + away))


def cancel_one_of(eng: cmc.Engine, rng: random.Random, plain_only: bool = True) -> None:
    working = eng.orders(working=True)
    if plain_only and not working.empty:
        working = working[working["ticket"].isna()]
    if working.empty:
        return
    with contextlib.suppress(cmc.OrderNotWorking):  # it filled or was cancelled meanwhile
        eng.cancel(rng.choice(list(working["client_order_id"])))


def burst(eng: cmc.Engine, rng: random.Random, seconds: float) -> list[HedgeTicket]:
    for _ in range(2):
        cancel_one_of(eng, rng, plain_only=False)  # orders a killed process left working, adopted by this one
    eng.spread("au_gc", legs=SPREAD_LEGS)
    tickets = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        roll = rng.random()
        side = rng.choice(["buy", "sell"])
        iid = rng.choice(["SHFE.au", "COMEX.GC"])
        if roll < 0.35:
            tickets.append(
                eng.hedge(
                    "au_gc",
                    side,
                    3,
                    policy=rng.choice(["chase", "unwind"]),
                    mode=rng.choice(["concurrent", "lead_lag"]),
                    min_top_cover=0,
                )
            )
        elif roll < 0.65:
            eng.submit(iid, side, rng.randint(1, 2), price=crossing(eng, iid, side), tif="IOC")
        elif roll < 0.85:
            eng.submit(iid, side, 1, price=far(eng, iid, side, rng))
        else:
            cancel_one_of(eng, rng)
        time.sleep(rng.uniform(0.01, 0.06))
    return tickets


def main(argv: list[str]) -> int:
    port, sender, journal, instruments, seed, mode = argv
    rng = random.Random(int(seed))
    eng = connect(port, sender, journal, instruments)
    deadline = time.monotonic() + 5
    while not set(eng.quotes().index) >= NEEDED_QUOTES and time.monotonic() < deadline:
        time.sleep(0.01)
    print("ready", flush=True)
    tickets = []
    if mode.startswith("burst:"):
        tickets = burst(eng, rng, float(mode.partition(":")[2]))
    elif mode in ("rest", "rest-cancel"):
        order = eng.submit("COMEX.GC", "buy", 1, price=far(eng, "COMEX.GC", "buy", rng))
        while mode == "rest-cancel" and order.state is not cmc.OrderState.ACCEPTED:
            time.sleep(0.01)
        if mode == "rest-cancel":
            order.cancel()
        time.sleep(1.0)
    elif mode == "cross":
        eng.submit("COMEX.GC", "buy", 1, price=crossing(eng, "COMEX.GC", "buy"), tif="IOC").wait(5)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use burst:SECONDS, rest, rest-cancel or cross")
    print("done", flush=True)
    for ticket in tickets:
        ticket.wait(5)
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
