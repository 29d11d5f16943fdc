"""The engine as a notebook shows it: venues, sessions and how old each venue's last quote is."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from cmc_lab.engine.market import MarketState
from cmc_lab.venues.base import Venue


def engine_html(title: str, venues: Mapping[str, Venue], market: MarketState, working: int) -> str:
    now = market.now_ns()
    rows = []
    for name, venue in venues.items():
        ages = [(now - q.ts_event) / 1e6 for q in market.venue_quotes(name)]
        age = f"{min(ages):.0f} ms" if ages else "no quote"
        up = "connected" if market.venue_up.get(name) else "down"
        rows.append(f"<tr><td>{name}</td><td>{venue.kind}</td><td>{up}</td><td>{age}</td></tr>")
    return (
        f"<div class='cmc-engine'><b>{escape(title)}</b> — {working} working orders"
        "<table><tr><th>venue</th><th>kind</th><th>session</th><th>last quote</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


__all__ = ["engine_html"]
