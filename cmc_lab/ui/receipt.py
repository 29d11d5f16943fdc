"""Receipt timeline: the hops of a :class:`~cmc_lab.journal.receipts.Receipt` on a time axis, with the latency of each."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool, LabelSet, Range1d
from bokeh.plotting import figure
from jupyter_bokeh.widgets import BokehModel

from cmc_lab.core.display import duration
from cmc_lab.ui.bokehjs import load_bokehjs

if TYPE_CHECKING:
    from cmc_lab.journal.receipts import Receipt

HOP_COLOURS = {
    "Hedge": "#9467bd",
    "OrderInitialized": "#7f7f7f",
    "OrderSubmitted": "#1f77b4",
    "OrderAccepted": "#17becf",
    "OrderFilled": "#2ca02c",
    "OrderRejected": "#d62728",
    "OrderDenied": "#d62728",
    "OrderCanceled": "#ff7f0e",
}


def plot_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A timeline (``Receipt.frame`` or ``Journal.timeline``) with the columns the chart plots."""
    frame = frame.copy()
    frame["t_ms"] = frame["elapsed_ns"].astype("float64") / 1e6
    frame["hop_ms"] = frame["hop_ns"].astype("Float64").fillna(0).astype("float64") / 1e6
    frame["start_ms"] = frame["t_ms"] - frame["hop_ms"]
    order = frame["order_id"].fillna("ticket").astype(str)
    frame["lane"] = [f"{o} {k}" for o, k in zip(order, frame["kind"], strict=True)]
    frame["label"] = lane_labels(frame)
    frame["colour"] = [
        next((c for prefix, c in HOP_COLOURS.items() if kind.startswith(prefix)), "#bcbd22")
        for kind in frame["kind"]
    ]
    return frame


def lane_labels(frame: pd.DataFrame) -> list[str]:
    """One label per lane, on its last event: its hops in ms/µs (``+172.1 ms``, ``+10.0 µs, +2.1 ms``),
    so events close together on one row never print over each other."""
    hops: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for i, (lane, hop_ms) in enumerate(zip(frame["lane"], frame["hop_ms"], strict=True)):
        if hop_ms:
            hops.setdefault(lane, []).append("+" + duration(hop_ms * 1e6))
        last[lane] = i
    labels = [""] * len(frame)
    for lane, i in last.items():
        texts = hops.get(lane, [])
        if len(texts) > 2:
            labels[i] = f"{texts[-1]} (last of {len(texts)})"
        else:
            labels[i] = ", ".join(texts)
    return labels


def receipt_timeline(receipt: Receipt) -> BokehModel:
    """A bokeh timeline widget of every hop of a receipt (decision, checks, send, ack, fills, re-orders, unwind).

    Examples
    --------
    >>> receipt_timeline(eng.receipt(ticket))            # doctest: +SKIP
    """
    frame = plot_frame(receipt.frame)
    load_bokehjs()
    lanes = list(dict.fromkeys(frame["lane"]))[::-1]
    columns = ["t_ms", "start_ms", "hop_ms", "lane", "label", "colour", "kind"]
    source = ColumnDataSource({c: frame[c].tolist() for c in columns})  # a DataFrame: deprecated pandas call
    span = max(float(frame["t_ms"].max()), 1e-3)
    fig = figure(
        y_range=lanes,
        x_range=Range1d(-0.02 * span, span * 1.3),  # room on the right for the last labels
        height=max(160, 22 * len(lanes) + 60),
        sizing_mode="stretch_width",
        title=f"receipt {receipt.id}: ms since decision",
        tools="xpan,xwheel_zoom,reset",
    )
    fig.hbar(y="lane", left="start_ms", right="t_ms", height=0.35, source=source, color="colour", alpha=0.35)
    fig.scatter("t_ms", "lane", source=source, color="colour", size=10)
    fig.add_layout(
        LabelSet(
            x="t_ms", y="lane", text="label", source=source, x_offset=8, y_offset=-6, text_font_size="9pt"
        )
    )
    fig.add_tools(
        HoverTool(tooltips=[("event", "@kind"), ("at", "@t_ms{0.000} ms"), ("hop", "@hop_ms{0.000} ms")])
    )
    fig.xaxis.axis_label = "ms since the first event"
    return BokehModel(fig)
