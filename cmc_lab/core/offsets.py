"""Open/close offsets: long and short lots held apart, today's and yesterday's, as SHFE and INE keep them.

SHFE and INE do not net a buy against a short: an order says whether it opens a position or
closes one, and a close says whether it closes lots opened today or before (the fees differ:
``fees.toml``). Closing more than is held is refused by the exchange. A CME account nets, and its
orders carry no offset. On SHFE and INE a plain close closes yesterday's lots; today's lots close
only with close today. :class:`OffsetBook` is one account's lots in one contract; :func:`plan`
chooses the offsets of an order when the user gives none, and :meth:`OffsetBook.check` says why an
order with a forced offset cannot be taken. Pure: no IO.

>>> book = OffsetBook()
>>> book.apply("buy", Offset.OPEN, 3); book.roll(); book.apply("buy", Offset.OPEN, 2)
>>> book
OffsetBook(long 5 (today 2, yesterday 3), short 0)
>>> plan(book, "sell", 4)
[(<Offset.CLOSE_YESTERDAY: 'close_yesterday'>, 3), (<Offset.CLOSE_TODAY: 'close_today'>, 1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Offset(StrEnum):
    """What an order does to the position on a venue that keeps long and short apart."""

    OPEN = "open"
    CLOSE = (
        "close"  # a plain close: on SHFE and INE it closes yesterday's lots only (today's need CLOSE_TODAY)
    )
    CLOSE_TODAY = "close_today"
    CLOSE_YESTERDAY = "close_yesterday"

    @property
    def closes(self) -> bool:
        return self is not Offset.OPEN

    @classmethod
    def parse(cls, value: str | Offset) -> Offset:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(repr(o.value) for o in cls)
            raise OffsetError(
                f"offset {value!r} is not valid; use one of {known} (or None: the engine chooses)"
            ) from None

    def fee_lots(self, qty: int) -> tuple[int, int, int]:
        """``(opened, closed today, closed yesterday)`` of ``qty`` lots with this offset, as fees charge them."""
        if self is Offset.OPEN:
            return qty, 0, 0
        return (0, qty, 0) if self is Offset.CLOSE_TODAY else (0, 0, qty)


class OffsetError(ValueError):
    """An order would close more lots than are held; the message says what is held and what to send."""


@dataclass(slots=True)
class Lots:
    """One side's lots: opened this exchange trading day, and before."""

    today: int = 0
    yesterday: int = 0

    @property
    def total(self) -> int:
        return self.today + self.yesterday


@dataclass(slots=True)
class OffsetBook:
    """One account's lots in one contract, long and short apart.

    A buy opens a long or closes a short; a sell opens a short or closes a long. ``roll()`` at the
    start of a new exchange trading day turns today's lots into yesterday's; ``on(day)`` does it
    when ``day`` is later than the trading day the book last saw (``day``).
    """

    long: Lots = field(default_factory=Lots)
    short: Lots = field(default_factory=Lots)
    day: date | None = None

    def __repr__(self) -> str:
        def side(name: str, lots: Lots) -> str:
            if not lots.total:
                return f"{name} 0"
            return f"{name} {lots.total} (today {lots.today}, yesterday {lots.yesterday})"

        return f"OffsetBook({side('long', self.long)}, {side('short', self.short)})"

    @property
    def net(self) -> int:
        """The signed position a netting account would show: long less short."""
        return self.long.total - self.short.total

    def closable(self, side: str) -> Lots:
        """The lots an order on ``side`` can close: a sell closes longs, a buy shorts."""
        return self.long if _side(side) == "sell" else self.short

    def check(self, side: str, offset: Offset, qty: int) -> str | None:
        """Why ``qty`` lots on ``side`` with ``offset`` cannot be taken, or None if they can."""
        if qty <= 0:
            return f"quantity must be a positive number of lots, got {qty}"
        if not offset.closes:
            return None
        held = self.closable(side)
        which = held.today if offset is Offset.CLOSE_TODAY else held.yesterday
        if qty <= which:
            return None
        book = "long" if _side(side) == "sell" else "short"
        part = " opened today" if offset is Offset.CLOSE_TODAY else " opened before today"
        return (
            f"{offset.value} {qty} closes more than is held: {which} {book} lots{part} "
            f"({held.today} today, {held.yesterday} yesterday); close at most {which} or send the rest as open"
        )

    def apply(self, side: str, offset: Offset, qty: int) -> None:
        """Book a fill of ``qty`` lots; :class:`OffsetError` if it closes more than is held."""
        problem = self.check(side, offset, qty)
        if problem is not None:
            raise OffsetError(problem)
        if offset is Offset.OPEN:
            opened = self.long if _side(side) == "buy" else self.short
            opened.today += qty
            return
        held = self.closable(side)
        if offset is Offset.CLOSE_TODAY:
            held.today -= qty
        else:  # CLOSE and CLOSE_YESTERDAY: SHFE and INE close yesterday's lots with either
            held.yesterday -= qty

    def roll(self) -> None:
        """A new exchange trading day: every lot held is now yesterday's."""
        for lots in (self.long, self.short):
            lots.yesterday += lots.today
            lots.today = 0

    def on(self, day: date | None) -> OffsetBook:
        """This book on exchange trading day ``day``: rolled when ``day`` is a later one; returns itself."""
        if day is not None:
            if self.day is not None and day > self.day:
                self.roll()
            if self.day is None or day > self.day:
                self.day = day
        return self

    def copy(self) -> OffsetBook:
        return OffsetBook(
            Lots(self.long.today, self.long.yesterday), Lots(self.short.today, self.short.yesterday), self.day
        )


def plan(book: OffsetBook, side: str, qty: int, prefer_today: bool = False) -> list[tuple[Offset, int]]:
    """The offsets of an order the user gave none for: close what the opposite side holds, then open.

    Yesterday's lots close first (FIFO, as the P&L books them) unless ``prefer_today`` (when closing
    today's lots is cheaper: ``fees.toml``'s close_today rate below close_yesterday's); each part is
    a separate order on the venue, because one order carries one offset.

    >>> book = OffsetBook(short=Lots(today=1, yesterday=2))
    >>> plan(book, "buy", 5)
    [(<Offset.CLOSE_YESTERDAY: 'close_yesterday'>, 2), (<Offset.CLOSE_TODAY: 'close_today'>, 1), (<Offset.OPEN: 'open'>, 2)]
    """
    if qty <= 0:
        raise OffsetError(f"quantity must be a positive number of lots, got {qty}")
    held = book.closable(side)
    order = [(Offset.CLOSE_TODAY, held.today), (Offset.CLOSE_YESTERDAY, held.yesterday)]
    if not prefer_today:
        order.reverse()
    parts: list[tuple[Offset, int]] = []
    left = qty
    for offset, available in order:
        take = min(left, available)
        if take:
            parts.append((offset, take))
            left -= take
    if left:
        parts.append((Offset.OPEN, left))
    return parts


def _side(side: str) -> str:
    value = str(getattr(side, "value", side)).lower()
    if value not in ("buy", "sell"):
        raise OffsetError(f"side must be 'buy' or 'sell', got {side!r}")
    return value


__all__ = ["Lots", "Offset", "OffsetBook", "OffsetError", "plan"]
