"""The desk: an engine's spreads and hedge tickets, and the quote hook that drives triggers."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from cmc_lab.core.ids import FX_RATE_IDS
from cmc_lab.core.model import Event, Quote, Side, VenueConnected, VenueDisconnected
from cmc_lab.core.order import fire_callbacks, register_callback
from cmc_lab.core.ports import AlertSink, BookedFill, FeeLedger, JournalWriter, MarketView, OrderSender
from cmc_lab.core.runner import Runner
from cmc_lab.core.specs import Specs
from cmc_lab.execution.context import DeskContext
from cmc_lab.execution.flow import TicketFlow
from cmc_lab.execution.hedge import HedgePolicy, HedgeTicket, TicketState, parse_trigger
from cmc_lab.execution.roll import Holdings, plan_roll
from cmc_lab.execution.spread import SharedLegs, Spread, SpreadSnapshot, default_lots
from cmc_lab.execution.trigger import TriggerRule
from cmc_lab.pricing.spreads import CostTerms, SpreadDef, import_costs

SpreadCallback = Callable[[SpreadSnapshot], None]

_POLICY_FIELDS = {f.name for f in dataclasses.fields(HedgePolicy)}
_TRIGGER_OPTIONS = ("dwell_ms", "hysteresis", "repeat")
_ARMED = TicketState.ARMED


class Desk:
    """Spreads by name, tickets by id; recomputes a spread when one of its legs quotes.

    Built by the engine with the ports its spreads and tickets use: the market view (quotes,
    sessions), the order sender (checks, intents, sends), the journal writer, the runner (the
    loop) and the alert sink. It is the risk monitor's :class:`~cmc_lab.core.ports.TicketBook`.
    """

    def __init__(
        self,
        *,
        specs: Specs,
        market: MarketView,
        orders: OrderSender,
        journal: JournalWriter,
        runner: Runner,
        alerts: AlertSink,
    ) -> None:
        self.specs = specs
        self.market = market
        self.orders = orders
        self.journal = journal
        self.runner = runner
        self.alerts = alerts
        self._now_ns = market.now_ns  # the engine's clock, asked once per quote
        self.context = DeskContext(
            specs,
            market,
            orders,
            journal,
            runner,
            alerts,
            left_armed=self.ticket_left_armed,
            fired=self.ticket_fired,
            bookings_of=self.bookings_of,
        )
        #: the book's fees per order (risk's capital, wired by the engine: risk is built after the desk)
        self.fees: FeeLedger | None = None
        self.spreads: dict[str, Spread] = {}
        self.tickets: dict[str, HedgeTicket] = {}
        self._by_leg: dict[str, tuple[Spread, ...]] = {}  # replaced, never mutated: iterated per quote
        self._armed: dict[str, list[HedgeTicket]] = {}
        self._spread_callbacks: dict[str, list[SpreadCallback]] = {}
        self._ticket_seq = 0
        # Spreads on the same legs share their checks within a pass: a pass starts with each quote
        # and again after foreign code (callbacks, tickets) has run.
        self._shared = SharedLegs()

    # ------------------------------------------------------------------ spreads

    def add_spread(
        self,
        name: str,
        legs: Mapping[str, float],
        kind: str = "diff",
        *,
        lots: Mapping[str, int] | None = None,
        costs: Mapping[str, CostTerms] | None = None,
        formula: str | None = None,
        ratio_tolerance: float = 0.04,
        stale_after_ms: float = 3000.0,
        z_window: int = 300,
        fx: str = "USDCNH",
    ) -> Spread:
        if kind not in ("diff", "ratio"):
            raise ValueError(f"spread kind {kind!r} is not known; use 'diff' or 'ratio'")
        if not isinstance(legs, Mapping) or len(legs) < 2:
            raise ValueError(
                "legs must map at least two instrument ids to weights, e.g. {'SHFE.au': 1, 'COMEX.GC': -1}"
            )
        fx_id = FX_RATE_IDS.get(fx) if isinstance(fx, str) else None
        if fx_id is None:
            raise ValueError(
                f"fx={fx!r} is not a rate a spread converts at; use 'USDCNH' (offshore) or 'USDCNY' (onshore)"
            )
        ids = {i: self.market.instrument(i).id for i in legs}  # a product (SHFE.au) is its main month
        legs = {ids[i]: w for i, w in legs.items()}
        if lots is not None:
            lots = {ids.get(i, i): n for i, n in lots.items()}
        instruments = {i: self.market.instrument(i) for i in legs}
        if costs is None:  # a domestic contract against its overseas twin: VAT and premium by default
            costs = import_costs(instruments, self.specs.import_terms)
        defn = SpreadDef.from_ids(name, legs, instruments, kind=kind, costs=costs, formula=formula)  # type: ignore[arg-type]
        chosen = dict(lots) if lots is not None else default_lots(defn, ratio_tolerance)
        if set(chosen) != set(defn.ids) or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in chosen.values()
        ):
            raise ValueError(f"lots must give a whole number >= 1 for each leg: {', '.join(defn.ids)}")
        spread = Spread(
            self.market,
            defn,
            chosen,
            stale_after_ms=stale_after_ms,
            z_window=z_window,
            shared=self._shared,
            fx_id=fx_id,
        )
        if spread.needs_fx and fx_id not in self.market.instruments:
            raise ValueError(
                f"spread {name!r} converts at {fx}, which this engine does not quote; connect its FX venue"
            )
        old = self.spreads.get(name)
        if old is not None:  # a redefinition replaces the old spread everywhere, FX included
            for leg, spreads in self._by_leg.items():
                self._by_leg[leg] = tuple(s for s in spreads if s is not old)
        self.spreads[name] = spread
        for leg in (*spread.leg_ids, *((spread.fx_id,) if spread.needs_fx else ())):
            self._by_leg[leg] = (*self._by_leg.get(leg, ()), spread)
        return spread

    def prepare_roll(
        self, instrument_id: str, to: str | None, qty: int | None, book: Holdings
    ) -> tuple[Spread, Side, int]:
        """The calendar spread, side and lots that roll the position of the month's venue account (all
        of it unless ``qty``, to the next quoted month unless ``to``); ValueError naming the fix."""
        near = self.market.instrument(instrument_id)
        far = self.market.instrument(to) if to is not None else None
        name = book.account_name(near.venue)
        held = book.position(name, near.id)
        plan = plan_roll(near, far, held, name, qty, list(self.specs.instruments.values()))
        spread = self.spreads.get(plan.spread_name) or self.add_spread(plan.spread_name, plan.legs)
        return spread, plan.side, plan.qty

    def spread(self, name: str | Spread) -> Spread:
        if isinstance(name, Spread):
            return name
        if not isinstance(name, str):
            raise ValueError(
                f"spread {name!r} is not a spread's name; pass a name such as 'au_gc', or a Spread"
            )
        try:
            return self.spreads[name]
        except KeyError:
            known = ", ".join(self.spreads) or "none yet"
            raise KeyError(
                f"no spread {name!r}; define it with eng.spread({name!r}, legs={{...}}) (defined: {known})"
            ) from None

    def on_spread(self, name: str, callback: SpreadCallback, remove: bool = False) -> None:
        """``callback(snapshot)`` on every recomputation of the spread (engine thread)."""
        self.spread(name)
        register_callback(self._spread_callbacks.setdefault(name, []), callback, remove)

    def snapshot(self, spread: Spread) -> SpreadSnapshot | None:
        self._shared.pass_no += 1
        return spread.last if spread._update(self.market.now_ns()) else None

    def on_quote(self, quote: Quote) -> None:
        """A leg (or FX) quoted: recompute its spreads; armed tickets see it (None: not quotable).

        The snapshot object is built only for subscribers and for tickets whose trigger acts on
        this value (:func:`_trigger_acts`); for the others a quote is a few comparisons.
        """
        spreads = self._by_leg.get(quote.instrument_id)
        if not spreads:
            return
        runner, shared = self.runner, self._shared
        now = self._now_ns()
        shared.pass_no += 1
        armed_by_name, callbacks_by_name = self._armed, self._spread_callbacks
        for spread in spreads:  # a tuple: a callback that adds a spread does not disturb this loop
            name = spread.defn.name
            armed = armed_by_name.get(name)  # taken before the callbacks run, as the tickets to feed
            callbacks = callbacks_by_name.get(name) if callbacks_by_name else None
            quotable = spread._update(now)
            if quotable and callbacks:
                runner.report(fire_callbacks(callbacks, spread.last))
                shared.pass_no += 1
            if not armed:
                continue
            # The usual case, read without a call: each trigger waits (nothing pending, no release
            # owed) for a value it does not see, so _trigger_acts would say False for each.
            # Anything else goes to _feed, which asks _trigger_acts of every ticket.
            state, fields = spread._state, spread._fields
            for ticket in armed:
                probe = ticket.trigger._waiting  # type: ignore[union-attr]  # armed: it has a trigger
                if probe is None:
                    break
                if quotable:
                    place, field, holds, level = probe
                    index = fields[place]
                    value = state[index] if index is not None else spread._value(field)  # type: ignore[index]
                    if value is not None and holds(value, level):  # type: ignore[arg-type]  # bid, ask or mid
                        break
            else:
                continue
            self._feed(armed, spread, quotable)

    def _feed(self, armed: list[HedgeTicket], spread: Spread, quotable: bool) -> None:
        """Give the recomputation to the tickets whose trigger it may change (the snapshot is built
        here, once)."""
        acting = [t for t in armed if t.spread is spread and _trigger_acts(t, spread, quotable)]
        if acting:
            snap = spread.last if quotable else None
            with self.journal.batch():
                for ticket in acting:
                    ticket._on_quote_snapshot(snap)
            self._shared.pass_no += 1

    def on_venue_event(self, event: Event) -> None:
        """A venue dropped or came back (engine loop, after the router journaled it; other events
        are not the desk's): a ticket's orders working there are unresolved until the venue
        returns; then the ticket reconciles them and resumes."""
        if not isinstance(event, VenueConnected | VenueDisconnected):
            return
        with self.journal.batch():
            for ticket in list(self.tickets.values()):
                if ticket.done:
                    continue
                if isinstance(event, VenueDisconnected):
                    ticket.on_venue_down(event.venue)
                else:
                    ticket.on_venue_up(event.venue)

    # ------------------------------------------------------------------ tickets

    def prepare(
        self,
        spread: str | Spread,
        side: str | Side,
        qty: int,
        when: str | None,
        policy: str,
        options: dict[str, Any],
    ) -> tuple[Spread, Side, int, HedgePolicy, TriggerRule | None]:
        """Validate a hedge request in the caller's thread: every mistake is a clear ValueError."""
        sp = self.spread(spread)
        parsed_side = Side.parse(side)
        first = sp.leg_ids[0]
        per_unit = sp.lots[first]
        if isinstance(qty, bool) or not isinstance(qty, numbers.Integral) or qty < 1:
            raise ValueError(f"qty must be a whole number of {first} lots >= 1, got {qty!r}")
        qty = int(qty)  # numpy integers welcome
        if qty % per_unit:
            ratio = ":".join(str(sp.lots[i]) for i in sp.leg_ids)
            lower = qty // per_unit * per_unit or per_unit
            raise ValueError(
                f"qty {qty} is not a multiple of the {ratio} lot ratio of {sp.name}; use {lower} or "
                f"{lower + per_unit} lots of {first} (or set lots= on the spread)"
            )
        for leg_id in sp.leg_ids:
            inst = self.market.instrument(leg_id)
            lots = qty // per_unit * sp.lots[leg_id]
            if lots > inst.max_order_qty:
                raise ValueError(
                    f"qty {qty} means {lots} lots of {leg_id}, above its largest order of "
                    f"{inst.max_order_qty} lots; split the hedge into smaller tickets"
                )
        trigger_options = {k: options.pop(k) for k in _TRIGGER_OPTIONS if k in options}
        unknown = sorted(set(options) - _POLICY_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown hedge option {', '.join(unknown)}; known: "
                f"{', '.join(sorted(_POLICY_FIELDS - {'policy'}))}, {', '.join(_TRIGGER_OPTIONS)}"
            )
        hedge_policy = HedgePolicy(policy=policy, **options)
        repeat = trigger_options.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be a whole number of tickets >= 1, got {repeat!r}")
        if when is None and (repeat > 1 or {"dwell_ms", "hysteresis"} & set(trigger_options)):
            name = "repeat" if repeat > 1 else min({"dwell_ms", "hysteresis"} & set(trigger_options))
            raise ValueError(
                f"{name}={trigger_options[name]!r} needs a trigger: pass when='ask <= ...' "
                "(without one the ticket fires once, now)"
            )
        trigger = parse_trigger(
            when,
            _at_least_zero("dwell_ms", trigger_options.get("dwell_ms", 0.0), "milliseconds"),
            _at_least_zero("hysteresis", trigger_options.get("hysteresis", 0.0), "in the spread's unit"),
            repeat,
        )
        return sp, parsed_side, qty // per_unit, hedge_policy, trigger

    async def start(
        self, spread: Spread, side: Side, units: int, policy: HedgePolicy, trigger: TriggerRule | None
    ) -> HedgeTicket:
        return self._new_ticket(spread, side, units, policy, trigger, None)

    def _new_ticket(
        self,
        spread: Spread,
        side: Side,
        units: int,
        policy: HedgePolicy,
        trigger: TriggerRule | None,
        series: list[HedgeTicket] | None,
    ) -> HedgeTicket:
        self._ticket_seq += 1
        ticket_id = f"T{self.orders.id_prefix}-{self._ticket_seq:04d}"
        ticket = HedgeTicket(self.context, ticket_id, spread, side, units, policy, trigger, series)
        self.tickets[ticket_id] = ticket
        if trigger is not None:
            self._armed.setdefault(spread.name, []).append(ticket)
        with self.journal.batch():
            ticket._start()
        return ticket

    def bookings_of(self, client_order_id: str) -> Sequence[BookedFill]:
        """One order's fills as the book took them (fees included); none until the engine wires the book."""
        return self.fees.bookings_of(client_order_id) if self.fees is not None else ()

    def ticket_fired(self, ticket: HedgeTicket) -> None:
        """A repeating trigger fired: the next ticket of the series waits ARMED (up to its count)."""
        trigger = ticket.trigger
        if trigger is None or trigger.exhausted:
            return
        self._new_ticket(ticket.spread, ticket.side, ticket.units, ticket.policy, trigger, ticket.series)

    def ticket_left_armed(self, ticket: TicketFlow) -> None:
        name = ticket.spread.name  # a ticket waits under its spread's name only
        armed = self._armed.get(name)
        if armed and any(t is ticket for t in armed):
            self._armed[name] = [t for t in armed if t is not ticket]  # replaced: the desk may be iterating

    def ticket(self, ticket_id: str) -> HedgeTicket:
        try:
            return self.tickets[ticket_id]
        except KeyError:
            raise KeyError(f"no ticket {ticket_id!r} in this session") from None

    def frame(self) -> pd.DataFrame:
        rows = []
        for t in list(self.tickets.values()):
            row = {
                "ticket": t.ticket_id,
                "spread": t.spread.name,
                "side": t.side.value,
                "units": t.units,
                "state": t.state.value,
                "reason": t.reason,
                "attempts": t.attempts,
                "series": t.series[0].ticket_id,
                "naked": t.naked_text(),
            }
            for leg in t.legs:
                row[f"{leg.id} filled"] = f"{leg.net}/{leg.target}"
            rows.append(row)
        columns = ("ticket", "spread", "side", "units", "state", "reason", "attempts", "series", "naked")
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(columns))

    def working(self) -> list[HedgeTicket]:
        waiting = (TicketState.NEW, TicketState.ARMED, TicketState.DISARMED)
        return [t for t in self.tickets.values() if not t.done and t.state not in waiting]

    # ------------------------------------------------------------------ the risk monitor's ticket book

    def spread_legs(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(spread.leg_ids) for name, spread in list(self.spreads.items())}

    def hedged_units(self) -> dict[str, int]:
        """Hedged units open per spread: filled hedge tickets less the ones that offset them."""
        out: dict[str, int] = {}
        for t in list(self.tickets.values()):
            hedged = min(leg.net // leg.lots_per_unit for leg in t.legs)
            if hedged > 0:
                out[t.spread.name] = out.get(t.spread.name, 0) + t.side.sign * hedged
        return out

    def legged_exposure(self) -> float:
        return sum(t.legged_exposure() for t in list(self.tickets.values()) if not t.is_balanced)

    def unwind(self, spread: str, units: int, reason: str) -> str:
        """Start a ticket (policy unwind) that closes ``units`` of a spread: > 0 sells, < 0 buys."""
        sp = self.spread(spread)
        side = Side.SELL if units > 0 else Side.BUY
        ticket = self._new_ticket(sp, side, abs(units), HedgePolicy(policy="unwind"), None, None)
        return f"{side.value} {abs(units)} unit(s) of {sp.name} ({ticket.ticket_id}: {reason})"


def _trigger_acts(ticket: HedgeTicket, spread: Spread, quotable: bool) -> bool:
    """Whether ``ticket._on_quote_snapshot`` would change anything for this recomputation.

    Mirrors :meth:`TriggerRule.update`: a ticket not ARMED, a trigger paused or used up, a value
    waiting for its release or simply not meeting the condition with nothing pending leaves the
    trigger as it is and journals nothing, so the ticket need not be called (nor the snapshot built).
    """
    trigger = ticket.trigger
    if ticket.state is not _ARMED or trigger is None or not trigger.armed:
        return False
    if trigger.max_count is not None and trigger.count >= trigger.max_count:  # exhausted
        return False
    condition = trigger.condition
    value = condition.read(spread._value) if quotable else None
    if value is None or not math.isfinite(value):
        return trigger._pending_since is not None
    if trigger._needs_release:
        return condition.released(value, trigger.hysteresis)
    return trigger._pending_since is not None or condition.holds(value)


def _at_least_zero(name: str, value: object, unit: str) -> float:
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not 0 <= number < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0 ({unit}), got {value!r}")
    return number
