"""Flatten: the reduce-only orders that close what is held of one instrument (``eng.flatten``).

Pure helpers over the book: for each account's signed position, the order that closes it at a
marketable limit from the last quote (IOC), net of the orders already working on the closing
side, split at the exchange's largest order. Such an order only reduces exposure, so it passes
the kill switch, REDUCING and the caps with its exemption journaled
(:mod:`cmc_lab.risk.pretrade`); the checks of what can be sent (venue up, session open, daily
limits, price band, no trade with our own resting orders) still apply to it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, Protocol

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import PriceLimitsPublished, Quote, Side, TimeInForce
from cmc_lab.core.order import Order
from cmc_lab.core.ports import MarketView, OrderSender
from cmc_lab.core.trading import OrderRequest
from cmc_lab.risk.capital import Capital
from cmc_lab.risk.pretrade import OrderActivity

#: How far through the touch a flattening (or threshold-reducing) IOC order is priced, in ticks.
THROUGH_TICKS = 5


class CannotFlatten(ValueError):
    """Flatten was asked for something it cannot close; the message says what to do instead."""


class Book(Protocol):
    """What flattening reads and uses: the risk monitor's book, the market, the order sender."""

    capital: Capital
    activity: OrderActivity
    market: MarketView
    orders: OrderSender

    def journal(self, kind: str, payload: dict[str, Any]) -> None: ...


def flatten(book: Book, inst: Instrument, account: str | None = None) -> Coroutine[Any, Any, list[Order]]:
    """Close what is held of ``inst`` (in one account, or every account) with reduce-only IOC orders.

    Checked now, in the caller's thread (an FX rate or an unknown account raises); the returned
    coroutine runs on the engine loop: it journals a ``Flatten`` row naming each signed position
    and the order that closes it, then sends the orders in one batch through the pre-trade checks,
    which let them pass the kill switch and the caps (journaled exemptions). Returns the orders,
    or ``[]`` when nothing is held (the ``Flatten`` row says so). Orders already working on the
    closing side count toward the position: cancel them first to close all of it at market.

    Examples
    --------
    >>> eng.flatten("SHFE.au")                 # doctest: +SKIP
    [Order(r1-000007 sell 3 SHFE.au @ 619.88 IOC: FILLED, ...)]
    """
    only = flatten_accounts(inst, account, book.capital)
    return _flatten(book, inst, only)


async def _flatten(book: Book, inst: Instrument, account: str | None) -> list[Order]:
    held = {p.account: p.qty for p in book.capital.holders(inst.id) if p.qty and account in (None, p.account)}
    market = book.market
    requests = closing_requests(
        inst,
        book.capital,
        book.activity,
        market.quotes.get(inst.id),
        account,
        limits=market.limits.get(inst.id),
    )
    what = "; ".join(describe(qty, inst.id, acct) for acct, qty in held.items())
    note = what or f"nothing held in {inst.id}" + (f" in {account}" if account else "")
    if held and not requests:
        note += ": orders already working on the closing side cover it"
    book.journal(
        "Flatten",
        {
            "instrument": inst.id,
            "account": account,
            "held": held,
            "orders": [f"{r.side.value} {r.qty} @ {r.price} in {r.account}" for r in requests],
            "note": note,
        },
    )
    if not requests:
        return []
    sent = book.orders.submit_batch(requests, TimeInForce.IOC, f"flatten: {what}")
    return [part for order in sent for part in order.parts]  # SHFE/INE: one order per offset


def marketable_price(
    inst: Instrument, side: Side, quote: Quote, limits: PriceLimitsPublished | None = None
) -> Decimal:
    """A limit ``THROUGH_TICKS`` through the touch of ``quote`` (sell under the bid, buy over the
    ask), kept inside the trading day's published price limits and above zero."""
    touch = quote.bid if side is Side.SELL else quote.ask
    price = inst.round_to_tick(touch) + side.sign * inst.tick * THROUGH_TICKS
    if limits is not None and limits.low is not None and limits.high is not None:
        price = min(max(price, limits.low), limits.high)
    return max(price, inst.tick)


def flatten_accounts(inst: Instrument, account: str | None, capital: Capital) -> str | None:
    """Check what to flatten before anything is sent: a tradeable contract, a known account (or
    venue name, mapped to its account); None means every account that holds it."""
    if not inst.tradeable:
        raise CannotFlatten(f"{inst.id} is a {inst.kind} rate, not a contract: nothing is held in it")
    return None if account is None else capital.account_name(account)


def closing_requests(
    inst: Instrument,
    capital: Capital,
    activity: OrderActivity,
    quote: Quote | None,
    account: str | None = None,
    keep: int = 0,
    ticket_id: str | None = None,
    limits: PriceLimitsPublished | None = None,
) -> list[OrderRequest]:
    """The IOC orders that take each account's position in ``inst`` down to ``keep`` lots.

    Orders already working on the closing side count toward it, so the requests stay reduce-only;
    each is at most the exchange's largest order. Raises :class:`CannotFlatten` when something is
    held but there is no quote to price the orders from.
    """
    requests: list[OrderRequest] = []
    for pos in capital.holders(inst.id):
        if account is not None and pos.account != account:
            continue
        side = Side.SELL if pos.qty > 0 else Side.BUY
        left = abs(pos.qty) - keep - activity.working_leaves(pos.account, inst.id, side)
        if left <= 0:
            continue
        if quote is None or not (quote.bid > 0 if side is Side.SELL else quote.ask > 0):
            raise CannotFlatten(
                f"no {'bid' if side is Side.SELL else 'ask'} for {inst.id} to price the order that closes "
                f"{describe(pos.qty, inst.id, pos.account)}; wait for a quote, or send a limit order "
                "with eng.submit(...): a reducing order passes the kill switch and the caps"
            )
        price = marketable_price(inst, side, quote, limits)
        while left > 0:
            qty = min(left, inst.max_order_qty)
            requests.append(OrderRequest(inst, side, qty, price, pos.account, ticket_id))
            left -= qty
    return requests


def describe(qty: int, instrument_id: str, account: str) -> str:
    """A signed position in words with the order that flattens it: "long 3 SHFE.au in CN-FUT (sell 3)"."""
    if not qty:
        return f"flat {instrument_id} in {account}"
    side = "sell" if qty > 0 else "buy"
    return f"{'long' if qty > 0 else 'short'} {abs(qty)} {instrument_id} in {account} ({side} {abs(qty)})"
