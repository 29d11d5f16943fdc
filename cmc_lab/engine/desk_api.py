"""The engine's desk and risk facades: spreads, hedge tickets, capital, transfers, thresholds, alerts.

A part of :class:`~cmc_lab.engine.facade.Engine`, which inherits it (``eng.hedge(...)``,
``eng.capital()`` and the rest are the engine's own methods). Each call checks its arguments in
the caller's thread and hands the work to ``eng.desk`` or ``eng.risk`` on the engine loop; the
logic lives there, in :mod:`cmc_lab.execution` and :mod:`cmc_lab.risk`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from cmc_lab.core.model import Side
from cmc_lab.execution.desk import Desk
from cmc_lab.execution.hedge import HedgeTicket
from cmc_lab.execution.spread import Spread
from cmc_lab.pricing.spreads import CostTerms
from cmc_lab.risk.capital_view import CapitalView
from cmc_lab.risk.monitor import RiskMonitor
from cmc_lab.risk.pretrade import RiskLimits
from cmc_lab.risk.thresholds import Thresholds
from cmc_lab.risk.transfers import Transfer

T = TypeVar("T")


class EngineDesk:
    """Desk and risk facades of :class:`~cmc_lab.engine.facade.Engine`."""

    # Engine state used here; Engine.__init__ sets it.
    desk: Desk
    risk: RiskMonitor
    _alerts: list[dict[str, Any]]

    if TYPE_CHECKING:  # defined by Engine and its journal part

        def now_ns(self) -> int: ...
        def _call(
            self, coro: Coroutine[Any, Any, T], *, advance: bool = False, timeout: float = 10.0
        ) -> T: ...
        async def _call_async(self, coro: Coroutine[Any, Any, T], *, advance: bool = False) -> T: ...
        def _journal_raw(self, kind: str, payload: dict[str, Any], **ids: Any) -> None: ...

    # ================================================================== spreads and hedges

    def spread(
        self,
        name: str,
        legs: Mapping[str, float] | None = None,
        kind: str = "diff",
        *,
        lots: Mapping[str, int] | None = None,
        costs: Mapping[str, CostTerms] | None = None,
        formula: str | None = None,
        ratio_tolerance: float = 0.04,
        stale_after_ms: float = 3000.0,
    ) -> Spread:
        """Define a spread (or fetch one by name when ``legs`` is omitted).

        Units and currency convert from the instrument specs: SHFE au (CNY/g) against COMEX GC
        (USD/oz) through USD/CNH; SHFE cu against LME copper with the import-parity terms
        (13 % VAT, bonded premium) unless ``costs`` says otherwise. ``lots`` defaults to the
        smallest whole ratio of equal physical quantity within ``ratio_tolerance``.

        Examples
        --------
        >>> sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})   # doctest: +SKIP
        >>> sp.quote()                                                      # doctest: +SKIP
        """
        if legs is None:
            return self.desk.spread(name)
        return self.desk.add_spread(
            name,
            legs,
            kind,
            lots=lots,
            costs=costs,
            formula=formula,
            ratio_tolerance=ratio_tolerance,
            stale_after_ms=stale_after_ms,
        )

    @property
    def spreads(self) -> dict[str, Spread]:
        return dict(self.desk.spreads)

    def hedge(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        *,
        when: str | None = None,
        policy: str = "chase",
        **options: Any,
    ) -> HedgeTicket:
        """Trade a spread with its legs sent together; returns the live :class:`HedgeTicket`.

        ``qty`` is in lots of the first leg (a multiple of the spread's lot ratio). ``when`` is a
        trigger such as ``"ask <= 2.5"`` (fields bid, ask, mid, ratio, z); without it the ticket fires
        now. ``policy`` is what to do when the legs do not fill together: ``"chase"`` the
        missing leg, ``"unwind"`` the filled one, or ``"hold"`` for a human (bounded by
        ``max_legged_ms``). Other options: see :class:`~cmc_lab.execution.hedge.HedgePolicy`
        (``mode="lead_lag"``, ``tif``, ``allowance_ticks``, ``chase_ticks``, ``max_attempts``,
        ``leg_timeout_ms``, ``max_legged_exposure``, ``time_limit_ms``, ``min_top_cover``, ...),
        plus ``dwell_ms``, ``hysteresis`` and ``repeat=N`` (one ticket per fire, at most N; the
        next waits ARMED in ``ticket.series``) for the trigger.
        """
        prepared = self.desk.prepare(spread, side, qty, when, policy, dict(options))
        return self._call(self.desk.start(*prepared))

    async def hedge_async(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        *,
        when: str | None = None,
        policy: str = "chase",
        **options: Any,
    ) -> HedgeTicket:
        """``await`` twin of :meth:`hedge`."""
        prepared = self.desk.prepare(spread, side, qty, when, policy, dict(options))
        return await self._call_async(self.desk.start(*prepared))

    def ticket(self, ticket_id: str) -> HedgeTicket:
        return self.desk.ticket(ticket_id)

    def tickets(self) -> pd.DataFrame:
        """One row per hedge ticket of this session: state, reason, fills per leg."""
        return self.desk.frame()

    # ================================================================== capital and risk

    def capital(self) -> CapitalView:
        """Capital per account and unified in the base currency (``accounts, unified = eng.capital()``)."""
        return self.risk.capital_view()

    def transfer(
        self,
        source: str,
        dest: str,
        amount: float | str | Decimal,
        currency: str | None = None,
        reason: str = "user",
    ) -> Transfer:
        """Move money between accounts (venue or account names); a refused one comes back FAILED."""
        parsed = self.risk.transfers.parse(source, dest, amount, currency)
        return self._call(self.risk.transfer(*parsed, reason))

    def set_margin_rate(
        self,
        instrument_id: str,
        rate: float | str | Decimal,
        *,
        kind: str | None = None,
        maintenance: Any = None,
    ) -> None:
        """Change an instrument's margin rate (exchanges raise margins in a squeeze); journaled."""
        parsed = self.risk.parse_margin_rate(instrument_id, rate, kind, maintenance)
        self._call(self.risk.set_margin_rate(*parsed))

    @property
    def thresholds(self) -> Thresholds:
        """Threshold rules and their crossings: ``eng.thresholds.add("margin_utilisation", ...)``."""
        return self.risk.thresholds

    @property
    def limits(self) -> RiskLimits:
        """The pre-trade limits, editable live: ``eng.limits.max_position = 50``."""
        return self.risk.limits

    def alert(
        self, source: str, level: str, message: str, details: Mapping[str, Any] | None = None, **ids: Any
    ) -> None:
        """Record an alert (engine thread): journaled and listed by :meth:`alerts`."""
        now = self.now_ns()
        alert_id = len(self._alerts) + 1
        self._alerts.append(
            {
                "id": alert_id,
                "ts": now,
                "source": source,
                "level": level,
                "message": message,
                "acknowledged": False,
                **(details or {}),
                **ids,
            }
        )
        payload = {"id": alert_id, "source": source, "level": level, "message": message, **(details or {})}
        self._journal_raw("Alert", payload, **ids)

    def acknowledge_alerts(self, who: str = "user") -> int:
        """Mark every open alert acknowledged (journaled with who); returns how many."""
        return self._call(self._acknowledge(who))

    async def _acknowledge(self, who: str) -> int:
        open_ids = [a["id"] for a in self._alerts if not a["acknowledged"]]
        for alert in self._alerts:
            alert["acknowledged"] = True
        if open_ids:
            self._journal_raw("AlertsAcknowledged", {"ids": open_ids, "who": who})
        return len(open_ids)

    def alerts(self) -> pd.DataFrame:
        """Alerts raised in this session (hedges legged or broken, thresholds crossed, ...)."""
        frame = pd.DataFrame(list(self._alerts))
        if not frame.empty:
            frame["time"] = pd.to_datetime(frame.pop("ts"), unit="ns", utc=True)
        return frame
