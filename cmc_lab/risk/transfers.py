"""Transfers between accounts: requested, in transit, then credited or failed; each step journaled.

State layer, on the engine loop. Money is never created or lost: a transfer debits its source
when it goes in transit, and either credits its destination or refunds its source. A transfer
between currencies converts at the rate locked when it was requested (USDCNY for CNY money, USDCNH
for CNH), recorded as a
:class:`Conversion`, so for every currency: cash in accounts + money in transit = starting cash
+ what conversions bought - what they sold, exactly (see :meth:`Transfers.ledger`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum
from typing import Any

import pandas as pd

from cmc_lab.pricing.units import needs_fx
from cmc_lab.risk.account_terms import to_money
from cmc_lab.risk.capital import CENT, ZERO, Account
from cmc_lab.risk.fx_book import RateUsed, convert

#: The largest amount a transfer may name: money has 28 significant digits (cents included) in
#: the default decimal context, so anything near it is a typo, not a wire.
MAX_TRANSFER = Decimal(10) ** 18

TRANSFER_STAGES = ("request", "transit")
#: The journal rows of a transfer's steps, in the order they can happen.
TRANSFER_KINDS = ("TransferRequested", "TransferInTransit", "TransferCredited", "TransferFailed")


class TransferState(StrEnum):
    REQUESTED = "REQUESTED"
    IN_TRANSIT = "IN_TRANSIT"
    CREDITED = "CREDITED"
    FAILED = "FAILED"


@dataclass
class Transfer:
    """One transfer; updated in place on the engine loop as it moves.

    ``amount`` is in ``currency`` as asked; ``debit`` leaves the source (its currency) and
    ``credit`` reaches the destination (its currency), converted at ``rate`` when the two
    currencies differ: ``rate_name`` says which (USDCNY for CNY money, USDCNH for CNH).
    """

    transfer_id: str
    source: str
    dest: str
    amount: Decimal
    currency: str
    reason: str
    cause: str | None
    ts_requested: int
    mono_requested: int
    state: TransferState = TransferState.REQUESTED
    debit: Decimal = ZERO
    debit_currency: str = ""
    credit: Decimal = ZERO
    credit_currency: str = ""
    rate: Decimal | None = None
    rate_name: str = ""
    failure: str = ""
    arrives_ns: int | None = None
    ts_done: int | None = None
    history: list[tuple[int, str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state in (TransferState.CREDITED, TransferState.FAILED)

    def row(self) -> dict[str, Any]:
        return {
            "transfer": self.transfer_id,
            "source": self.source,
            "dest": self.dest,
            "amount": self.amount,
            "currency": self.currency,
            "state": self.state.value,
            "debit": self.debit,
            "debit_currency": self.debit_currency,
            "credit": self.credit,
            "credit_currency": self.credit_currency,
            "rate": self.rate,
            "rate_name": self.rate_name,
            "reason": self.reason,
            "cause": self.cause,
            "failure": self.failure,
            "requested": pd.Timestamp(self.ts_requested, unit="ns", tz="UTC"),
            "done": pd.Timestamp(self.ts_done, unit="ns", tz="UTC") if self.ts_done else None,
        }

    def __repr__(self) -> str:
        why = f", {self.failure!r}" if self.failure else ""
        return (
            f"Transfer({self.transfer_id} {self.amount:,} {self.currency} {self.source} -> {self.dest}: "
            f"{self.state.value}{why})"
        )


@dataclass(frozen=True, slots=True)
class Conversion:
    """Money that changed currency on the way: ``sold`` of one bought ``bought`` of the other."""

    transfer_id: str
    sold: Decimal
    sold_currency: str
    bought: Decimal
    bought_currency: str
    rate: Decimal


@dataclass
class _Failure:
    at: str
    times: int | None
    reason: str
    used: int = 0


class Transfers:
    """The transfers of one engine and the failures scripted for them.

    Parameters
    ----------
    accounts
        The accounts whose cash moves (shared with :class:`~cmc_lab.risk.capital.Capital`).
    resolve
        Account name from an account or venue name (raises ValueError).
    withdrawable
        How much cash an account can release now (not held as margin), in its currency.
    live_rate
        The live rate (named) money in a currency converts to USD at, None before its first quote.
    call_later
        ``call_later(seconds, callback)`` on the engine loop (virtual time in tests).
    journal
        ``journal(kind, payload)``: one journal row per step.
    """

    def __init__(
        self,
        accounts: Mapping[str, Account],
        *,
        resolve: Callable[[str], str],
        withdrawable: Callable[[str], Decimal],
        live_rate: Callable[[str], RateUsed | None],
        call_later: Callable[[float, Callable[[], None]], Any],
        journal: Callable[[str, dict[str, Any]], None],
        now_ns: Callable[[], int],
        mono_ns: Callable[[], int],
        delay_s: float = 2.0,
        id_prefix: str = "X",
        on_change: Callable[[Transfer], None] | None = None,
    ) -> None:
        self.accounts = accounts
        self.delay_s = delay_s
        self.transfers: dict[str, Transfer] = {}
        self.conversions: list[Conversion] = []
        self.initial = {name: (a.currency, a.cash) for name, a in accounts.items()}
        self._resolve = resolve
        self._withdrawable = withdrawable
        self._live_rate = live_rate
        self._call_later = call_later
        self._journal = journal
        self._now = now_ns
        self._mono = mono_ns
        self._prefix = id_prefix
        self._seq = 0
        self._failures: list[_Failure] = []
        self._on_change = on_change

    # ------------------------------------------------------------------ caller thread

    def parse(
        self, source: str, dest: str, amount: object, currency: str | None
    ) -> tuple[str, str, Decimal, str]:
        """Validate a transfer request: accounts (or venue names), a positive amount in cents."""
        src, dst = self._resolve(source), self._resolve(dest)
        if src == dst:
            raise ValueError(f"{source!r} and {dest!r} are the same account {src!r}; nothing to transfer")
        money = to_money(amount, "amount")
        if money <= 0:
            raise ValueError(f"amount {money} must be above zero; swap source and dest to move money back")
        if money >= MAX_TRANSFER:
            raise ValueError(
                f"amount {money} is beyond any account (it must be below {MAX_TRANSFER:,}); check the figure"
            )
        if money != money.quantize(CENT):
            raise ValueError(f"amount {money} has fractions of a cent; round it to 2 decimals")
        src_ccy, dst_ccy = self.accounts[src].currency, self.accounts[dst].currency
        ccy = (currency or src_ccy).upper()
        if needs_fx(ccy, src_ccy) and needs_fx(ccy, dst_ccy):
            raise ValueError(
                f"currency {ccy} is neither {src}'s ({src_ccy}) nor {dst}'s ({dst_ccy}); give the amount "
                "in one of them"
            )
        return src, dst, money, ccy

    def inject(
        self, kind: str = "fail", times: int | None = 1, at: str = "transit", reason: str = ""
    ) -> None:
        """Script failures: the next ``times`` transfers fail ``at`` "request" (refused, nothing
        moves) or "transit" (the wire bounces after its delay and the source is refunded).

        Examples
        --------
        >>> eng.risk.transfers.inject("fail", times=1, at="transit")   # doctest: +SKIP
        """
        if kind != "fail":
            raise ValueError(f"transfer fault {kind!r} is not known; use 'fail'")
        if at not in TRANSFER_STAGES:
            raise ValueError(f"at={at!r} is not a transfer stage; use one of {', '.join(TRANSFER_STAGES)}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times={times!r} must be a whole number >= 1, or None for every transfer")
        self._failures.append(_Failure(at, times, reason or f"injected failure at {at}"))

    # ------------------------------------------------------------------ engine loop

    def request(
        self,
        source: str,
        dest: str,
        amount: Decimal,
        currency: str,
        reason: str = "",
        cause: str | None = None,
    ) -> Transfer:
        """Start a transfer (arguments from :meth:`parse`); refused ones end FAILED, never raise."""
        self._seq += 1
        t = Transfer(
            transfer_id=f"{self._prefix}-{self._seq:04d}",
            source=source,
            dest=dest,
            amount=amount,
            currency=currency,
            reason=reason,
            cause=cause,
            ts_requested=self._now(),
            mono_requested=self._mono(),
        )
        self.transfers[t.transfer_id] = t
        self._step(t, TransferState.REQUESTED, "TransferRequested")
        src, dst = self.accounts[source], self.accounts[dest]
        t.debit_currency, t.credit_currency = src.currency, dst.currency
        injected = self._take("request")
        if injected is not None:
            return self._fail(t, injected, refund=False)
        rate = None
        if needs_fx(src.currency, dst.currency):
            ccy = dst.currency if src.currency == "USD" else src.currency
            used = self._live_rate(ccy)
            if used is None:
                name = "USDCNY" if ccy == "CNY" else "USDCNH"
                return self._fail(
                    t, f"no live {name} quote to convert at; wait for the FX feed", refund=False
                )
            rate, t.rate_name = used.rate, used.name
        t.rate = rate
        r = rate or Decimal(1)
        # Rounding never creates money: a converted credit rounds down, a converted debit up.
        if not needs_fx(currency, src.currency):
            t.debit = amount
            t.credit = convert(amount, src.currency, dst.currency, r).quantize(CENT, rounding=ROUND_DOWN)
        else:
            t.credit = amount
            t.debit = convert(amount, dst.currency, src.currency, r).quantize(CENT, rounding=ROUND_UP)
        if t.credit <= 0:
            return self._fail(
                t, f"{amount} {currency} is less than one cent once converted to {dst.currency}", refund=False
            )
        free = self._withdrawable(source)
        if t.debit > free:
            return self._fail(
                t,
                f"{source} can release {free:,.2f} {src.currency} now (cash not held as margin); "
                f"the transfer needs {t.debit:,.2f}",
                refund=False,
            )
        src.cash -= t.debit
        delay = self.delay_s if rate is not None else 0.0
        t.arrives_ns = t.ts_requested + round(delay * 1e9)
        self._step(t, TransferState.IN_TRANSIT, "TransferInTransit", delay_s=delay)
        self._call_later(delay, lambda: self._arrive(t))
        return t

    def _arrive(self, t: Transfer) -> None:
        if t.state is not TransferState.IN_TRANSIT:
            return
        injected = self._take("transit")
        if injected is not None:
            self._fail(t, injected, refund=True)
            return
        if t.rate is not None:
            self.conversions.append(
                Conversion(t.transfer_id, t.debit, t.debit_currency, t.credit, t.credit_currency, t.rate)
            )
        self.accounts[t.dest].cash += t.credit
        self._step(t, TransferState.CREDITED, "TransferCredited")

    def _fail(self, t: Transfer, why: str, refund: bool) -> Transfer:
        if refund:
            self.accounts[t.source].cash += t.debit
        t.failure = why
        self._step(t, TransferState.FAILED, "TransferFailed", refunded=refund)
        return t

    def _take(self, at: str) -> str | None:
        for failure in self._failures:
            if failure.at == at and (failure.times is None or failure.used < failure.times):
                failure.used += 1
                return failure.reason
        return None

    def _step(self, t: Transfer, state: TransferState, kind: str, **extra: Any) -> None:
        t.state = state
        now = self._now()
        t.history.append((now, state.value))
        if t.done:
            t.ts_done = now
        payload: dict[str, Any] = {
            "transfer_id": t.transfer_id,
            "source": t.source,
            "dest": t.dest,
            "amount": str(t.amount),
            "currency": t.currency,
            "reason": t.reason,
            "cause": t.cause,
            "since_request_ns": self._mono() - t.mono_requested,
        }
        if state is not TransferState.REQUESTED:
            payload.update(
                debit=str(t.debit),
                debit_currency=t.debit_currency,
                credit=str(t.credit),
                credit_currency=t.credit_currency,
                rate=None if t.rate is None else str(t.rate),
                rate_name=t.rate_name,
            )
        if t.failure:
            payload["failure"] = t.failure
        payload.update(extra)
        self._journal(kind, payload)
        if self._on_change is not None:
            self._on_change(t)

    def restore(self, rows: Iterable[tuple[str, int, dict[str, Any]]]) -> list[Transfer]:
        """Rebuild earlier runs' transfers from their journal rows ``(kind, ts_event, payload)``.

        Their money moves again as it did (debit in transit, credit or refund), so cash and the
        ledger are what they were. Returns the transfers still in transit: each arrives (or fails)
        after what is left of its delay, as if the engine had never stopped.
        """
        for kind, ts, payload in rows:
            t = self._restored(kind, ts, payload)
            if t is None:
                continue
            if kind == "TransferInTransit":
                self._move(t.source, -t.debit)
                t.arrives_ns = t.ts_requested + round(float(payload.get("delay_s", 0.0)) * 1e9)
            elif kind == "TransferCredited":
                self._move(t.dest, t.credit)
                if t.rate is not None:
                    self.conversions.append(
                        Conversion(
                            t.transfer_id, t.debit, t.debit_currency, t.credit, t.credit_currency, t.rate
                        )
                    )
            elif kind == "TransferFailed":
                t.failure = str(payload.get("failure", ""))
                if payload.get("refunded"):
                    self._move(t.source, t.debit)
        pending = [t for t in self.transfers.values() if t.state is TransferState.IN_TRANSIT]
        for t in pending:
            wait = max(0.0, ((t.arrives_ns or 0) - self._now()) / 1e9)
            self._call_later(wait, functools.partial(self._arrive, t))
        return pending

    def _restored(self, kind: str, ts: int, payload: dict[str, Any]) -> Transfer | None:
        tid = payload.get("transfer_id")
        t = self.transfers.get(tid) if isinstance(tid, str) else None
        if t is None:
            if kind != "TransferRequested" or not isinstance(tid, str):
                return None  # a step whose request is not in this journal (rotated out): nothing to rebuild
            t = self.transfers[tid] = Transfer(
                transfer_id=tid,
                source=str(payload["source"]),
                dest=str(payload["dest"]),
                amount=Decimal(payload["amount"]),
                currency=str(payload["currency"]),
                reason=str(payload.get("reason", "")),
                cause=payload.get("cause"),
                ts_requested=ts,
                mono_requested=self._mono() - int(payload.get("since_request_ns", 0)),
            )
        if "debit" in payload:
            t.debit, t.debit_currency = Decimal(payload["debit"]), str(payload["debit_currency"])
            t.credit, t.credit_currency = Decimal(payload["credit"]), str(payload["credit_currency"])
            t.rate = None if payload.get("rate") is None else Decimal(payload["rate"])
            t.rate_name = str(payload.get("rate_name") or ("USDCNH" if t.rate is not None else ""))
        t.state = _STATE_OF[kind]
        t.history.append((ts, t.state.value))
        if t.done:
            t.ts_done = ts
        return t

    def _move(self, account: str, amount: Decimal) -> None:
        acct = self.accounts.get(account)
        if acct is not None:
            acct.cash += amount

    # ------------------------------------------------------------------ reading

    def in_transit(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per account: (money on its way out, in its currency; money on its way in, in its currency)."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for t in self.transfers.values():
            if t.state is TransferState.IN_TRANSIT:
                o, i = out.get(t.source, (ZERO, ZERO))
                out[t.source] = (o + t.debit, i)
                o, i = out.get(t.dest, (ZERO, ZERO))
                out[t.dest] = (o, i + t.credit)
        return out

    def incoming(self, account: str) -> Decimal:
        return self.in_transit().get(account, (ZERO, ZERO))[1]

    def ledger(self) -> dict[str, dict[str, Decimal]]:
        """Per currency: cash in accounts, money in transit, start cash, trading P&L, conversions.

        ``cash + in_transit == start + settled + bought - sold`` holds for every currency, always
        (``settled`` is realized trading P&L less fees, paid into cash).
        """
        out: dict[str, dict[str, Decimal]] = {}

        def entry(ccy: str) -> dict[str, Decimal]:
            return out.setdefault(
                ccy, dict.fromkeys(("cash", "in_transit", "start", "settled", "bought", "sold"), ZERO)
            )

        for ccy, cash in self.initial.values():
            entry(ccy)["start"] += cash
        for acct in self.accounts.values():
            entry(acct.currency)["cash"] += acct.cash
            entry(acct.currency)["settled"] += acct.settled
        for t in self.transfers.values():
            if t.state is TransferState.IN_TRANSIT:
                entry(t.debit_currency)["in_transit"] += t.debit
        for c in self.conversions:
            entry(c.sold_currency)["sold"] += c.sold
            entry(c.bought_currency)["bought"] += c.bought
        return out

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([t.row() for t in self.transfers.values()])


_STATE_OF = {
    "TransferRequested": TransferState.REQUESTED,
    "TransferInTransit": TransferState.IN_TRANSIT,
    "TransferCredited": TransferState.CREDITED,
    "TransferFailed": TransferState.FAILED,
}
