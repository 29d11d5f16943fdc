"""One P&L method, per lot first in first out, exact in Decimal (issue 13, finding 7: realized P&L
once used the whole book's average cost, so unwinding 3 lots of a larger position realized against
every lot held)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cmc_lab.core.model import Side
from cmc_lab.core.specs import load_specs
from cmc_lab.risk.capital import Capital
from cmc_lab.risk.positions import Position

SPECS = load_specs()
AU = SPECS.instrument("SHFE.au")
GC = SPECS.instrument("COMEX.GC")


def test_unwinding_three_lots_of_a_larger_position_realizes_the_oldest_lots_exactly() -> None:
    pos = Position("CN-FUT", AU)
    pos.apply_fill(Side.BUY, Decimal("600.00"), 10, date(2026, 11, 23))  # held from the day before
    pos.apply_fill(Side.BUY, Decimal("640.02"), 3, date(2026, 11, 24))  # the ticket's leg
    unwind = pos.apply_fill(Side.SELL, Decimal("639.02"), 3, date(2026, 11, 24))
    # FIFO: the 3 oldest lots close, at 600.00 each. The average cost (7,920.06 / 13 = 609.2353...)
    # is a repeating decimal and gave another, inexact number: +89,349.23...
    assert unwind.realized == Decimal("117060.00")
    assert (unwind.closed_yesterday, unwind.closed_today) == (3, 0)
    assert [(lot.qty, lot.px) for lot in pos.lots] == [(7, Decimal("600.00")), (3, Decimal("640.02"))]
    assert pos.cost == Decimal("6120.06") and pos.qty == 10
    pos.mark = Decimal("639.02")
    assert pos.unrealized == (Decimal("639.02") * 10 - Decimal("6120.06")) * 1000


def test_a_short_closes_first_in_first_out_too() -> None:
    pos = Position("US-FUT", GC)
    pos.apply_fill(Side.SELL, Decimal("2650.0"), 1)
    pos.apply_fill(Side.SELL, Decimal("2660.0"), 1)
    assert pos.apply_fill(Side.BUY, Decimal("2655.0"), 1).realized == Decimal("-500.0")  # the 2650 lot
    assert pos.apply_fill(Side.BUY, Decimal("2655.0"), 1).realized == Decimal("500.0")
    assert pos.qty == 0 and not pos.lots and pos.cost == 0 and pos.avg_px == 0


fills = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 7), st.integers(26_000, 27_000)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills=fills, mark_ticks=st.integers(25_000, 28_000))
def test_realized_plus_unrealized_is_the_money_the_fills_imply(
    fills: list[tuple[Side, int, int]], mark_ticks: int
) -> None:
    tick = GC.tick
    pos = Position("US-FUT", GC)
    flow = Decimal(0)  # money paid (-) and received (+) for the contracts
    for side, qty, ticks in fills:
        px = ticks * tick
        pos.apply_fill(side, px, qty)
        flow -= side.sign * px * qty * GC.lot_size
        assert sum(lot.qty for lot in pos.lots) == abs(pos.qty)
        assert pos.cost == sum((lot.px * lot.qty for lot in pos.lots), Decimal(0))
    mark = mark_ticks * tick
    pos.mark = mark
    assert pos.realized + pos.unrealized == flow + pos.qty * mark * GC.lot_size


@settings(max_examples=100, deadline=None)
@given(fills=fills, mark_ticks=st.integers(25_000, 28_000))
def test_cash_less_fees_plus_unrealized_is_the_money_the_fills_imply(
    fills: list[tuple[Side, int, int]], mark_ticks: int
) -> None:
    cap = Capital(SPECS, SPECS.instruments.values())
    acct = cap.accounts["US-FUT"]
    start = acct.cash
    flow = Decimal(0)
    for side, qty, ticks in fills:
        px = ticks * GC.tick
        booking = cap.apply_fill("US-FUT", GC, side, px, qty, day=date(2026, 11, 24))
        assert booking.fee.amount == Decimal("2.47") * qty
        assert booking.cash == booking.effect.realized - booking.fee.amount
        flow -= side.sign * px * qty * GC.lot_size
    pos = acct.positions["COMEX.GC"]
    pos.mark = mark_ticks * GC.tick
    assert acct.cash - start == acct.settled == pos.realized - acct.fees
    assert acct.cash - start + acct.fees + pos.unrealized == flow + pos.qty * pos.mark * GC.lot_size
