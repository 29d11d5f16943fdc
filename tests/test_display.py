"""Readable outputs: what a trader reads in a notebook, while code keeps the raw values."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest

import cmc_lab as cmc
from cmc_lab.core.display import Readable, duration, flatten_text, html_table, lots, money, number, timestamp
from cmc_lab.execution.hedge import HedgeTicket


@pytest.mark.parametrize(
    ("ns", "text"),
    [(172067634, "172.1 ms"), (5400, "5.4 µs"), (90_000_000_000, "90.0 s"), (None, "—"), (float("nan"), "—")],
)
def test_durations_read_in_ms_or_us(ns: int | float | None, text: str) -> None:
    assert duration(ns) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("4726380.31"), "CNY", "CNY 4,726,380.31"),
        (Decimal("-0.00"), "USD", "USD 0.00"),
        (Decimal("-12.5"), "", "-12.5"),
        (-0.0, "", "0"),
        (2.3113506546637836, "", "2.3114"),
        (None, "USD", "—"),
    ],
)
def test_money_has_separators_and_never_a_negative_zero(
    value: Decimal | float | None, currency: str, text: str
) -> None:
    assert money(value, currency) == text


def test_lots_and_times_read_as_a_trader_says_them() -> None:
    assert (lots(-3, "SHFE.au"), lots(2), lots(0)) == ("short 3 SHFE.au", "long 2", "flat")
    assert timestamp(1795528801001423544) == "14:00:01.001"  # UTC
    assert number(1234567) == "1,234,567"


def test_a_naked_position_is_said_signed_with_the_order_that_flattens_it() -> None:
    assert flatten_text("SHFE.au", -3) == "short 3 SHFE.au; buy 3 to flatten"
    assert flatten_text("COMEX.GC", 1) == "long 1 COMEX.GC; sell 1 to flatten"
    assert flatten_text("COMEX.GC", 0) == "flat COMEX.GC"


def filled_ticket(make_engine: Callable[..., cmc.Engine]) -> tuple[cmc.Engine, HedgeTicket]:
    """A chase ticket of 3 au_gc bought on the embedded exchange, waited on."""
    eng = make_engine()
    eng.sleep(1.0)
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    t = eng.hedge("au_gc", side="buy", qty=3, policy="chase")
    t.wait(timeout=10)
    return eng, t


def test_a_ticket_report_is_a_dict_for_code_and_a_readable_table_in_a_notebook(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    _, t = filled_ticket(make_engine)
    report = t.report()
    assert isinstance(report, Readable) and isinstance(report, dict)
    assert isinstance(report["fx_usdcnh"], Decimal)  # raw values for code
    assert isinstance(report["time_to_hedged_ns"], int)
    page = report._repr_html_()
    assert "Decimal(" not in page and "NaN" not in page and "nan" not in page
    assert not re.search(r"-0(\.0+)?\b", page), "a negative zero is shown"
    assert "4,100.00" in page and "945.02" in page  # prices in their own places, with separators
    assert re.search(r"\d+\.\d ms", page)  # time to hedged in ms, not nanoseconds
    assert str(report["time_to_hedged_ns"]) not in page
    assert "CNY 0" in page  # money in its currency


def test_nested_rows_render_as_tables_and_empty_as_none() -> None:
    page = html_table({"legs": {"A": {"avg_px": Decimal("1000.5"), "currency": "USD"}}, "limits": []})
    assert "<th>avg px</th>" in page and "1,000.5" in page and "none" in page


def test_a_timeline_shows_hops_in_ms_and_no_nan_while_its_columns_stay_raw(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng, t = filled_ticket(make_engine)
    receipt = eng.journal.timeline(t.ticket_id)
    assert receipt["hop_ns"].dtype == "int64"  # raw for code
    assert receipt["order_id"].isna().any()  # ticket rows have no order: blank, not NaN, on screen
    shown = receipt[["seq", "kind", "order_id", "venue", "hop_ns"]]
    page = shown._repr_html_()
    assert "NaN" not in page and "nan" not in page and "<NA>" not in page
    big = int(receipt["hop_ns"].max())
    assert str(big) not in page
    assert re.search(r"<td>\d[\d,]*\.\d (ms|µs)</td>", page)
    assert "ticket" in receipt._repr_html_().lower()


def test_capital_view_never_shows_a_negative_zero(make_engine: Callable[..., cmc.Engine]) -> None:
    from cmc_lab.risk.capital_view import _fmt

    assert _fmt(Decimal("-0.001")) == "0.00"
    assert _fmt(Decimal("-1234.5")) == "-1,234.50"
    eng = make_engine()
    eng.sleep(1.0)
    page = eng.capital()._repr_html_()
    assert "Decimal(" not in page and not re.search(r"-0\.00\b", page)
    assert re.search(r"\d{1,3}(,\d{3})+\.\d\d", page)  # money with thousands separators


def test_alerts_read_with_clock_times_first_and_keep_raw_columns_for_code(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine()
    assert eng.alerts().columns[0] == "time"  # empty: still its columns
    eng.sleep(0.5)
    eng.alert("desk", "warning", "spread wide: check the COMEX book")
    alerts = eng.alerts()
    assert str(alerts["time"].dtype).startswith("datetime64")  # raw for code
    page = alerts._repr_html_()
    assert "<td>14:00:00.500</td>" in page and "spread wide" in page and "+00:00" not in page
