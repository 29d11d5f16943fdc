"""Spread monitor: live executable bid/ask band and mid, trigger lines, fills, z-score strip."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure
from jupyter_bokeh.widgets import BokehModel

from cmc_lab.execution.hedge import HedgeTicket, TicketState
from cmc_lab.execution.spread import SpreadSnapshot
from cmc_lab.pricing.spreads import spread_value
from cmc_lab.pricing.units import FxRates
from cmc_lab.ui.bokehjs import load_bokehjs
from cmc_lab.ui.pump import Pump, check_rate, pump_for

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine


class SpreadMonitor:
    """A bokeh chart of one spread that streams only new points, throttled by the UI pump.

    At most ``rate_hz`` patches a second go to the browser, each with every point received
    since the last one (at most ``window``, the points the chart keeps). ``pump`` refreshes it
    (default: the engine's, :func:`~cmc_lab.ui.pump.pump_for`). ``widget`` is the ipywidget to
    display. ``updates`` and ``points`` count what was sent.
    """

    def __init__(
        self,
        engine: Engine,
        spread: str,
        *,
        window: int = 3000,
        rate_hz: float = 10.0,
        pump: Pump | None = None,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(
                f"window must be a whole number of points >= 1 (the chart keeps them), got {window!r}"
            )
        self.rate_hz = check_rate(rate_hz)
        self.engine = engine
        self.spread = engine.spread(spread)
        load_bokehjs()
        self.window = window
        self.updates = 0
        self.points = 0
        self.pump = pump_for(engine) if pump is None else pump
        self._pending: deque[SpreadSnapshot] = deque(maxlen=window)
        self._seen_tickets: set[str] = set()
        self._levels: tuple[float, ...] = ()
        self.source = ColumnDataSource({"t": [], "bid": [], "ask": [], "mid": [], "z": []})
        self.fill_source = ColumnDataSource({"t": [], "price": [], "color": []})
        unit = self.spread.unit
        self.figure = figure(
            height=260,
            sizing_mode="stretch_width",
            x_axis_type="datetime",
            title=f"{self.spread.name} ({unit}): executable bid/ask and mid",
            tools="xpan,xwheel_zoom,reset",
        )
        self.figure.varea("t", "bid", "ask", source=self.source, fill_alpha=0.25, fill_color="#1f77b4")
        self.figure.line("t", "mid", source=self.source, line_width=1.5, color="#1f77b4", legend_label="mid")
        self.figure.scatter(
            "t",
            "price",
            source=self.fill_source,
            color="color",
            size=9,
            marker="triangle",
            legend_label="fills",
        )
        self.figure.legend.location = "top_left"
        self.zfigure = figure(
            height=110,
            sizing_mode="stretch_width",
            x_axis_type="datetime",
            x_range=self.figure.x_range,
            title="rolling z-score of mid",
            tools="",
        )
        self.zfigure.line("t", "z", source=self.source, color="#555555")
        self.zfigure.yaxis.ticker.desired_num_ticks = 3  # a 110 px strip: more ticks overlap
        self._spans: list[Span] = []
        self.widget = BokehModel(column(self.figure, self.zfigure, sizing_mode="stretch_width"))
        engine.desk.on_spread(self.spread.name, self._on_snapshot)
        self.pump.add(self._flush, self.rate_hz)

    # engine thread: only buffer
    def _on_snapshot(self, snap: SpreadSnapshot) -> None:
        self._pending.append(snap)

    # pump thread: coalesce and stream
    def _flush(self) -> None:
        batch: list[SpreadSnapshot] = []
        while self._pending:
            batch.append(self._pending.popleft())
        if batch:
            new = {
                "t": [s.ts_ns / 1e6 for s in batch],
                "bid": [s.bid for s in batch],
                "ask": [s.ask for s in batch],
                "mid": [s.mid for s in batch],
                "z": [s.z if s.z is not None else float("nan") for s in batch],
            }
            self.source.stream(new, rollover=self.window)
            self.updates += 1
            self.points += len(batch)
        self._sync_fills()
        self._sync_triggers()

    def _sync_fills(self) -> None:
        new: dict[str, list[Any]] = {"t": [], "price": [], "color": []}
        for ticket in list(self.engine.desk.tickets.values()):
            if ticket.spread is not self.spread or ticket.ticket_id in self._seen_tickets:
                continue
            if ticket.state is not TicketState.FILLED:
                continue
            self._seen_tickets.add(ticket.ticket_id)
            price = executed_spread(ticket)
            if price is None:
                continue
            new["t"].append(max(f.ts_init for f in ticket.fills) / 1e6)
            new["price"].append(price)
            new["color"].append("#2ca02c" if ticket.side.value == "buy" else "#d62728")
        if new["t"]:
            self.fill_source.stream(new, rollover=500)

    def _sync_triggers(self) -> None:
        levels = tuple(
            t.trigger.condition.level
            for t in list(self.engine.desk.tickets.values())
            if t.spread is self.spread
            and t.state is TicketState.ARMED
            and t.trigger is not None
            and t.trigger.condition.field in ("bid", "ask", "mid")
        )
        if levels == self._levels:
            return
        self._levels = levels
        for span in self._spans:
            span.visible = False
        for i, level in enumerate(levels):
            if i < len(self._spans):
                self._spans[i].location = level
                self._spans[i].visible = True
            else:
                span = Span(location=level, dimension="width", line_dash="dashed", line_color="#ff7f0e")
                self._spans.append(span)
                self.figure.add_layout(span)

    def close(self) -> None:
        self.engine.desk.on_spread(self.spread.name, self._on_snapshot, remove=True)
        self.pump.remove(self._flush)


def executed_spread(ticket: HedgeTicket) -> float | None:
    """The spread value at the legs' average fill prices (the same formula as the live quote)."""
    prices: dict[str, float] = {}
    for leg in ticket.legs:
        fills = leg.forward_fills()
        qty = sum(f.last_qty for f in fills)
        if not qty:
            return None
        prices[leg.id] = float(sum(f.last_px * f.last_qty for f in fills) / qty)
    fx = ticket.decision.fx if ticket.decision else None
    return float(spread_value(ticket.spread.defn, prices, FxRates(usdcnh=fx) if fx else None))
