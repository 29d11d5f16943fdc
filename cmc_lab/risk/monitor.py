"""Risk monitor: wires limits, order activity, capital, transfers and thresholds to one engine.

The engine owns one :class:`RiskMonitor` (``eng.risk``) and calls two hooks on its loop: every
quote (:meth:`RiskMonitor.on_quote`, kept cheap: a dict lookup unless the instrument is held)
and every order event after it is journaled and applied (:meth:`RiskMonitor.on_order_event`).
It is also the pre-trade checks' view of risk state and computes the threshold metrics and runs
their actions.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmc_lab.core.ids import FX_RATE_IDS, venue_of
from cmc_lab.core.instruments import Instrument, MarginKind
from cmc_lab.core.model import (
    OrderAccepted,
    OrderCancelRequested,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PriceLimitsPublished,
    Quote,
    Side,
    TimeInForce,
)
from cmc_lab.core.ports import AlertSink, JournalWriter, MarketView, OrderSender, TicketBook
from cmc_lab.core.runner import Runner
from cmc_lab.core.specs import Specs
from cmc_lab.core.trading import TradingState
from cmc_lab.risk.account_terms import to_money
from cmc_lab.risk.capital import Capital, ceil_money
from cmc_lab.risk.capital_view import CapitalView
from cmc_lab.risk.flatten import CannotFlatten, closing_requests
from cmc_lab.risk.funding import amount_needed, best_source
from cmc_lab.risk.margin_calls import MarginCalls
from cmc_lab.risk.pretrade import OrderActivity, RiskLimits, trading_day
from cmc_lab.risk.rules import Crossing, Rule
from cmc_lab.risk.thresholds import Thresholds
from cmc_lab.risk.transfers import Transfer, Transfers, TransferState

if TYPE_CHECKING:
    from cmc_lab.core.order import Order

_SAMPLES = 20_000  # per windowed series; older samples fall off


class RiskMonitor:
    """Limits, order activity, capital, transfers and threshold rules of one engine (engine loop)."""

    def __init__(
        self,
        *,
        specs: Specs,
        market: MarketView,
        orders: OrderSender,
        journal: JournalWriter,
        runner: Runner,
        alerts: AlertSink,
        tickets: TicketBook,
        venues: list[str],
        accounts: Mapping[str, Any] | None = None,
    ) -> None:
        self.market = market
        self.orders = orders
        self.runner = runner
        self.alerts = alerts
        self.tickets = tickets
        self.venues = venues
        self._journal = journal
        self.limits = RiskLimits()
        self.activity = OrderActivity(self.limits, alerts)
        self.capital = Capital(specs, market.instruments.values(), accounts)
        self.transfers = Transfers(
            self.capital.accounts,
            resolve=self.capital.account_name,
            withdrawable=lambda name: self.capital.figures(name).withdrawable,
            live_rate=self.capital.fx_book.live_rate,
            call_later=lambda delay, callback: runner.loop.call_later(delay, callback),
            journal=self.journal,
            now_ns=market.now_ns,
            mono_ns=market.mono_ns,
            delay_s=specs.capital.transfer_delay_s,
            id_prefix=f"X{orders.id_prefix}",
            on_change=self._on_transfer,
        )
        self.thresholds = Thresholds(runner, market, self)
        self.margin_calls = MarginCalls(self.capital, alerts)
        self._opening: dict[str, int] = {}  # client order id -> lots that open a position
        self._arrival: dict[str, float] = {}  # client order id -> touch when it left
        self.acks: deque[tuple[int, str, float]] = deque(maxlen=_SAMPLES)
        self.sent: deque[tuple[int, str]] = deque(maxlen=_SAMPLES)
        self.rejects: deque[tuple[int, str]] = deque(maxlen=_SAMPLES)
        self.slippage: deque[tuple[int, str, float]] = deque(maxlen=_SAMPLES)
        self._blockers: set[tuple[str, str]] = set()
        self._mids: dict[str, tuple[Quote, Decimal]] = {}
        self._reducing_ours = False

    # ================================================================== checks' view

    def known(self, instrument_id: str) -> bool:
        return instrument_id in self.market.instruments

    def reference_price(self, inst: Instrument) -> tuple[Decimal, str]:
        quote = self.market.quotes.get(inst.id)
        if quote is None or not (quote.bid > 0 and quote.ask > 0):
            return inst.reference_price, "spec reference price"
        cached = self._mids.get(inst.id)
        if cached is None or cached[0] is not quote:
            low = Decimal(str(quote.bid))
            cached = self._mids[inst.id] = (quote, low + (Decimal(str(quote.ask)) - low) / 2)
        return cached[1], "last mid"

    def reference_mid(self, inst: Instrument) -> float:
        """:meth:`reference_price` as a float, for a check's screen that needs no exact figure."""
        quote = self.market.quotes.get(inst.id)
        if quote is None or not (quote.bid > 0 and quote.ask > 0):
            return float(inst.reference_price)
        return (quote.bid + quote.ask) / 2

    def day_limits(self, inst: Instrument) -> PriceLimitsPublished | None:
        """The price limits of the trading day as the instrument's venue last published them."""
        return self.market.limits.get(inst.id)

    def margin_text(self, inst: Instrument) -> str:
        """The instrument's current margin rate as ``eng.instruments`` shows it."""
        rate = self.capital.rates.get(inst.id)
        kind, value = (rate.kind, rate.rate) if rate is not None else (inst.margin_kind, inst.margin_rate)
        return f"{value:%}" if kind is MarginKind.PERCENT else f"{value} /lot"

    # ================================================================== hooks (engine loop)

    def on_quote(self, quote: Quote) -> None:
        if self.capital.on_quote(quote):
            self.thresholds.poke("capital")
            self.margin_calls.on_quote(quote.ts_event)

    def on_order_event(self, order: Order, event: OrderEvent) -> None:
        now = event.ts_init  # when the engine saw it: a restart's replay counts each event on its own day
        cid = order.client_order_id
        if isinstance(event, OrderFilled):
            self._on_fill(order, event, now)
        elif isinstance(event, OrderSubmitted):
            self._on_submitted(order, now)
        elif isinstance(event, OrderAccepted):
            sent = self.activity.submitted_at(order)
            if sent is not None:
                self.acks.append((now, order.instrument.venue, (now - sent) / 1e6))
            self.thresholds.poke("orders")
        elif isinstance(event, OrderRejected):
            self.rejects.append((now, order.instrument.venue))
            self.thresholds.poke("orders")
        elif isinstance(event, OrderCancelRequested):
            self._on_cancel_requested(order, now)
        if order.done:
            self.activity.on_done(order)
            self._opening.pop(cid, None)
            self._arrival.pop(cid, None)
            self.capital.release(order.account, cid)

    def _on_submitted(self, order: Order, now: int) -> None:
        self.activity.on_submitted(order, now)
        self.sent.append((now, order.instrument.venue))
        cap = self.capital
        if order.account in cap.accounts:
            pos = cap.position(order.account, order.instrument_id)
            opening = order.qty if pos * order.side.sign >= 0 else max(0, order.qty - abs(pos))
            if opening:
                self._opening[order.client_order_id] = opening
                cap.reserve(
                    order.account,
                    order.client_order_id,
                    cap.order_margin(order.account, order.instrument, opening, order.price),
                )
        quote = self.market.quotes.get(order.instrument_id)
        if quote is not None:
            self._arrival[order.client_order_id] = quote.ask if order.side is Side.BUY else quote.bid
        self.thresholds.poke("orders")

    def _on_fill(self, order: Order, fill: OrderFilled, now: int) -> None:
        cap = self.capital
        inst = order.instrument
        day = trading_day(inst.hours, fill.ts_event)  # close today vs close yesterday, fees in force
        cap.apply_fill(
            order.account,
            inst,
            fill.side,
            fill.last_px,
            fill.last_qty,
            day=day,
            order_id=order.client_order_id,
            offset=order.offset,
        )
        cid = order.client_order_id
        opening = self._opening.get(cid)
        if opening is not None and not order.done:
            left = min(opening, order.leaves_qty)
            cap.reserve(
                order.account, cid, cap.order_margin(order.account, order.instrument, left, order.price)
            )
        arrival = self._arrival.get(cid)
        if arrival:
            worse = (fill.last_px - Decimal(str(arrival))) * fill.side.sign / order.instrument.tick
            self.slippage.append((now, order.instrument_id, float(worse)))
        self.thresholds.poke("capital")
        self.thresholds.poke("fills")

    def journal_booking(self, order: Order, fill: OrderFilled) -> None:
        """Journal how the book took a live fill (``FillBooked``: lots, P&L, fee, cash; the order and
        trade in the payload, so an order's own timeline stays its events); a restart's replay books
        fills again without journaling them twice."""
        booked = self.capital.bookings.get(order.client_order_id)
        if booked:
            ids = {"order_id": order.client_order_id, "trade_id": fill.trade_id, "ticket_id": order.ticket_id}
            self._journal.write_raw(
                "FillBooked", {**ids, **booked[-1].payload()}, instrument=order.instrument_id
            )

    def _on_cancel_requested(self, order: Order, now: int) -> None:
        count = self.activity.on_cancel_requested(order, now)
        warn = self.limits.cancel_warn_per_day
        if warn is not None and count == warn:
            most = self.limits.get("max_cancels_per_day", order.instrument)
            self.alerts.alert(
                "pretrade",
                "warning",
                f"{order.instrument_id}: {count} cancels this trading day; new orders on it are denied at "
                f"{most} (exchanges treat 500 as abnormal trading)",
                details={"value": count, "threshold": warn},
                instrument=order.instrument_id,
            )
        self.thresholds.poke("orders")

    def _on_transfer(self, transfer: Transfer) -> None:
        self.capital.version += 1  # cash moved
        if transfer.state is not TransferState.REQUESTED:
            self.thresholds.poke("capital", now=True)
            self.margin_calls.check()

    # ================================================================== facade work (engine loop)

    def journal(self, kind: str, payload: dict[str, Any]) -> None:
        self._journal.write_raw(kind, payload)

    async def view(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        snap = self.capital.snapshot(self.market.now_ns(), self.transfers.in_transit())
        return snap, [t.row() for t in self.transfers.transfers.values()]

    def capital_view(self) -> CapitalView:
        snap, transfers = self.runner.call(self.view())
        return CapitalView.from_snapshot(snap, transfers)

    async def transfer(self, source: str, dest: str, amount: Decimal, currency: str, reason: str) -> Transfer:
        return self.transfers.request(source, dest, amount, currency, reason=reason)

    def parse_margin_rate(
        self, instrument_id: str, rate: object, kind: str | None, maintenance: object | None
    ) -> tuple[str, Decimal, MarginKind | None, Decimal | None]:
        self.capital.rate(instrument_id)
        value = to_money(rate, "rate")
        if value < 0:
            raise ValueError(f"margin rate {value} is negative; give a share of notional or money per lot")
        parsed_kind = None
        if kind is not None:
            try:
                parsed_kind = MarginKind(kind)
            except ValueError:
                raise ValueError(f"margin kind {kind!r} must be 'percent' or 'per_lot'") from None
        effective = parsed_kind or self.capital.rate(instrument_id).kind
        if effective is MarginKind.PERCENT and value >= 1:
            raise ValueError(
                f"{instrument_id} margin is a share of notional: {value} would be {value:%}; give e.g. 0.12"
            )
        ratio = None
        if maintenance is not None:
            ratio = to_money(maintenance, "maintenance")
            if not 0 < ratio <= 1:
                raise ValueError(f"maintenance {ratio} must be a share of initial margin in (0, 1], e.g. 0.9")
        return instrument_id, value, parsed_kind, ratio

    async def set_margin_rate(
        self, instrument_id: str, rate: Decimal, kind: MarginKind | None, maintenance: Decimal | None
    ) -> None:
        old, new = self.capital.set_rate(instrument_id, rate, kind, maintenance)
        self._journal.write_raw(
            "MarginRateChanged",
            {
                "instrument": instrument_id,
                "old": [old.kind.value, str(old.rate), str(old.maintenance)],
                "new": [new.kind.value, str(new.rate), str(new.maintenance)],
            },
            instrument=instrument_id,
        )
        self.thresholds.poke("capital", now=True)
        self.margin_calls.check()

    # ================================================================== scopes

    def scope_names(self, keys: str) -> list[str]:
        if keys == "account":
            return [*self.capital.accounts, "unified", *self.capital.venue_accounts]
        if keys == "instrument":
            return [iid for iid, inst in self.market.instruments.items() if inst.tradeable]
        if keys == "spread":
            return list(self.tickets.spread_legs())
        if keys == "venue":
            return list(self.venues)
        return []

    def canonical_scope(self, keys: str, scope: str) -> str:
        if keys == "account" and scope != "unified":
            return self.capital.account_name(scope)
        return scope

    # ================================================================== metric values

    def values(self, rule: Rule) -> dict[str, float | None]:
        fn = getattr(self, f"_v_{rule.metric}")
        out: dict[str, float | None] = fn(rule)
        return out

    def _account_keys(self, rule: Rule) -> list[str]:
        return list(self.capital.accounts) if rule.scope == "*" else [rule.scope]

    def _v_margin_utilisation(self, rule: Rule) -> dict[str, float | None]:
        cap = self.capital
        return {
            key: cap.unified()["utilisation"] if key == "unified" else cap.figures(key).utilisation
            for key in self._account_keys(rule)
        }

    def _v_available_funds(self, rule: Rule) -> dict[str, float | None]:
        cap = self.capital
        return {
            key: float(cap.unified()["available"] if key == "unified" else cap.figures(key).available)
            for key in self._account_keys(rule)
        }

    def _v_position(self, rule: Rule) -> dict[str, float | None]:
        ids = list(self.capital._held) if rule.scope == "*" else [rule.scope]
        return {iid: float(abs(self.capital.net_position(iid))) for iid in ids}

    def _v_spread_position(self, rule: Rule) -> dict[str, float | None]:
        units = self.tickets.hedged_units()
        names = list(units) if rule.scope == "*" else [rule.scope]
        return {name: float(abs(units.get(name, 0))) for name in names}

    def _v_legged_exposure(self, rule: Rule) -> dict[str, float | None]:
        return {"engine": float(self.tickets.legged_exposure())}

    def _window(self, rule: Rule) -> int:
        return self.market.now_ns() - int(rule.window_s * 1e9)

    def _v_slippage_ticks(self, rule: Rule) -> dict[str, float | None]:
        since = self._window(rule)
        out: dict[str, float | None] = {}
        for ts, iid, ticks in self.slippage:
            if ts >= since and (rule.scope in ("*", iid)):
                out[iid] = max(out.get(iid) or 0.0, ticks)
        if rule.scope != "*":
            out.setdefault(rule.scope, 0.0)
        return out

    def _v_ack_latency_ms(self, rule: Rule) -> dict[str, float | None]:
        since = self._window(rule)
        venues = list(self.venues) if rule.scope == "*" else [rule.scope]
        out: dict[str, float | None] = dict.fromkeys(venues, 0.0)
        for ts, venue, ms in self.acks:
            if ts >= since and venue in out:
                out[venue] = max(out[venue] or 0.0, ms)
        return out

    def _v_reject_rate(self, rule: Rule) -> dict[str, float | None]:
        since = self._window(rule)
        venues = list(self.venues) if rule.scope == "*" else [rule.scope]
        sent = dict.fromkeys(venues, 0)
        rejected = dict.fromkeys(venues, 0)
        for ts, venue in self.sent:
            if ts >= since and venue in sent:
                sent[venue] += 1
        for ts, venue in self.rejects:
            if ts >= since and venue in rejected:
                rejected[venue] += 1
        return {v: (rejected[v] / sent[v] if sent[v] >= rule.min_count else 0.0) for v in venues}

    def _v_quote_staleness(self, rule: Rule) -> dict[str, float | None]:
        market = self.market
        now = market.now_ns()
        ids = self.scope_names("instrument") if rule.scope == "*" else [rule.scope]
        out: dict[str, float | None] = {}
        for iid in ids:
            inst = market.instruments[iid]
            if not inst.hours.is_open(now):
                out[iid] = 0.0  # a closed session is quiet, not stale
                continue
            quote = market.quotes.get(iid)
            out[iid] = (now - quote.ts_event) / 1e9 if quote is not None else math.inf
        return out

    def _v_fx_staleness(self, rule: Rule) -> dict[str, float | None]:
        cap = self.capital
        ts = cap.fx_book.ts.get(FX_RATE_IDS.get(cap.rate_used(cap.base).name, ""))
        return {"engine": (self.market.now_ns() - ts) / 1e9 if ts is not None else math.inf}

    def _counts(self, rule: Rule, counter: Mapping[Any, int]) -> dict[str, float | None]:
        market = self.market
        now = market.now_ns()
        ids = {iid for iid, _ in counter} if rule.scope == "*" else {rule.scope}
        fn = self.activity.orders_today if counter is self.activity.orders else self.activity.cancels_today
        return {iid: float(fn(market.instruments[iid], now)) for iid in ids if iid in market.instruments}

    def _v_order_count(self, rule: Rule) -> dict[str, float | None]:
        return self._counts(rule, self.activity.orders)

    def _v_cancel_count(self, rule: Rule) -> dict[str, float | None]:
        return self._counts(rule, self.activity.cancels)

    # ================================================================== actions

    def run_action(self, rule: Rule, crossing: Crossing, action: str) -> tuple[bool, str]:
        result: tuple[bool, str] = getattr(self, f"_do_{action}")(rule, crossing)
        return result

    def _do_alert(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        then = [a for a in rule.actions_for(c.level) if a != "alert"]
        unit = rule.spec.unit
        message = (
            f"{rule.metric} of {c.key} is {_fmt(c.value, unit)}, past its {c.level} level "
            f"{_fmt(c.threshold, unit)}" + (f"; action: {'+'.join(then)}" if then else "")
        )
        self.alerts.alert(
            "threshold",
            "warning" if c.level == "warn" else "critical",
            message,
            details={
                "rule": rule.rule_id,
                "crossing": c.crossing_id,
                "key": c.key,
                "threshold_level": c.level,
                "value": c.value if math.isfinite(c.value) else str(c.value),  # JSON has no infinity
                "threshold": c.threshold,
                "action": "+".join(then) or "alert",
            },
        )
        return True, message

    def _set_state(self, state: TradingState, reason: str) -> None:
        self.orders.set_trading_state(state, reason, "thresholds")

    def _do_block(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        state = self.orders.trading_state
        if state is TradingState.HALTED:
            return False, "trading is HALTED already"
        self._blockers.add((rule.rule_id, c.key))
        if state is TradingState.ACTIVE:
            self._set_state(
                TradingState.REDUCING, f"{rule.rule_id} {c.key} crossed {c.level} ({c.crossing_id})"
            )
            self._reducing_ours = True
        return True, "trading REDUCING: only orders that reduce a position are accepted"

    def on_released(self, rule: Rule, key: str) -> None:
        """A rule's act level cleared (or the rule was removed): lift its block if it was the last."""
        self._blockers.discard((rule.rule_id, key))
        if not self._blockers and self._reducing_ours and self.orders.trading_state is TradingState.REDUCING:
            self._reducing_ours = False
            self._set_state(TradingState.ACTIVE, f"{rule.rule_id} {key} back below its act level")

    def _scoped_orders(self, key: str) -> list[Order]:
        act = self.activity
        if key in self.capital.accounts:
            return act.orders_in(account=key)
        if key in self.market.instruments:
            return act.orders_in(instrument_id=key)
        if key in self.venues:
            return [o for o in act.orders_in() if o.instrument.venue == key]
        legs = self.tickets.spread_legs().get(key)
        if legs is not None:
            return [o for o in act.orders_in() if o.instrument_id in legs]
        return act.orders_in()

    def _cancel(self, orders: list[Order], reason: str) -> int:
        loop = self.runner.loop
        count = 0
        for order in orders:
            if not order.done:
                loop.create_task(self.orders.cancel(order, reason))
                count += 1
        return count

    def _do_cancel(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        count = self._cancel(self._scoped_orders(c.key), f"threshold {rule.rule_id} ({c.crossing_id})")
        return True, f"cancel sent for {count} working order(s) of {c.key}"

    def _do_halt(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        reason = f"{rule.rule_id} {c.key} crossed {c.level} ({c.crossing_id})"
        if self.orders.trading_state is not TradingState.HALTED:
            self._set_state(TradingState.HALTED, reason)
        self.runner.loop.create_task(self.orders.cancel_all(None, f"kill switch: {reason}"))
        return True, "trading HALTED, every working order cancelled; eng.rearm() resumes"

    def _do_transfer(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        cap = self.capital
        target = c.key
        f = cap.figures(target)
        incoming = self.transfers.incoming(target)
        needed = amount_needed(rule, f, incoming)
        if needed <= 0:
            return False, f"{incoming:,.2f} {f.currency} already in transit to {target} covers it"
        best = best_source(cap, rule, target)
        if best is None:
            if rule.source is not None:
                why = (
                    "is the account in trouble"
                    if rule.source == target
                    else "has no funds above its minimum buffer"
                )
                return False, f"source {rule.source} {why} ({rule.min_buffer:,} {cap.base})"
            return False, f"no account has funds above its minimum buffer of {rule.min_buffer:,} {cap.base}"
        source, room = best
        ccy = cap.accounts[source].currency
        wanted = ceil_money(cap.convert(needed, f.currency, ccy))
        amount = min(wanted, room)
        t = self.transfers.request(
            source,
            target,
            amount,
            ccy,
            reason=f"auto: {rule.rule_id} {c.level} at {c.value:.4g}",
            cause=c.crossing_id,
        )
        capped = " (capped by the source's buffer)" if amount < wanted else ""
        failure = f" ({t.failure})" if t.failure else ""
        return (
            t.state is TransferState.IN_TRANSIT,
            f"{t.transfer_id}: {amount:,} {ccy} {source} -> {target}{capped}: {t.state.value}{failure}",
        )

    def _do_reduce(self, rule: Rule, c: Crossing) -> tuple[bool, str]:
        reason = f"threshold {rule.rule_id} ({c.crossing_id})"
        cancelled = self._cancel(self._scoped_orders(c.key), reason)
        parts = [f"cancel sent for {cancelled} working order(s)"]
        fired = []
        units = self.tickets.hedged_units()
        for name, legs in self.tickets.spread_legs().items():
            open_units = units.get(name, 0)
            if not open_units or not self._spread_in_scope(name, legs, c.key):
                continue
            k = max(1, math.ceil(abs(open_units) * rule.reduce_fraction))
            fired.append(self.tickets.unwind(name, k if open_units > 0 else -k, reason))
        if fired:
            parts.append("unwind tickets: " + ", ".join(fired))
        if rule.metric == "position" and c.key in self.market.instruments:
            parts.append(self._reduce_position(rule, c, reason))
        elif not fired:
            parts.append("no hedged spread open in scope; positions are left to a human")
        return bool(fired) or rule.metric == "position", "; ".join(parts)

    def _spread_in_scope(self, name: str, legs: tuple[str, ...], key: str) -> bool:
        if key in ("unified", "engine") or key == name:
            return True
        if key in self.capital.accounts:
            return any(self.capital.venue_accounts.get(venue_of(iid)) == key for iid in legs)
        if key in self.venues:
            return any(venue_of(iid) == key for iid in legs)
        return key in legs

    def _reduce_position(self, rule: Rule, c: Crossing, reason: str) -> str:
        inst = self.market.instruments[c.key]
        floor = int(rule.warn) if rule.warn is not None else 0
        try:
            requests = closing_requests(
                inst, self.capital, self.activity, self.market.quotes.get(inst.id), keep=floor,
                limits=self.market.limits.get(inst.id),
            )  # fmt: skip
        except CannotFlatten as exc:
            return str(exc)
        sent_as = self.orders.submit_batch(requests, TimeInForce.IOC, reason) if requests else []
        orders = [part for o in sent_as for part in o.parts]
        sent = [f"{o.client_order_id} {o.side.value} {o.qty} {inst.id} IOC: {o.state.value}" for o in orders]
        return "; ".join(sent) or f"{inst.id} already at or below {floor} lots"


def _fmt(value: float, unit: str) -> str:
    if math.isinf(value):
        return "∞"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "money":
        return f"{value:,.0f}"
    return f"{value:g} {unit}"
