"""The engine's alerts: hedges legged or broken, thresholds crossed, a journal that cannot be written."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from cmc_lab.core.display import Frame
from cmc_lab.core.ports import JournalWriter

#: The columns every alert has (details and ids add their own).
ALERT_COLUMNS = ("id", "ts", "source", "level", "message", "acknowledged")


class AlertLog:
    """Alerts of one engine (the :class:`~cmc_lab.core.ports.AlertSink` port); engine loop only.

    ``records`` is the list the alerts panel reads (one dict per alert, oldest first).
    """

    def __init__(self, writer: JournalWriter, now_ns: Callable[[], int]) -> None:
        self.records: list[dict[str, Any]] = []
        self._writer = writer
        self._now_ns = now_ns

    def alert(
        self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
    ) -> None:
        """Record an alert: kept here and journaled (if the journal can be written)."""
        alert_id = self.next_id()
        self.records.append(
            {
                "id": alert_id,
                "ts": self._now_ns(),
                "source": source,
                "level": level,
                "message": message,
                "acknowledged": False,
                **(details or {}),
                **ids,
            }
        )
        payload = {"id": alert_id, "source": source, "level": level, "message": message, **(details or {})}
        self._writer.write_raw("Alert", payload, **ids)

    def next_id(self) -> int:
        return len(self.records) + 1

    def acknowledge(self, who: str) -> int:
        """Mark every open alert acknowledged (journaled with who); returns how many."""
        open_ids = [a["id"] for a in self.records if not a["acknowledged"]]
        for record in self.records:
            record["acknowledged"] = True
        if open_ids:
            self._writer.write_raw("AlertsAcknowledged", {"ids": open_ids, "who": who})
        return len(open_ids)

    def frame(self) -> pd.DataFrame:
        """One row per alert; with no alerts yet, an empty table that still has its columns."""
        frame = pd.DataFrame(list(self.records), columns=None if self.records else list(ALERT_COLUMNS))
        frame.insert(0, "time", pd.to_datetime(frame.pop("ts"), unit="ns", utc=True))
        return Frame(frame)  # in a notebook: clock times, the newest last; for code a plain DataFrame
