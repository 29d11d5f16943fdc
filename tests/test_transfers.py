"""Transfers between accounts: each step journaled, failures refunded, money conserved (property test)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cmc_lab as cmc
from cmc_lab.risk.capital import Account
from cmc_lab.risk.fx_book import RateUsed, convert
from cmc_lab.risk.transfers import Transfers, TransferState

CENT = Decimal("0.01")


def kinds(eng: cmc.Engine, prefix: str = "Transfer") -> list[str]:
    return [r["kind"] for r in eng.journal.rows() if r["kind"].startswith(prefix)]


def payloads(eng: cmc.Engine, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=[kind])]


# ---------------------------------------------------------------------------- through the engine


def test_cross_border_transfer_goes_in_transit_then_is_credited_each_step_journaled(eng: cmc.Engine) -> None:
    eng.sleep(0.5)
    before, _ = eng.capital()
    t = eng.transfer("SHFE", "COMEX", 1_000_000, currency="CNY")
    assert (t.source, t.dest, t.state) == ("CN-FUT", "US-FUT", TransferState.IN_TRANSIT)
    rate = t.rate
    assert rate is not None and t.credit == (Decimal(1_000_000) / rate).quantize(CENT, rounding=ROUND_DOWN)
    accounts, unified = eng.capital()
    assert accounts.loc["CN-FUT", "cash"] == before.loc["CN-FUT", "cash"] - 1_000_000
    assert accounts.loc["CN-FUT", "in_transit_out"] == Decimal("1000000.00")
    assert accounts.loc["US-FUT", "in_transit_in"] == t.credit
    assert accounts.loc["US-FUT", "cash"] == before.loc["US-FUT", "cash"]
    assert unified.loc["CNY", "in_transit"] == Decimal("1000000.00")
    eng.sleep(1.9)
    assert t.state is TransferState.IN_TRANSIT
    eng.sleep(0.2)
    assert t.state is TransferState.CREDITED
    accounts, _ = eng.capital()
    assert accounts.loc["US-FUT", "cash"] == before.loc["US-FUT", "cash"] + t.credit
    assert kinds(eng) == ["TransferRequested", "TransferInTransit", "TransferCredited"]
    credited = payloads(eng, "TransferCredited")[0]
    assert credited["transfer_id"] == t.transfer_id and credited["credit"] == str(t.credit)
    assert credited["since_request_ns"] == 2_000_000_000
    assert payloads(eng, "TransferInTransit")[0]["delay_s"] == 2.0
    assert eng.capital().transfers["state"].tolist() == ["CREDITED"]


def test_transfer_amount_in_the_destination_currency_is_credited_exactly(eng: cmc.Engine) -> None:
    t = eng.transfer("CN-FUT", "US-FUT", "10000.50", currency="USD")
    eng.sleep(2.5)
    assert t.state is TransferState.CREDITED
    assert t.credit == Decimal("10000.50")
    assert t.rate is not None and t.debit == (Decimal("10000.50") * t.rate).quantize(CENT, rounding=ROUND_UP)


def test_same_currency_transfer_arrives_on_the_next_loop_turn(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(accounts={"CN-2": {"currency": "CNY", "cash": 0}})
    t = eng.transfer("INE", "CN-2", 250_000)
    eng.sleep(0.001)
    assert t.state is TransferState.CREDITED and t.rate is None
    assert eng.capital().accounts.loc["CN-2", "cash"] == Decimal("250000.00")
    assert eng.risk.transfers.conversions == []


def test_transfer_above_what_the_source_can_release_fails_and_moves_nothing(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 90_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    t = eng.transfer("US-FUT", "CN-FUT", 20_000)  # about 73,800 of the 90,000 holds margin (9 % of notional)
    assert t.state is TransferState.FAILED
    assert t.failure.startswith("US-FUT can release 1")
    assert "(cash not held as margin); the transfer needs 20,000.00" in t.failure
    assert kinds(eng) == ["TransferRequested", "TransferFailed"]
    assert payloads(eng, "TransferFailed")[0]["refunded"] is False
    assert eng.capital().accounts.loc["US-FUT", "cash"] == Decimal("89995.06")  # less the fill's fees


@pytest.mark.parametrize("at", ["request", "transit"])
def test_injected_failure_refunds_the_source(eng: cmc.Engine, at: str) -> None:
    eng.risk.transfers.inject("fail", times=1, at=at, reason="bank rejected the wire")
    t = eng.transfer("SHFE", "COMEX", 1_000_000)
    eng.sleep(2.5)
    assert t.state is TransferState.FAILED and t.failure == "bank rejected the wire"
    assert eng.capital().accounts.loc["CN-FUT", "cash"] == Decimal("50000000.00")
    steps = ["TransferRequested", "TransferFailed"]
    assert kinds(eng) == (
        steps if at == "request" else ["TransferRequested", "TransferInTransit", "TransferFailed"]
    )
    again = eng.transfer("SHFE", "COMEX", 1_000_000)
    eng.sleep(2.5)
    assert again.state is TransferState.CREDITED


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("SHFE", "INE", 1), {}, r"'SHFE' and 'INE' are the same account 'CN-FUT'; nothing to transfer"),
        (("SHFE", "COMEX", -5), {}, r"amount -5 must be above zero; swap source and dest"),
        (("SHFE", "COMEX", "1.001"), {}, r"amount 1\.001 has fractions of a cent; round it to 2 decimals"),
        (("SHFE", "COMEX", 100), {"currency": "EUR"}, r"missing FX rate USDEUR"),
        (("SHFE", "DCE", 100), {}, r"no account or venue 'DCE'; accounts: CN-FUT, US-FUT \(venues map"),
        (("SHFE", "COMEX", None), {}, r"amount = None is not an amount of money"),
    ],
)
def test_bad_transfer_arguments_raise_before_anything_is_journaled(
    eng: cmc.Engine, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    head = eng.journal.head
    with pytest.raises(ValueError, match=message):
        eng.transfer(*args, **kwargs)
    assert eng.journal.head == head


def test_ledger_balances_with_trading_pnl_and_transfers_in_flight(eng: cmc.Engine) -> None:
    assert eng.submit("COMEX.GC", "buy", 3, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.transfer("US-FUT", "CN-FUT", 100_000)
    eng.sleep(1.0)
    assert eng.submit("COMEX.GC", "sell", 3, price="4022.6").wait(5) is cmc.OrderState.FILLED
    eng.transfer("CN-FUT", "US-FUT", 300_000)
    for ccy, e in eng.risk.transfers.ledger().items():
        assert e["cash"] + e["in_transit"] == e["start"] + e["settled"] + e["bought"] - e["sold"], ccy
    assert eng.risk.transfers.ledger()["USD"]["settled"] != 0


# ---------------------------------------------------------------------------- property: conservation

START = {
    "CN-FUT": ("CNY", "1000000.00"),
    "US-FUT": ("USD", "200000.00"),
    "CN-2": ("CNY", "0"),
    "US-2": ("USD", "0"),
}
NAMES = list(START)


class Harness:
    """A Transfers book on a fake loop: time moves only when the test says so."""

    def __init__(self, delay_s: float) -> None:
        self.accounts = {n: Account(n, ccy, Decimal(cash)) for n, (ccy, cash) in START.items()}
        self.now = 0
        self.rate: Decimal | None = Decimal("7.25")
        self.timers: list[tuple[int, int, Callable[[], None]]] = []
        self.rows: list[tuple[str, dict[str, Any]]] = []
        self.book = Transfers(
            self.accounts,
            resolve=self.resolve,
            withdrawable=lambda n: self.accounts[n].cash,
            live_rate=lambda ccy: None if self.rate is None else RateUsed("USDCNY", self.rate, "live"),
            call_later=self.call_later,
            journal=lambda kind, payload: self.rows.append((kind, payload)),
            now_ns=lambda: self.now,
            mono_ns=lambda: self.now,
            delay_s=delay_s,
        )

    def resolve(self, name: str) -> str:
        if name not in self.accounts:
            raise ValueError(name)
        return name

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(
            self.timers, (self.now + round(delay * 1e9), len(self.rows) + len(self.timers), callback)
        )

    def advance(self, seconds: float) -> None:
        until = self.now + round(seconds * 1e9)
        while self.timers and self.timers[0][0] <= until:
            when, _, callback = heapq.heappop(self.timers)
            self.now = max(self.now, when)
            callback()
        self.now = until

    def check(self) -> None:
        for ccy, e in self.book.ledger().items():
            assert e["cash"] + e["in_transit"] == e["start"] + e["bought"] - e["sold"], (ccy, e)
        for acct in self.accounts.values():
            assert acct.cash >= 0, acct
        for c in self.book.conversions:  # worth at most one cent less than what was sold, never more
            worth = convert(c.bought, c.bought_currency, c.sold_currency, c.rate)
            cent = max(CENT, convert(CENT, c.bought_currency, c.sold_currency, c.rate))
            assert 0 <= c.sold - worth <= cent, c


transfer_op = st.tuples(
    st.just("transfer"),
    st.sampled_from(NAMES),
    st.sampled_from(NAMES),
    st.integers(min_value=1, max_value=60_000_000),  # cents
    st.booleans(),  # amount in the source's currency (else the destination's)
)
fail_op = st.tuples(st.just("fail"), st.sampled_from(["request", "transit"]), st.integers(1, 3))
advance_op = st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=3.0))
rate_op = st.tuples(st.just("rate"), st.sampled_from([None, "6.9", "7.1234", "7.25", "7.3001"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    delay=st.sampled_from([0.0, 0.5, 2.0]),
    ops=st.lists(st.one_of(transfer_op, fail_op, advance_op, rate_op), min_size=1, max_size=40),
)
def test_random_transfers_and_failures_never_create_or_lose_money(
    delay: float, ops: list[tuple[Any, ...]]
) -> None:
    h = Harness(delay)
    for op in ops:
        if op[0] == "transfer":
            _, src, dst, cents, in_source = op
            if src == dst:
                continue
            ccy = h.accounts[src if in_source else dst].currency
            h.book.request(src, dst, Decimal(cents) / 100, ccy)
        elif op[0] == "fail":
            h.book.inject("fail", times=op[2], at=op[1])
        elif op[0] == "advance":
            h.advance(op[1])
        else:
            h.rate = None if op[1] is None else Decimal(op[1])
        h.check()
    h.advance(10.0)
    h.check()
    assert all(t.done for t in h.book.transfers.values())
    assert not any(e["in_transit"] for e in h.book.ledger().values())
    by_id: dict[str, list[str]] = {}
    for kind, payload in h.rows:
        by_id.setdefault(payload["transfer_id"], []).append(kind)
    for tid, steps in by_id.items():
        assert steps in (
            ["TransferRequested", "TransferFailed"],
            ["TransferRequested", "TransferInTransit", "TransferCredited"],
            ["TransferRequested", "TransferInTransit", "TransferFailed"],
        ), (tid, steps)
    assert len(by_id) == len(h.book.transfers)
