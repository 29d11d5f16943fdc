"""Roll reminders: an alert while a position sits in a month close to its last trading day.

A contract month stops trading on its last trading day (``core/months.py``); a position still in it
then goes to delivery or is closed out by the broker. From ``remind_days`` trading days before that
day (``contracts.toml``, per product) each position in the month gets a warning once per trading
day, naming the position, the day, and the roll that moves it; on the last trading day itself the
alert is critical. Checked at most once a market minute on quotes, so the quote path pays a
comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.ports import AlertSink
from cmc_lab.risk.capital import Capital

MINUTE_NS = 60_000_000_000
DEFAULT_REMIND_DAYS = 5


def trading_days_left(inst: Instrument, today: date, at_most: int | None = None) -> int | None:
    """Trading days after ``today`` up to the last trading day: 0 on it, negative (calendar days) once
    it has passed; None for a product or an FX rate. With ``at_most``, counting stops past it (a
    month far from expiry is only "more than at_most" away)."""
    last = inst.last_trading_day
    if last is None:
        return None
    calendar = inst.hours.calendar
    if last <= today or calendar is None:
        return (last - today).days
    left, day = 0, today
    while day < last and (at_most is None or left <= at_most):
        day += timedelta(days=1)
        left += calendar.is_trading_day(day)
    return left


class RollReminders:
    """Which positions were reminded on which trading day, and the alerts that remind (engine loop)."""

    def __init__(
        self,
        capital: Capital,
        alerts: AlertSink,
        remind_days: Callable[[Instrument], int] = lambda inst: DEFAULT_REMIND_DAYS,
        period_ns: int = MINUTE_NS,
    ) -> None:
        self.capital = capital
        self.alerts = alerts
        self.remind_days = remind_days
        self.period_ns = period_ns
        self.reminded: set[tuple[str, str, date]] = set()
        self.next_ns = 0  # the quote path compares against this before calling

    def on_quote(self, ts_ns: int) -> None:
        if ts_ns >= self.next_ns:
            self.next_ns = ts_ns + self.period_ns
            self.check(ts_ns)

    def check(self, now_ns: int) -> None:
        """Alert each position in a month within its reminder window, once per trading day."""
        for pos in self.capital.positions():
            inst = pos.instrument
            if not pos.qty or inst.last_trading_day is None:
                continue
            today = inst.hours.trading_day(now_ns)
            left = trading_days_left(inst, today, self.remind_days(inst))
            key = (pos.account, inst.id, today)
            if left is None or left > self.remind_days(inst) or key in self.reminded:
                continue
            self.reminded.add(key)
            when = "today" if left <= 0 else f"in {left} trading day{'s' if left > 1 else ''}"
            self.alerts.alert(
                "roll",
                "critical" if left <= 0 else "warning",
                f"{pos.account} holds {pos.qty:+d} {inst.id}, whose last trading day is "
                f"{inst.last_trading_day} ({when}); roll it: eng.roll({inst.id!r})",
                details={
                    "account": pos.account,
                    "instrument": inst.id,
                    "position": pos.qty,
                    "last_trading_day": str(inst.last_trading_day),
                    "trading_days_left": left,
                },
            )


__all__ = ["DEFAULT_REMIND_DAYS", "RollReminders", "trading_days_left"]
