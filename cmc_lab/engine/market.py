"""The engine's market state: instruments, the last quote of each, which venue sessions are up."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from cmc_lab.core.clock import Clock
from cmc_lab.core.ids import unknown_instrument_message, venue_of
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.listing import listed_month
from cmc_lab.core.model import PriceLimitsPublished, Quote
from cmc_lab.core.specs import Specs
from cmc_lab.engine.errors import InvalidOrder, NoQuote


class MarketState:
    """Quotes and sessions as last heard (the :class:`~cmc_lab.core.ports.MarketView` port).

    Written only on the engine loop; ``quotes`` and ``venue_up`` are plain dicts read directly on
    the quote path, where a method call per read would cost more than the work.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        venues: list[str],
        clock: Clock,
        specs: Specs | None = None,
    ) -> None:
        self.instruments: dict[str, Instrument] = dict(instruments)
        self.aliases: dict[str, str] = dict(specs.aliases) if specs else {}  # product id -> main month's id
        self._specs = specs  # works out a month the venues do not quote but the exchange lists today
        self.quotes: dict[str, Quote] = {}
        self.venue_up: dict[str, bool] = dict.fromkeys(venues, False)
        self.limits: dict[str, PriceLimitsPublished] = {}
        self.now_ns = clock.now_ns
        self.mono_ns = clock.mono_ns

    def instrument(self, instrument_id: str) -> Instrument:
        """The instrument of an id; a product with months (``SHFE.au``) is its main month."""
        if not isinstance(instrument_id, str):
            raise InvalidOrder(unknown_instrument_message(instrument_id, [*self.instruments, *self.aliases]))
        found = self.instruments.get(self.aliases.get(instrument_id, instrument_id))
        if found is None and self._specs is not None and instrument_id.partition(".")[0] in self.venue_up:
            try:
                found = listed_month(self._specs, instrument_id, self.now_ns())
            except KeyError as exc:
                raise InvalidOrder(str(exc.args[0])) from None
            self.instruments[found.id] = found  # known from now on: orders and positions name it
        if found is None:
            raise InvalidOrder(unknown_instrument_message(instrument_id, [*self.instruments, *self.aliases]))
        return found

    def quote(self, instrument_id: str) -> Quote:
        instrument_id = self.instrument(instrument_id).id
        try:
            return self.quotes[instrument_id]
        except KeyError:
            raise NoQuote(
                f"no quote for {instrument_id} yet; its venue may be disconnected or its feed stale"
            ) from None

    def venue_quotes(self, venue: str) -> list[Quote]:
        return [q for iid, q in list(self.quotes.items()) if venue_of(iid) == venue]

    def drop_quotes(self, venue: str) -> None:
        """A venue that went down has no live quotes: forget them, so nothing prices off stale ones."""
        for iid in [k for k in self.quotes if venue_of(k) == venue]:
            del self.quotes[iid]

    def instruments_frame(self, margin_text: Callable[[Instrument], str]) -> pd.DataFrame:
        """The tradeable universe: venue, symbol, currency, lot, quote unit, tick, margin, sessions."""
        now = self.now_ns()
        rows = [
            {
                "id": i.id,
                "venue": i.venue,
                "symbol": i.symbol,
                "name": i.name,
                "product": i.product_id,
                "last trading day": i.last_trading_day.isoformat() if i.last_trading_day else None,
                "currency": i.currency,
                "lot": f"{i.lot_size} {i.lot_unit}",
                "quote unit": i.quote_unit,
                "tick": i.tick,
                "daily limit": i.daily_limit,
                "price band": i.price_band,
                **self._limits_today(i),
                "margin": margin_text(i),
                "sessions": i.hours.describe(),
                "trading day": i.hours.trading_day(now).isoformat(),
                "open now": i.hours.is_open(now),
            }
            for i in self.instruments.values()
        ]
        return pd.DataFrame(rows).set_index("id")

    def _limits_today(self, inst: Instrument) -> dict[str, object]:
        """The trading day's limits as the venue published them (blank when it published none)."""
        day = self.limits.get(inst.id)
        if day is None:
            return {"settlement": None, "limit low": None, "limit high": None}
        return {"settlement": day.settlement, "limit low": day.low, "limit high": day.high}

    def quotes_frame(self) -> pd.DataFrame:
        """Every instrument's last quote and its age in milliseconds."""
        now = self.now_ns()
        rows = [
            {
                "id": q.instrument_id,
                "bid_size": q.bid_size,
                "bid": q.bid,
                "ask": q.ask,
                "ask_size": q.ask_size,
                "age_ms": (now - q.ts_event) / 1e6,
            }
            for q in list(self.quotes.values())
        ]
        return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()
