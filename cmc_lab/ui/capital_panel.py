"""Capital panel: each account and the unified view, utilisation bars by threshold level, transfers."""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from cmc_lab.ui.pump import pump_for

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine
    from cmc_lab.risk.capital_view import CapitalView

DEFAULT_LEVELS = (0.7, 0.8, 0.95)
COLOURS = ("#2e7d32", "#f9a825", "#ef6c00", "#c62828")  # below warn, warn, act, liquidation


class CapitalPanel:
    """Accounts in their own currency and unified in the base currency, refreshed twice a second."""

    def __init__(self, engine: Engine, refresh_s: float = 0.5) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._last = 0.0
        accounts = list(engine.capital().accounts.index)
        self.table = w.HTML()
        self.source = w.Dropdown(options=accounts, description="from")
        self.dest = w.Dropdown(options=accounts, value=accounts[-1] if accounts else None, description="to")
        self.amount = w.FloatText(value=1_000_000, description="amount")
        self.currency = w.Dropdown(options=["CNY", "USD"], value="CNY", description="currency")
        self.send = w.Button(description="Transfer", icon="exchange")
        self.message = w.HTML()
        self.send.on_click(lambda _: self._transfer())
        form = w.VBox([w.HBox([self.source, self.dest]), w.HBox([self.amount, self.currency]), self.send])
        self.widget = w.VBox([w.HTML("<b>Capital</b>"), self.table, form, self.message])
        self.widget.add_class("cmc-capital-panel")
        self.render()
        pump_for(engine).add(self._refresh)

    def _transfer(self) -> None:
        try:
            t = self.engine.transfer(
                self.source.value, self.dest.value, self.amount.value, currency=self.currency.value
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            self.message.value = f"<span style='color:#c62828'>{escape(str(exc))}</span>"
            return
        self.message.value = escape(repr(t))
        self.render()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.refresh_s:
            self._last = now
            self.render()

    def levels(self) -> tuple[float, ...]:
        rules = self.engine.thresholds.rules()
        if rules.empty:
            return DEFAULT_LEVELS
        margin = rules[rules["metric"] == "margin_utilisation"]
        if margin.empty:
            return DEFAULT_LEVELS
        row = margin.iloc[0]
        values = [row[k] for k in ("warn", "act", "liquidation")]
        return tuple(float(v) if v is not None and v == v else float("inf") for v in values)

    def render(self) -> None:
        view = self.engine.capital()
        html = render_capital(view, self.levels())
        if html != self.table.value:
            self.table.value = html


def _bar(utilisation: float, levels: tuple[float, ...]) -> str:
    grade = sum(utilisation >= level for level in levels)
    width = max(0.0, min(utilisation, 1.0)) * 100
    return (
        f"<div style='width:140px;background:#eee;border-radius:3px' title='{utilisation:.1%}'>"
        f"<div class='cmc-util' data-grade='{grade}' style='width:{width:.1f}%;background:{COLOURS[grade]};"
        f"height:0.9em;border-radius:3px'></div></div>"
    )


def render_capital(view: CapitalView, levels: tuple[float, ...] = DEFAULT_LEVELS) -> str:
    """HTML of the capital view with utilisation bars coloured by threshold level."""
    rows = []
    for name, row in view.accounts.iterrows():
        util = float(row["utilisation"])
        rule = "risk degree" if row.get("margin_call_rule") == "risk_degree" else "vs maintenance"
        call = (
            f" <b style='color:#b00'>MARGIN CALL, short {_money(row['shortfall'])}</b>"
            if row.get("margin_call")
            else ""
        )
        rows.append(
            f"<tr><td>{escape(str(name))}</td><td>{escape(str(row['currency']))}</td>"
            f"<td>{_money(row['equity'])}</td><td>{_money(row['initial_margin'])}</td>"
            f"<td>{_money(row['available'])}</td><td title='{rule}'>{_bar(util, levels)} {util:.1%}{call}</td></tr>"
        )
    u = view.unified.iloc[0]
    util = float(u["utilisation"])
    rows.append(
        f"<tr style='font-weight:bold'><td>unified</td><td>{escape(view.base)}</td><td>{_money(u['equity'])}</td>"
        f"<td>{_money(u['initial_margin'])}</td><td>{_money(u['available'])}</td>"
        f"<td>{_bar(util, levels)} {util:.1%}</td></tr>"
    )
    transit = ""
    if not view.transfers.empty and "state" in view.transfers:
        moving = view.transfers[view.transfers["state"].isin(["REQUESTED", "IN_TRANSIT"])]
        if not moving.empty:
            transit = (
                "<div><b>in transit</b>: "
                + "; ".join(
                    escape(
                        f"{r.get('source', '')} -> {r.get('dest', '')} {r.get('amount', '')} {r.get('currency', '')}"
                    )
                    for r in moving.to_dict("records")
                )
                + "</div>"
            )
    return (
        f"<div class='cmc-capital'>{escape(view.fx_text())}<table><tr><th>account</th><th>ccy</th>"
        "<th>equity</th><th>margin</th><th>available</th><th>utilisation</th></tr>"
        + "".join(rows)
        + f"</table>{transit}</div>"
    )


def _money(value: Any) -> str:
    try:
        return f"{float(value):,.0f}"
    except (TypeError, ValueError):
        return escape(str(value))
