"""Reconciliation over FIX: the served exchange answers OrderMassStatusRequest and RequestForPositions.

The engine's FIX venue asks the exchange served in another process, over loopback TCP, for its
working orders (35=AF -> ExecutionReports 150=I) and positions (35=AN -> 35=AO, 35=AP); the
engine's reconciliation compares them with its book.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from polling import until

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.listing import list_months
from cmc_lab.core.model import OrderState, Side
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.base import VenueCannotReport
from cmc_lab.venues.fix import report_mapping as reports
from cmc_lab.venues.fix.codec import FixMessage, encode, parse
from cmc_lab.venues.fix.queries import VenueQueries

CLIENTS = [f"R{i:02d}" for i in range(12)]
GC = list_months(load_specs(), time.time_ns()).instrument("COMEX.GC")  # the month served on the real clock
HIGH = GC.round_to_tick(GC.reference_price * (1 + GC.price_band / 2))  # crosses any ask
_names = itertools.count()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    options = [f"--target={c}" for c in CLIENTS]
    with served_exchange(*options, "--quote-interval", "0.1") as (bound, _):
        yield bound


@pytest.fixture
def engine(port: int, open_hours: Path, tmp_path: Path) -> Iterator[Callable[..., cmc.Engine]]:
    """Engines with COMEX over FIX, each on a session of its own; ``account`` is the account at the venue."""
    made: list[cmc.Engine] = []

    def make(account: str) -> cmc.Engine:
        client = CLIENTS[next(_names)]
        address = f"fix://127.0.0.1:{port}?sender={client}&target=EXECUTOR&heartbeat=1&account={account}"
        eng = cmc.connect(
            venues={"COMEX": address}, journal=tmp_path / f"{client}.sqlite", instruments=open_hours
        )
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close()


def book_reconciled(eng: cmc.Engine) -> list[dict[str, object]]:
    return [r["payload"] for r in eng.journal.rows() if r["kind"] == "BookReconciled"]


def test_a_position_and_a_working_order_at_the_served_exchange_show_in_reconcile(
    engine: Callable[..., cmc.Engine],
) -> None:
    eng = engine("ACC-A")
    assert eng.submit("COMEX.GC", "buy", 2, price=HIGH, tif="IOC").wait(10) is OrderState.FILLED
    resting = eng.submit("COMEX.GC", "sell", 1, price=HIGH)  # above any bid: it rests
    until(lambda: resting.state is OrderState.ACCEPTED, "the resting order's acceptance")

    result = eng.reconcile()

    assert result.unverified == {}, result.unverified
    lines = {(line.check, line.item): line for line in result.lines}
    position = lines[("position", eng.instrument("COMEX.GC").id)]
    assert (position.account, position.reported, position.engine) == ("US-FUT", 2, 2)
    working = lines[("working order", resting.client_order_id)]
    assert (working.reported, working.engine) == (1, 1)
    assert result.clean, result.frame


def test_a_position_the_engine_does_not_hold_is_alerted_with_the_order_that_flattens_it(
    engine: Callable[..., cmc.Engine],
) -> None:
    desk = engine("ACC-B")
    other = engine("ACC-B")  # another session trading the same account at the venue
    assert other.submit("COMEX.GC", "buy", 3, price=HIGH, tif="IOC").wait(10) is OrderState.FILLED

    result = desk.reconcile()

    assert result.unverified == {}
    (line,) = result.differences
    gc = desk.instrument("COMEX.GC").id
    assert (line.check, line.item, line.reported, line.engine) == ("position", gc, 3, 0)
    assert "sell 3" in line.action
    alerts = desk.alerts()
    assert any(gc in message for message in alerts[alerts["source"] == "reconcile"]["message"])


def test_nothing_held_and_nothing_working_is_a_clean_answer_not_an_unverified_one(
    engine: Callable[..., cmc.Engine],
) -> None:
    eng = engine("ACC-C")
    result = eng.reconcile()
    assert result.clean and result.lines == () and result.unverified == {}


def test_a_reconnect_reconciles_positions_and_working_orders_over_fix(
    engine: Callable[..., cmc.Engine],
) -> None:
    eng = engine("ACC-D")
    assert eng.submit("COMEX.GC", "buy", 1, price=HIGH, tif="IOC").wait(10) is OrderState.FILLED
    until(lambda: len(book_reconciled(eng)) >= 1, "the reconcile after the first logon")
    eng.disconnect("COMEX")
    eng.reconnect("COMEX")
    until(lambda: len(book_reconciled(eng)) >= 2, "the reconcile after the reconnect")
    last = book_reconciled(eng)[-1]
    assert (last["clean"], last["unverified"], last["compared"]) == (True, {}, 1)


# --------------------------------------------------------------------------- the messages (pure)


def message(msg_type: str, *fields: tuple[int, object]) -> FixMessage:
    return parse(encode([(35, msg_type), (52, "20261124-14:00:00.000"), *fields]))


def test_a_refused_request_for_positions_is_cannot_report_never_flat() -> None:
    sent: list[tuple[str, str]] = []
    queries = VenueQueries(lambda mt, body, key: sent.append((mt, key)) or 1, lambda cl: cl, 2.0)

    async def ask() -> None:
        task = asyncio.ensure_future(queries.positions(["ACC"]))
        while not sent:
            await asyncio.sleep(0)
        ((msg_type, req_id),) = sent
        assert msg_type == "AN"
        request = parse(encode([(35, "AN"), (52, "20261124-14:00:00.000"), (710, req_id), (1, "ACC")]))
        refused = reports.positions_ack(request, "R1", 0, "PosReqType '9' is not supported")
        assert queries.take(message("AO", *refused))
        with pytest.raises(VenueCannotReport, match="is not supported"):
            await task

    asyncio.run(ask())


def test_mass_status_reports_map_to_working_orders_and_the_no_orders_report_to_none() -> None:
    none = message("8", *reports.no_orders_report("ms-1", "E1", "20261124-14:00:00.000"))
    assert reports.order_working(none, "NONE") is None
    one = message(
        "8",
        (37, "COMEX-7"), (11, "c9.R1"), *reports.numbered("ms-1", 1, True), (17, "E2"), (150, "I"), (39, "1"),
        (1, "ACC"), (55, "GC"), (207, "COMEX"), (54, "2"), (151, 2), (14, 1), (6, "2650.1"),
    )  # fmt: skip
    report = reports.order_working(one, "c9")
    assert report is not None
    assert (report.client_order_id, report.instrument_id, report.side, report.leaves_qty, report.state) == (
        "c9", "COMEX.GC", Side.SELL, 2, OrderState.PARTIALLY_FILLED,
    )  # fmt: skip


def test_the_reconcile_benchmark_gets_whole_answers_over_loopback() -> None:
    from cmc_lab.bench.fix import fix_reconcile_round_trip

    figure = fix_reconcile_round_trip(5, working=2)
    assert figure["n"] == 5 and 0 < figure["p50_us"] <= figure["max_us"]
