"""Live spreads: a SpreadDef bound to an engine's quotes, with staleness checks and lot ratio."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from html import escape

import pandas as pd

from cmc_lab.core.hours import TradingHours
from cmc_lab.core.ids import FX_VENUE, USDCNH_ID
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Quote
from cmc_lab.core.ports import MarketView
from cmc_lab.execution.spread_snapshot import SpreadSnapshot, new_snapshot
from cmc_lab.execution.trigger import FIELDS, RollingZ
from cmc_lab.pricing.spreads import SpreadDef
from cmc_lab.pricing.units import best_lot_ratio, spread_units

_INF = math.inf
_INF_NS = 2**63
Rates = tuple[tuple[float, float], ...]
# One recomputation: bid, ask, mid, fx, ts, the leg quotes, the FX rates they were landed at. Its
# z-score is the rolling z's newest (every recomputation adds its mid there and replaces this).
_State = tuple[float, float, float, float | None, int, tuple[Quote, ...], Rates]
#: Where a trigger field sits in a recomputation (``ratio`` and ``z`` are worked out when asked
#: for, but a ratio spread's ratio is its mid); ``_FIELDS`` has it for each of trigger.FIELDS.
_FIELD_INDEX = {"bid": 0, "ask": 1, "mid": 2}
_FIELDS = tuple(_FIELD_INDEX.get(f) for f in FIELDS)
_RATIO_FIELDS = tuple({**_FIELD_INDEX, "ratio": 2}.get(f) for f in FIELDS)


class SpreadNotQuotable(RuntimeError):
    """A spread with a stale, missing or closed leg (or FX); the message names which and why.

    ``leg`` is the instrument id at fault (``FX.USDCNH`` for the rate), ``why`` the cause alone.
    """

    def __init__(self, message: str, leg: str = "", why: str = "") -> None:
        super().__init__(message)
        self.leg = leg
        self.why = why


class Spread:
    """A named spread on an engine: executable quote, lot ratio, rolling z-score of the mid.

    ``lots`` says how many lots of each leg trade together (by default the smallest whole
    ratio within ``ratio_tolerance`` of equal physical quantity: 3 SHFE au : 1 COMEX GC).
    ``fx_id`` is the rate it converts at: offshore ``FX.USDCNH`` (by default: it trades around
    the clock, as the overseas leg does) or onshore ``FX.USDCNY`` (quoted 09:30-03:00 Beijing).

    Examples
    --------
    >>> sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})   # doctest: +SKIP
    >>> sp.quote().ask, sp.lots                                         # doctest: +SKIP
    """

    def __init__(
        self,
        market: MarketView,
        defn: SpreadDef,
        lots: Mapping[str, int],
        *,
        stale_after_ms: float = 3000.0,
        z_window: int = 300,
        shared: SharedLegs | None = None,
        fx_id: str = USDCNH_ID,
    ) -> None:
        self._market = market
        self.fx_id = fx_id
        self.fx_name = fx_id.split(".", 1)[1]
        self.defn = defn
        self.lots = dict(lots)
        if isinstance(z_window, bool) or not isinstance(z_window, int) or z_window < 2:
            raise ValueError(
                f"z_window={z_window!r} must be a whole number of updates >= 2 (the z-score's window; default 300)"
            )
        self.z_window = z_window
        self._z = RollingZ(z_window, min_samples=min(30, z_window))
        self.needs_fx = len({i.currency.replace("CNH", "CNY") for i in defn.instruments}) > 1
        self._kernel = defn.kernel
        ratio = self._kernel.kind == "ratio" and self._kernel.formula is None
        self._fields = _RATIO_FIELDS if ratio else _FIELDS  # trigger field -> place in _state
        self._ids = defn.ids
        self._n = len(self._ids)
        self._watch: tuple[tuple[str, str, TradingHours], ...] | None = None  # legs and FX: id, venue, hours
        self._hours: tuple[TradingHours, ...] = ()
        self._open_since = self._open_until = 0  # every session open in [since, until)
        # The desk's per-quote recomputation: False when not quotable (as not_quotable_reason
        # would say), else recompute, add the mid to the z-score and keep the numbers for `last`.
        # Bound on first use (_live_legs), when the engine's instruments are resolved; the legs'
        # half is shared with the desk's other spreads on the same legs (SharedLegs).
        self._shared = shared if shared is not None else SharedLegs()
        self._update: Callable[[int], bool] = self._first_update
        self.stale_after_ns = int(stale_after_ms * 1e6)
        self._ratio_seen: tuple[Quote | None, object, float] = (None, None, 0.0)
        # The last recomputation (bid, ask, mid, fx, ts, legs, rates) and its snapshot, built
        # when first asked for: the desk only needs the numbers unless someone looks.
        self._state: _State | None = None
        self._last: SpreadSnapshot | None = None

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def stale_after_ns(self) -> int:
        """How old a leg's (or FX's) quote may be, in ns, for the spread to be quotable."""
        return self._stale_after_ns

    @stale_after_ns.setter
    def stale_after_ns(self, value: int) -> None:
        self._stale_after_ns = value
        self._update = self._first_update  # the per-quote path is bound to the limit: bind again

    @property
    def last(self) -> SpreadSnapshot | None:
        """The snapshot of the last recomputation on a quote (the one subscribers were given)."""
        snap = self._last
        state = self._state
        if snap is None and state is not None:
            bid, ask, mid, fx, ts, legs, rates = state
            snap = self._last = self._build(bid, ask, mid, self._z.current(), fx, ts, legs, rates)
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
        return self._snapshot()

    def not_quotable_reason(self) -> str | None:
        """Why the spread cannot be quoted now (naming the leg or FX), or None."""
        fault = self._fault()
        return None if fault is None else f"{_label(fault[0])} {fault[0]}: {fault[1]}"

    def _fault(self) -> tuple[str, str] | None:
        eng = self._market
        now = eng.now_ns()
        if self._watch is None:
            self._resolve()
        if (self._open_since <= now < self._open_until or self._sessions_open(now)) and not self._fault_at(
            now
        ):
            return None  # the per-quote checks say quotable; the loop below names what is not
        ids = list(self.leg_ids) + ([self.fx_id] if self.needs_fx else [])
        for iid in ids:
            inst: Instrument = eng.instrument(iid)
            if not eng.venue_up.get(inst.venue, False):
                return iid, f"venue {inst.venue} is not connected"
            if not inst.hours.is_open(now):
                return iid, f"session closed ({inst.hours.calendar_reason(now) or inst.hours.describe()})"
            quote = eng.quotes.get(iid)
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

    def _first_update(self, now: int) -> bool:
        if self._watch is None:
            self._resolve()
        if self._kernel.formula is not None:
            self._update = self._update_formula
        else:
            self._update = self._shared.update_for(self)
        return self._update(now)

    def _update_formula(self, now: int) -> bool:
        if not self._open_since <= now < self._open_until and not self._sessions_open(now):
            return False
        if self._fault_at(now):
            return False
        bid, ask, mid, legs, fx, rates = self._values()
        self._z.push(mid)
        self._state = (bid, ask, mid, fx, now, legs, rates)
        self._last = None
        return True

    def _resolve(self) -> None:
        eng = self._market
        watched = [eng.instrument(iid) for iid in self._ids]
        if self.needs_fx:
            watched.append(eng.instrument(self.fx_id))
        self._hours = tuple({id(i.hours): i.hours for i in watched}.values())
        self._watch = tuple((inst.id, inst.venue, inst.hours) for inst in watched)

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
        quotes, up, stale = self._market.quotes, self._market.venue_up, self.stale_after_ns
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
        if field == "z":
            return self._z.current()
        if field == "ratio":
            return self._ratio(state[5], state[2], state[6])
        return state[_FIELD_INDEX[field]]  # type: ignore[return-value]  # bid, ask or mid

    def _snapshot(self) -> SpreadSnapshot:
        """Compute the spread from the engine's current quotes (caller checked quotability), with
        the z-score of the last recomputation."""
        bid, ask, mid, legs, fx, rates = self._values()
        z = self._z.current() if self._state is not None else None
        return self._build(bid, ask, mid, z, fx, self._market.now_ns(), legs, rates)

    def _values(
        self,
    ) -> tuple[float, float, float, tuple[Quote, ...], float | None, tuple[tuple[float, float], ...]]:
        """Bid, ask and mid from the engine's quotes through :class:`~cmc_lab.pricing.spreads.SpreadKernel`,
        the numbers :func:`~cmc_lab.pricing.spreads.spread_quote` computes from the same quotes."""
        quotes = self._market.quotes
        kernel = self._kernel
        legs = tuple([quotes[i] for i in self._ids])
        fx_quote = quotes.get(self.fx_id) if self.needs_fx else None
        fx = fx_quote.mid if fx_quote is not None else None
        bid, ask, mid = kernel.executable([q.bid for q in legs], [q.ask for q in legs], fx if fx else None)
        return float(bid), float(ask), float(mid), legs, fx, kernel.rates(fx if fx else None)

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
        return new_snapshot(
            self.defn.name,
            self.defn.unit,
            bid,
            ask,
            mid,
            bid_size,
            ask_size,
            z,
            fx,
            ts,
            legs,
            ratio,
            self.fx_name,
        )

    def _sizes(self, legs: tuple[Quote, ...]) -> tuple[int, int]:
        """Whole spread units on each side (selling sells positive legs into their bids), as
        :func:`~cmc_lab.pricing.spreads.spread_quote` counts them."""
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


class SharedLegs:
    """Legs checked and landed once per desk pass for every spread that lands them alike.

    Spreads on the same legs with the same weights' signs, cost terms and staleness limit (a diff
    and a ratio of one pair, one pair at two lot ratios) need the same checks and the same landed
    prices on each quote. The desk starts a new pass (``pass_no``) on each quote and again after
    any callback or ticket has run (either may move quotes or venues), so a check is reused only
    while nothing can have changed its answer.
    """

    def __init__(self) -> None:
        self.pass_no = 0
        self._groups: dict[tuple[object, ...], Callable[[Spread], Callable[[int], bool]]] = {}

    def update_for(self, spread: Spread) -> Callable[[int], bool]:
        """The spread's per-quote recomputation (``Spread._update``), its legs' half shared."""
        key = (spread._ids, spread._kernel.leg_terms, spread.stale_after_ns, spread.fx_id)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _live_legs(spread, self)
        return group(spread)


def _live_legs(first: Spread, shared: SharedLegs) -> Callable[[Spread], Callable[[int], bool]]:
    """The per-quote path of the spreads without a formula that land ``first``'s legs alike.

    ``update(now)`` is False when not quotable (as ``not_quotable_reason`` would say), else it
    recomputes, adds the mid to the z-score and keeps the numbers for ``Spread.last``. The checks
    of ``Spread._fault`` and the numbers of ``Spread._values``, fused: sessions are checked once
    per window boundary, a book once per quote (and pass, for every spread of the group), and
    only a leg that quoted (or whose FX rate moved) is landed again. Landing and joining are
    :meth:`SpreadKernel.landed_pair`'s and ``combine_pair``'s operations written out, in their
    order. What it reads is bound here once, the legs' state in cells the group's updates share:
    a closure's cells are the cheapest reads Python has, and this runs for every spread of every
    leg quote (test_quote_path checks the numbers' bits).
    """
    eng, kernel = first._market, first._kernel
    get, up = eng.quotes.get, eng.venue_up  # the engine's own dicts (every venue has a key)
    stale = first.stale_after_ns
    fx_legs = kernel.fx_legs
    legs = tuple(
        # A leg in the first leg's money and unit with no cost terms lands as it is: its rate is
        # always (1.0, 1.0) and its factor 1.0, and x * 1.0 / 1.0 / 1.0 is x, exactly.
        (i, inst.id, inst.venue, factor, cost, positive, i not in fx_legs and factor == 1.0 and cost is None)
        for i, (inst, (factor, cost, positive)) in enumerate(
            zip(first.defn.instruments, kernel.leg_terms, strict=True)
        )
    )
    fx_id = first.fx_id
    fx_venue = eng.instrument(fx_id).venue if first.needs_fx else None
    live_rates = kernel.live_rates
    seen: list[Quote | None] = [None] * len(legs)  # the quote each leg was last landed from
    sell = [0.0] * len(legs)  # landed price of each leg when selling the spread
    buy = [0.0] * len(legs)
    rates = kernel.rates(None) if fx_venue is None else ()
    fx_seen: Quote | None = None
    fx: float | None = None
    checked_pass = checked_at = -1  # the pass and instant of the last check, its answer and quotes
    quotable = False
    landed: tuple[Quote, ...] = ()

    def bind(spread: Spread) -> Callable[[int], bool]:
        two = spread._kernel.n == 2
        ratio = spread._kernel.kind == "ratio"
        w0, w1 = spread._kernel.weights[0], spread._kernel.weights[-1]
        combine_pair, push = spread._kernel.combine_pair, spread._z.push

        def update(now: int) -> bool:
            nonlocal rates, fx_seen, fx, checked_pass, checked_at, quotable, landed
            if not spread._open_since <= now < spread._open_until and not spread._sessions_open(now):
                return False
            if shared.pass_no != checked_pass or now != checked_at:  # the group's first this pass
                checked_pass, checked_at, quotable = shared.pass_no, now, False
                fresh_after = now - stale  # a quote stamped before this is stale
                if fx_venue is not None:
                    fx_quote = get(fx_id)
                    if fx_quote is None or fx_quote.ts_event < fresh_after or not up[fx_venue]:
                        return False
                    if fx_quote is not fx_seen:
                        bid, ask = fx_quote.bid, fx_quote.ask
                        if not (0.0 < bid < _INF and 0.0 < ask < _INF):
                            return False
                        fx_mid = (bid + ask) / 2  # Quote.mid
                        if fx_mid != fx:  # a new rate: the legs it converts are landed again
                            rates, fx = live_rates(fx_mid), fx_mid
                            for i in fx_legs:
                                seen[i] = None
                        fx_seen = fx_quote
                for i, iid, venue, factor, cost, positive, as_is in legs:
                    quote = get(iid)
                    if quote is None or quote.ts_event < fresh_after or not up[venue]:
                        return False
                    if quote is not seen[i]:
                        bid, ask = quote.bid, quote.ask
                        if not (0.0 < bid < _INF and 0.0 < ask < _INF):
                            return False
                        if as_is:
                            low, high = bid, ask
                        else:
                            m, d = rates[i]
                            if cost is None:
                                low, high = bid * m / d / factor, ask * m / d / factor
                            else:
                                premium, vat, fixed = cost
                                low = (bid + premium) * m / d / factor * vat + fixed
                                high = (ask + premium) * m / d / factor * vat + fixed
                        if positive:  # sold at its bid when the spread is sold
                            sell[i], buy[i] = low, high
                        else:
                            sell[i], buy[i] = high, low
                        seen[i] = quote
                landed, quotable = tuple(seen), True  # type: ignore[arg-type]  # every leg seen now
            elif not quotable:
                return False
            if not two:
                bid, ask = combine_pair(sell, buy)
            elif ratio:
                bid, ask = sell[0] / sell[1], buy[0] / buy[1]
            else:
                bid, ask = w0 * sell[0] + w1 * sell[1], w0 * buy[0] + w1 * buy[1]
            bid, ask = float(bid), float(ask)
            mid = (bid + ask) / 2
            push(mid)
            spread._state = (bid, ask, mid, fx, now, landed, rates)
            spread._last = None
            return True

        return update

    return bind


def _label(iid: str) -> str:
    return "FX" if iid.startswith(FX_VENUE + ".") else "leg"


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


class SpreadBook(dict[str, Spread]):
    """``eng.spreads``: the spreads by name (``eng.spreads["au_gc"]``), and called like
    ``eng.tickets()`` / ``eng.alerts()`` a table of them: ``eng.spreads()``."""

    def __call__(self) -> pd.DataFrame:
        rows = []
        for name, sp in self.items():
            try:
                snap: SpreadSnapshot | None = sp.quote()
            except SpreadNotQuotable:  # a leg stale or closed: the row says so with no prices
                snap = None
            rows.append(
                {
                    "spread": name,
                    "legs": " / ".join(f"{i} x{sp.lots[i]}" for i in sp.leg_ids),
                    "kind": sp.defn.kind,
                    "bid": snap.bid if snap is not None else None,
                    "ask": snap.ask if snap is not None else None,
                    "z_window": sp.z_window,
                }
            )
        columns = ["spread", "legs", "kind", "bid", "ask", "z_window"]
        return pd.DataFrame(rows, columns=columns).set_index("spread")
