"""Limit order book of one instrument, price-time priority, integer tick prices. Pure, no IO."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

from cmc_lab.core.model import Side


@dataclass(slots=True)
class BookOrder:
    """An order in the book: ``qty`` is what remains; ``seq`` (arrival order) is set by the book."""

    key: str
    owner: str  # "mm" for simulated liquidity, "user" for orders sent through a venue
    side: Side
    price_ticks: int
    qty: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """One execution: the resting ``maker`` traded ``qty`` at its own price with the incoming ``taker``."""

    maker: str
    taker: str
    price_ticks: int
    qty: int
    maker_owner: str


class OrderBook:
    """Resting orders of one instrument, best price first, then first come first served.

    Prices are integer ticks; the venue converts to and from ``Decimal`` at its boundary.

    Examples
    --------
    >>> book = OrderBook()
    >>> book.add(BookOrder("a1", "mm", Side.SELL, 101, 5))
    []
    >>> [m.qty for m in book.add(BookOrder("u1", "user", Side.BUY, 101, 3))]
    [3]
    >>> book.best_ask()
    (101, 2)
    """

    def __init__(self) -> None:
        self._prices: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}  # ascending
        self._levels: dict[Side, dict[int, deque[BookOrder]]] = {Side.BUY: {}, Side.SELL: {}}
        self._index: dict[str, BookOrder] = {}
        self._owners: dict[str, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __repr__(self) -> str:
        return f"OrderBook({len(self)} orders, bid {self.best_bid()}, ask {self.best_ask()})"

    def get(self, key: str) -> BookOrder | None:
        """The resting order under ``key``, or None."""
        return self._index.get(key)

    def add(self, order: BookOrder, *, rest: bool = True) -> list[Match]:
        """Match ``order`` against the opposite side, then rest what is left unless ``rest`` is False.

        The order is updated in place: ``order.qty`` is what did not trade.

        Examples
        --------
        >>> book = OrderBook()
        >>> book.add(BookOrder("b", "user", Side.BUY, 99, 2), rest=False)
        []
        >>> len(book)
        0
        """
        if order.key in self._index:
            raise ValueError(f"order key {order.key!r} is already in the book; keys must be unique")
        if order.qty <= 0:
            raise ValueError(f"order {order.key!r} has quantity {order.qty}; it must be at least 1")
        matches: list[Match] = []
        opposite = order.side.opposite
        prices = self._prices[opposite]
        levels = self._levels[opposite]
        buy = order.side is Side.BUY
        while order.qty and prices:
            best = prices[0] if buy else prices[-1]
            if (best > order.price_ticks) if buy else (best < order.price_ticks):
                break
            level = levels[best]
            while order.qty and level:
                maker = level[0]
                qty = min(order.qty, maker.qty)
                matches.append(Match(maker.key, order.key, best, qty, maker.owner))
                order.qty -= qty
                maker.qty -= qty
                if not maker.qty:
                    level.popleft()
                    self._forget(maker)
            if not level:
                del levels[best]
                prices.pop(0 if buy else -1)
        if order.qty and rest:
            self._rest(order)
        return matches

    def add_many(self, orders: list[BookOrder]) -> list[Match]:
        """:meth:`add` each order in turn (all rest); quicker when they land in an empty book uncrossed.

        Examples
        --------
        >>> book = OrderBook()
        >>> book.add_many([BookOrder("b", "mm", Side.BUY, 99, 5), BookOrder("a", "mm", Side.SELL, 101, 5)])
        []
        >>> book.best_bid(), book.best_ask()
        ((99, 5), (101, 5))
        """
        if self._index or not self._uncrossed(orders):
            return [match for order in orders for match in self.add(order)]
        seq, index, owners = self._seq, self._index, self._owners
        bid_levels, ask_levels = self._levels[Side.BUY], self._levels[Side.SELL]
        for order in orders:
            seq += 1
            order.seq = seq
            levels = bid_levels if order.side is Side.BUY else ask_levels
            level = levels.get(order.price_ticks)
            if level is None:
                levels[order.price_ticks] = deque((order,))
            else:
                level.append(order)
            index[order.key] = order
            owners[order.owner] = owners.get(order.owner, 0) + 1
        self._seq = seq
        self._prices[Side.BUY] = sorted(bid_levels)
        self._prices[Side.SELL] = sorted(ask_levels)
        return []

    @staticmethod
    def _uncrossed(orders: list[BookOrder]) -> bool:
        """True when the batch cannot trade with itself and every key and quantity is valid."""
        top_bid, low_ask = -1 << 62, 1 << 62
        for order in orders:
            if order.qty <= 0:
                return False
            if order.side is Side.BUY:
                top_bid = max(top_bid, order.price_ticks)
            else:
                low_ask = min(low_ask, order.price_ticks)
        return top_bid < low_ask and len({o.key for o in orders}) == len(orders)

    def cancel(self, key: str) -> BookOrder | None:
        """Take the order under ``key`` out of the book; None if it is not resting.

        Examples
        --------
        >>> book = OrderBook()
        >>> _ = book.add(BookOrder("b", "user", Side.BUY, 99, 2))
        >>> book.cancel("b").qty, book.cancel("b")
        (2, None)
        """
        order = self._index.get(key)
        if order is None:
            return None
        level = self._levels[order.side][order.price_ticks]
        level.remove(order)
        if not level:
            self._drop_level(order.side, order.price_ticks)
        self._forget(order)
        return order

    def remove_owner(self, owner: str) -> int:
        """Withdraw every order of ``owner`` (e.g. all simulated liquidity); returns how many.

        Examples
        --------
        >>> book = OrderBook()
        >>> _ = book.add(BookOrder("m1", "mm", Side.BUY, 99, 5))
        >>> book.remove_owner("mm"), len(book)
        (1, 0)
        """
        count = self._owners.get(owner, 0)
        if not count:
            return 0
        if count == len(self._index):
            self.clear()
            return count
        for side in (Side.BUY, Side.SELL):
            levels = self._levels[side]
            for price in list(levels):
                kept = deque(o for o in levels[price] if o.owner != owner)
                if kept:
                    levels[price] = kept
                else:
                    self._drop_level(side, price)
        self._index = {k: o for k, o in self._index.items() if o.owner != owner}
        del self._owners[owner]
        return count

    def clear(self) -> None:
        """Remove every order."""
        for side in (Side.BUY, Side.SELL):
            self._prices[side].clear()
            self._levels[side].clear()
        self._index.clear()
        self._owners.clear()

    def best_bid(self) -> tuple[int, int] | None:
        """``(price_ticks, size at that price)`` of the highest bid, or None if there is none."""
        prices = self._prices[Side.BUY]
        if not prices:
            return None
        return prices[-1], sum(o.qty for o in self._levels[Side.BUY][prices[-1]])

    def best_ask(self) -> tuple[int, int] | None:
        """``(price_ticks, size at that price)`` of the lowest ask, or None if there is none."""
        prices = self._prices[Side.SELL]
        if not prices:
            return None
        return prices[0], sum(o.qty for o in self._levels[Side.SELL][prices[0]])

    def depth(self, n: int = 5) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``n`` levels of each side as ``(price_ticks, size)``, best first: ``(bids, asks)``.

        Examples
        --------
        >>> book = OrderBook()
        >>> _ = book.add(BookOrder("m1", "mm", Side.BUY, 99, 5))
        >>> _ = book.add(BookOrder("m2", "mm", Side.BUY, 98, 7))
        >>> book.depth(1)
        ([(99, 5)], [])
        """
        bid_prices = self._prices[Side.BUY][: -n - 1 : -1] if n > 0 else []
        ask_prices = self._prices[Side.SELL][:n] if n > 0 else []
        bids = [(p, sum(o.qty for o in self._levels[Side.BUY][p])) for p in bid_prices]
        asks = [(p, sum(o.qty for o in self._levels[Side.SELL][p])) for p in ask_prices]
        return bids, asks

    def orders(self, owner: str | None = None) -> list[BookOrder]:
        """Resting orders (of ``owner`` if given) in arrival order."""
        found = [o for o in self._index.values() if owner is None or o.owner == owner]
        return sorted(found, key=lambda o: o.seq)

    def _rest(self, order: BookOrder) -> None:
        self._seq += 1
        order.seq = self._seq
        levels = self._levels[order.side]
        level = levels.get(order.price_ticks)
        if level is None:
            level = levels[order.price_ticks] = deque()
            insort(self._prices[order.side], order.price_ticks)
        level.append(order)
        self._index[order.key] = order
        self._owners[order.owner] = self._owners.get(order.owner, 0) + 1

    def _forget(self, order: BookOrder) -> None:
        del self._index[order.key]
        left = self._owners[order.owner] - 1
        if left:
            self._owners[order.owner] = left
        else:
            del self._owners[order.owner]

    def _drop_level(self, side: Side, price: int) -> None:
        del self._levels[side][price]
        prices = self._prices[side]
        del prices[bisect_left(prices, price)]
