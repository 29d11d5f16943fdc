"""The Venue protocol every connection implements (sim, fix, replay) and its shared errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import CancelOrder, Event, OrderState, Quote, ReplaceOrder, Side, SubmitOrder

#: Where a venue delivers what it hears: quotes and order/venue events. Called on the
#: engine's loop thread, in the order the venue received them.
EventSink = Callable[[Event | Quote], None]


class VenueNotConnected(RuntimeError):
    """An order or request for a venue whose session is down."""


class VenueCannotReport(RuntimeError):
    """A venue that cannot answer a query (positions, working orders) yet: never read as "flat"."""


@dataclass(frozen=True, slots=True)
class OrderStatusReport:
    """What the venue says of one order, for reconciliation after a reconnect or restart."""

    client_order_id: str
    venue_order_id: str | None
    instrument_id: str
    state: OrderState  # ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, or None if unknown
    filled_qty: int
    avg_px: Decimal | None
    leaves_qty: int
    side: Side | None = None  # when the venue says (listing working orders)
    account: str | None = None


@dataclass(frozen=True, slots=True)
class PositionReport:
    """What the venue holds for one account in one instrument, as of ``ts_event`` (venue time).

    ``long_qty`` and ``short_qty`` are lots >= 0: a venue that keeps long and short books apart
    (SHFE, INE) reports both; a netting venue reports one of them. ``net_qty`` is signed.
    """

    account: str
    instrument_id: str
    long_qty: int
    short_qty: int
    ts_event: int

    @property
    def net_qty(self) -> int:
        return self.long_qty - self.short_qty


@runtime_checkable
class Venue(Protocol):
    """One trading venue as the engine sees it.

    ``submit`` and ``cancel`` hand a command over and return at once; the venue's answers
    (OrderAccepted, OrderFilled, OrderRejected, ...) and its quotes come back through the
    sink given to :meth:`connect`, on the engine loop. ``order_status``, ``positions`` and
    ``working_orders`` ask the venue for its own view, for reconciliation.
    """

    name: str
    kind: str  # "sim", "fix" or "replay"

    @property
    def connected(self) -> bool: ...

    @property
    def instruments(self) -> list[Instrument]: ...

    async def connect(self, sink: EventSink) -> None: ...

    async def disconnect(self) -> None: ...

    def submit(self, command: SubmitOrder) -> None: ...

    def cancel(self, command: CancelOrder) -> None: ...

    async def order_status(self, client_order_ids: Iterable[str]) -> list[OrderStatusReport]: ...

    async def positions(self) -> list[PositionReport]:
        """The venue's own view of every non-flat position of our accounts (raises
        :class:`VenueCannotReport` when the venue cannot say)."""
        ...

    async def working_orders(self) -> list[OrderStatusReport]:
        """Every order of our accounts still working at the venue, known to us or not (raises
        :class:`VenueCannotReport` when the venue cannot say)."""
        ...


@runtime_checkable
class Amends(Protocol):
    """A venue that can replace a working order (FIX OrderCancelReplaceRequest; the embedded exchange).

    ``amend`` hands the command over and returns at once; ``OrderReplaced`` or
    ``OrderReplaceRejected`` comes back through the sink, in order with the order's fills.
    """

    def amend(self, command: ReplaceOrder) -> None: ...
