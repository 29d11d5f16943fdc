"""Replace over FIX through the engine: OrderCancelReplaceRequest (35=G) out, 150=5 or 35=9 434=2 back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import until

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.clock import RealClock
from cmc_lab.core.listing import list_months
from cmc_lab.core.model import (
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderReplaced,
    OrderReplaceRejected,
    OrderState,
    Quote,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
)
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.fix.gateway import fix_venues

SPECS = list_months(load_specs(), time.time_ns())  # the months the served exchange lists on its real clock
GC = SPECS.instrument("COMEX.GC")
HIGH = GC.round_to_tick(GC.reference_price * (1 + GC.price_band / 2))  # crosses any ask
LOW = GC.round_to_tick(GC.reference_price * (1 - GC.price_band / 2))  # rests below any bid


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with served_exchange("--target=RP1", "--target=RP2", "--quote-interval", "0.1") as (bound, _):
        yield bound


def test_replace_through_the_engine_moves_the_order_at_the_venue_and_it_fills_there(
    port: int, open_hours: Path, tmp_path: Path
) -> None:
    address = f"fix://127.0.0.1:{port}?sender=RP1&target=EXECUTOR&heartbeat=1"
    eng = cmc.connect(venues={"COMEX": address}, journal=tmp_path / "j.sqlite", instruments=open_hours)
    try:
        order = eng.submit("COMEX.GC", "buy", 2, price=LOW)
        until(lambda: order.state is OrderState.ACCEPTED, "the acceptance")

        smaller = order.replace(qty=1)
        assert isinstance(smaller, OrderReplaced) and (order.qty, order.price) == (1, LOW)
        crossing = order.replace(price=str(HIGH), qty=2)
        assert isinstance(crossing, OrderReplaced) and (crossing.qty, crossing.price) == (2, HIGH)
        assert order.wait(10) is OrderState.FILLED and order.filled_qty == 2

        kinds = list(eng.journal.timeline(order.client_order_id)["kind"])
        assert kinds.count("OrderReplaceRequested") == 2 and kinds.count("OrderReplaced") == 2
        assert kinds.index("OrderReplaced") < kinds.index("OrderFilled")
        assert eng.reconcile().clean and eng.journal.verify().ok
    finally:
        eng.close()


def test_an_order_cancel_reject_of_a_replace_comes_back_as_replace_rejected(port: int) -> None:
    events: list[Event | Quote] = []
    venue = fix_venues({"COMEX": f"fix://127.0.0.1:{port}?sender=RP2&target=EXECUTOR"}, SPECS, RealClock())[
        "COMEX"
    ]

    async def run() -> None:
        await venue.connect(events.append)
        venue.submit(SubmitOrder("rp-1", GC.id, Side.BUY, 1, LOW, TimeInForce.GFD, "US-FUT", time.time_ns()))
        while not any(isinstance(e, OrderAccepted) for e in events):
            await asyncio.sleep(0.01)
        beyond = GC.round_to_tick(GC.reference_price * (1 + GC.price_band * 2))  # the venue's band refuses it
        venue.amend(ReplaceOrder("rp-1", GC.id, 1, beyond, time.time_ns()))
        while not any(isinstance(e, OrderCanceled) for e in events):
            await asyncio.sleep(0.01)
        await venue.disconnect()

    asyncio.run(asyncio.wait_for(run(), 10))
    answers = [e for e in events if isinstance(e, OrderReplaceRejected | OrderCanceled)]
    assert [type(e).__name__ for e in answers] == ["OrderReplaceRejected", "OrderCanceled"]
    assert (
        "replace refused by EXECUTOR" in answers[0].reason and "outside the price band" in answers[0].reason
    )
