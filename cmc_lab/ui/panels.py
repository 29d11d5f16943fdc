"""The hedge-ticket and alerts panels (ipywidgets), refreshed by the UI pump."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from cmc_lab.execution.hedge import POLICIES, HedgeTicket
from cmc_lab.ui.bokehjs import load_bokehjs
from cmc_lab.ui.pump import pump_for
from cmc_lab.ui.receipt import receipt_timeline

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine


class HedgeTicketPanel:
    """Pick a spread, side, quantity, trigger and policy; arm or fire after a confirmation step.

    The ticket's state machine and leg fills update live; when it ends, its receipt timeline
    appears below.
    """

    def __init__(self, engine: Engine, spread: str | None = None) -> None:
        self.engine = engine
        load_bokehjs()  # its receipt chart is made later, in the pump thread
        names = list(engine.spreads) or ["(define a spread first)"]
        self.spread = w.Dropdown(options=names, value=spread or names[0], description="spread")
        self.side = w.ToggleButtons(options=["buy", "sell"], value="buy", description="side")
        self.qty = w.BoundedIntText(value=self._step(), min=1, max=10_000, description="qty (lots)")
        self.when = w.Text(value="", placeholder="e.g. ask <= 2.5 (empty: now)", description="trigger")
        self.policy = w.Dropdown(options=list(POLICIES), value="chase", description="policy")
        self.fire = w.Button(description="Fire...", button_style="primary", icon="paper-plane")
        self.confirm = w.Button(description="Confirm", button_style="danger")
        self.back = w.Button(description="Back")
        self.confirm_box = w.HBox([w.HTML(), self.confirm, self.back], layout=w.Layout(display="none"))
        self.status = w.HTML()
        self.receipt = w.VBox(layout=w.Layout(min_width="600px"))  # a column: the chart takes its width
        self.ticket: HedgeTicket | None = None
        self._shown_receipt: str | None = None
        self.spread.observe(lambda _: setattr(self.qty, "value", self._step()), names="value")
        self.when.observe(self._label, names="value")
        self.fire.on_click(self._ask)
        self.confirm.on_click(self._go)
        self.back.on_click(lambda _: self._hide_confirm())
        form = w.VBox([self.spread, self.side, self.qty, self.when, self.policy, self.fire, self.confirm_box])
        self.widget = w.VBox([w.HTML("<b>Hedge ticket</b>"), form, self.status, self.receipt])
        self.widget.add_class("cmc-ticket-panel")
        pump_for(engine).add(self._refresh)

    def _step(self) -> int:
        spread = self.engine.spreads.get(self.spread.value)
        return spread.lots[spread.leg_ids[0]] if spread else 1

    def _label(self, _: Any = None) -> None:
        self.fire.description = "Arm..." if self.when.value.strip() else "Fire..."

    def _ask(self, _: Any) -> None:
        verb = "Arm" if self.when.value.strip() else "Fire"
        trigger = f" when {escape(self.when.value.strip())}" if self.when.value.strip() else " now"
        self.confirm_box.children[0].value = (
            f"{verb} <b>{self.side.value} {self.qty.value} {escape(self.spread.value)}</b>{trigger}, "
            f"policy {self.policy.value}?"
        )
        self.confirm_box.layout.display = "flex"

    def _hide_confirm(self) -> None:
        self.confirm_box.layout.display = "none"

    def _go(self, _: Any) -> None:
        self._hide_confirm()
        try:
            self.ticket = self.engine.hedge(
                self.spread.value,
                self.side.value,
                int(self.qty.value),
                when=self.when.value.strip() or None,
                policy=self.policy.value,
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            self.status.value = f"<span style='color:#c62828'>{escape(str(exc))}</span>"
            return
        self._shown_receipt = None
        self.receipt.children = ()
        self._refresh()

    def _refresh(self) -> None:
        ticket = self.ticket
        if ticket is None:
            return
        html = ticket._repr_html_()
        if html != self.status.value:
            self.status.value = html
        if ticket.done and self._shown_receipt != ticket.ticket_id:
            self._shown_receipt = ticket.ticket_id
            self.receipt.children = (receipt_timeline(self.engine.receipt(ticket)),)


class AlertsPanel:
    """A live feed of alerts (threshold crossings, legged or broken tickets) with acknowledge."""

    def __init__(self, engine: Engine, rows: int = 12) -> None:
        self.engine = engine
        self.rows = rows
        self.table = w.HTML()
        self.ack = w.Button(description="Acknowledge all", icon="check")
        self.ack.on_click(lambda _: self._acknowledge())
        self.widget = w.VBox([w.HTML("<b>Alerts</b>"), self.table, self.ack])
        self.widget.add_class("cmc-alerts-panel")
        self._seen = -1
        pump_for(engine).add(self._refresh)

    def _acknowledge(self) -> None:
        self.engine.acknowledge_alerts(who="alerts panel")
        self._seen = -1
        self._refresh()

    def _refresh(self) -> None:
        alerts = list(self.engine.alert_log.records)
        signature = hash(tuple((a["id"], a["acknowledged"]) for a in alerts[-self.rows :]))
        if signature == self._seen:
            return
        self._seen = signature
        open_count = sum(not a["acknowledged"] for a in alerts)
        rows = "".join(
            f"<tr style='{'' if a['acknowledged'] else 'font-weight:bold'}'><td>{a['id']}</td>"
            f"<td>{escape(a['level'])}</td><td>{escape(a['source'])}</td><td>{escape(a['message'])}</td></tr>"
            for a in reversed(alerts[-self.rows :])
        )
        self.table.value = (
            f"<div>{open_count} open of {len(alerts)}</div><table><tr><th>#</th><th>level</th>"
            f"<th>source</th><th>message</th></tr>{rows}</table>"
        )
