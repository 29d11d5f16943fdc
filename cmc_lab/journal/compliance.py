"""Journal compliance layer: each account's messages (orders and cancels) per exchange trading day, its
busiest second, and the programmatic-trading thresholds they are flagged against (``core/compliance.toml``)."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmc_lab.core.instruments import Instrument

THRESHOLDS_FILE = Path(__file__).resolve().parent.parent / "core" / "compliance.toml"
FIELDS = (
    "day",
    "account",
    "messages",
    "busiest_second",
    "high_frequency",
    "threshold_per_day",
    "threshold_per_second",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Messages per second and per trading day at which an account counts as high-frequency."""

    per_second: int
    per_day: int
    source: str


def load_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    with path.open("rb") as handle:
        table = tomllib.load(handle)["programmatic_trading"]
    return Thresholds(int(table["messages_per_second"]), int(table["messages_per_day"]), str(table["source"]))


class MessageCounter:
    """Counts each account's orders and cancels per exchange trading day and per second, as rows arrive."""

    def __init__(self, instruments: Mapping[str, Instrument], thresholds: Thresholds) -> None:
        self.instruments = instruments
        self.thresholds = thresholds
        self.per_day: Counter[tuple[str, str]] = Counter()
        self.per_second: Counter[tuple[str, str, int]] = Counter()

    def count(self, account: str | None, instrument: str | None, ts_event: int) -> None:
        """One message (an order that left, or a cancel request) of ``account`` at ``ts_event``."""
        inst = self.instruments.get(instrument or "")
        day = (
            inst.hours.trading_day(ts_event).isoformat()
            if inst is not None
            else datetime.fromtimestamp(ts_event // 1_000_000_000, tz=UTC).date().isoformat()
        )
        who = account or "unknown"
        self.per_day[(day, who)] += 1
        self.per_second[(day, who, ts_event // 1_000_000_000)] += 1

    def rows(self) -> Iterator[list[Any]]:
        """One row per (trading day, account), in FIELDS order, flagged at or over a threshold."""
        busiest: Counter[tuple[str, str]] = Counter()
        for (day, who, _), n in self.per_second.items():
            busiest[(day, who)] = max(busiest[(day, who)], n)
        t = self.thresholds
        for (day, who), n in sorted(self.per_day.items()):
            peak = busiest[(day, who)]
            flag = "yes" if n >= t.per_day or peak >= t.per_second else "no"
            yield [day, who, n, peak, flag, t.per_day, t.per_second]


__all__ = ["FIELDS", "MessageCounter", "Thresholds", "load_thresholds"]
