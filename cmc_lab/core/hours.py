"""Trading hours: an instrument's sessions in exchange local time, and whether it is open at an instant.

Pure, no IO. A :class:`TradingHours` is a time zone and its windows (:class:`SessionWindow`); a
window whose close is not after its open is a night session that closes the next calendar day.
Instants are ``int`` nanoseconds since the epoch; answers hold across daylight-saving changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _local_time(ts_ns: int, zone: ZoneInfo) -> datetime:
    # Exact to the microsecond (truncated): ts_ns / 1e9 as a float rounds to the nearest
    # microsecond, which puts a stamp just before a session's close at the close itself.
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    utc = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=ns // 1000)
    return utc.astimezone(zone)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _utc_offset(ts_ns: int, zone: ZoneInfo) -> timedelta | None:
    return _local_time(ts_ns, zone).utcoffset()


def _day_ranges(days: tuple[int, ...]) -> str:
    present = set(days)
    if len(present) == 7:
        return "daily"
    starts = sorted(d for d in present if (d - 1) % 7 not in present)
    parts = []
    for start in starts:
        end = start
        while (end + 1) % 7 in present:
            end = (end + 1) % 7
        parts.append(_DAY_NAMES[start] if end == start else f"{_DAY_NAMES[start]}-{_DAY_NAMES[end]}")
    return ",".join(parts)


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One trading window in exchange local time, opening on the listed weekdays.

    A window whose close is not after its open runs past midnight (a night session): it
    opens on one of ``days`` and closes on the next calendar day.
    """

    name: str
    open: time
    close: time
    days: tuple[int, ...]  # 0 = Monday

    @property
    def overnight(self) -> bool:
        return self.close <= self.open

    def contains(self, local: datetime) -> bool:
        t = local.time()
        if not self.overnight:
            return local.weekday() in self.days and self.open <= t < self.close
        if t >= self.open:
            return local.weekday() in self.days
        if t < self.close:
            return (local - timedelta(days=1)).weekday() in self.days
        return False


@dataclass(frozen=True, slots=True)
class TradingHours:
    """The sessions of one instrument and the time zone they are written in."""

    timezone: str
    windows: tuple[SessionWindow, ...]
    # is_open's last answer and the span it holds for, up to the next window boundary (every
    # quote of a spread asks): [(from_ns, until_ns, open)]; mutable inside the frozen object.
    _open: list[tuple[int, int, bool]] = dataclasses.field(
        default_factory=lambda: [(0, 0, False)], init=False, repr=False, compare=False
    )

    def session_at(self, ts_ns: int) -> SessionWindow | None:
        local = _local_time(ts_ns, ZoneInfo(self.timezone))
        for window in self.windows:
            if window.contains(local):
                return window
        return None

    def is_open(self, ts_ns: int) -> bool:
        since, until, answer = self._open[0]
        if since <= ts_ns < until:
            return answer
        return self._refresh(ts_ns)[2]

    def open_until(self, ts_ns: int) -> int | None:
        """While open at ``ts_ns``: an instant up to which it stays open (the next window
        boundary, or sooner); None when closed."""
        span = self._open[0]
        if not span[0] <= ts_ns < span[1]:
            span = self._refresh(ts_ns)
        return span[1] if span[2] else None

    def _refresh(self, ts_ns: int) -> tuple[int, int, bool]:
        span = (ts_ns, self._next_boundary(ts_ns), self.session_at(ts_ns) is not None)
        self._open[0] = span  # one assignment: a reader on another thread sees a whole span
        return span

    def _next_boundary(self, ts_ns: int) -> int:
        """The first instant after ``ts_ns`` at which ``session_at`` may change: a window opening or
        closing, a local midnight (weekday), or a change of the zone's UTC offset, whichever is first."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        times = {time(0), *(w.open for w in self.windows), *(w.close for w in self.windows)}
        best = None
        for day in range(3):
            date = local.date() + timedelta(days=day)
            for t in times:
                for fold in (0, 1):  # a wall time in the hour repeated when clocks go back comes twice
                    at = _ns(datetime.combine(date, t.replace(fold=fold), tzinfo=zone))
                    if at > ts_ns and (best is None or at < best):
                        best = at
        assert best is not None  # tomorrow's midnight is always a candidate
        offset = local.utcoffset()
        if _utc_offset(best, zone) == offset:
            return best
        low, high = ts_ns, best  # the offset changes in (low, high]: find where, to the microsecond
        while high - low > 1000:
            mid = (low + high) // 2
            if _utc_offset(mid, zone) == offset:
                low = mid
            else:
                high = mid
        return high - high % 1000

    def next_open(self, ts_ns: int) -> datetime | None:
        """The next moment (local time) a window opens, within a week; for error messages."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        # Compare instants, not wall clocks: aware datetimes sharing a tzinfo compare naively.
        now = local.timestamp()
        best: datetime | None = None
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            for window in self.windows:
                if date.weekday() not in window.days:
                    continue
                start = datetime.combine(date, window.open, tzinfo=zone)
                if start.timestamp() > now and (best is None or start.timestamp() < best.timestamp()):
                    best = start
        return best

    def describe(self) -> str:
        """The windows as ``night Mon-Fri 21:00-02:30+1; ...`` (+1: closes the next day), then the zone."""
        windows = "; ".join(
            f"{w.name} {_day_ranges(w.days)} {w.open:%H:%M}-{w.close:%H:%M}{'+1' if w.overnight else ''}"
            for w in self.windows
        )
        return f"{windows} ({self.timezone})"


__all__ = ["SessionWindow", "TradingHours"]
