"""Compliance counts for the programmatic-trading rules: each account's orders and cancels per exchange
trading day and its busiest second, flagged at the high-frequency thresholds, in the audit pack (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from packs import close_quietly, pack_table

import cmc_lab as cmc
from cmc_lab.core.specs import load_specs
from cmc_lab.journal import audit
from cmc_lab.journal.compliance import MessageCounter, Thresholds, load_thresholds

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
