"""Property: whatever trades and restarts happen, the book equals the journal's fills, money conserved."""

from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cmc_lab as cmc
from cmc_lab.journal import Journal

#: One step: ("trade", instrument, signed lots) or ("restart",) or ("transfer", CNY amount).
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"), st.sampled_from(["COMEX.GC", "SHFE.au"]), st.integers(-3, 3).filter(bool)
        ),
        st.tuples(st.just("restart")),
        st.tuples(st.just("transfer"), st.integers(1, 50).map(lambda k: k * 10_000)),
    ),
    min_size=1,
    max_size=8,
)


def _connect(path: Path) -> cmc.Engine:
    return cmc.connect("sim", seed=7, clock="virtual", journal=path)


def _trade(eng: cmc.Engine, instrument: str, lots: int) -> None:
    quote = eng.quote(instrument)
    tick = eng.instrument(instrument).tick
    side = "buy" if lots > 0 else "sell"
    price = Decimal(str(quote.ask)) + 20 * tick if lots > 0 else Decimal(str(quote.bid)) - 20 * tick
    eng.submit(instrument, side, abs(lots), price=price, tif="IOC").wait(5)


def _fills_in_journal(path: Path) -> Counter[tuple[str, str]]:
    """Net lots per (account, instrument) from the journal's own rows."""
    accounts: dict[str, str] = {}
    net: Counter[tuple[str, str]] = Counter()
    with Journal(path, readonly=True) as journal:
        for row in journal.rows(kinds=["OrderInitialized", "OrderFilled"]):
            payload = row["payload"]
            if row["kind"] == "OrderInitialized":
                accounts[row["order_id"]] = payload["account"]
            else:
                sign = 1 if payload["side"] == "buy" else -1
                net[(accounts[row["order_id"]], payload["instrument_id"])] += sign * int(payload["last_qty"])
    return net


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_positions_equal_the_journals_fills_and_money_is_conserved_across_restarts(plan: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", cmc.OpenExposureWarning)
        path = Path(tmp) / "run.sqlite"
        eng = _connect(path)
        try:
            eng.sleep(0.5)
            for step in plan:
                if step[0] == "trade":
                    _trade(eng, step[1], step[2])
                elif step[0] == "transfer":
                    eng.transfer("SHFE", "COMEX", step[1], currency="CNY")
                else:
                    eng.close()
                    eng = _connect(path)
                eng.sleep(0.3)
            eng.close()
            eng = _connect(path)
            expected = {key: lots for key, lots in _fills_in_journal(path).items() if lots}
            held = {(p.account, p.instrument.id): p.qty for p in eng.risk.capital.positions() if p.qty}
            assert held == expected
            for currency, ledger in eng.risk.transfers.ledger().items():
                assert ledger["cash"] + ledger["in_transit"] == (
                    ledger["start"] + ledger["settled"] + ledger["bought"] - ledger["sold"]
                ), currency
        finally:
            eng.close()
