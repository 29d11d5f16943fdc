"""``eng.positions()``: signed positions per account and contract, FIFO average, mark, P&L in its money and CNY."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path

from sim_months import GC

import cmc_lab as cmc
from cmc_lab.engine.errors import OpenExposureWarning
from cmc_lab.risk.position_table import COLUMNS


def test_positions_are_signed_with_their_average_mark_and_pnl(tmp_path: Path) -> None:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "desk.sqlite")
    try:
        assert list(eng.positions().columns) == COLUMNS and eng.positions().empty  # empty keeps its columns
        eng.sleep(1.0)
        gc = eng.quote("COMEX.GC")
        sold = eng.submit("COMEX.GC", "sell", 2, price=Decimal(str(gc.bid)) - 1)
        sold.wait(5)
        table = eng.positions().set_index("instrument")
        row = table.loc[GC]
        assert (row["account"], row["position"], row["held"], row["currency"]) == (
            "US-FUT",
            -2,
            "short 2",
            "USD",
        )
        assert row["avg_px"] == sold.avg_px
        assert row["unrealized"] == ((row["avg_px"] - row["mark"]) * 2 * 100).quantize(Decimal("0.01"))
        assert str(row["unrealized"]) != "-0.00" and str(row["unrealized_base"]) != "-0.00"
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenExposureWarning)
            eng.close()


def test_positions_survive_a_reopen_of_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite"
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    eng.sleep(1.0)
    au = eng.quote("SHFE.au")
    eng.submit("SHFE.au", "buy", 3, price=eng.instrument("SHFE.au").round_to_tick(au.ask + 0.5)).wait(5)
    before = eng.positions()[["account", "instrument", "position", "avg_px"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpenExposureWarning)
        eng.close()
    again = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    try:
        after = again.positions()[["account", "instrument", "position", "avg_px"]]
        assert after.to_dict("records") == before.to_dict("records")
        assert again.reconcile().clean
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenExposureWarning)
            again.close()
