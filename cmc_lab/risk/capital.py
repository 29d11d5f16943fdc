"""Capital and margin: accounts, positions marked to market, fees, margin per position, the unified view.

State layer: :class:`Capital` holds the accounts of one engine and is changed only on the engine
loop (fills, quotes, margin-rate edits, transfers). Money is ``Decimal`` throughout; a quote's
float mid becomes a mark through ``Decimal(str(mid))``. Each fill is booked per lot, first in
first out (:class:`cmc_lab.risk.positions.Position`), and pays its fee from the dated schedule
(:mod:`cmc_lab.core.fees`) out of cash. The read side, a snapshot turned into DataFrames in the
caller's thread, is :class:`cmc_lab.risk.capital_view.CapitalView`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any

from cmc_lab.core.fees import FillFee
from cmc_lab.core.ids import USDCNH_ID, USDCNY_ID
from cmc_lab.core.instruments import Instrument, MarginKind
from cmc_lab.core.model import Quote, Side
from cmc_lab.core.offsets import Offset
from cmc_lab.core.specs import AccountSpec, Specs
from cmc_lab.risk.account_figures import CENT, ZERO, AccountFigures, broker_calls, call_rule, utilisation
from cmc_lab.risk.account_terms import account_specs
from cmc_lab.risk.fx_book import FxBook, RateUsed, convert
from cmc_lab.risk.margin_rate import MarginRate
from cmc_lab.risk.offset_book import OffsetBooks
from cmc_lab.risk.positions import FillEffect, Position, priced


@dataclass(slots=True)
class Account:
    """A broker account: cash in its currency, its positions and the margin its working orders hold."""

    name: str
    currency: str
    cash: Decimal
    settled: Decimal = ZERO  # realized trading P&L less fees, paid into (or out of) cash
    fees: Decimal = ZERO  # trading fees paid out of cash (included in settled)
    positions: dict[str, Position] = field(default_factory=dict)
    reserved: dict[str, Decimal] = field(default_factory=dict)  # client order id -> margin held


@dataclass(frozen=True, slots=True)
class FillBooking:
    """One fill as the book took it: lots opened and closed, P&L realized, the fee, cash moved.

    ``realized`` and ``fee.amount`` are in the instrument's currency; ``cash`` is what the fill
    moved in the account's cash (realized P&L less the fee, in cents of the account's currency).
    """

    account: str
    instrument_id: str
    side: Side
    qty: int
    px: Decimal
    effect: FillEffect
    fee: FillFee
    cash: Decimal
    position: int
    offset: str = ""  # the order's offset(s) the fill was booked at (SHFE/INE), "" where the venue nets

    @property
    def realized(self) -> Decimal:
        return self.effect.realized

    def payload(self) -> dict[str, Any]:
        """The journal's ``FillBooked`` row (money as text)."""
        e, f = self.effect, self.fee
        return {
            "account": self.account,
            "instrument": self.instrument_id,
            "side": self.side.value,
            "qty": self.qty,
            "px": str(self.px),
            "opened": e.opened,
            "closed_today": e.closed_today,
            "closed_yesterday": e.closed_yesterday,
            "realized": str(e.realized),
            "fee": str(f.amount),
            "fee_currency": f.currency,
            "fee_detail": f.detail,
            "fee_as_of": f.as_of.isoformat() if f.as_of else None,
            "cash": str(self.cash),
            "position": self.position,
            "offset": self.offset,
        }


