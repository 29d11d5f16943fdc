"""Threshold rules as data: a rule, a crossing of one of its levels, an action's record.

Pure values, journaled and listed by :class:`~cmc_lab.risk.thresholds.Thresholds`; and
:class:`MetricSource`, what the rules need of the risk monitor that computes their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from cmc_lab.risk.metrics import LEVELS, METRICS, Metric


@dataclass(frozen=True)
class Rule:
    """One threshold rule; see :meth:`Thresholds.add` for the meaning of each field."""

    rule_id: str
    metric: str
    scope: str
    warn: float | None
    act: float | None
    liquidation: float | None
    action: tuple[str, ...]
    on_liquidation: tuple[str, ...]
    hysteresis: float
    min_interval_ms: float
    window_s: float
    min_count: int
    min_buffer: Decimal
    target: float | None
    reduce_fraction: float
    source: str | None = None  # transfer: the one account money comes from (None: most headroom)

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    def levels(self) -> list[tuple[str, float]]:
        return [
            (name, v)
            for name, v in zip(LEVELS, (self.warn, self.act, self.liquidation), strict=True)
            if v is not None
        ]

    def actions_for(self, level: str) -> tuple[str, ...]:
        extra = {"warn": (), "act": self.action, "liquidation": self.on_liquidation}[level]
        return tuple(dict.fromkeys(("alert", *extra)))

    def describe(self) -> str:
        levels = ", ".join(f"{n} {_num(v, self.spec.unit)}" for n, v in self.levels())
        return f"{self.rule_id}: {levels}; act -> {'+'.join(self.action)}"


@dataclass(frozen=True, slots=True)
class Crossing:
    """A value moving past a level: ``kind`` is "crossed" (into danger) or "cleared" (back out)."""

    crossing_id: str
    rule_id: str
    metric: str
    key: str
    level: str
    kind: str
    value: float
    threshold: float
    ts_ns: int
    mono_ns: int
    perf_ns: int


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action a crossing caused: ``delay_ns`` market time and ``cpu_ns`` wall time since it."""

    crossing_id: str
    rule_id: str
    key: str
    level: str
    action: str
    ok: bool
    detail: str
    delay_ns: int
    cpu_ns: int
    ts_ns: int


class MetricSource(Protocol):
    """What the rules need of the risk monitor: metric values, scopes, actions, the journal."""

    def values(self, rule: Rule) -> Mapping[str, float | None]: ...

    def scope_names(self, keys: str) -> list[str]: ...

    def canonical_scope(self, keys: str, scope: str) -> str: ...

    def run_action(self, rule: Rule, crossing: Crossing, action: str) -> tuple[bool, str]: ...

    def on_released(self, rule: Rule, key: str) -> None: ...

    def journal(self, kind: str, payload: dict[str, Any]) -> None: ...


def _num(value: float, unit: str) -> str:
    return f"{value:.0%}" if unit == "ratio" else f"{value:g} {unit}"
