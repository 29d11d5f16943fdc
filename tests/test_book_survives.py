"""The book survives a clean close and a reopen: positions, margin, cash, transfers, counters, time."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sim_months import GC

import cmc_lab as cmc
from cmc_lab.journal import Journal, Receipt
from cmc_lab.risk.transfers import TransferState

MakeEngine = Callable[..., cmc.Engine]


@pytest.fixture(autouse=True)
def _closing_with_exposure_is_expected() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cmc.OpenExposureWarning)
        yield


def reopen(eng: cmc.Engine, make_engine: MakeEngine, journal_path: Path, **kwargs: object) -> cmc.Engine:
    eng.close()
    return make_engine(journal=journal_path, **kwargs)


def test_a_long_filled_before_a_clean_close_is_held_after_the_reopen_with_its_margin(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path, accounts={"US-FUT": 40_000})
    first.set_margin_rate("COMEX.GC", 16_500, kind="per_lot")  # journaled: the reopen restores it
    assert first.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    held_margin = first.capital().accounts.loc["US-FUT", "initial_margin"]
    second = reopen(first, make_engine, journal_path, accounts={"US-FUT": 40_000})
    assert second.risk.capital.position("US-FUT", GC) == 2
    assert second.capital().accounts.loc["US-FUT", "initial_margin"] == held_margin
    order = second.submit("COMEX.GC", "buy", 1, price="4177.4")  # 2 lots hold 33,000 of 40,000
    assert order.state is cmc.OrderState.DENIED and order.reason.startswith("margin:")


def test_cash_and_realized_pnl_after_a_round_trip_survive_the_reopen(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    first.submit("COMEX.GC", "buy", 1, price="4177.4").wait(5)
    first.sleep(5.0)
    first.submit("COMEX.GC", "sell", 1, price="3867.9").wait(5)
    cash = first.capital().accounts.loc["US-FUT", "cash"]
    second = reopen(first, make_engine, journal_path)
    assert second.risk.capital.position("US-FUT", GC) == 0
    assert second.capital().accounts.loc["US-FUT", "cash"] == cash


def test_a_transfer_in_transit_at_close_completes_after_the_reopen_and_money_is_conserved(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    first.sleep(0.5)
    t = first.transfer("SHFE", "COMEX", 1_000_000, currency="CNY")
    assert t.state is TransferState.IN_TRANSIT
    before, _ = first.capital()
    second = reopen(first, make_engine, journal_path)
    accounts, _ = second.capital()
    assert accounts.loc["CN-FUT", "cash"] == before.loc["CN-FUT", "cash"]  # the debit is not undone
    restored = second.risk.transfers.transfers[t.transfer_id]
    assert restored.state is TransferState.IN_TRANSIT and restored.credit == t.credit
    second.sleep(2.5)
    assert restored.state is TransferState.CREDITED
    accounts, _ = second.capital()
    assert accounts.loc["US-FUT", "cash"] == before.loc["US-FUT", "cash"] + t.credit
    for ledger in second.risk.transfers.ledger().values():
        assert ledger["cash"] + ledger["in_transit"] == (
            ledger["start"] + ledger["settled"] + ledger["bought"] - ledger["sold"]
        )


def test_the_cancel_cap_counts_cancels_of_the_same_trading_day_across_a_restart(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    for i in range(3):
        first.submit("COMEX.GC", "buy", 1, price=Decimal("4022.6") + i).cancel()
    second = reopen(first, make_engine, journal_path)
    second.limits.cancel_warn_per_day = 2
    second.limits.max_cancels_per_day = 3
    order = second.submit("COMEX.GC", "buy", 1, price="4022.6")
    assert order.state is cmc.OrderState.DENIED and order.reason.startswith("cancel_count: 3 cancels")


def test_a_margin_rate_raised_before_the_close_still_holds_after_the_reopen(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    first.set_margin_rate("COMEX.GC", 18_000, kind="per_lot")
    second = reopen(first, make_engine, journal_path)
    assert second.risk.capital.rate(GC).rate == Decimal(18_000)


def test_a_reopened_journal_continues_forward_in_time(make_engine: MakeEngine, journal_path: Path) -> None:
    first = make_engine(journal=journal_path)
    first.sleep(30.0)
    second = reopen(first, make_engine, journal_path)
    second.sleep(1.0)
    second.close()
    with Journal(journal_path, readonly=True) as journal:
        stamps = [row["ts_event"] for row in journal.rows()]
    assert stamps == sorted(stamps)


def test_orders_and_tickets_of_an_earlier_run_can_be_looked_up_by_id(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    order = first.submit("COMEX.GC", "buy", 1, price="4177.4")
    order.wait(5)
    first.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    ticket = first.hedge("au_gc", "buy", 3)
    ticket.wait(10)
    second = reopen(first, make_engine, journal_path)
    again = second.order(order.client_order_id)
    assert (again.state, again.filled_qty, again.avg_px) == (order.state, order.filled_qty, order.avg_px)
    receipt = second.ticket(ticket.ticket_id)
    assert isinstance(receipt, Receipt) and receipt.id == ticket.ticket_id
    with pytest.raises(KeyError, match="no ticket 'T-nope'"):
        second.ticket("T-nope")


def test_a_replace_of_an_order_from_an_earlier_run_reaches_the_venue_and_its_answer_is_journaled(
    make_engine: MakeEngine, journal_path: Path
) -> None:
    first = make_engine(journal=journal_path)
    gc = first.instrument("COMEX.GC")
    low = gc.round_to_tick(gc.reference_price * (1 - gc.price_band / 2))  # rests below any bid
    order = first.submit("COMEX.GC", "buy", 2, price=str(low))
    assert order.wait(0.5) is cmc.OrderState.ACCEPTED
    second = reopen(first, make_engine, journal_path)
    again = second.order(order.client_order_id)
    answer = again.replace(qty=1)  # the rebuilt order asks the router, as a new one does
    # The embedded exchange does not keep resting orders across its own restart: it says so.
    assert answer is not None and answer.kind == "OrderReplaceRejected" and "unknown order" in answer.reason
    kinds = [row["kind"] for row in second.journal.rows_of(order.client_order_id)]
    assert "OrderReplaceRequested" in kinds and kinds[-1] == "OrderReplaceRejected"
