"""Compliance counts in the audit pack (issue 14): each account's orders and cancels per exchange trading
day and its busiest second, flagged at the programmatic-trading high-frequency thresholds; and per
account, contract and trading day the orders, cancels (IOC exempt), large cancels, self-trades and
self-match denials, flagged at the exchanges' abnormal-trading standard."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from packs import close_quietly, pack_table
from sim_months import AU

import cmc_lab as cmc
from cmc_lab.core.compliance import AbnormalTrading
from cmc_lab.core.model import OrderFilled, event_payload
from cmc_lab.core.specs import load_specs
from cmc_lab.journal import audit
from cmc_lab.journal.compliance import (
    CONTRACT_FIELDS,
    ContractCounter,
    MessageCounter,
    Thresholds,
    load_abnormal,
    load_thresholds,
)
from cmc_lab.venues.fix import mapping
from cmc_lab.venues.fix.codec import encode, parse

SPECS = load_specs()


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1e9)


def test_the_shipped_thresholds_are_the_2025_rules_numbers_with_their_source() -> None:
    t = load_thresholds()
    assert (t.per_second, t.per_day) == (300, 20_000) and "Programmatic Trading" in t.source


def test_a_friday_night_message_counts_toward_monday_and_a_burst_is_flagged() -> None:
    counter = MessageCounter(SPECS.instruments, Thresholds(per_second=3, per_day=100, source="test"))
    friday_night = ns("2026-11-27 13:30:00")  # 21:30 in Shanghai: the night session of Monday's trading day
    counter.count("CN-FUT", "SHFE.au", friday_night)
    for i in range(3):
        counter.count("US-FUT", "COMEX.GC", ns("2026-11-24 15:00:00") + i * 1_000_000)
    rows = list(counter.rows())
    assert ["2026-11-30", "CN-FUT", 1, 1, "no", 100, 3] in rows
    assert ["2026-11-24", "US-FUT", 3, 3, "yes", 100, 3] in rows  # three in one second: at the threshold


def test_the_audit_pack_has_each_accounts_messages_per_trading_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        audit, "load_thresholds", lambda: Thresholds(per_second=2, per_day=1_000, source="test")
    )
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite")
    try:
        eng.sleep(1.0)
        gc = eng.quote("COMEX.GC")
        gc_spec = eng.instrument("COMEX.GC")
        resting = [
            eng.submit("COMEX.GC", "buy", 1, price=gc_spec.round_to_tick(gc.bid * f)) for f in (0.97, 0.96)
        ]
        eng.sleep(0.1)
        for order in resting:
            order.cancel()
        eng.sleep(0.5)
        pack = eng.audit(tmp_path / "pack.zip", overwrite=True)
    finally:
        close_quietly(eng)
    rows = pack_table(pack, "compliance.csv")
    us = next(r for r in rows if r["account"] == "US-FUT")
    assert us["day"] == "2026-11-24" and us["messages"] == "4"  # two orders, two cancels
    assert us["high_frequency"] == "yes" and us["threshold_per_second"] == "2"


# ---------------------------------------------------------------------------- per contract (abnormal trading)


def self_trade(eng: cmc.Engine, iid: str) -> tuple[cmc.Order, cmc.Order]:
    """Our buy trading with our own resting sell on the embedded exchange: a real self-trade.

    The sell rests at the ask; once the exchange requotes, its simulated liquidity goes back behind
    our order at that price (time priority), and a buy at that price trades with our sell first.
    Tried until it happens (the simulated market may move through the sell first)."""
    inst = eng.instrument(iid)
    for _ in range(20):
        px = inst.round_to_tick(eng.quote(iid).ask)
        sell = eng.submit(iid, "sell", 1, price=px)
        eng.sleep(0.25)
        if sell.state is cmc.OrderState.ACCEPTED and inst.round_to_tick(eng.quote(iid).ask) == px:
            buy = eng.submit(iid, "buy", 1, price=px)
            eng.sleep(0.25)
            if buy.fills and sell.fills and buy.fills[0].match_id == sell.fills[-1].match_id:
                return sell, buy
        if not sell.done:
            sell.cancel()
            eng.sleep(0.1)
    raise AssertionError("no self-trade in 20 tries")


def test_a_self_trade_on_the_embedded_exchange_is_flagged_on_both_fills_and_counted_once_per_contract_day(
    tmp_path: Path,
) -> None:
    """The engine's self_match check refuses an order that would cross our own resting order, so a
    self-trade needs it off (as a desk that turns it off, or a second process trading the same
    account, would meet it); the exchange matches the two orders and says so on both fills."""
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite")
    try:
        eng.sleep(1.0)
        eng.checks.checks = [(n, c) for n, c in eng.checks.checks if n != "self_match"]
        sell, buy = self_trade(eng, "SHFE.au")
        ours = {f.match_id for f in (*sell.fills, *buy.fills) if f.self_trade}
        fills = list(eng.journal.rows(kinds=["OrderFilled"]))
        pack = eng.audit(tmp_path / "pack.zip", overwrite=True)
    finally:
        close_quietly(eng)
    assert len(ours) == 1 and sell.fills[-1].liquidity == "maker" and buy.fills[0].liquidity == "taker"
    journaled = [r["payload"] for r in fills if r["payload"]["self_trade"]]
    assert {p["side"] for p in journaled} == {"buy", "sell"} and {p["match_id"] for p in journaled} == ours
    (row,) = [r for r in pack_table(pack, "compliance_contracts.csv") if r["instrument"] == AU]
    assert row["day"] == "2026-11-25" and row["account"] == "CN-FUT"  # the night session: the next day
    assert row["self_trades"] == "1" and row["self_match_denials"] == "0"  # one match, two fills of it
    assert row["orders"] == str(len(_submitted(pack))) and row["cancels"] == str(len(_cancels(pack)))
    assert row["self_trades_flag"] == "no" and row["standard"].startswith("SHFE/INE: self-trades 5")


def _submitted(pack: Path) -> list[dict[str, str]]:
    return _events(pack, "OrderSubmitted")


def _cancels(pack: Path) -> list[dict[str, str]]:
    return _events(pack, "OrderCancelRequested")


def _events(pack: Path, kind: str) -> list[dict[str, str]]:
    return [r for r in pack_table(pack, "order_events.csv") if r["event"] == kind and r["instrument"] == AU]


def test_an_order_the_self_match_check_denies_is_counted_for_its_contract_and_day(tmp_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite")
    try:
        eng.sleep(1.0)
        au = eng.instrument("SHFE.au")
        ask = au.round_to_tick(eng.quote("SHFE.au").ask)
        resting = eng.submit("SHFE.au", "sell", 1, price=ask + 20 * au.tick)
        eng.sleep(0.2)
        crossing = eng.submit("SHFE.au", "buy", 1, price=ask + 25 * au.tick)
        assert crossing.reason.startswith("self_match:"), crossing.reason
        resting.cancel()
        eng.sleep(0.2)
        pack = eng.audit(tmp_path / "pack.zip", overwrite=True)
    finally:
        close_quietly(eng)
    (row,) = pack_table(pack, "compliance_contracts.csv")
    assert (row["instrument"], row["orders"], row["cancels"], row["orders_and_cancels"]) == (
        AU,
        "1",
        "1",
        "2",
    )
    assert (row["self_match_denials"], row["self_trades"], row["cancels_flag"]) == ("1", "0", "no")


def test_contract_counts_exempt_ioc_cancels_count_large_cancels_and_flag_at_the_standard() -> None:
    standard = AbnormalTrading(("SHFE", "INE"), 2, 3, 2, 300, "test", "2026-12-05")
    counter = ContractCounter(SPECS.instruments, standard)
    friday_night = ns("2026-11-27 13:30:00")  # Monday's trading day on SHFE
    for qty in (1, 300, 500):
        counter.cancel("CN-FUT", "SHFE.au", friday_night, "GFD", qty)
    counter.cancel("CN-FUT", "SHFE.au", friday_night, "IOC", 400)  # FAK/FOK: exempt from both counts
    for match in ("M1", "M2"):
        counter.fill(
            "CN-FUT", "SHFE.au", friday_night, {"side": "buy", "match_id": match, "self_trade": True}
        )
        counter.fill(
            "CN-FUT", "SHFE.au", friday_night, {"side": "sell", "match_id": match, "self_trade": True}
        )
    counter.fill("CN-FUT", "SHFE.au", friday_night, {"side": "buy", "match_id": "M3"})  # the market's side
    counter.order("US-FUT", "COMEX.GC", ns("2026-11-24 15:00:00"))
    counter.denied("US-FUT", "COMEX.GC", ns("2026-11-24 15:00:00"), "self_match: buy 1 COMEX.GC ...")
    counter.denied("US-FUT", "COMEX.GC", ns("2026-11-24 15:00:00"), "margin: needs more")
    rows = [dict(zip(CONTRACT_FIELDS, r, strict=True)) for r in counter.rows()]
    gc, au = rows
    assert (au["day"], au["cancels"], au["ioc_cancels"], au["orders_and_cancels"]) == ("2026-11-30", 3, 1, 4)
    assert (au["large_cancels"], au["self_trades"]) == (2, 2)
    assert (au["cancels_flag"], au["large_cancels_flag"], au["self_trades_flag"]) == ("yes", "yes", "yes")
    assert (gc["orders"], gc["self_match_denials"], gc["cancels_flag"]) == (1, 1, "n/a")
    assert gc["standard"] == "none shipped for COMEX"


def test_two_fills_of_ours_in_one_match_are_a_self_trade_even_when_the_venue_does_not_say_so() -> None:
    counter = ContractCounter(SPECS.instruments, load_abnormal())
    t = ns("2026-11-24 02:00:00")
    counter.fill("CN-FUT", "SHFE.au", t, {"side": "buy", "match_id": "X-1", "trade_id": "a"})
    counter.fill("CN-FUT", "SHFE.au", t, {"side": "sell", "match_id": "X-1", "trade_id": "b"})
    counter.fill("CN-FUT", "SHFE.au", t, {"side": "buy", "trade_id": "c"})
    counter.fill("CN-FUT", "SHFE.au", t, {"side": "buy", "trade_id": "d"})
    (row,) = counter.rows()
    assert dict(zip(CONTRACT_FIELDS, row, strict=True))["self_trades"] == 1


def test_the_shipped_abnormal_trading_standard_says_where_it_comes_from_and_what_is_not_verified() -> None:
    standard = load_abnormal()
    assert (standard.self_trades, standard.cancels, standard.large_cancels) == (5, 500, 50)
    assert standard.large_cancel_lots == 300 and standard.venues == ("SHFE", "INE")
    assert "abnormal-trading monitoring standards" in standard.source and "NOT VERIFIED" in standard.source
    assert "check your exchange's current text" in standard.source and standard.as_of


def test_a_fix_venues_trdmatchid_pairs_our_two_fills_of_one_match_into_a_self_trade() -> None:
    """A FIX venue that sends TrdMatchID (880) gives both our fills of a match the same match id;
    FIX 4.4 has no field saying the other side was ours, so the pairing finds it."""
    fills = []
    for side, exec_id in (("1", "E1"), ("2", "E2")):
        fields = {35: "8", 52: "20261124-14:00:00.000", 60: "20261124-14:00:00.250", 37: f"SHFE-{exec_id}",
                  11: exec_id, 17: exec_id, 150: "F", 39: "2", 54: side, 55: "au", 207: "SHFE", 31: "945.02",
                  32: 1, 14: 1, 151: 0, 6: "945.02", 880: "SHFE-M42"}  # fmt: skip
        event = mapping.execution_report_event(parse(encode(list(fields.items()))), exec_id, "SHFE.au", 0)
        assert isinstance(event, OrderFilled) and event.match_id == "SHFE-M42"
        fills.append(event_payload(event))
    counter = ContractCounter(SPECS.instruments, load_abnormal())
    for payload in fills:
        counter.fill("CN-FUT", "SHFE.au", ns("2026-11-24 02:00:00"), payload)
    (row,) = counter.rows()
    assert dict(zip(CONTRACT_FIELDS, row, strict=True))["self_trades"] == 1
