"""The desk's context: the ports a desk's spreads and hedge tickets share, built once by the desk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cmc_lab.core.ports import AlertSink, BookedFill, JournalWriter, MarketView, OrderSender
from cmc_lab.core.runner import Runner
from cmc_lab.core.specs import Specs


@dataclass(frozen=True, slots=True)
class DeskContext:
    """What a ticket may use: market view, order sender, journal writer, runner, alerts, specs.

    ``left_armed(ticket)`` and ``fired(ticket)`` tell the desk a ticket stopped waiting for its
    trigger, or fired one of a repeating series (the desk arms the next). ``bookings_of(order id)``
    are that order's fills as the book took them, with their fees (none before the book is wired).
    """

    specs: Specs
    market: MarketView
    orders: OrderSender
    journal: JournalWriter
    runner: Runner
    alerts: AlertSink
    left_armed: Callable[[Any], None]
    fired: Callable[[Any], None]
    bookings_of: Callable[[str], Sequence[BookedFill]]
