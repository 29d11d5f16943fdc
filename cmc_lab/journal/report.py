"""Journal report layer: readable HTML pieces (tables, states) and an audit pack's summary (no IO)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any

import pandas as pd

STYLE = (
    "<style>.cmc-report table{border-collapse:collapse;margin:4px 0 12px}"
    ".cmc-report th,.cmc-report td{border:1px solid #ddd;padding:2px 6px;text-align:left;font-size:12px}"
    ".cmc-report th{background:#f4f4f4}.cmc-ok{color:#1a7f37}.cmc-bad{color:#cf222e}</style>"
)
_OK_STATES = frozenset({"FILLED", "UNWOUND"})
_BAD_STATES = frozenset({"REJECTED", "DENIED", "BROKEN", "EXPIRED"})


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, limit: int | None = None) -> str:
    """An escaped HTML table of ``frame`` (these ``columns`` if given; the first ``limit`` rows)."""
    if frame.empty:
        return "<p><i>none</i></p>"
    shown = frame[[c for c in columns if c in frame]] if columns is not None else frame
    more = ""
    if limit is not None and len(shown) > limit:
        more = f"<p><i>{len(shown) - limit} more row(s) in the CSV files</i></p>"
        shown = shown.head(limit)
    return str(shown.to_html(index=False, escape=True, na_rep="", border=0)) + more


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column HTML table of (label, value); values are escaped."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(as_text(v))}</td></tr>" for k, v in items)
    return f"<table>{body}</table>"


def state_html(state: str) -> str:
    """An order's or ticket's state in bold, green when it ended well, red when it did not."""
    css = "cmc-ok" if state in _OK_STATES else "cmc-bad" if state in _BAD_STATES else ""
    return f'<b class="{css}">{escape(state)}</b>'


def as_text(value: Any) -> str:
    """A cell's text: empty for None and pandas' NA."""
    return "" if value is None or value is pd.NA else str(value)


def summary_html(summary: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]) -> str:
    """The audit pack's readable summary: window, chain and its verification, outcomes, tickets and
    slippage, alerts, kill-switch uses, order-to-trade and cancel ratios, abnormal-trading counts per
    contract, and the files of the pack."""
    verify = summary["verify"]
    status = (
        '<b class="cmc-ok">intact</b>'
        if verify["ok"]
        else f'<b class="cmc-bad">BROKEN</b> {escape(verify["text"])}'
    )
    window = summary["window"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>cmc_lab audit pack {escape(summary['created_utc'])}</title>{STYLE}</head>",
        '<body class="cmc-report">',
        f"<h2>Audit pack: {escape(summary['journal'])}</h2>",
        pairs(
            [
                ("window (ts_event)", f"{window['since_utc'] or 'start'} to {window['until_utc'] or 'end'}"),
                (
                    "journal rows in window",
                    f"{window['rows']} (seq {window['first_seq']} to {window['last_seq']})",
                ),
                ("order events", summary["order_events"]),
                ("orders", summary["orders"]),
                ("hedge tickets", summary["tickets"]),
                ("created (UTC)", summary["created_utc"]),
            ]
        ),
        f'<p><b class="cmc-bad">EMPTY</b>: {escape(window["empty"])}</p>' if window.get("empty") else "",
        "<h3>Hash chain</h3>",
        f"<p>Journal {status}: {verify['rows']} rows verified. Head at export: row "
        f"{summary['head']['seq']}, <code>{escape(summary['head']['hash'])}</code>.</p>",
        f"<p>Window rows link from <code>{escape(window['first_prev_hash'])}</code> to "
        f"<code>{escape(window['last_hash'])}</code>.</p>",
        "<h3>Order outcomes</h3>",
        table(frames["outcomes"]),
        "<h3>Slippage per instrument</h3><p>Against the decision price (positive = worse), in the "
        "instrument's currency.</p>",
        table(frames["slippage"]),
        "<h3>Hedge tickets</h3><p>Each leg's fill and slippage against the decision price (positive = "
        "worse); every column, and the latencies in ms, in tickets.csv.</p>",
        table(frames["tickets"], limit=500),
        "<h3>Alerts</h3>",
        table(frames["alerts"], ["seq", "time_utc", "kind", "level", "source", "message"], limit=500),
        "<h3>Kill switch</h3>",
        table(frames["kill_switch"]),
        "<h3>Order-to-trade and cancel ratios per contract per exchange trading day</h3>",
        table(frames["ratios"]),
        "<h3>Abnormal-trading counts per account, contract and exchange trading day</h3><p>Flagged at "
        "or over the exchanges' thresholds (core/compliance.toml; IOC cancels do not count).</p>",
        table(frames["contracts"], limit=500),
        "<h3>Journal rows in the window by kind</h3>",
        table(frames["kinds"]),
        "<h3>Files</h3>",
        pairs((name, text) for name, text in summary["files"].items()),
        "</body></html>",
    ]
    return "\n".join(parts)


def slippage_table(orders: pd.DataFrame) -> pd.DataFrame:
    """Per instrument: filled orders and lots, lot-weighted slippage in ticks, total money (exact)."""
    if orders.empty or "slippage" not in orders:
        return pd.DataFrame()
    rows = []
    for (inst, currency), group in orders[orders["slippage"].notna()].groupby(["instrument", "currency"]):
        lots = int(group["filled"].sum())
        money = sum((Decimal(v) for v in group["slippage"]), Decimal(0))
        ticks = float((group["slippage_ticks"] * group["filled"]).sum() / lots) if lots else None
        rows.append(
            {"instrument": inst, "orders": len(group), "lots": lots, "avg_ticks": ticks, "total": str(money)}
            | {"currency": currency}
        )
    return pd.DataFrame(rows)


def verification_text(chain: Mapping[str, Any]) -> str:
    """The pack's verification.txt: the journal's verification, its head, the window's links."""
    window, head = chain["window"], chain["head"]
    lines = [
        chain["verify"]["text"],
        f"journal: {chain['journal']}",
        f"head at export: row {head['seq']} {head['hash']}",
        f"window: rows {window['first_seq']} to {window['last_seq']} ({window['rows']} rows), "
        f"first row links to {window['first_prev_hash'] or '-'}, last row hash {window['last_hash'] or '-'}",
    ]
    if chain["starts_after"]["seq"]:
        lines.append(
            f"older rows (1 to {chain['starts_after']['seq']}) were rotated into archives: "
            + ", ".join(str(r.get("archive")) for r in chain["rotations"])
        )
    lines += [
        "",
        "to check later:",
        f"  cmc-lab journal verify {chain['journal']} --expect-head {head['seq']}:{head['hash']}",
        "  cmc-lab audit verify THIS_PACK.zip",
    ]
    return "\n".join(lines) + "\n"
