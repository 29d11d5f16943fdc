"""Trading hours: an instrument's sessions in exchange local time, whether it is open at an instant, and
which exchange trading day an instant belongs to.

Pure, no IO. A :class:`TradingHours` is a time zone, its windows (:class:`SessionWindow`) and the
exchange's :class:`~cmc_lab.core.calendar.TradingCalendar` (holidays, early closes, the night
session rule, the trading-day rule); a window whose close is not after its open is a night session
that closes the next calendar day. Instants are ``int`` nanoseconds since the epoch; answers hold
across daylight-saving changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cmc_lab.core.calendar import TradingCalendar

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
    """The sessions of one instrument, the time zone they are written in and the exchange's calendar.

    Without a calendar every weekday the windows name is open and the trading day is the calendar
    day, shifted by a night session (it counts toward the next day).
    """

    timezone: str
    windows: tuple[SessionWindow, ...]
    calendar: TradingCalendar | None = None
    # is_open's last answer and the span it holds for, up to the next window boundary (every
    # quote of a spread asks): [(from_ns, until_ns, open)]; mutable inside the frozen object.
    _open: list[tuple[int, int, bool]] = dataclasses.field(
        default_factory=lambda: [(0, 0, False)], init=False, repr=False, compare=False
    )
    # trading_day's last answer and the span it holds for: [(from_ns, until_ns, day)].
    _day: list[tuple[int, int, date]] = dataclasses.field(
        default_factory=lambda: [(0, 0, date.min)], init=False, repr=False, compare=False
    )

    def _window_at(self, local: datetime) -> SessionWindow | None:
        for window in self.windows:
            if window.contains(local):
                return window
        return None

    def _refusal(self, local: datetime, window: SessionWindow) -> str | None:
        cal = self.calendar
        if cal is None:
            return None
        night = cal.day_starts != time(0) and window.open >= cal.day_starts
        return cal.closed_reason(local, night, window.open)

    def session_at(self, ts_ns: int) -> SessionWindow | None:
        """The window trading at ``ts_ns``; None outside the windows or when the calendar shuts it."""
        local = _local_time(ts_ns, ZoneInfo(self.timezone))
        window = self._window_at(local)
        if window is None or self._refusal(local, window) is not None:
            return None
        return window

    def calendar_reason(self, ts_ns: int) -> str | None:
        """Why the calendar shuts a window that would trade at ``ts_ns`` (a holiday, no night session
        before one, an early close); None when open or outside the windows."""
        local = _local_time(ts_ns, ZoneInfo(self.timezone))
        window = self._window_at(local)
        return None if window is None else self._refusal(local, window)

    def closed_reason(self, ts_ns: int) -> str | None:
        """Why the instrument does not trade at ``ts_ns`` (the calendar's reason, or outside its
        windows), or None when it does."""
        if self.session_at(ts_ns) is not None:
            return None
        return self.calendar_reason(ts_ns) or f"outside its sessions ({self.describe()})"

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

    def trading_day(self, ts_ns: int) -> date:
        """The exchange trading day ``ts_ns`` belongs to.

        With a calendar, its rule (SHFE: the night session counts toward the next trading day,
        Friday night toward Monday; CME: from 17:00 Chicago the next day; a closed day rolls to the
        next trading day); without one, the calendar day, a night session counting toward the next.

        Examples
        --------
        >>> from cmc_lab.core.specs import load_specs
        >>> au = load_specs().instrument("SHFE.au")
        >>> friday_night = int(datetime(2026, 11, 27, 13, 30, tzinfo=UTC).timestamp()) * 10**9
        >>> au.hours.trading_day(friday_night)      # 21:30 Friday in Shanghai
        datetime.date(2026, 11, 30)
        """
        since, until, day = self._day[0]
        if since <= ts_ns < until:
            return day
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        cal = self.calendar
        if cal is not None:
            day = cal.trading_day(local)
            changes = [time(0)] if cal.day_starts == time(0) else [time(0), cal.day_starts]
        else:
            opens = [w.open for w in self.windows if w.overnight]
            first = min(opens) if opens else None
            day = (
                local.date() + timedelta(days=1)
                if first is not None and local.time() >= first
                else local.date()
            )
            changes = [time(0)] if first is None else [time(0), first]
        # The answer holds until the next local midnight or day start, whichever comes first.
        until = min(
            at
            for d in (local.date(), local.date() + timedelta(days=1))
            for t in changes
            if (at := _ns(datetime.combine(d, t, tzinfo=zone))) > ts_ns
        )
        self._day[0] = (ts_ns, until, day)
        return day

    def _next_boundary(self, ts_ns: int) -> int:
        """The first instant after ``ts_ns`` at which ``session_at`` may change: a window opening or
        closing, a local midnight (weekday), the calendar's day start or an early close, or a change
        of the zone's UTC offset, whichever is first."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        times = {time(0), *(w.open for w in self.windows), *(w.close for w in self.windows)}
        if self.calendar is not None:
            times.add(self.calendar.day_starts)
            times.update(e.at for e in self.calendar.early_closes)
        best = None
        for day in range(3):
            date_ = local.date() + timedelta(days=day)
            for t in times:
                for fold in (0, 1):  # a wall time in the hour repeated when clocks go back comes twice
                    at = _ns(datetime.combine(date_, t.replace(fold=fold), tzinfo=zone))
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
        """The next moment (local time) a window opens and the calendar lets it trade, within a
        month; for error messages."""
        zone = ZoneInfo(self.timezone)
        local = _local_time(ts_ns, zone)
        # Compare instants, not wall clocks: aware datetimes sharing a tzinfo compare naively.
        now = local.timestamp()
        for day in range(32):
            date_ = (local + timedelta(days=day)).date()
            starts = sorted(
                datetime.combine(date_, w.open, tzinfo=zone)
                for w in self.windows
                if date_.weekday() in w.days
            )
            for start in starts:
                if start.timestamp() > now and self.session_at(_ns(start)) is not None:
                    return start
        return None

    def describe(self) -> str:
        """The windows as ``night Mon-Fri 21:00-02:30+1; ...`` (+1: closes the next day), then the zone."""
        windows = "; ".join(
            f"{w.name} {_day_ranges(w.days)} {w.open:%H:%M}-{w.close:%H:%M}{'+1' if w.overnight else ''}"
            for w in self.windows
        )
        return f"{windows} ({self.timezone})"


__all__ = ["SessionWindow", "TradingHours"]
