"""Live spreads: a SpreadDef bound to an engine's quotes, with staleness checks and lot ratio."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from html import escape
from typing import TYPE_CHECKING

from cmc_lab.execution.trigger import RollingZ
from cmc_lab.model import Instrument, Quote, TradingHours
from cmc_lab.pricing import SpreadDef, best_lot_ratio, spread_units

if TYPE_CHECKING:
    from cmc_lab.engine import Engine

FX_ID = "FX.USDCNH"
_INF = math.inf
_INF_NS = 2**63
Rates = tuple[tuple[float, float], ...]
# One recomputation: bid, ask, mid, z, fx, ts, the leg quotes, the FX rates they were landed at.
_State = tuple[float, float, float, float | None, float | None, int, tuple[Quote, ...], Rates]
_FIELD_INDEX = {"bid": 0, "ask": 1, "mid": 2, "z": 3}


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


def _snapshot_builder() -> Callable[..., SpreadSnapshot]:
    # A frozen dataclass's __init__ sets each field through object.__setattr__; the slots' own
    # setters do the same in half the time, and a spread is recomputed on every leg quote.
    names = ("name", "unit", "bid", "ask", "mid", "bid_size", "ask_size", "z", "fx", "ts_ns", "legs", "ratio")
    if names != tuple(f.name for f in fields(SpreadSnapshot)):
        raise AssertionError("SpreadSnapshot's fields changed: update _snapshot_builder")
    (s_name, s_unit, s_bid, s_ask, s_mid, s_bid_size, s_ask_size, s_z, s_fx, s_ts, s_legs, s_ratio) = (
        getattr(SpreadSnapshot, name).__set__ for name in names
    )
    new = object.__new__

    def build(
        name: str,
        unit: str,
        bid: float,
        ask: float,
        mid: float,
        bid_size: int,
        ask_size: int,
        z: float | None,
        fx: float | None,
        ts_ns: int,
        legs: tuple[Quote, ...],
        ratio: float | None,
    ) -> SpreadSnapshot:
        snap = new(SpreadSnapshot)
        s_name(snap, name)
        s_unit(snap, unit)
        s_bid(snap, bid)
        s_ask(snap, ask)
        s_mid(snap, mid)
        s_bid_size(snap, bid_size)
        s_ask_size(snap, ask_size)
        s_z(snap, z)
        s_fx(snap, fx)
        s_ts(snap, ts_ns)
        s_legs(snap, legs)
        s_ratio(snap, ratio)
        return snap

    return build


_new_snapshot = _snapshot_builder()


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
        self.needs_fx = len({i.currency.replace("CNH", "CNY") for i in defn.instruments}) > 1
        # What the per-quote path needs, resolved once; the legs' landed prices are kept per quote
        # (by identity) and landed again only for a leg that quoted, or for every leg when FX moved.
        self._kernel = defn.kernel
        self._ids = defn.ids
        self._n = len(self._ids)
        self._watch: tuple[tuple[str, str, TradingHours], ...] | None = None  # legs and FX: id, venue, hours
        self._venues: tuple[tuple[int, str], ...] = ()  # (leg index, venue)
        self._fx_venue = ""
        self._hours: tuple[TradingHours, ...] = ()
        self._open_since = self._open_until = 0  # every session open in [since, until)
        self._unseen: list[Quote | None] = [None] * len(defn.ids)
        self._seen: list[Quote | None] = [None] * self._n
        self._sell = [0.0] * self._n  # landed price of each leg when selling the spread
        self._buy = [0.0] * self._n
        self._fx_seen: Quote | None = None
        self._rates: tuple[tuple[float, float], ...] = ()
        self._rated = False
        self._ratio_seen: tuple[Quote | None, object, float] = (None, None, 0.0)
        # The last recomputation (bid, ask, mid, z, fx, ts, legs, rates) and its snapshot, built
        # when first asked for: the desk only needs the numbers unless someone looks.
        self._state: _State | None = None
        self._last: SpreadSnapshot | None = None

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def last(self) -> SpreadSnapshot | None:
        """The snapshot of the last recomputation on a quote (the one subscribers were given)."""
        snap = self._last
        if snap is None and self._state is not None:
            snap = self._last = self._build(*self._state)
        return snap

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
        if self._watch is None:
            self._resolve()
        if (self._open_since <= now < self._open_until or self._sessions_open(now)) and not self._fault_at(
            now
        ):
            return None  # the per-quote checks say quotable; the loop below names what is not
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

    def _update(self, now: int) -> bool:
        """The desk's per-quote path: False when not quotable (as :meth:`not_quotable_reason` would
        say), else recompute, update the z-score and keep the numbers for :attr:`last`.

        The same checks and numbers as ``_fault`` and ``_values``, fused: sessions are checked once
        per window boundary, a book once per quote, and only a leg that quoted is landed again.
        """
        if not self._open_since <= now < self._open_until and not self._sessions_open(now):
            return False
        kernel = self._kernel
        if kernel.formula is not None:
            return self._update_formula(now)
        eng = self._engine
        quotes, up = eng._quotes, eng._venue_up
        fresh_after = now - self.stale_after_ns  # a quote stamped before this is stale
        fx = None
        if self.needs_fx:
            fx_quote = quotes.get(FX_ID)
            if fx_quote is None or fx_quote.ts_event < fresh_after or not up.get(self._fx_venue, False):
                return False
            if fx_quote is not self._fx_seen:
                if not (0.0 < fx_quote.bid < _INF and 0.0 < fx_quote.ask < _INF):
                    return False
                self._rates = kernel.rates(fx_quote.mid)
                self._fx_seen = fx_quote
                self._seen[:] = self._unseen
            fx = fx_quote.mid
        rates, seen, sell, buy = self._rates, self._seen, self._sell, self._buy
        legs = tuple(map(quotes.get, self._ids))
        for i, venue in self._venues:
            quote = legs[i]
            if quote is None or quote.ts_event < fresh_after or not up.get(venue, False):
                return False
            if quote is not seen[i]:
                if not (0.0 < quote.bid < _INF and 0.0 < quote.ask < _INF):
                    return False
                sell[i], buy[i] = kernel.landed_pair(i, quote.bid, quote.ask, rates[i])
                seen[i] = quote
        bid, ask = kernel.combine_pair(sell, buy)
        bid, ask = float(bid), float(ask)
        mid = (bid + ask) / 2
        self._state = (bid, ask, mid, self._z.update(mid), fx, now, legs, rates)  # type: ignore[assignment]  # no None left
        self._last = None
        return True

    def _update_formula(self, now: int) -> bool:
        if self._fault_at(now):
            return False
        bid, ask, mid, legs, fx, rates = self._values()
        self._state = (bid, ask, mid, self._z.update(mid), fx, now, legs, rates)
        self._last = None
        return True

    def _resolve(self) -> None:
        eng = self._engine
        instruments = [eng.instrument(iid) for iid in self._ids]
        fx = eng.instrument(FX_ID) if self.needs_fx else None
        watched = [*instruments, *([fx] if fx is not None else [])]
        self._venues = tuple(enumerate(inst.venue for inst in instruments))
        self._fx_venue = fx.venue if fx is not None else ""
        self._hours = tuple({id(i.hours): i.hours for i in watched}.values())
        self._watch = tuple((inst.id, inst.venue, inst.hours) for inst in watched)
        if fx is None:
            self._rates = self._kernel.rates(None)

    def _sessions_open(self, now: int) -> bool:
        """Every leg's (and FX's) session open at ``now``; then no need to ask again until the
        earliest of their next boundaries."""
        if self._watch is None:
            self._resolve()
        until = _INF_NS
        for hours in self._hours:
            span = hours.open_until(now)
            if span is None:
                return False
            until = min(until, span)
        self._open_since, self._open_until = now, until
        return True

    def _fault_at(self, now: int) -> bool:
        quotes, up, stale = self._engine._quotes, self._engine._venue_up, self.stale_after_ns
        for iid, venue, _ in self._watch or ():
            quote = quotes.get(iid)
            if (
                quote is None
                or not up.get(venue, False)
                or now - quote.ts_event > stale
                or not (0.0 < quote.bid < _INF and 0.0 < quote.ask < _INF)
            ):
                return True
        return False

    def _value(self, field: str) -> float | None:
        """One field of the last recomputation, as its snapshot's ``value(field)`` would read it."""
        state = self._state
        if state is None:
            return None
        if field == "ratio":
            return self._ratio(state[6], state[2], state[7])
        return state[_FIELD_INDEX[field]]  # type: ignore[return-value]  # bid, ask, mid or z

    def _snapshot(self, update_z: bool) -> SpreadSnapshot:
        """Compute the spread from the engine's current quotes (caller checked quotability)."""
        bid, ask, mid, legs, fx, rates = self._values()
        now = self._engine.now_ns()
        if update_z:
            self._state = (bid, ask, mid, self._z.update(mid), fx, now, legs, rates)
            self._last = None
            return self.last  # type: ignore[return-value]
        z = self._state[3] if self._state is not None else None
        return self._build(bid, ask, mid, z, fx, now, legs, rates)

    def _values(
        self,
    ) -> tuple[float, float, float, tuple[Quote, ...], float | None, tuple[tuple[float, float], ...]]:
        """Bid, ask and mid from the engine's quotes through :class:`~cmc_lab.pricing.SpreadKernel`,
        the numbers :func:`~cmc_lab.pricing.spread_quote` computes from the same quotes."""
        quotes = self._engine._quotes
        kernel = self._kernel
        legs = tuple([quotes[i] for i in self._ids])
        fx_quote = quotes.get(FX_ID) if self.needs_fx else None
        fx = fx_quote.mid if fx_quote is not None else None
        seen = self._seen
        if fx_quote is not self._fx_seen or not self._rated:
            self._rates = kernel.rates(fx if fx else None)
            self._fx_seen, self._rated = fx_quote, True
            seen[:] = [None] * self._n
        rates = self._rates
        if kernel.formula is None:
            sell, buy, landed_pair = self._sell, self._buy, kernel.landed_pair
            for i in range(self._n):
                quote = legs[i]
                if quote is not seen[i]:
                    sell[i], buy[i] = landed_pair(i, quote.bid, quote.ask, rates[i])
                    seen[i] = quote
            bid, ask = kernel.combine_pair(sell, buy)
            mid = (bid + ask) / 2
        else:
            bid, ask, mid = kernel.executable(
                [q.bid for q in legs], [q.ask for q in legs], fx if fx else None
            )
        return float(bid), float(ask), float(mid), legs, fx, rates

    def _build(
        self,
        bid: float,
        ask: float,
        mid: float,
        z: float | None,
        fx: float | None,
        ts: int,
        legs: tuple[Quote, ...],
        rates: tuple[tuple[float, float], ...],
    ) -> SpreadSnapshot:
        bid_size, ask_size = self._sizes(legs)
        ratio = self._ratio(legs, mid, rates)
        return _new_snapshot(
            self.defn.name, self.defn.unit, bid, ask, mid, bid_size, ask_size, z, fx, ts, legs, ratio
        )

    def _sizes(self, legs: tuple[Quote, ...]) -> tuple[int, int]:
        """Whole spread units on each side (selling sells positive legs into their bids), as
        :func:`~cmc_lab.pricing.spread_quote` counts them."""
        positive, lots, ids = self._kernel.positive, self.lots, self._ids
        sell: list[int] = []
        buy: list[int] = []
        for i in range(self._n):
            quote = legs[i]
            if positive[i]:
                sell.append(quote.bid_size)
                buy.append(quote.ask_size)
            else:
                sell.append(quote.ask_size)
                buy.append(quote.bid_size)
        per_unit = [lots[i] for i in ids]
        return int(spread_units(sell, per_unit)), int(spread_units(buy, per_unit))

    def _ratio(
        self, legs: tuple[Quote, ...], mid: float, rates: tuple[tuple[float, float], ...]
    ) -> float | None:
        """The first leg's mid over the second leg's landed mid (a ratio spread: its own mid)."""
        kernel = self._kernel
        if kernel.kind == "ratio" and kernel.formula is None:
            return mid
        if self._n != 2:
            return None
        second = legs[1]
        seen, seen_rates, landed = self._ratio_seen
        if second is not seen or rates is not seen_rates:
            landed = float(kernel.landed(1, second.mid, rates[1]))
            self._ratio_seen = (second, rates, landed)
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
