"""What a threshold rule can watch: each metric, the direction of danger, its keys and actions.

Pure data. The values themselves are computed by :class:`cmc_lab.risk.monitor.RiskMonitor`
(one ``_v_<metric>`` method per entry of :data:`METRICS`).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("alert", "block", "cancel", "transfer", "reduce", "halt")
LEVELS = ("warn", "act", "liquidation")


@dataclass(frozen=True, slots=True)
class Metric:
    """What a rule can watch: direction of danger, what its keys are, its unit and what drives it."""

    name: str
    worse: str  # "above": high values are dangerous; "below": low values are
    keys: str  # account, instrument, spread, venue or engine
    unit: str
    group: str  # which events re-evaluate it: capital, fills, orders (and every rule on the timer)
    description: str
    liquidation: bool = False
    actions: tuple[str, ...] = ("alert", "block", "cancel", "halt")


_MONEY_ACTIONS = ("alert", "block", "cancel", "transfer", "reduce", "halt")
_EXPOSURE_ACTIONS = ("alert", "block", "cancel", "reduce", "halt")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "margin_utilisation",
            "above",
            "account",
            "ratio",
            "capital",
            "initial margin / equity of an account (or 'unified', in the base currency)",
            liquidation=True,
            actions=_MONEY_ACTIONS,
        ),
        Metric(
            "available_funds",
            "below",
            "account",
            "money",
            "capital",
            "equity - initial margin - margin held by working orders (account currency; unified: base)",
            liquidation=True,
            actions=_MONEY_ACTIONS,
        ),
        Metric(
            "position", "above", "instrument", "lots", "fills", "net lots held", actions=_EXPOSURE_ACTIONS
        ),
        Metric(
            "spread_position",
            "above",
            "spread",
            "units",
            "fills",
            "hedged spread units open (filled hedge tickets not offset)",
            actions=_EXPOSURE_ACTIONS,
        ),
        Metric(
            "legged_exposure",
            "above",
            "engine",
            "CNY",
            "fills",
            "notional of naked hedge legs",
            actions=_EXPOSURE_ACTIONS,
        ),
        Metric(
            "slippage_ticks",
            "above",
            "instrument",
            "ticks",
            "fills",
            "worst fill against the touch when the order left, in the window",
        ),
        Metric(
            "ack_latency_ms", "above", "venue", "ms", "orders", "slowest order acknowledgement in the window"
        ),
        Metric("reject_rate", "above", "venue", "ratio", "orders", "rejects / orders sent in the window"),
        Metric(
            "quote_staleness", "above", "instrument", "s", "timer", "age of the last quote, open sessions"
        ),
        Metric(
            "fx_staleness",
            "above",
            "engine",
            "s",
            "timer",
            "age of the rate the base currency converts at (USDCNY, or USDCNH)",
        ),
        Metric("order_count", "above", "instrument", "orders", "orders", "orders sent this trading day"),
        Metric("cancel_count", "above", "instrument", "cancels", "orders", "cancels sent this trading day"),
    )
}
