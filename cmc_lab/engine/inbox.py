"""The engine's inbox: what every venue hands the engine, routed to the parts that need it."""

from __future__ import annotations

from collections.abc import Callable

from cmc_lab.core.model import Event, PriceLimitsPublished, Quote, VenueConnected
from cmc_lab.core.order import fire_callbacks
from cmc_lab.engine.market import MarketState
from cmc_lab.engine.routing import OrderRouter
from cmc_lab.execution.desk import Desk
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.roll_reminders import RollReminders

QuoteCallback = Callable[[Quote], None]


class Inbox:
    """The venues' sink (engine loop): a quote updates the market, risk marks and live spreads;
    an event goes through the router (journaled, then applied); a venue back up is reconciled. The
    market's clock also drives the roll reminders (at most once a market minute).
    """

    def __init__(
        self, market: MarketState, router: OrderRouter, risk: RiskMonitor, desk: Desk, rolls: RollReminders
    ) -> None:
        self.quote_callbacks: list[QuoteCallback] = []
        self._market = market
        self._router = router
        self._risk = risk
        self._desk = desk
        self.rolls = rolls
        # The quote path's reads, bound once: the market's dict (never replaced) and the parts' hooks.
        self._quotes = market.quotes
        self._risk_on_quote = risk.on_quote
        self._desk_on_quote = desk.on_quote

    def receive(self, message: Event | Quote) -> None:
        if isinstance(message, Quote):
            self._quotes[message.instrument_id] = message
            self._risk_on_quote(message)
            self._desk_on_quote(message)
            if message.ts_event >= self.rolls.next_ns:
                self.rolls.on_quote(message.ts_event)
            if self.quote_callbacks:
                self._router.runner.report(fire_callbacks(self.quote_callbacks, message))
            return
        self._router.on_event(message)
        if isinstance(message, PriceLimitsPublished):  # journaled above; the checks use it from now on
            self._market.limits[message.instrument_id] = message
        self._desk.on_venue_event(message)
        if isinstance(message, VenueConnected) and message.venue in self._router.venues:
            self._router.reconcile_in_background(self._router.venues[message.venue])
