"""The engine's offset books: per account and contract on SHFE and INE, long and short lots apart.

State layer under :mod:`cmc_lab.risk.capital`, which applies every fill here with its order's offset
and charges the fee by it. A book rolls today's lots into yesterday's when a fill or a look comes on
a later exchange trading day (SHFE's night session belongs to the next one), so the journal's replay
and a checkpoint give the same lots. What the engine may still close is what is held less what its
working close orders already claim (an exchange freezes those lots), and :meth:`OffsetBooks.parts`
turns an order into the venue orders it goes out as, one offset each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side
from cmc_lab.core.offsets import Lots, Offset, OffsetBook, OffsetError, plan
from cmc_lab.core.trading import OrderRequest


class WorkingOrder(Protocol):
    """What the books read of a working order: the lots it may still close."""

    @property
    def side(self) -> Side: ...
    @property
    def offset(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def leaves_qty(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Claim:
    """A part staged earlier in the same batch: it claims lots as a working order would."""

    side: Side
    offset: str
    account: str
    leaves_qty: int


#: ``(instrument id, account) -> working orders`` (the pre-trade activity's ``orders_in``)
WorkingOf = Callable[[str, str], Sequence[WorkingOrder]]


class OffsetBooks:
    """Every offset book of one engine, by (account, instrument id); only venues in ``venues`` keep one.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> books = OffsetBooks({"SHFE"})
    >>> au = load_specs().instrument("SHFE.au")
    >>> books.apply("CN-FUT", au.id, Side.BUY, Offset.OPEN, 3, date(2026, 11, 24))
    >>> books.book("CN-FUT", au.id).on(date(2026, 11, 25))
    OffsetBook(long 3 (today 0, yesterday 3), short 0)
    """

    def __init__(self, venues: Iterable[str]) -> None:
        self.venues = frozenset(venues)
        self.books: dict[tuple[str, str], OffsetBook] = {}

    def keeps(self, inst: Instrument) -> bool:
        """Whether ``inst``'s venue holds long and short apart (its orders carry an offset)."""
        return inst.venue in self.venues

    def book(self, account: str, instrument_id: str) -> OffsetBook:
        found = self.books.get((account, instrument_id))
        if found is None:
            found = self.books[(account, instrument_id)] = OffsetBook()
        return found

    def view(self, account: str, inst: Instrument, now_ns: int) -> OffsetBook:
        """A copy of the book as it stands on the trading day of ``now_ns`` (rolled if that is later)."""
        return self.book(account, inst.id).copy().on(inst.hours.trading_day(now_ns))

    def apply(
        self, account: str, instrument_id: str, side: Side, offset: Offset | None, qty: int, day: date | None
    ) -> list[tuple[Offset, int]]:
        """Book a fill with its order's offset on trading day ``day``; the offsets it was booked at.

        A fill without an offset (an order journaled before offsets were kept), or one the book
        cannot take as sent (the venue closed what this book does not hold: a reconcile's fill), is
        booked as the engine's plan would send it, closing what is held and opening the rest, so the
        lots never go negative.
        """
        book = self.book(account, instrument_id).on(day)
        if offset is not None and book.check(side, offset, qty) is None:
            book.apply(side, offset, qty)
            return [(offset, qty)]
        parts = plan(book, side, qty)
        for part, n in parts:
            book.apply(side, part, n)
        return parts

    def roll_all(self) -> None:
        """Every book to the next trading day now (a test's or a desk's start of day by hand)."""
        for book in self.books.values():
            book.roll()

    # ------------------------------------------------------------------ orders

    def available(
        self, account: str, inst: Instrument, now_ns: int, working: Iterable[WorkingOrder]
    ) -> OffsetBook:
        """The lots orders may still close: held on today's trading day, less working closes' leaves."""
        book = self.view(account, inst, now_ns)
        for order in working:
            if order.account != account or not order.offset or order.offset == Offset.OPEN.value:
                continue
            lots = book.closable(order.side)
            if order.offset == Offset.CLOSE_TODAY.value:
                lots.today = max(0, lots.today - order.leaves_qty)
            else:
                lots.yesterday = max(0, lots.yesterday - order.leaves_qty)
        return book

    def parts(
        self,
        account: str,
        inst: Instrument,
        side: Side,
        qty: int,
        offset: Offset | None,
        now_ns: int,
        working: Sequence[WorkingOrder],
    ) -> tuple[list[tuple[Offset, int]], str | None]:
        """The venue orders one order goes out as, and why it must be denied (None if it may go).

        A forced offset goes as it is, one order, denied when it closes more than can be closed (what
        is held, less what working closes claim). Without one the engine plans: close the opposite
        side's yesterday lots, then today's, then open the rest, one order per offset.
        """
        book = self.available(account, inst, now_ns, working)
        if offset is None:
            return plan(book, side, qty), None
        problem = book.check(side, offset, qty)
        if problem is not None:
            claimed = self._claimed(account, side, offset, working)
            if claimed:
                problem += f" ({claimed} more are claimed by close orders already working)"
            problem += (
                f"; or leave the offset out and the engine chooses: {_plan_text(plan(book, side, qty))}"
            )
        return [(offset, qty)], problem

    def split(
        self, requests: list[OrderRequest], now_ns: int, working_of: WorkingOf
    ) -> list[tuple[int, OrderRequest, str | None]]:
        """Each request as the venue orders it goes out as: ``(request index, part, why denied)``.

        Requests on venues that net pass as they are (a forced offset there is denied). Parts staged
        earlier in the batch claim their lots as working orders do, so two closes of one batch never
        close the same lots twice.
        """
        out: list[tuple[int, OrderRequest, str | None]] = []
        staged: list[_Claim] = []
        for i, req in enumerate(requests):
            inst = req.instrument
            if not self.keeps(inst):
                why = None if req.offset is None else f"{inst.venue} nets long and short: send no offset"
                out.append((i, req, why))
                continue
            working: list[WorkingOrder] = [*working_of(inst.id, req.account)]
            working += [c for c in staged if c.account == req.account]
            planned, why = self.parts(req.account, inst, req.side, req.qty, req.offset, now_ns, working)
            for offset, qty in planned:
                part = OrderRequest(inst, req.side, qty, req.price, req.account, req.ticket_id, offset)
                out.append((i, part, why))
                staged.append(_Claim(req.side, offset.value, req.account, qty))
        return out

    @staticmethod
    def _claimed(account: str, side: Side, offset: Offset, working: Iterable[WorkingOrder]) -> int:
        today = offset is Offset.CLOSE_TODAY
        return sum(
            o.leaves_qty
            for o in working
            if o.account == account and o.side is side and o.offset and o.offset != Offset.OPEN.value
            and (o.offset == Offset.CLOSE_TODAY.value) == today
        )  # fmt: skip

    # ------------------------------------------------------------------ checkpoint

    def state(self) -> list[list[Any]]:
        """JSON-ready: ``[account, instrument, long today, long yesterday, short today, short yesterday, day]``."""
        return [
            [
                a,
                i,
                b.long.today,
                b.long.yesterday,
                b.short.today,
                b.short.yesterday,
                b.day and b.day.isoformat(),
            ]
            for (a, i), b in sorted(self.books.items())
            if b.long.total or b.short.total
        ]

    @staticmethod
    def read(rows: list[list[Any]]) -> dict[tuple[str, str], OffsetBook]:
        """The books of :meth:`state` (ValueError, TypeError on a bad row; nothing set here)."""
        out = {}
        for account, iid, lt, ly, st, sy, day in rows:
            counts = [int(n) for n in (lt, ly, st, sy)]
            if min(counts) < 0:
                raise ValueError(f"{account} {iid}: negative lots in the checkpoint's offset book")
            when = None if day is None else date.fromisoformat(day)
            out[(str(account), str(iid))] = OffsetBook(
                Lots(counts[0], counts[1]), Lots(counts[2], counts[3]), when
            )
        return out


def _plan_text(parts: list[tuple[Offset, int]]) -> str:
    return " + ".join(f"{offset.value} {n}" for offset, n in parts)


__all__ = ["OffsetBooks", "OffsetError"]
