"""cmc.workbench(eng): the kill switch always on top, then the spread, ticket, capital and alerts panels, then the blotter."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import ipywidgets as w

from cmc_lab.ui.blotter import Blotter
from cmc_lab.ui.capital_panel import CapitalPanel
from cmc_lab.ui.killswitch import KillSwitch
from cmc_lab.ui.panels import AlertsPanel, HedgeTicketPanel
from cmc_lab.ui.pump import pump_for
from cmc_lab.ui.spread_monitor import SpreadMonitor

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine


class Workbench:
    """The dashboard: holds its panels so notebooks and tests can reach each one."""

    def __init__(self, engine: Engine, spread: str | None = None) -> None:
        self.engine = engine
        if not engine.spreads:
            engine.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
        name = spread or next(iter(engine.spreads))
        self.kill = KillSwitch(engine)
        self.monitor = SpreadMonitor(engine, name)
        self.ticket = HedgeTicketPanel(engine, name)
        self.capital = CapitalPanel(engine)
        self.alerts = AlertsPanel(engine)
        self.blotter = Blotter(engine)
        panels = [self.ticket.widget, w.VBox([self.capital.widget, self.alerts.widget])]
        self.header = w.HTML(f"<b>{escape(repr(engine))}</b>")
        self.widget = w.VBox(
            [
                w.HBox([self.kill, self.header]),
                self.monitor.widget,
                w.HBox(panels, layout=w.Layout(grid_gap="2em")),
                self.blotter.widget,
            ]
        )
        self.widget.add_class("cmc-workbench")
        pump_for(engine).add(self._refresh_header)

    def _refresh_header(self) -> None:  # the repr carries the trading state: keep it true after a kill
        html = f"<b>{escape(repr(self.engine))}</b>"
        if html != self.header.value:
            self.header.value = html

    def _repr_mimebundle_(self, **kwargs: object) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)


def workbench(engine: Engine, spread: str | None = None) -> Workbench:
    """Lay out every panel in one dashboard; the kill switch stays visible at the top."""
    return Workbench(engine, spread)