class Capital:
    """Every account of one engine, its positions marked on each quote and the margin they hold.

    Runs on the engine loop. ``version`` grows with every change, for cheap change detection.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> specs = load_specs()
    >>> cap = Capital(specs, specs.instruments.values())
    >>> gc = specs.instrument("COMEX.GC")
    >>> _ = cap.apply_fill("US-FUT", gc, Side.BUY, Decimal("4100.0"), 2)
    >>> cap.figures("US-FUT").initial_margin  # 9 % of 2 x 100 oz x 4,100 USD
    Decimal('73800.000')
    """

    def __init__(
        self,
        specs: Specs,
        instruments: Iterable[Instrument],
        accounts: Mapping[str, Any] | None = None,
    ) -> None:
        self.base = specs.capital.base_currency
        #: each account's broker terms: margin-call rule, add-on, hedge code
        self.terms = account_specs(specs, accounts)
        self.accounts: dict[str, Account] = {
            a.name: Account(a.name, a.currency, a.cash) for a in self.terms.values()
        }
        self.venue_accounts = {name: v.account for name, v in specs.venues.items() if v.account}
        self.instruments = {i.id: i for i in instruments}
        default = specs.capital.maintenance_ratio
        self.rates: dict[str, MarginRate] = {
            i.id: MarginRate(
                i.margin_kind,
                i.margin_rate,
                specs.maintenance.get(i.id, default),
                specs.hedge_margin.get(i.id),
            )
            for i in self.instruments.values()
            if i.tradeable
        }
        self.fees = specs.fees
        self._specs = specs
        self.bookings: dict[str, list[FillBooking]] = {}  # client order id -> its fills as booked
        self.fx_book = FxBook(specs)
        #: long and short lots, today's and yesterday's, on the venues that keep them apart
        self.offsets = OffsetBooks(name for name, v in specs.venues.items() if v.offsets)
        self.version = 0
        # A quote changes only the accounts that hold its instrument (an FX quote: those holding a
        # position in another money), so figures are cached per account on what they read.
        self._quote_changes = 0  # of version: the rest are changes of the book (fills, cash, rates)
        self._marked: dict[str, int] = {}  # account -> quotes that moved one of its marks
        self._fx_quotes = 0
        self._fx_exposed: tuple[int, dict[str, bool]] = (-1, {})
        self._held: dict[str, list[Position]] = {}
        self._figures: dict[str, tuple[tuple[int, int, int], AccountFigures]] = {}

    # ------------------------------------------------------------------ names

    def account_name(self, name: str) -> str:
        """An account name from an account or venue name ("COMEX" -> "US-FUT"); ValueError if neither."""
        if name in self.accounts:
            return name
        account = self.venue_accounts.get(name)
        if account in self.accounts:
            return str(account)
        venues = ", ".join(f"{v} -> {a}" for v, a in self.venue_accounts.items())
        raise ValueError(
            f"no account or venue {name!r}; accounts: {', '.join(self.accounts)} (venues map to them: {venues})"
        )

    # ------------------------------------------------------------------ money

    def rate_used(self, currency: str) -> RateUsed:
        """The named rate money in ``currency`` converts to USD at (CNY: USDCNY, CNH: USDCNH)."""
        return self.fx_book.used(currency)

    def convert(self, amount: Decimal, from_ccy: str, to_ccy: str) -> Decimal:
        return self.fx_book.convert(amount, from_ccy, to_ccy)

    def to_base(self, amount: Decimal, currency: str) -> Decimal:
        return self.fx_book.convert(amount, currency, self.base)

    # ------------------------------------------------------------------ margin

    def rate(self, instrument_id: str) -> MarginRate:
        """An instrument's margin rate; a product's (``COMEX.GC``) is its first month's."""
        found = self.rates.get(instrument_id) or next(
            (self.rates[i] for i in self.months_of(instrument_id) if i in self.rates), None
        )
        if found is None and isinstance(instrument_id, str):
            found = self._learn(instrument_id)
        if found is None:
            raise ValueError(
                f"no margin rate for {instrument_id!r}; tradeable instruments: {', '.join(self.rates)}"
            )
        return found

    def _learn(self, instrument_id: str) -> MarginRate | None:
        inst = self.recorded(instrument_id)
        if inst is not None:
            self.know(inst)
        return self.rates.get(instrument_id)

    def recorded(self, instrument_id: str) -> Instrument | None:
        """The instrument a journal row or checkpoint names, exactly (:meth:`Specs.recorded`)."""
        return self._specs.recorded(instrument_id)

    def know(self, inst: Instrument) -> None:
        """An instrument the book was not built with (a month the session does not list, a product as
        journals written before months name it) joins with its product's margin rate."""
        if inst.id in self.rates or not inst.tradeable:
            return
        siblings = [self.rates[i] for i in self.months_of(inst.product or inst.id) if i in self.rates]
        if siblings:
            self.instruments[inst.id] = inst
            self.rates[inst.id] = siblings[0]

    def months_of(self, product_id: str) -> list[str]:
        """The contract months of a product this book knows, nearest first (none for a contract)."""
        return [iid for iid, inst in self.instruments.items() if inst.product == product_id]

    def set_rate(
        self, instrument_id: str, rate: Decimal, kind: MarginKind | None, maintenance: Decimal | None
    ) -> tuple[MarginRate, MarginRate]:
        """Change one contract's rate, or every month's of a product (an exchange notice sets a product's)."""
        old = self.rate(instrument_id)
        new = MarginRate(
            kind or old.kind, rate, old.maintenance if maintenance is None else maintenance, old.hedge
        )
        for iid in [instrument_id] if instrument_id in self.rates else self.months_of(instrument_id):
            self.rates[iid] = replace(new, hedge=self.rates[iid].hedge)
        self.version += 1
        return old, new

    def order_margin(self, account: str, inst: Instrument, qty: int, price: Decimal) -> Decimal:
        """Initial margin of ``qty`` lots at ``price``, in the account's currency."""
        acct = self.accounts[account]
        margin = self.rate(inst.id).initial(inst, qty, price, self.terms.get(account))
        return self.convert(margin, inst.currency, acct.currency)

    def reserve(self, account: str, client_order_id: str, amount: Decimal) -> None:
        acct = self.accounts.get(account)
        if acct is not None and amount > 0:
            acct.reserved[client_order_id] = amount
            self.version += 1

    def release(self, account: str, client_order_id: str) -> None:
        acct = self.accounts.get(account)
        if acct is not None and acct.reserved.pop(client_order_id, None) is not None:
            self.version += 1

    # ------------------------------------------------------------------ positions

    def position(self, account: str, instrument_id: str) -> int:
        acct = self.accounts.get(account)
        pos = acct.positions.get(instrument_id) if acct is not None else None
        return pos.qty if pos is not None else 0

    def net_position(self, instrument_id: str) -> int:
        return sum(p.qty for p in self._held.get(instrument_id, ()))

    def positions(self) -> Iterator[Position]:
        for acct in self.accounts.values():
            yield from acct.positions.values()

    def adopt_position(self, pos: Position) -> None:
        """Hold a position rebuilt from a book checkpoint as if its fills had been applied here."""
        acct = self.accounts[pos.account]
        acct.positions[pos.instrument.id] = pos
        self._held.setdefault(pos.instrument.id, []).append(pos)
        self.version += 1

    def holders(self, instrument_id: str) -> list[Position]:
        """Every account's position in one instrument (flat ones included)."""
        return list(self._held.get(instrument_id, ()))

    def apply_fill(
        self,
        account: str,
        inst: Instrument,
        side: Side,
        px: Decimal,
        qty: int,
        *,
        day: date | None = None,
        order_id: str | None = None,
        offset: str = "",
    ) -> FillBooking:
        """A fill on trading day ``day`` moves the position (FIFO lots); the P&L it realizes, less
        its fee (SHFE/INE: open, close today or close yesterday; CME/LME: per contract), is settled
        into the account's cash in cents. Kept for :meth:`bookings_of` when ``order_id`` is given.

        On a venue that keeps offsets the fill moves the account's offset book by its order's
        ``offset`` (none given: as the venue would net it) and the fee is charged by that offset, a
        forced close today at the close-today rate; P&L and margin stay on the net FIFO position.
        """
        acct = self.accounts.get(account)
        if acct is None:  # an order the checks never saw (reconcile): keep the money visible
            acct = self.accounts[account] = Account(account, inst.currency, ZERO)
        pos = acct.positions.get(inst.id)
        if pos is None:
            self.know(inst)
            pos = acct.positions[inst.id] = Position(account, inst)
            self._held.setdefault(inst.id, []).append(pos)
        effect = pos.apply_fill(side, px, qty, day)
        if self.offsets.keeps(inst):
            effect, offset = self._offset_effect(account, inst.id, side, qty, day, offset, effect)
        fee = self.fees.fee(
            inst, px, opened=effect.opened, closed_today=effect.closed_today,
            closed_yesterday=effect.closed_yesterday, day=day,
        )  # fmt: skip
        # Cash settles in cents, each amount on its own: a P&L of many lots converted at a live
        # rate can carry more digits than money has.
        money = self.convert(effect.realized, inst.currency, acct.currency).quantize(CENT)
        paid = self.convert(fee.amount, fee.currency, acct.currency).quantize(CENT)
        acct.cash += money - paid
        acct.settled += money - paid
        acct.fees += paid
        self.version += 1
        booking = FillBooking(account, inst.id, side, qty, px, effect, fee, money - paid, pos.qty, offset)
        if order_id is not None:
            self.bookings.setdefault(order_id, []).append(booking)
        return booking

    def _offset_effect(
        self, account: str, iid: str, side: Side, qty: int, day: date | None, offset: str, net: FillEffect
    ) -> tuple[FillEffect, str]:
        """The fill's lots as the offset book took them (what the fee charges), and the offsets used."""
        parts = self.offsets.apply(account, iid, side, Offset.parse(offset) if offset else None, qty, day)
        opened = today = yesterday = 0
        for part, n in parts:
            o, t, y = part.fee_lots(n)
            opened, today, yesterday = opened + o, today + t, yesterday + y
        return FillEffect(opened, today, yesterday, net.realized), "+".join(o.value for o, _ in parts)

    def bookings_of(self, client_order_id: str) -> list[FillBooking]:
        """The fills of one order as the book took them (fee, P&L, lots), in fill order.

        Examples
        --------
        >>> from cmc_lab.core.specs import load_specs
        >>> specs = load_specs()
        >>> cap = Capital(specs, specs.instruments.values())
        >>> _ = cap.apply_fill("US-FUT", specs.instrument("COMEX.GC"), Side.BUY, Decimal("2650.0"), 2,
        ...                    order_id="r1-000001")
        >>> [(b.fee.amount, b.fee.currency) for b in cap.bookings_of("r1-000001")]
        [(Decimal('4.94'), 'USD')]
        """
        return list(self.bookings.get(client_order_id, ()))

    def on_quote(self, quote: Quote) -> bool:
        """Mark held positions (and the FX rate); True when something changed.

        The marks keep the quote: its Decimal mid is worked out when a figure is next read.
        """
        if quote.instrument_id in self.fx_book.reference:
            if not self.fx_book.on_quote(quote):
                return False
            self._fx_quotes += 1
        else:
            held = self._held.get(quote.instrument_id)
            if not held or not priced(quote):
                return False
            marked = self._marked
            for pos in held:
                pos.mark_on(quote)
                marked[pos.account] = marked.get(pos.account, 0) + 1
        self.version += 1
        self._quote_changes += 1
        return True

    # ------------------------------------------------------------------ figures

    def figures(self, account: str) -> AccountFigures:
        """The account's numbers now (cached until the book changes or a quote moves what they read)."""
        key = self._key(account)
        cached = self._figures.get(account)
        if cached is not None and cached[0] == key:
            return cached[1]
        figures = self._compute(account)
        self._figures[account] = (key, figures)
        return figures

    def _key(self, account: str) -> tuple[int, int, int]:
        book = self.version - self._quote_changes
        return book, self._marked.get(account, 0), self._fx_quotes if self._reads_fx(account, book) else 0

    def _reads_fx(self, account: str, book: int) -> bool:
        """Whether the account holds a position in another money (its figures then move with FX)."""
        seen, exposed = self._fx_exposed
        if seen != book:
            exposed = {}
            self._fx_exposed = (book, exposed)
        found = exposed.get(account)
        if found is None:
            acct = self.accounts[account]
            ccy = acct.currency
            found = exposed[account] = any(
                p.qty and p.instrument.currency != ccy for p in acct.positions.values()
            )
        return found

    def margin_called(self, account: str) -> bool:
        """``figures(account).margin_call``, without building figures that are not cached (the
        margin-call check asks it of every account once a market second)."""
        cached = self._figures.get(account)
        if cached is not None and cached[0] == self._key(account):
            return cached[1].margin_call
        acct, terms = self.accounts[account], self.terms.get(account)
        unrealized, initial, maintenance = self._margins(acct, terms)
        equity = acct.cash + unrealized
        rule, level = call_rule(terms)
        used = utilisation(initial, equity) if rule == "risk_degree" else 0.0
        return broker_calls(rule, level, initial, equity, maintenance, used)

    def _compute(self, account: str) -> AccountFigures:
        acct = self.accounts[account]
        terms = self.terms.get(account)
        unrealized, initial, maintenance = self._margins(acct, terms)
        reserved = sum(acct.reserved.values(), ZERO)
        equity = acct.cash + unrealized
        available = equity - initial - reserved
        rule, level = call_rule(terms)
        return AccountFigures(
            name=acct.name,
            currency=acct.currency,
            cash=acct.cash,
            unrealized=unrealized,
            equity=equity,
            initial_margin=initial,
            maintenance_margin=maintenance,
            reserved=reserved,
            available=available,
            withdrawable=max(ZERO, min(acct.cash, available)),
            utilisation=utilisation(initial, equity),
            rule=rule,
            call_level=level,
        )

    def _margins(self, acct: Account, terms: AccountSpec | None) -> tuple[Decimal, Decimal, Decimal]:
        """The account's unrealized P&L, initial and maintenance margin, in its currency."""
        ccy = acct.currency
        own = terms if terms is not None and (terms.hedge or terms.broker_add_on) else None  # else exchange's
        unrealized = initial = maintenance = ZERO
        held = [pos for pos in acct.positions.values() if pos.qty]
        if held:  # the rates every conversion below uses, read once (self.convert reads them per call)
            cnh, cny = self.fx_book.rate(USDCNH_ID), self.fx_book.rate(USDCNY_ID)
        for pos in held:
            inst = pos.instrument
            rate = self.rates.get(inst.id)
            unrealized += convert(pos.unrealized, inst.currency, ccy, cnh, cny)
            if rate is not None:
                exchange = convert(rate.initial(inst, pos.qty, pos.price), inst.currency, ccy, cnh, cny)
                maintenance += exchange * rate.maintenance
                initial += (
                    exchange
                    if own is None
                    else convert(rate.initial(inst, pos.qty, pos.price, own), inst.currency, ccy, cnh, cny)
                )
        return unrealized, initial, maintenance

    def unified(self) -> dict[str, Any]:
        """Every account summed in the base currency at the current FX rate."""
        sums = dict.fromkeys(
            ("cash", "unrealized", "equity", "initial_margin", "maintenance_margin", "reserved", "available"),
            ZERO,
        )
        for name in self.accounts:
            f = self.figures(name)
            for key in sums:
                sums[key] += self.to_base(getattr(f, key), f.currency)
        return {**sums, "utilisation": utilisation(sums["initial_margin"], sums["equity"])}

    def snapshot(self, now_ns: int, in_transit: Mapping[str, tuple[Decimal, Decimal]]) -> dict[str, Any]:
        """Plain data for a :class:`CapitalView`; ``in_transit`` maps account -> (outgoing, incoming)."""
        accounts = []
        total_transit = ZERO
        for name, acct in self.accounts.items():
            f = self.figures(name)
            out, into = in_transit.get(name, (ZERO, ZERO))
            total_transit += self.to_base(out, acct.currency)
            accounts.append(
                {
                    **_row(f),
                    "margin_call_rule": f.rule,
                    "margin_call": f.margin_call,
                    "shortfall": f.shortfall(),
                    "in_transit_out": out,
                    "in_transit_in": into,
                }
            )
        unified = self.unified()
        unified["in_transit"] = total_transit
        unified["total"] = unified["equity"] + total_transit
        positions = [
            {
                "account": p.account,
                "instrument": p.instrument.id,
                "qty": p.qty,
                "avg_px": p.avg_px,
                "mark": p.mark,
                "currency": p.instrument.currency,
                "unrealized": p.unrealized,
                "realized": p.realized,
                "initial_margin": self.rates[p.instrument.id].initial(
                    p.instrument, p.qty, p.price, self.terms.get(p.account)
                )
                if p.instrument.id in self.rates
                else ZERO,
            }
            for p in self.positions()
        ]
        return {
            "base": self.base,
            "accounts": accounts,
            "unified": unified,
            "positions": positions,
            "fx": self.fx_book.snapshot(now_ns),
            "fx_basis": self.fx_book.basis(),
            "base_rate": str(self.rate_used(self.base)) if self.base != "USD" else "",
            "ts": now_ns,
        }


def ceil_money(amount: Decimal, step: Decimal = Decimal(1)) -> Decimal:
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


def _row(f: AccountFigures) -> dict[str, Any]:
    return {
        "account": f.name,
        "currency": f.currency,
        "cash": f.cash,
        "unrealized": f.unrealized,
        "equity": f.equity,
        "initial_margin": f.initial_margin,
        "maintenance_margin": f.maintenance_margin,
        "reserved": f.reserved,
        "available": f.available,
        "withdrawable": f.withdrawable,
        "utilisation": f.utilisation,
    }
