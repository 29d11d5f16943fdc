"""The limit order book: price-time priority, partial fills, IOC, cancel, withdrawal by owner."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmc_lab.core.model import Side
from cmc_lab.venues.sim.book import BookOrder, Match, OrderBook

BUY, SELL = Side.BUY, Side.SELL


def order(key: str, side: Side, price: int, qty: int, owner: str = "user") -> BookOrder:
    return BookOrder(key, owner, side, price, qty)


def test_empty_book_has_no_prices_depth_or_orders() -> None:
    book = OrderBook()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.depth(5) == ([], [])
    assert len(book) == 0
    assert book.cancel("nothing") is None
    assert book.remove_owner("mm") == 0


def test_incoming_order_that_does_not_cross_rests_and_sets_the_top() -> None:
    book = OrderBook()
    assert book.add(order("b1", BUY, 99, 4)) == []
    assert book.add(order("b2", BUY, 99, 6)) == []
    assert book.add(order("a1", SELL, 101, 3)) == []
    assert book.best_bid() == (99, 10)
    assert book.best_ask() == (101, 3)
    assert "b1" in book and book.get("b2") is not None


def test_buy_takes_the_best_price_first_then_the_earliest_order() -> None:
    book = OrderBook()
    book.add(order("late-101", SELL, 101, 2))
    book.add(order("first-102", SELL, 102, 2))
    book.add(order("early-100", SELL, 100, 1, owner="mm"))
    book.add(order("later-100", SELL, 100, 1))
    matches = book.add(order("taker", BUY, 102, 5))
    assert [(m.maker, m.price_ticks, m.qty) for m in matches] == [
        ("early-100", 100, 1),
        ("later-100", 100, 1),
        ("late-101", 101, 2),
        ("first-102", 102, 1),
    ]
    assert matches[0] == Match("early-100", "taker", 100, 1, "mm")
    assert book.best_ask() == (102, 1)
    assert book.best_bid() is None


def test_sell_takes_the_highest_bids_first() -> None:
    book = OrderBook()
    book.add(order("b98", BUY, 98, 5))
    book.add(order("b99", BUY, 99, 5))
    matches = book.add(order("s", SELL, 98, 7))
    assert [(m.maker, m.price_ticks, m.qty) for m in matches] == [("b99", 99, 5), ("b98", 98, 2)]
    assert book.best_bid() == (98, 3)


def test_partial_fill_across_levels_rests_the_remainder_at_the_limit() -> None:
    book = OrderBook()
    book.add(order("a1", SELL, 101, 3))
    book.add(order("a2", SELL, 102, 4))
    book.add(order("a3", SELL, 104, 9))
    taker = order("t", BUY, 102, 10)
    matches = book.add(taker)
    assert sum(m.qty for m in matches) == 7
    assert taker.qty == 3
    assert book.best_bid() == (102, 3)
    assert book.best_ask() == (104, 9)


def test_ioc_remainder_does_not_rest() -> None:
    book = OrderBook()
    book.add(order("a1", SELL, 101, 3))
    taker = order("t", BUY, 105, 5)
    matches = book.add(taker, rest=False)
    assert [m.qty for m in matches] == [3]
    assert taker.qty == 2
    assert "t" not in book
    assert book.best_bid() is None and book.best_ask() is None


def test_cancel_takes_a_resting_order_out_and_returns_it_once() -> None:
    book = OrderBook()
    book.add(order("b1", BUY, 99, 4))
    book.add(order("b2", BUY, 99, 6))
    cancelled = book.cancel("b1")
    assert cancelled is not None and cancelled.qty == 4
    assert book.cancel("b1") is None
    assert book.best_bid() == (99, 6)
    book.cancel("b2")
    assert book.best_bid() is None and len(book) == 0


def test_remove_owner_withdraws_only_that_owners_orders() -> None:
    book = OrderBook()
    book.add(order("m1", BUY, 99, 10, owner="mm"))
    book.add(order("u1", BUY, 99, 2))
    book.add(order("m2", SELL, 101, 10, owner="mm"))
    assert book.remove_owner("mm") == 2
    assert book.best_bid() == (99, 2)
    assert book.best_ask() is None
    assert [o.key for o in book.orders()] == ["u1"]


def test_depth_sums_each_level_best_first() -> None:
    book = OrderBook()
    for i, (side, price, qty) in enumerate(
        [(BUY, 99, 1), (BUY, 99, 2), (BUY, 97, 5), (SELL, 101, 4), (SELL, 103, 1)]
    ):
        book.add(order(f"o{i}", side, price, qty))
    assert book.depth(2) == ([(99, 3), (97, 5)], [(101, 4), (103, 1)])
    assert book.depth(0) == ([], [])


def test_duplicate_key_and_empty_quantity_are_refused() -> None:
    book = OrderBook()
    book.add(order("x", BUY, 99, 1))
    with pytest.raises(ValueError, match="already in the book"):
        book.add(order("x", BUY, 98, 1))
    with pytest.raises(ValueError, match="at least 1"):
        book.add(order("y", BUY, 98, 0))


orders_strategy = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]), st.integers(95, 105), st.integers(1, 5), st.sampled_from(["mm", "user"])
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(before=orders_strategy, batch=orders_strategy)
def test_add_many_gives_the_same_book_and_matches_as_adding_one_by_one(
    before: list[tuple[Side, int, int, str]], batch: list[tuple[Side, int, int, str]]
) -> None:
    def build(key: str, spec: tuple[Side, int, int, str]) -> BookOrder:
        return BookOrder(key, spec[3], spec[0], spec[1], spec[2])

    one, many = OrderBook(), OrderBook()
    for i, spec in enumerate(before):
        one.add(build(f"p{i}", spec))
        many.add(build(f"p{i}", spec))
    expected = [m for i, spec in enumerate(batch) for m in one.add(build(f"b{i}", spec))]
    assert many.add_many([build(f"b{i}", spec) for i, spec in enumerate(batch)]) == expected
    assert many.depth(20) == one.depth(20)
    assert [(o.key, o.qty) for o in many.orders()] == [(o.key, o.qty) for o in one.orders()]
