"""Exchange side of one simulated venue: order checks, matching, fills, order records. No IO.

Everything here answers with *items*: callables that build the message (quote or event) when
it reaches the client, given its ``ts_init``; the venue carries them over its latency link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import (
    CancelOrder,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderState,
    PriceLimitsPublished,
    Quote,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
)
from cmc_lab.core.offsets import Offset, OffsetError
from cmc_lab.data.month_curve import FairQuote
from cmc_lab.venues.base import OrderStatusReport
from cmc_lab.venues.sim.book import BookOrder, Match, OrderBook
from cmc_lab.venues.sim.faults import Faults
from cmc_lab.venues.sim.positions import PositionBook, TradeLog

#: Price levels of simulated liquidity on each side of every book.
MM_LEVELS = 5

#: A message on its way to the client: called with ``ts_init=`` on arrival, returns what to deliver.
Item = Callable[..., Event | Quote | None]


#: How often a listing asks whether a new trading day began (ns): its limits roll then.
_DAY_CHECK_NS = 1_000_000_000
_NO_LIMIT = (1, 10**15)


def limit_band(inst: Instrument, ref: Decimal) -> tuple[int, int]:
    """The daily limit band around ``ref``, in whole ticks inside it (never below one tick); the
    whole price range for a contract without a daily limit (CME)."""
    if not inst.daily_limit:
        return _NO_LIMIT
    lo = int((ref * (1 - inst.daily_limit) / inst.tick).to_integral_value(ROUND_CEILING))
    hi = int((ref * (1 + inst.daily_limit) / inst.tick).to_integral_value(ROUND_FLOOR))
    return max(lo, 1), hi


@dataclass(slots=True)
class Listing:
    """An instrument as its venue trades it: book, float tick, and the trading day's limit band in
    ticks around the previous settlement (the opening fair price on the first day; then each
    day's last mid, as an exchange settles on the day's last prices)."""

    inst: Instrument
    book: OrderBook
    tick: float
    decimals: int
    band: tuple[int, int]
    mm: list[tuple[BookOrder, BookOrder]]  # the simulated bid and ask of each level
    settlement: Decimal = Decimal(0)
    day: date | None = None  # the trading day of ``band``
    day_checked: int = 0
    last_mid: float = 0.0

    def roll(self, now: int) -> Item | None:
        """At a new trading day: settle at the last mid, set the day's band, publish it."""
        day = self.inst.hours.trading_day(now)
        if day == self.day:
            return None
        if self.day is not None and self.last_mid:
            self.settlement = self.inst.round_to_tick(self.last_mid * self.tick)
        how = "opening fair price" if self.day is None else f"last mid of {self.day}"
        self.day = day
        self.band = limit_band(self.inst, self.settlement)
        return self.limits(now, how)

    def limits(self, now: int, how: str = "") -> Item | None:
        """The day's limits as the venue publishes them; None for a contract without a daily limit."""
        if not self.inst.daily_limit or not self.inst.tradeable or self.day is None:
            return None
        low, high = self.price(self.band[0]), self.price(self.band[1])
        source = f"embedded exchange: settlement {how or 'of the previous trading day'} ± {self.inst.daily_limit:.0%}"
        return partial(
            PriceLimitsPublished, now, venue=self.inst.venue, instrument_id=self.inst.id,
            trading_day=self.day.isoformat(), settlement=self.settlement, low=low, high=high, source=source,
        )  # fmt: skip

    @classmethod
    def of(cls, inst: Instrument) -> Listing:
        tick = inst.tick
        decimals = max(0, -int(tick.normalize().as_tuple().exponent))
        mm = [
            (BookOrder(f"mm-bid-{i}", "mm", Side.BUY, 0, 0), BookOrder(f"mm-ask-{i}", "mm", Side.SELL, 0, 0))
            for i in range(MM_LEVELS)
        ]
        band = limit_band(inst, inst.reference_price)
        return cls(inst, OrderBook(), float(tick), decimals, band, mm, settlement=inst.reference_price)

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.inst.tick

    def quote(self, now: int) -> Item | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        d = self.decimals
        bid_px, ask_px = round(bid[0] * self.tick, d), round(ask[0] * self.tick, d)
        return partial(Quote, self.inst.id, bid_px, ask_px, bid[1], ask[1], now)


