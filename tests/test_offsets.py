"""SHFE/INE offsets: long and short apart, today's and yesterday's lots, closing more than held refused."""

from __future__ import annotations

import pytest

from cmc_lab.core.offsets import Lots, Offset, OffsetBook, OffsetError, plan


def test_a_buy_against_a_short_closes_it_instead_of_opening_a_long() -> None:
    book = OffsetBook()
    book.apply("sell", Offset.OPEN, 3)
    assert plan(book, "buy", 3) == [(Offset.CLOSE_TODAY, 3)]
    book.apply("buy", Offset.CLOSE_TODAY, 3)
    assert book.net == 0 and book.long.total == 0 and book.short.total == 0


def test_long_and_short_are_held_apart_when_an_order_forces_open() -> None:
    book = OffsetBook()
    book.apply("buy", Offset.OPEN, 2)
    book.apply("sell", Offset.OPEN, 2)  # a locked position: SHFE keeps both
    assert (book.long.total, book.short.total, book.net) == (2, 2, 0)


def test_todays_lots_become_yesterdays_on_the_next_trading_day() -> None:
    book = OffsetBook()
    book.apply("buy", Offset.OPEN, 4)
    book.roll()
    book.apply("buy", Offset.OPEN, 1)
    assert book.long == Lots(today=1, yesterday=4)


@pytest.mark.parametrize(
    ("offset", "qty", "message"),
    [
        (Offset.CLOSE_TODAY, 2, "close_today 2 closes more than is held: 1 long lots opened today"),
        (
            Offset.CLOSE_YESTERDAY,
            4,
            "close_yesterday 4 closes more than is held: 3 long lots opened before today",
        ),
        (Offset.CLOSE, 4, "close 4 closes more than is held: 3 long lots opened before today"),
    ],
)
def test_closing_more_than_is_held_is_refused_with_what_is_held(
    offset: Offset, qty: int, message: str
) -> None:
    book = OffsetBook(long=Lots(today=1, yesterday=3))
    assert book.check("sell", offset, qty) is not None
    with pytest.raises(OffsetError, match=message):
        book.apply("sell", offset, qty)
    assert book.long == Lots(today=1, yesterday=3)  # nothing booked


def test_a_plain_close_closes_only_yesterdays_lots_as_on_shfe() -> None:
    book = OffsetBook(short=Lots(today=2, yesterday=1))
    with pytest.raises(
        OffsetError, match="close 2 closes more than is held: 1 short lots opened before today"
    ):
        book.apply("buy", Offset.CLOSE, 2)
    book.apply("buy", Offset.CLOSE, 1)
    assert book.short == Lots(today=2, yesterday=0)


def test_the_plan_closes_the_cheaper_lots_first_when_asked_then_opens_the_rest() -> None:
    book = OffsetBook(long=Lots(today=2, yesterday=2))
    assert plan(book, "sell", 5) == [(Offset.CLOSE_YESTERDAY, 2), (Offset.CLOSE_TODAY, 2), (Offset.OPEN, 1)]
    assert plan(book, "sell", 3, prefer_today=True) == [(Offset.CLOSE_TODAY, 2), (Offset.CLOSE_YESTERDAY, 1)]
    assert plan(OffsetBook(), "sell", 2) == [(Offset.OPEN, 2)]


def test_bad_sides_and_quantities_say_what_to_send() -> None:
    with pytest.raises(OffsetError, match="side must be 'buy' or 'sell'"):
        plan(OffsetBook(), "short", 1)
    with pytest.raises(OffsetError, match="positive number of lots"):
        plan(OffsetBook(), "buy", 0)
