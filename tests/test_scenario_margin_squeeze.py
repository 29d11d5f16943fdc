"""The field scenario: an overseas squeeze lifts US-FUT margin utilisation past 80 %; the engine alerts,
transfers from the CNY account before the liquidation line, and the journal shows each step.

On the embedded exchange under the virtual clock: a hedged gold position (long SHFE au in CN-FUT,
short COMEX GC in US-FUT), then COMEX raises the GC margin and gold spikes. The short GC leg
loses in the USD account while the long au leg gains in the CNY account: the classic
cross-market margin squeeze, where the money is on the wrong side of the border.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc
from cmc_lab.risk.transfers import TransferState

WATCHED = (
    "ThresholdCrossed",
    "ThresholdCleared",
    "Alert",
    "ThresholdAction",
    "TransferRequested",
    "TransferInTransit",
    "TransferCredited",
    "TransferFailed",
    "MarginRateChanged",
    "TradingStateChanged",
)


def steps(eng: cmc.Engine) -> list[tuple[str, dict[str, Any]]]:
    return [(r["kind"], r["payload"]) for r in eng.journal.rows(kinds=list(WATCHED))]


def test_overseas_margin_squeeze_is_met_by_a_transfer_before_the_liquidation_line(tmp_path: Path) -> None:
    eng = cmc.connect(
        "sim", seed=7, clock="virtual", journal=tmp_path / "j.sqlite", accounts={"US-FUT": 900_000}
    )
    try:
        # -- a hedged gold position: 30 au long (CN-FUT), 10 GC short (US-FUT) -----------------
        gc, au = eng.quote("COMEX.GC"), eng.quote("SHFE.au")
        short = eng.submit("COMEX.GC", "sell", 10, price=Decimal(str(gc.bid)) - 2)
        long = eng.submit("SHFE.au", "buy", 30, price=eng.instrument("SHFE.au").round_to_tick(au.ask + 0.5))
        assert short.wait(5) is cmc.OrderState.FILLED and long.wait(5) is cmc.OrderState.FILLED
        accounts, _ = eng.capital()
        assert (
            accounts.loc["US-FUT", "utilisation"] < 0.5
        )  # about 369,000 of margin (9 % of notional) on 900,000

        # -- the desk's rule: warn at 70 %, transfer at 80 %, liquidation line at 95 % ------------
        eng.thresholds.add(
            "margin_utilisation",
            warn=0.7,
            act=0.8,
            liquidation=0.95,
            action="transfer",
            scope="US-FUT",
            min_buffer=10_000_000,
        )
        seen: list[float] = []
        eng.on_quote(lambda q: seen.append(eng.risk.capital.figures("US-FUT").utilisation))

        # -- 1. COMEX raises the GC margin from 9 % to 16 % of notional: warn -----------------------
        eng.set_margin_rate("COMEX.GC", 0.16)
        eng.sleep(0.5)
        assert [(k, p.get("level")) for k, p in steps(eng)] == [
            ("MarginRateChanged", None),
            ("ThresholdCrossed", "warn"),
            ("Alert", "warning"),
        ]
        assert eng.trading_state is cmc.TradingState.ACTIVE

        # -- 2. gold spikes 2 %: the short GC loses, utilisation passes 80 %: transfer ------------
        eng.venues["COMEX"].shock("GC", 0.02)
        eng.sleep(1.0)
        accounts, unified = eng.capital()
        peak = accounts.loc["US-FUT", "utilisation"]
        assert 0.8 <= peak < 0.95
        transfers = list(eng.risk.transfers.transfers.values())
        assert len(transfers) == 1
        t = transfers[0]
        assert (t.source, t.dest, t.currency, t.state) == (
            "CN-FUT",
            "US-FUT",
            "CNY",
            TransferState.IN_TRANSIT,
        )
        assert accounts.loc["CN-FUT", "in_transit_out"] == t.debit
        assert unified.loc["CNY", "in_transit"] == t.debit
        assert accounts.loc["CN-FUT", "available"] >= 10_000_000  # the source keeps its buffer

        # -- 3. two seconds later the wire is credited and utilisation is back under 70 % ---------
        eng.sleep(2.5)
        assert t.state is TransferState.CREDITED
        accounts, _ = eng.capital()
        assert accounts.loc["US-FUT", "utilisation"] < 0.7
        assert max(seen) < 0.95  # the liquidation line was never reached

        # -- the journal tells the story, in order ----------------------------------------------
        story = steps(eng)
        assert [(k, p["action"] if k == "ThresholdAction" else p.get("level")) for k, p in story] == [
            ("MarginRateChanged", None),
            ("ThresholdCrossed", "warn"),
            ("Alert", "warning"),
            ("ThresholdCrossed", "act"),
            ("Alert", "critical"),
            ("TransferRequested", None),
            ("TransferInTransit", None),
            ("ThresholdAction", "transfer"),
            ("TransferCredited", None),
            ("ThresholdCleared", "act"),
            ("ThresholdCleared", "warn"),
        ]
        by_kind = {k: p for k, p in story}
        act = story[3][1]
        assert act["value"] >= 0.8 and act["threshold"] == 0.8 and act["key"] == "US-FUT"
        assert story[4][1]["crossing"] == act["crossing_id"] and story[4][1]["threshold"] == 0.8
        assert "past its act level 80.0%; action: transfer" in story[4][1]["message"]
        for kind in ("TransferRequested", "TransferInTransit", "TransferCredited"):
            assert by_kind[kind]["cause"] == act["crossing_id"], kind
            assert by_kind[kind]["transfer_id"] == t.transfer_id
        action = by_kind["ThresholdAction"]
        assert action["crossing_id"] == act["crossing_id"] and action["ok"] is True
        assert action["delay_ns"] == 0 and action["cpu_ns"] > 0  # acted in the same loop turn
        assert by_kind["TransferCredited"]["since_request_ns"] == 2_000_000_000
        assert "liquidation" not in {p.get("level") for _, p in story}
        assert eng.trading_state is cmc.TradingState.ACTIVE

        # -- money: every currency balances, transfers in flight and conversions included ---------
        for ccy, e in eng.risk.transfers.ledger().items():
            assert e["cash"] + e["in_transit"] == e["start"] + e["settled"] + e["bought"] - e["sold"], ccy
        alerts = eng.alerts()
        assert list(alerts["threshold_level"]) == ["warn", "act"]
        assert list(alerts["threshold"]) == [0.7, 0.8]
        assert eng.journal.verify().ok
    finally:
        eng.close()


def test_shock_moves_an_overseas_factor_and_the_domestic_contract_priced_from_it() -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual")
    try:
        eng.sleep(1.0)
        gc, au, cu = (eng.quote(i).mid for i in ("COMEX.GC", "SHFE.au", "SHFE.cu"))
        eng.venues["COMEX"].shock("GC", 0.02)
        eng.sleep(0.5)
        assert eng.quote("COMEX.GC").mid / gc - 1 == pytest.approx(0.02, abs=0.002)
        assert eng.quote("SHFE.au").mid / au - 1 == pytest.approx(0.02, abs=0.002)
        assert eng.quote("SHFE.cu").mid / cu - 1 == pytest.approx(0.0, abs=0.002)
        with pytest.raises(KeyError, match=r"no instrument 'COMEX\.XX' on the embedded exchange"):
            eng.venues["COMEX"].shock("XX", 0.01)
        with pytest.raises(ValueError, match=r"pct = -1\.5 must be a fraction above -1"):
            eng.venues["COMEX"].shock("GC", -1.5)
    finally:
        eng.close()
