"""Margin calls by each account's broker rule: an alert when an account enters a call and when it ends.

A Chinese futures broker calls on the risk degree (margin held over equity reaching its call
level, 100 % by default); a CME clearing firm when equity falls below the maintenance margin
(``[accounts.X] margin_call`` in the specs). The check runs when margin rates or cash change and
at most once a market second on quotes, so a book marked on every tick pays a comparison, not
a recomputation.
"""

from __future__ import annotations

from cmc_lab.core.ports import AlertSink
from cmc_lab.risk.capital import Capital

SECOND_NS = 1_000_000_000


class MarginCalls:
    """Which accounts are in margin call now, and the alerts that say so (engine loop)."""

    def __init__(self, capital: Capital, alerts: AlertSink, period_ns: int = SECOND_NS) -> None:
        self.capital = capital
        self.alerts = alerts
        self.period_ns = period_ns
        self.called: set[str] = set()
        self._next_ns = 0

    def on_quote(self, ts_ns: int) -> None:
        """A mark moved: check, unless this market second was checked already."""
        if ts_ns >= self._next_ns:
            self._next_ns = ts_ns + self.period_ns
            self.check()

    def check(self) -> None:
        """Alert each account that entered or left a margin call since the last check."""
        for name in self.capital.accounts:
            called = self.capital.margin_called(name)
            if called == (name in self.called):  # no change: no figures needed
                continue
            f = self.capital.figures(name)
            if f.margin_call and name not in self.called:
                self.called.add(name)
                self.alerts.alert(
                    "margin call",
                    "critical",
                    f"{name} is in margin call by its broker's {f.rule.replace('_', ' ')} rule: {f.call_text()}; "
                    f"add {f.shortfall():,.2f} {f.currency} (eng.transfer) or reduce positions",
                    details={"account": name, "rule": f.rule, "shortfall": str(f.shortfall())},
                )
            elif not f.margin_call and name in self.called:
                self.called.discard(name)
                self.alerts.alert(
                    "margin call",
                    "info",
                    f"{name} is out of margin call: {f.call_text()}",
                    details={"account": name, "rule": f.rule, "shortfall": "0"},
                )


__all__ = ["MarginCalls"]
