"""Live spreads: a SpreadDef bound to an engine's quotes, with staleness checks and lot ratio."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from cmc_lab.execution.trigger import RollingZ
from cmc_lab.model import Instrument, Quote
from cmc_lab.pricing import FxRates, SpreadDef, best_lot_ratio, landed_price, spread_quote

if TYPE_CHECKING:
    from cmc_lab.engine import Engine

FX_ID = "FX.USDCNH"


class SpreadNotQuotable(RuntimeError):
    """A spread with a stale, missing or closed leg (or FX); the message names which and why.

    ``leg`` is the instrument id at fault (``FX.USDCNH`` for the rate), ``why`` the cause alone.
    """

    def __init__(self, message: str, leg: str = "", why: str = "") -> None:
        super().__init__(message)
        self.leg = leg
        self.why = why


@dataclass(frozen=True, slots=True)
class SpreadSnapshot:
    """An executable quote of a spread at one moment, with the leg quotes and FX it came from."""

    name: str
    unit: str
    bid: float
    ask: float
    mid: float
    bid_size: int
    ask_size: int
    z: float | None
    fx: float | None
    ts_ns: int
    legs: tuple[Quote, ...]
    ratio: float | None = None  # first leg's mid / second leg's landed mid (two-leg spreads)

    def value(self, field: str) -> float | None:
        """The value a trigger reads: bid, ask (executable), mid, ratio or z."""
        return getattr(self, field)

    def _repr_html_(self) -> str:
        legs = "".join(
            f"<tr><td>{escape(q.instrument_id)}</td><td>{q.bid_size} @ {q.bid:g}</td>"
            f"<td>{q.ask:g} x {q.ask_size}</td></tr>"
            for q in self.legs
        )
        z = "" if self.z is None else f", z {self.z:+.2f}"
        fx = "" if self.fx is None else f", USDCNH {self.fx:.4f}"
        return (
            f"<div><b>{escape(self.name)}</b> ({escape(self.unit)}): "
            f"<b>{self.bid_size} @ {self.bid:.4f} / {self.ask:.4f} x {self.ask_size}</b> "
            f"mid {self.mid:.4f}{z}{fx}<table><tr><th>leg</th><th>bid</th><th>ask</th></tr>{legs}"
            "</table></div>"
        )


class Spread:
    """A named spread on an engine: executable quote, lot ratio, rolling z-score of the mid.

    ``lots`` says how many lots of each leg trade together (by default the smallest whole
    ratio within ``ratio_tolerance`` of equal physical quantity: 3 SHFE au : 1 COMEX GC).

    Examples
    --------
    >>> sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})   # doctest: +SKIP
    >>> sp.quote().ask, sp.lots                                         # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        defn: SpreadDef,
        lots: Mapping[str, int],
        *,
        stale_after_ms: float = 3000.0,
        z_window: int = 300,
    ) -> None:
        self._engine = engine
        self.defn = defn
        self.lots = dict(lots)
        self.stale_after_ns = int(stale_after_ms * 1e6)
        self._z = RollingZ(z_window, min_samples=min(30, z_window))
        self.last: SpreadSnapshot | None = None
        self.needs_fx = len({i.currency.replace("CNH", "CNY") for i in defn.instruments}) > 1

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def leg_ids(self) -> tuple[str, ...]:
        return self.defn.ids

    @property
    def unit(self) -> str:
        return self.defn.unit

    def quote(self) -> SpreadSnapshot:
        """Executable bid/ask of the spread now (first leg's units); raises SpreadNotQuotable.

        Examples
        --------
        >>> q = sp.quote()                                    # doctest: +SKIP
        >>> q.bid, q.ask, q.ask_size, q.mid                   # doctest: +SKIP
        """
        fault = self._fault()
        if fault:
            leg, why = fault
            raise SpreadNotQuotable(
                f"spread {self.name!r} is not quotable: {_label(leg)} {leg}: {why}", leg=leg, why=why
            )
        return self._snapshot(update_z=False)

    def not_quotable_reason(self) -> str | None:
        """Why the spread cannot be quoted now (naming the leg or FX), or None."""
        fault = self._fault()
        return None if fault is None else f"{_label(fault[0])} {fault[0]}: {fault[1]}"

    def _fault(self) -> tuple[str, str] | None:
        eng = self._engine
        now = eng.now_ns()
        ids = list(self.leg_ids) + ([FX_ID] if self.needs_fx else [])
        for iid in ids:
            inst: Instrument = eng.instrument(iid)
            if not eng.venue_connected(inst.venue):
                return iid, f"venue {inst.venue} is not connected"
            if not inst.hours.is_open(now):
                return iid, f"session closed ({inst.hours.describe()})"
            quote = eng._quotes.get(iid)
            if quote is None:
                return iid, "no quote yet"
            age = now - quote.ts_event
            if age > self.stale_after_ns:
                limit = self.stale_after_ns / 1e9
                return iid, f"quote is stale ({age / 1e9:.1f} s old, limit {limit:g} s)"
            if (
                not (math.isfinite(quote.bid) and math.isfinite(quote.ask))
                or quote.bid <= 0
                or quote.ask <= 0
            ):
                return iid, "one side of the book is empty"
        return None

    def _snapshot(self, update_z: bool) -> SpreadSnapshot:
        """Compute the spread from the engine's current quotes (caller checked quotability)."""
        quotes = self._engine._quotes
        legs = tuple(quotes[i] for i in self.leg_ids)
        fx_quote = quotes.get(FX_ID) if self.needs_fx else None
        fx = fx_quote.mid if fx_quote is not None else None
        sq = spread_quote(
            self.defn,
            dict(zip(self.leg_ids, legs, strict=True)),
            FxRates(usdcnh=fx) if fx else None,
            self.lots,
        )
        mid = float(sq.mid)
        z = self._z.update(mid) if update_z else (self.last.z if self.last else None)
        snap = SpreadSnapshot(
            self.name,
            self.unit,
            float(sq.bid),
            float(sq.ask),
            mid,
            int(sq.bid_size),
            int(sq.ask_size),
            z,
            fx,
            self._engine.now_ns(),
            legs,
            self._ratio(legs, FxRates(usdcnh=fx) if fx else None, mid),
        )
        if update_z:
            self.last = snap
        return snap

    def _ratio(self, legs: tuple[Quote, ...], fx: FxRates | None, mid: float) -> float | None:
        if self.defn.kind == "ratio" and self.defn.formula is None:
            return mid
        if len(legs) != 2:
            return None
        first, second = self.defn.instruments
        landed = float(landed_price(legs[1].mid, second, first, fx, self.defn.costs.get(second.id)))
        return legs[0].mid / landed if landed else None

    def __repr__(self) -> str:
        ratio = ":".join(str(self.lots[i]) for i in self.leg_ids)
        return (
            f"Spread({self.name!r}, {self.defn.kind}, {' / '.join(self.leg_ids)}, lots {ratio}, {self.unit})"
        )

    def _repr_html_(self) -> str:
        try:
            return self.quote()._repr_html_()
        except SpreadNotQuotable as exc:
            return f"<div>{escape(repr(self))}<br><i>{escape(str(exc))}</i></div>"


def _label(iid: str) -> str:
    return "FX" if iid == FX_ID else "leg"


def default_lots(defn: SpreadDef, tolerance: float) -> dict[str, int]:
    """Whole lots per leg: the best small ratio of equal physical quantity for two legs, else 1 each."""
    instruments = defn.instruments
    if len(instruments) != 2:
        return dict.fromkeys(defn.ids, 1)
    try:
        ratio = best_lot_ratio(instruments[0], instruments[1], tolerance=tolerance)
    except ValueError:
        return dict.fromkeys(defn.ids, 1)
    return {instruments[0].id: ratio.a_lots, instruments[1].id: ratio.b_lots}
