"""FIX gateway layer: :class:`FixVenue`, a venue reached over a FIX 4.4 session, behind the Venue protocol.

Venues whose addresses name the same session (host, port, SenderCompID, TargetCompID) share
one :class:`~cmc_lab.venues.fix.initiator.FixGateway`: one TCP connection, one sequence, one
reconnect loop. Everything runs on the loop that awaited ``connect`` (the engine loop), so
events reach the sink there.

Events delivered to a venue's sink: quotes (from MarketData snapshot and incremental refresh),
``VenueConnected`` / ``VenueDisconnected``, and per order ``OrderAccepted``, ``OrderFilled``,
``OrderCanceled``, ``OrderRejected``, ``OrderExpired``, ``OrderCancelRejected``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

from cmc_lab.core.clock import Clock
from cmc_lab.core.ids import venue_of
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import CancelOrder, ReplaceOrder, SubmitOrder
from cmc_lab.core.specs import Specs
from cmc_lab.venues.base import EventSink, OrderStatusReport, PositionReport, VenueNotConnected
from cmc_lab.venues.fix.config import FixConfig
from cmc_lab.venues.fix.initiator import FixGateway, ReplaceResult
from cmc_lab.venues.fix.session import FixSession
from cmc_lab.venues.fix.store import SeqStore, store_path


class FixVenue:
    """A venue reached over FIX 4.4, as the engine's :class:`~cmc_lab.venues.base.Venue`.

    Orders go out as NewOrderSingle (ClOrdID = our client order id, Account, Currency,
    TimeInForce 0 Day / 3 IOC), cancels as OrderCancelRequest, status queries as
    OrderStatusRequest. While the session is down ``connected`` is False, submits raise
    :class:`~cmc_lab.venues.base.VenueNotConnected`, and the gateway reconnects with back-off;
    ``VenueConnected`` after the new Logon lets the engine reconcile.

    Examples
    --------
    >>> venues = fix_venues({"COMEX": "fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR"},
    ...                     load_specs(), RealClock(), journal="run.sqlite")     # doctest: +SKIP
    >>> await venues["COMEX"].connect(events.append)                             # doctest: +SKIP
    """

    kind = "fix"

    def __init__(self, name: str, gateway: FixGateway) -> None:
        self.name = name
        self.gateway = gateway

    def __repr__(self) -> str:
        state = "connected" if self.connected else "down"
        return f"FixVenue({self.name}, {self.gateway.config}, {state})"

    @property
    def connected(self) -> bool:
        return self.gateway.session.logged_on and self.name in self.gateway.sinks

    @property
    def instruments(self) -> list[Instrument]:
        return [i for i in self.gateway.specs.instruments.values() if i.venue == self.name]

    @property
    def session(self) -> FixSession:
        return self.gateway.session

    async def connect(self, sink: EventSink) -> None:
        """Log on (or join the session another venue opened); raises if the acceptor cannot be reached or refuses."""
        try:
            await self.gateway.attach(self.name, sink)
        except VenueNotConnected as exc:
            raise type(exc)(f"venue {self.name!r}: {exc}") from None

    async def disconnect(self) -> None:
        """Leave the session (Logout when the last venue leaves); orders stay at the venue."""
        await self.gateway.detach(self.name)

    def submit(self, command: SubmitOrder) -> None:
        """Send a NewOrderSingle; raises VenueNotConnected while the session is down."""
        self.gateway.submit(self.name, command)

    def cancel(self, command: CancelOrder) -> None:
        """Send an OrderCancelRequest; OrderCanceled or OrderCancelRejected comes back."""
        self.gateway.cancel(self.name, command)

    def amend(self, command: ReplaceOrder) -> None:
        """Send an OrderCancelReplaceRequest; OrderReplaced or OrderReplaceRejected comes back (35=9 434=2)."""
        self.gateway.amend(self.name, command)

    def adopt(self, command: SubmitOrder, *, amendments: int = 0) -> None:
        """Take over an order an earlier process sent (restart recovery); nothing is sent.

        ``amendments``: cancels already requested for it, so new cancel ClOrdIDs do not repeat theirs.
        """
        self.gateway.adopt(self.name, command, amendments)

    async def replace(
        self, client_order_id: str, *, qty: int | None = None, price: Decimal | float | str | None = None
    ) -> ReplaceResult:
        """Change a resting order's total quantity and/or price (OrderCancelReplaceRequest).

        The order keeps our ``client_order_id``: its later fills and cancel arrive under it.
        Raises :class:`~cmc_lab.venues.fix.initiator.ReplaceRejected` when the venue refuses.
        """
        px = None if price is None else Decimal(str(price))
        return await self.gateway.replace(self.name, client_order_id, qty, px)

    async def order_status(self, client_order_ids: Iterable[str]) -> list[OrderStatusReport]:
        """One OrderStatusRequest per order; orders the venue does not know are left out."""
        return await self.gateway.order_status(self.name, client_order_ids)

    async def positions(self) -> list[PositionReport]:
        """The venue's positions in this venue's account, asked with RequestForPositions (35=AN).

        With ``account=`` in the address, the venue's account of that name is reported as the
        desk's account of this venue (the name the engine books it under). Raises
        :class:`~cmc_lab.venues.base.VenueCannotReport` when the venue refuses the request.
        """
        self.gateway.require_up(self.name)
        held = await self.gateway.queries.positions([self._accounts[0]])
        return [
            dataclasses.replace(p, account=self._desk_account(p.account))
            for p in held
            if venue_of(p.instrument_id) == self.name
        ]

    async def working_orders(self) -> list[OrderStatusReport]:
        """Every order of the session still working on this venue, asked with OrderMassStatusRequest (35=AF).

        Raises :class:`~cmc_lab.venues.base.VenueCannotReport` when the venue refuses the request.
        """
        self.gateway.require_up(self.name)
        working = await self.gateway.queries.working_orders()
        return [
            dataclasses.replace(r, account=self._desk_account(r.account or ""))
            for r in working
            if venue_of(r.instrument_id) == self.name
        ]

    @property
    def _accounts(self) -> tuple[str, str]:
        """(the account at the venue, the desk's account of this venue)."""
        spec = self.gateway.specs.venues.get(self.name)
        desk = spec.account if spec is not None else ""
        return self.gateway.config.account or desk, desk

    def _desk_account(self, account: str) -> str:
        at_venue, desk = self._accounts
        return desk if account == at_venue and desk else account


def fix_venues(
    addresses: Mapping[str, str], specs: Specs, clock: Clock, journal: str | Path | None = None
) -> dict[str, FixVenue]:
    """A :class:`FixVenue` per venue name; names with the same session share one gateway.

    Sequence numbers live beside ``journal`` (``<journal>.fix-<sender>-<target>.json``), or in
    memory without a journal file.
    """
    gateways: dict[tuple[str, int, str, str], FixGateway] = {}
    venues: dict[str, FixVenue] = {}
    for name, address in addresses.items():
        config = FixConfig.parse(address)
        gateway = gateways.get(config.key)
        if gateway is None:
            path = None
            if journal is not None and str(journal) != ":memory:":
                path = store_path(journal, config.sender, config.target)
            gateway = gateways[config.key] = FixGateway(config, SeqStore(path), clock, specs)
        elif gateway.config != config:
            raise ValueError(
                f"venue {name}: {address!r} names the session of another venue with other settings"
            )
        venues[name] = FixVenue(name, gateway)
    return venues


__all__ = ["FixVenue", "fix_venues"]
