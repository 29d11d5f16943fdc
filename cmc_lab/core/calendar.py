"""Exchange calendars: which days an exchange trades, which trading day an instant belongs to. Pure, no IO.

A :class:`TradingCalendar` is an exchange's rule for its trading day (``day_starts``: from that
local time on, an instant belongs to the next day: CME's day starts at 17:00 Chicago the evening
before, SHFE's night session belongs to the next trading day), the closures it announced (a
holiday is a closed range of dates, as the exchanges' notices write them), early closes, and, for
the Chinese exchanges, the night-session rule: a night session runs only on the evening of a
trading day, and not on the evening before a closure (nor the Friday night before a holiday
Monday). The calendars ship in ``calendars.toml`` with their sources; :func:`calendar_from_table`
reads one table of that file.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

_ONE_DAY = timedelta(days=1)
#: How far :meth:`TradingCalendar.next_trading_day` looks (a closure longer than this is a data error).
_MAX_CLOSED_DAYS = 60


class CalendarError(ValueError):
    """A calendar table is malformed; the message names the entry and what to write instead."""


@dataclass(frozen=True, slots=True)
class Closure:
    """The exchange is closed from ``first`` to ``last`` (dates inclusive, weekends included)."""

    name: str
    first: date
    last: date

    def describe(self) -> str:
        if self.first == self.last:
            return f"{self.name} ({self.first:%a %Y-%m-%d})"
        return f"{self.name} ({self.first:%a %Y-%m-%d} to {self.last:%a %Y-%m-%d})"


@dataclass(frozen=True, slots=True)
class EarlyClose:
    """Trading stops at ``at`` (local) on ``day`` until the next session opens.

    ``settles`` False: the exchange makes no trading day of ``day`` (CME on Thanksgiving and the
    Monday holidays): what trades that day counts toward the next trading day.
    """

    name: str
    day: date
    at: time
    settles: bool = True


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """One exchange's trading days, closures and trading-day rule, with the source of its dates.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> shfe = load_specs().calendars["SHFE"]
    >>> shfe.is_trading_day(date(2025, 10, 3)), shfe.closure_on(date(2025, 10, 3)).name
    (False, 'National Day and Mid-Autumn Festival')
    >>> shfe.trading_day(datetime(2026, 11, 27, 21, 30))   # Friday night counts toward Monday
    datetime.date(2026, 11, 30)
    """

    name: str
    timezone: str
    day_starts: time
    closures: tuple[Closure, ...]
    early_closes: tuple[EarlyClose, ...]
    night_rule: bool
    source: str
    as_of: date
    _closed: dict[date, Closure] = dataclasses.field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _early: dict[date, EarlyClose] = dataclasses.field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for closure in self.closures:
            day = closure.first
            while day <= closure.last:
                self._closed[day] = closure
                day += _ONE_DAY
        for early in self.early_closes:
            self._early[early.day] = early

    def closure_on(self, day: date) -> Closure | None:
        """The announced closure that covers ``day``, if any."""
        return self._closed.get(day)

    def early_close_on(self, day: date) -> EarlyClose | None:
        return self._early.get(day)

    def is_trading_day(self, day: date) -> bool:
        """A weekday the exchange is open and settles."""
        if day.weekday() >= 5 or day in self._closed:
            return False
        early = self._early.get(day)
        return early is None or early.settles

    def next_trading_day(self, day: date) -> date:
        """The first trading day after ``day``."""
        for _ in range(_MAX_CLOSED_DAYS):
            day += _ONE_DAY
            if self.is_trading_day(day):
                return day
        raise CalendarError(
            f"calendar {self.name} has no trading day in the {_MAX_CLOSED_DAYS} days after {day}; "
            "check its closures"
        )

    def session_day(self, local: datetime) -> date:
        """The day the exchange's clock names at ``local`` (exchange time): from ``day_starts`` on, the next one."""
        day = local.date()
        if self.day_starts != time(0) and local.time() >= self.day_starts:
            day += _ONE_DAY
        return day

    def trading_day(self, local: datetime) -> date:
        """The trading day ``local`` (exchange time) belongs to: its session day, or the next trading day
        when that is a weekend, a closure or a day that does not settle."""
        day = self.session_day(local)
        return day if self.is_trading_day(day) else self.next_trading_day(day)

    def closed_reason(self, local: datetime, night: bool, window_open: time) -> str | None:
        """Why the exchange is shut at ``local`` inside a session window, or None when it trades.

        ``night``: the window is a night session (it opens at or after ``day_starts``), which opened
        at ``window_open`` on the evening of the trading day before.
        """
        if night and self.night_rule:
            evening = local.date() if local.time() >= window_open else local.date() - _ONE_DAY
            closure = self._closed.get(evening)
            if closure is not None:
                return f"{self.name} is closed for {closure.describe()}"
            if evening.weekday() >= 5:
                return f"{self.name} holds no night session on a {evening:%A}"
            day = evening + _ONE_DAY
            following = self.next_trading_day(evening)
            while day < following:
                closure = self._closed.get(day)
                if closure is not None:
                    return (
                        f"{self.name} holds no night session on the evening of {evening:%a %Y-%m-%d}, "
                        f"before {closure.describe()}"
                    )
                day += _ONE_DAY
        session = self.session_day(local)
        closure = self._closed.get(session)
        if closure is not None:
            return f"{self.name} is closed for {closure.describe()}"
        early = self._early.get(session)
        if early is not None and local.date() == early.day and local.time() >= early.at:
            return f"{self.name} closed early at {early.at:%H:%M} for {early.name} ({early.day:%a %Y-%m-%d})"
        return None

    def describe(self) -> str:
        """One line: name, trading-day rule, closures known, source and as-of date."""
        years = sorted({c.first.year for c in self.closures} | {c.last.year for c in self.closures})
        span = f"{years[0]}-{years[-1]}" if years else "none"
        rule = "calendar day" if self.day_starts == time(0) else f"from {self.day_starts:%H:%M} the next day"
        return (
            f"{self.name} ({self.timezone}; trading day: {rule}; closures {span}; "
            f"source: {self.source}, as of {self.as_of})"
        )


