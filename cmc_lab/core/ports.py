"""Ports: the narrow views the engine hands its parts, so no part reaches into another.

The engine (``cmc_lab.engine``) builds each part with the ports it uses, as ib_async's ``IB``
builds its ``Wrapper`` and ``Client``: the desk gets a market view, an order sender, a journal
writer and the runner; the risk monitor gets the same plus a ticket book, because hedge tickets
live in the execution layer, above risk. Every port here is implemented by one engine part; :class:`Runner` (the loop) is in
:mod:`cmc_lab.core.runner`, where the live Order can use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Protocol

from cmc_lab.core.fees import FillFee
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Event, PriceLimitsPublished, Quote, TimeInForce
from cmc_lab.core.order import Order
from cmc_lab.core.runner import Runner
from cmc_lab.core.trading import OrderRequest, TradingState

CheckResult = tuple[str | None, tuple[str, ...]]
"""``(denial, passed)`` of the pre-trade checks: denial is None when every check passed."""


class MarketView(Protocol):
    """Quotes and venue sessions as the engine last heard them (read on the engine loop).

    ``quotes`` and ``venue_up`` are the live dicts, read directly on the quote path.
    """

    quotes: dict[str, Quote]
    venue_up: dict[str, bool]
    #: each instrument's price limits of the trading day, as its venue last published them
    limits: dict[str, PriceLimitsPublished]
    #: product id -> the id of its main month (``SHFE.au`` -> ``SHFE.au2702``)
    aliases: dict[str, str]

    @property
    def instruments(self) -> Mapping[str, Instrument]: ...

    def instrument(self, instrument_id: str) -> Instrument: ...

    def now_ns(self) -> int: ...

    def mono_ns(self) -> int: ...


class JournalWriter(Protocol):
    """Rows into the engine's journal; a failed write halts trading and returns False."""

    def write(self, events: list[Event], ticket_id: str | None = None, *, now: bool = False) -> bool: ...

    def write_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> bool: ...

    def batch(self) -> AbstractContextManager[None]: ...


class AlertSink(Protocol):
    """Alerts: journaled, listed by ``eng.alerts()``, shown by the alerts panel."""

    def alert(
        self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
    ) -> None: ...


class OrderSender(Protocol):
    """Order routing as execution and risk use it (engine loop).

    Every order goes through the pre-trade checks and has its intent committed to the journal
    before it leaves; an order that only reduces exposure passes every control.
    """

    id_prefix: str
    trading_state: TradingState

    def check(self, request: OrderRequest) -> CheckResult: ...

    def submit_batch(
        self,
        requests: list[OrderRequest],
        tif: TimeInForce,
        reason: str,
        checked: list[CheckResult] | None = None,
        algo: str | None = None,
    ) -> list[Order]: ...

    def submit_now(self, request: OrderRequest, tif: TimeInForce, reason: str) -> Order: ...

    async def cancel(self, order: Order, reason: str) -> bool: ...

    async def cancel_all(self, instrument_id: str | None, reason: str) -> int: ...

    async def reconcile_orders(self, orders: list[Order]) -> None: ...

    def set_trading_state(self, state: TradingState, reason: str, who: str) -> None: ...


class BookedFill(Protocol):
    """One fill as the book took it: what matters to a ticket's report is its fee and the P&L it
    realised against the account's lots."""

    @property
    def fee(self) -> FillFee: ...

    @property
    def realized(self) -> Decimal: ...


class FeeLedger(Protocol):
    """The fees the book charged, per order (risk keeps the book; a ticket's report reads it)."""

    def bookings_of(self, client_order_id: str) -> Sequence[BookedFill]: ...


class TicketBook(Protocol):
    """What risk may ask of the hedge desk (execution sits above risk, so risk sees only this)."""

    def spread_legs(self) -> dict[str, tuple[str, ...]]:
        """Each defined spread's leg instrument ids, by spread name."""
        ...

    def hedged_units(self) -> dict[str, int]:
        """Hedged units open per spread, signed: filled tickets less those that offset them."""
        ...

    def legged_exposure(self) -> float:
        """Exposure in the base currency of tickets whose legs are not balanced."""
        ...

    def unwind(self, spread: str, units: int, reason: str) -> str:
        """Start a ticket that closes ``units`` (signed: > 0 sells) of a spread; says what it sent."""
        ...


__all__ = [
    "AlertSink",
    "BookedFill",
    "CheckResult",
    "FeeLedger",
    "JournalWriter",
    "MarketView",
    "OrderSender",
    "Runner",
    "TicketBook",
]
