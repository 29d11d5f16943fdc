"""UI layer: the workbench blotter (positions, working orders with Cancel, fills, tickets), refreshed by the pump.

Each section is an ipywidgets HTML table (chosen by measurement, docs/benchmarks.md "Blotter table");
a section's value is sent only when its text changed, and a working order's row only when that
order changed, so a quote storm costs one message per changed row per pump tick at most.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import pandas as pd

from cmc_lab.ui.assets import asset
from cmc_lab.ui.pump import pump_for

if TYPE_CHECKING:
    from cmc_lab.core.order import Order
    from cmc_lab.engine.facade import Engine

FILLS_SHOWN = 20

POSITION_HEADERS = (
    ("account", "account"),
    ("instrument", "instrument"),
    ("held", "position"),
    ("avg_px", "avg px"),
    ("mark", "mark"),
    ("currency", "ccy"),
    ("unrealized", "unreal."),
    ("realized", "real."),
    ("unrealized_base", "unreal. CNY"),
    ("realized_base", "real. CNY"),
)
TICKET_HEADERS = (
    ("ticket", "ticket"),
    ("spread", "spread"),
    ("side", "side"),
    ("units", "units"),
    ("state", "state"),
    ("naked", "naked exposure"),
)
FILL_HEADERS = (
    ("order", "order"),
    ("instrument", "instrument"),
    ("side", "side"),
    ("qty", "qty"),
    ("px", "price"),
    ("trade", "trade id"),
)


def fills_frame(engine: Engine) -> pd.DataFrame:
    """The session's last ``FILLS_SHOWN`` fills, newest first, in ``FILL_HEADERS``' columns."""
    fills = [(f, o) for o in engine.working_orders(all_orders=True) for f in list(o.fills)]
    return pd.DataFrame(
        [
            {
                "order": o.client_order_id,
                "instrument": o.instrument_id,
                "side": o.side.value,
                "qty": f.last_qty,
                "px": f.last_px,
                "trade": f.trade_id,
            }
            for f, o in reversed(fills[-FILLS_SHOWN:])
        ]
    )


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return escape(f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))


def html_table(frame: pd.DataFrame, headers: tuple[tuple[str, str], ...], empty: str) -> str:
    """``frame``'s ``headers`` columns as a blotter table, or ``empty`` in grey when it has no rows."""
    if frame.empty:
        return f"<div class='cmc-blotter-empty'>{escape(empty)}</div>"
    head = "".join(f"<th>{escape(label)}</th>" for _, label in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(row.get(key))}</td>" for key, _ in headers) + "</tr>"
        for row in frame.to_dict("records")
    )
    return f"<table class='cmc-blotter-table'><tr>{head}</tr>{body}</table>"


def order_text(order: Order) -> str:
    """One working order as a blotter row: id, side, qty at price, filled, state."""
    return (
        f"<code>{escape(order.client_order_id)}</code> {escape(order.instrument_id)} "
        f"<b>{escape(order.side.value)} {order.qty:,} @ {order.price}</b> "
        f"filled {order.filled_qty:,} <i>{escape(order.state.value)}</i>"
    )


class OrderRow:
    """A working order's row: its text and a Cancel button that calls ``order.cancel()`` through the engine."""

    def __init__(self, engine: Engine, order: Order, status: w.HTML) -> None:
        self.engine = engine
        self.order = order
        self.status = status
        self.label = w.HTML(order_text(order))
        self.cancel = w.Button(
            description="Cancel",
            button_style="warning",
            icon="times",
            tooltip=f"cancel {order.client_order_id}",
        )
        self.cancel.add_class("cmc-blotter-cancel")
        self.cancel.on_click(self._cancel)
        self.widget = w.HBox([self.cancel, self.label])
        self.widget.add_class("cmc-blotter-order")

    def _cancel(self, _: Any) -> None:
        try:
            self.order.cancel()
        except (ValueError, RuntimeError) as exc:  # already done, or the venue refused
            self.status.value = f"<span style='color:#c62828'>{escape(str(exc))}</span>"
            return
        self.cancel.disabled = True
        self.status.value = f"cancel sent for {escape(self.order.client_order_id)}"

    def refresh(self) -> None:
        text = order_text(self.order)
        if text != self.label.value:
            self.label.value = text


class Blotter:
    """Positions, working orders (each with Cancel), recent fills and hedge tickets, live at the pump's rate."""

    def __init__(self, engine: Engine, *, start: bool = True) -> None:
        self.engine = engine
        self.positions = w.HTML()
        self.fills = w.HTML()
        self.tickets = w.HTML()
        self.status = w.HTML()
        self.no_orders = w.HTML("<div class='cmc-blotter-empty'>no working orders</div>")
        self.orders = w.VBox([self.no_orders])
        self.rows: dict[str, OrderRow] = {}
        sections = [
            ("Positions", self.positions),
            ("Working orders", w.VBox([self.orders, self.status])),
            (f"Fills (last {FILLS_SHOWN})", self.fills),
            ("Tickets", self.tickets),
        ]
        children: list[w.Widget] = [
            w.HTML(f"<style>{asset('blotter.css').read_text()}</style><b>Blotter</b>")
        ]
        for title, body in sections:
            children += [w.HTML(f"<div class='cmc-blotter-title'>{title}</div>"), body]
        self.widget = w.VBox(children)
        self.widget.add_class("cmc-blotter")
        self.refresh()
        if start:
            pump_for(engine).add(self.refresh)

    def refresh(self) -> None:
        """Bring every section up to date, sending only what changed."""
        self._set(self.positions, html_table(self.engine.positions(), POSITION_HEADERS, "flat: no positions"))
        self._set(self.tickets, html_table(self.engine.tickets(), TICKET_HEADERS, "no hedge tickets"))
        self._set(self.fills, html_table(fills_frame(self.engine), FILL_HEADERS, "no fills yet"))
        self._refresh_orders()

    @staticmethod
    def _set(widget: w.HTML, value: str) -> None:
        if value != widget.value:
            widget.value = value

    def _refresh_orders(self) -> None:
        working = {o.client_order_id: o for o in self.engine.working_orders()}
        if list(working) != list(self.rows):
            self.rows = {
                cid: self.rows.get(cid) or OrderRow(self.engine, order, self.status)
                for cid, order in working.items()
            }
            self.orders.children = [r.widget for r in self.rows.values()] or [self.no_orders]
        for row in self.rows.values():
            row.refresh()

    def _repr_mimebundle_(self, **kwargs: object) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)