@dataclass(slots=True)
class SimOrder:
    """What the exchange knows of one user order."""

    client_order_id: str
    venue_order_id: str | None
    instrument_id: str
    side: Side
    qty: int
    state: OrderState
    filled: int = 0
    notional: Decimal = Decimal(0)
    account: str = ""
    offset: Offset | None = None  # SHFE/INE: what the order does to the account's position

    def report(self) -> OrderStatusReport:
        leaves = 0 if self.state.is_terminal else self.qty - self.filled
        avg = self.notional / self.filled if self.filled else None
        return OrderStatusReport(
            self.client_order_id,
            self.venue_order_id,
            self.instrument_id,
            self.state,
            self.filled,
            avg,
            leaves,
            self.side,
            self.account,
        )


class Matcher:
    """The books, order records and positions of one venue, and the exchange's answer to each message.

    ``positions`` is the venue's own book of every account's lots, moved by its fills (and kept in
    ``log`` when given, so it outlives the process). A venue with ``offsets`` (SHFE, INE) holds long
    and short apart: an order says open or close (today / yesterday), and a close of more lots than
    the account holds, less what its working closes claim, is rejected.
    """

    def __init__(
        self,
        venue: str,
        instruments: Iterable[Instrument],
        faults: Faults,
        log: TradeLog | None = None,
        offsets: bool = False,
    ) -> None:
        self.venue = venue
        self.offsets = offsets
        self.faults = faults
        self.listings: dict[str, Listing] = {inst.id: Listing.of(inst) for inst in instruments}
        self.orders: dict[str, SimOrder] = {}
        self.positions = PositionBook(venue, log)
        self._by_key: dict[str, SimOrder] = {}
        self._order_seq = self._trade_seq = self._match_seq = 0

    # ------------------------------------------------------------------ market

    def tick(
        self, fair: dict[str, FairQuote], now: int, is_open: Callable[[Instrument], bool], publish: bool
    ) -> list[Item]:
        """Re-quote every open, unhalted book; the fills it caused and (if ``publish``) the quotes."""
        items: list[Item] = []
        for iid, listing in self.listings.items():
            if not is_open(listing.inst) or self.frozen(iid):
                continue
            if now - listing.day_checked >= _DAY_CHECK_NS:
                listing.day_checked = now
                published = listing.roll(now)
                if published is not None:
                    items.append(published)
            self.requote(listing, fair[iid], now, items)
            if publish and not self.faults.active("stale", iid):
                quote = listing.quote(now)
                if quote is not None:
                    items.append(quote)
        return items

    def snapshot(self, now: int) -> list[Item]:
        """The current quote of every book that is not stale or halted."""
        items = []
        for iid, listing in self.listings.items():
            if listing.day is None:
                listing.day_checked = now
                listing.roll(now)
            published = listing.limits(now)
            if published is not None:
                items.append(published)
            silent = self.faults.active("stale", iid) or self.faults.active("halt", iid)
            quote = None if silent else listing.quote(now)
            if quote is not None:
                items.append(quote)
        return items

    def frozen(self, iid: str) -> bool:
        return self.faults.active("halt", iid) is not None or self.faults.active("close", iid) is not None

    def requote(self, listing: Listing, fair: FairQuote, now: int, items: list[Item]) -> None:
        """Withdraw the simulated liquidity and quote ``MM_LEVELS`` levels a side around the fair mid."""
        book = listing.book
        book.remove_owner("mm")
        listing.last_mid = fair.mid
        mid = fair.mid / listing.tick
        half = fair.half_spread_ticks
        bid = max(1, math.ceil(mid - half))
        ask = max(bid + 1, math.floor(mid + half))
        size = fair.top_size
        orders = []
        for level, (buy, sell) in enumerate(listing.mm):  # reused: all of them are out of the book now
            buy.price_ticks, sell.price_ticks = bid - level, ask + level
            buy.qty = sell.qty = size * (level + 2) // 2
            if buy.price_ticks >= 1:
                orders.append(buy)
            orders.append(sell)
        matches = book.add_many(orders)
        if matches:
            self._report_matches(listing, matches, None, now, items)

    # ------------------------------------------------------------------ orders

    def submit(self, cmd: SubmitOrder, now: int) -> list[Item]:
        """Check, accept and match an arriving order; a lost order (injected) gets no answer."""
        if self.faults.take("no_ack", cmd.instrument_id, cmd.side, lost=True):
            return []
        cid, iid = cmd.client_order_id, cmd.instrument_id
        listing = self.listings.get(iid)
        if listing is None:
            known = ", ".join(self.listings) or "none"
            return self._reject(
                cmd, f"unknown instrument {iid!r} on {self.venue}; its instruments: {known}", now
            )
        reason = self._check(cmd, listing, now)
        if reason is not None:
            return self._reject(cmd, reason, now)
        self._order_seq += 1
        voi = f"{self.venue}-{self._order_seq:08d}"
        order = SimOrder(cid, voi, iid, cmd.side, cmd.qty, OrderState.ACCEPTED, account=cmd.account)
        order.offset = Offset(cmd.offset) if self.offsets and cmd.offset else None
        self.orders[cid] = self._by_key[voi] = order
        items: list[Item] = []
        if not self.faults.take("no_ack", iid, cmd.side, lost=False):
            items.append(
                partial(
                    OrderAccepted, ts_event=now, client_order_id=cid, instrument_id=iid, venue_order_id=voi
                )
            )
        cut = self.faults.take("partial", iid, cmd.side)
        qty = cmd.qty if cut is None else min(cmd.qty, max(1, int(cmd.qty * cut.params["ratio"])))
        rest = cut is None and cmd.tif is TimeInForce.GFD
        incoming = BookOrder(voi, "user", cmd.side, int(cmd.price / listing.inst.tick), qty)
        self._report_matches(listing, listing.book.add(incoming, rest=rest), order, now, items)
        if cut is not None and incoming.qty:  # the book had less: the venue fills the injected part
            self._fill(listing, order, incoming.price_ticks, incoming.qty, "taker", now, items)
        if not rest and order.filled < order.qty:
            order.state = OrderState.CANCELED
            why = "IOC remainder" if cut is None else "partial fill injected: rest cancelled by venue"
            items.append(
                partial(OrderCanceled, ts_event=now, client_order_id=cid, instrument_id=iid, reason=why)
            )
        return items

    def cancel(self, cmd: CancelOrder, now: int) -> list[Item]:
        """Cancel a resting order, or say why not."""
        cid, iid = cmd.client_order_id, cmd.instrument_id
        order = self.orders.get(cid)
        listing = self.listings.get(iid)
        resting = None
        if order is not None and order.venue_order_id is not None and listing is not None:
            resting = listing.book.get(order.venue_order_id)
        items: list[Item] = []
        if order is None or resting is None or listing is None:
            if order is None or order.state is OrderState.REJECTED:
                reason = f"unknown order {cid!r} on {self.venue}"
            else:
                reason = f"too late to cancel: {order.state.value.lower()}"
        elif self.faults.take("late_fill", iid, order.side):
            listing.book.cancel(resting.key)
            self._fill(listing, order, resting.price_ticks, resting.qty, "maker", now, items)
            reason = "too late to cancel: filled"
        else:
            listing.book.cancel(resting.key)
            order.state = OrderState.CANCELED
            items.append(
                partial(
                    OrderCanceled, ts_event=now, client_order_id=cid, instrument_id=iid, reason="canceled"
                )
            )
            return items
        items.append(
            partial(OrderCancelRejected, ts_event=now, client_order_id=cid, instrument_id=iid, reason=reason)
        )
        return items

    def replace(self, cmd: ReplaceOrder, now: int) -> list[Item]:
        """Give a resting order a new total quantity and price (it loses its time priority), or say why not."""
        cid, iid = cmd.client_order_id, cmd.instrument_id
        order, listing = self.orders.get(cid), self.listings.get(iid)
        resting = None
        if order is not None and order.venue_order_id is not None and listing is not None:
            resting = listing.book.get(order.venue_order_id)
        reason = None
        if order is None or resting is None or listing is None:
            reason = "unknown order" if order is None else f"too late to replace: {order.state.value.lower()}"
        elif cmd.qty <= order.filled:
            reason = f"the new quantity {cmd.qty} must be above the {order.filled} filled"
        else:
            as_new = SubmitOrder(  # checked as the order it would become, under an id of its own
                f"{cid}#replace",
                iid,
                order.side,
                cmd.qty,
                cmd.price,
                TimeInForce.GFD,
                order.account,
                now,
                offset=order.offset.value if order.offset is not None else "",
            )
            reason = self._check(as_new, listing, now)
        if reason is not None or listing is None or resting is None or order is None:
            return [partial(OrderReplaceRejected, ts_event=now, client_order_id=cid, instrument_id=iid,
                            reason=f"{reason} ({self.venue})")]  # fmt: skip
        listing.book.cancel(resting.key)
        order.qty = cmd.qty
        items: list[Item] = [partial(OrderReplaced, ts_event=now, client_order_id=cid, instrument_id=iid,
                                     qty=cmd.qty, price=cmd.price, venue_order_id=order.venue_order_id or "")]  # fmt: skip
        incoming = BookOrder(
            resting.key, "user", order.side, int(cmd.price / listing.inst.tick), cmd.qty - order.filled
        )
        self._report_matches(listing, listing.book.add(incoming), order, now, items)
        return items

    def status(self, client_order_ids: Iterable[str]) -> list[OrderStatusReport]:
        """Reports of the orders this venue knows, in the order asked; unknown ids are left out."""
        return [self.orders[cid].report() for cid in client_order_ids if cid in self.orders]

    def working(self) -> list[OrderStatusReport]:
        """Reports of every order still working here, oldest first."""
        return [order.report() for order in self.orders.values() if not order.state.is_terminal]

    def _reject(self, cmd: SubmitOrder, reason: str, now: int) -> list[Item]:
        cid = cmd.client_order_id
        if cid not in self.orders:  # a duplicate id must not overwrite the first order's record
            self.orders[cid] = SimOrder(
                cid, None, cmd.instrument_id, cmd.side, cmd.qty, OrderState.REJECTED, account=cmd.account
            )
        return [
            partial(
                OrderRejected,
                ts_event=now,
                client_order_id=cid,
                instrument_id=cmd.instrument_id,
                reason=reason,
            )
        ]

    def _check(self, cmd: SubmitOrder, listing: Listing, now: int) -> str | None:
        iid, inst = cmd.instrument_id, listing.inst
        if cmd.client_order_id in self.orders:
            return f"duplicate client_order_id {cmd.client_order_id!r}; the first order with this id stands"
        if not inst.tradeable:
            return f"{iid} is a {inst.kind} rate for conversion, not a tradeable contract"
        if self.faults.active("close", iid):
            return "session closed: closed by the venue (injected); it reopens with inject('open')"
        if not inst.hours.is_open(now):
            when = inst.hours.next_open(now)
            nxt = f"; next open {when:%a %Y-%m-%d %H:%M %Z}" if when is not None else ""
            why = inst.hours.calendar_reason(now)
            if why is not None:
                return f"session closed: {iid}: {why}{nxt}"
            return f"session closed: {iid} trades {inst.hours.describe()}{nxt}"
        if self.faults.active("halt", iid):
            return "trading halted"
        injected = self.faults.take("reject", iid, cmd.side)
        if injected is not None:
            return str(injected.params["reason"])
        ticks = cmd.price / inst.tick
        if ticks != ticks.to_integral_value():
            return f"price {cmd.price} is off the tick grid of {iid} (tick {inst.tick})"
        lo, hi = listing.band
        if not lo <= ticks <= hi:
            return (
                f"price {cmd.price} is outside the daily limit band {listing.price(lo)}-{listing.price(hi)} "
                f"of {iid} for trading day {listing.day} (settlement {listing.settlement} "
                f"± {float(inst.daily_limit) * 100:g}%)"
            )
        band = float(inst.price_band)
        if band and listing.last_mid and abs(float(cmd.price) / listing.last_mid - 1) > band:
            return (
                f"price {cmd.price} is outside the price band of {iid}: ±{band:.0%} around the last price "
                f"{listing.last_mid:.{listing.decimals}f} (price banding: the exchange has no daily limit)"
            )
        if not 1 <= cmd.qty <= inst.max_order_qty:
            return f"quantity {cmd.qty} must be between 1 and {inst.max_order_qty} lots for {iid}"
        return self._check_offset(cmd, inst, now) if self.offsets else None

    def _check_offset(self, cmd: SubmitOrder, inst: Instrument, now: int) -> str | None:
        """Why the venue's book cannot take the order's offset: an unknown one, or a close of more than
        the account holds less the lots its working closes claim (an exchange freezes them). An order
        that says none is booked as a netting account's (closes what is held, then opens), as a
        broker's automatic offset would send it."""
        if not cmd.offset:
            return None
        try:
            offset = Offset.parse(cmd.offset)
        except OffsetError:
            return (
                f"{self.venue} holds long and short apart: say open, close, close_today or close_yesterday "
                f"for {cmd.instrument_id}, not offset {cmd.offset!r}"
            )
        if not offset.closes:
            return None
        today = offset is Offset.CLOSE_TODAY
        replaced = self.orders.get(cmd.client_order_id.removesuffix("#replace"))  # a replace: itself aside
        qty = cmd.qty - (replaced.filled if replaced is not None else 0)
        claimed = sum(
            o.qty - o.filled
            for o in self.orders.values()
            if o.account == cmd.account and o.instrument_id == cmd.instrument_id and o.side is cmd.side
            and o is not replaced
            and not o.state.is_terminal and o.offset is not None and o.offset.closes
            and (o.offset is Offset.CLOSE_TODAY) == today
        )  # fmt: skip
        day = inst.hours.trading_day(now)
        problem = self.positions.check(cmd.account, cmd.instrument_id, cmd.side, offset, qty + claimed, day)
        if problem is not None and claimed:
            problem += f" ({claimed} of them claimed by close orders working here)"
        return problem

    def _report_matches(
        self, listing: Listing, matches: list[Match], taker: SimOrder | None, now: int, items: list[Item]
    ) -> None:
        """Fill both sides of each match under one match id; a match of two orders of one account is a
        self-trade, and both fills say so (the exchange knows both sides; the desk counts them)."""
        for match in matches:
            self._match_seq += 1
            match_id = f"{self.venue}-M{self._match_seq:08d}"
            maker = self._by_key[match.maker] if match.maker_owner == "user" else None
            own = maker is not None and taker is not None and maker.account == taker.account
            if maker is not None:
                self._fill(listing, maker, match.price_ticks, match.qty, "maker", now, items, match_id, own)
            if taker is not None:
                self._fill(listing, taker, match.price_ticks, match.qty, "taker", now, items, match_id, own)

    def _fill(
        self,
        listing: Listing,
        order: SimOrder,
        ticks: int,
        qty: int,
        liquidity: str,
        now: int,
        items: list[Item],
        match_id: str = "",
        self_trade: bool = False,
    ) -> None:
        if not match_id:  # a fill the venue makes up (an injected fault): a match of its own
            self._match_seq += 1
            match_id = f"{self.venue}-M{self._match_seq:08d}"
        px = listing.price(ticks)
        order.filled += qty
        order.notional += px * qty
        order.state = OrderState.FILLED if order.filled >= order.qty else OrderState.PARTIALLY_FILLED
        day = listing.inst.hours.trading_day(now) if self.offsets else None
        self.positions.book(order.account, order.instrument_id, order.side, qty, now, order.offset, day)
        self._trade_seq += 1
        item = partial(
            OrderFilled,
            ts_event=now,
            client_order_id=order.client_order_id,
            instrument_id=order.instrument_id,
            venue_order_id=order.venue_order_id or "",
            trade_id=f"{self.venue}-T{self._trade_seq:08d}",
            side=order.side,
            last_px=px,
            last_qty=qty,
            liquidity=liquidity,
            match_id=match_id,
            self_trade=self_trade,
        )
        items.append(item)
        if self.faults.take("duplicate_fill", order.instrument_id, order.side):
            items.append(item)