_KEYS = {"timezone", "day_starts", "night_rule", "source", "as_of", "closed", "early_close"}


def _date(value: Any, where: str) -> date:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = date.fromisoformat(value)
    if not isinstance(value, date) or isinstance(value, datetime):
        raise CalendarError(f"{where}: {value!r} must be a date, written 2026-10-01")
    return value


def _clock(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise CalendarError(f"{where}: time {value!r} is not HH:MM") from None


def _entries(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise CalendarError(f"{where}: must be an array of tables, written [[{where.rsplit(': ', 1)[-1]}]]")
    return raw


def calendar_from_table(name: str, tables: list[tuple[dict[str, Any], str]]) -> TradingCalendar:
    """The calendar ``name`` from its ``[calendars.NAME]`` tables, earliest file first.

    A later table's keys replace an earlier one's; its ``closed`` and ``early_close`` entries add to
    the earlier ones (a user file extends the shipped closures with a year the shipped file lacks).
    """
    merged: dict[str, tuple[Any, str]] = {}
    closures: list[Closure] = []
    earlies: list[EarlyClose] = []
    for raw, where in tables:
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise CalendarError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
        for key, value in raw.items():
            merged[key] = (value, where)
        for i, entry in enumerate(_entries(raw.get("closed", []), f"{where}: calendars.{name}.closed")):
            here = f"{where}: [[calendars.{name}.closed]] #{i + 1}"
            if "from" not in entry or "name" not in entry:
                raise CalendarError(
                    f'{here}: give name and from (and to), e.g. name = "National Day", from = 2026-10-01'
                )
            first = _date(entry["from"], here)
            last = _date(entry.get("to", entry["from"]), here)
            if last < first:
                raise CalendarError(f"{here}: to = {last} is before from = {first}")
            closures.append(Closure(str(entry["name"]), first, last))
        for i, entry in enumerate(
            _entries(raw.get("early_close", []), f"{where}: calendars.{name}.early_close")
        ):
            here = f"{where}: [[calendars.{name}.early_close]] #{i + 1}"
            if "date" not in entry or "at" not in entry:
                raise CalendarError(f'{here}: give name, date and at, e.g. date = 2026-12-24, at = "12:45"')
            settles = entry.get("settles", True)
            if not isinstance(settles, bool):
                raise CalendarError(f"{here}: settles = {settles!r} must be true or false")
            name_ = str(entry.get("name", "early close"))
            earlies.append(EarlyClose(name_, _date(entry["date"], here), _clock(entry["at"], here), settles))

    def need(key: str) -> tuple[Any, str]:
        if key not in merged:
            where = tables[-1][1] if tables else f"[calendars.{name}]"
            raise CalendarError(f"{where}: calendar {name} has no {key!r}; add {key} = ...")
        return merged[key]

    zone, _ = need("timezone")
    starts, where = merged.get("day_starts", ("00:00", ""))
    source, where_source = need("source")
    if not isinstance(source, str) or not source.strip():
        raise CalendarError(
            f'{where_source}: give the source of the dates, e.g. source = "SHFE notice of 2025-12-26"'
        )
    as_of, where_as_of = need("as_of")
    night_rule, where_rule = merged.get("night_rule", (False, ""))
    if not isinstance(night_rule, bool):
        raise CalendarError(f"{where_rule}: night_rule = {night_rule!r} must be true or false")
    return TradingCalendar(
        name=name,
        timezone=str(zone),
        day_starts=_clock(starts, where),
        closures=tuple(sorted(closures, key=lambda c: c.first)),
        early_closes=tuple(sorted(earlies, key=lambda e: e.day)),
        night_rule=night_rule,
        source=source.strip(),
        as_of=_date(as_of, where_as_of),
    )


__all__ = ["CalendarError", "Closure", "EarlyClose", "TradingCalendar", "calendar_from_table"]
