"""Receipts: the complete record of one order or ticket, rebuilt from the journal alone."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.core.model import OrderState
from cmc_lab.core.specs import load_specs
from cmc_lab.execution.hedge import TicketState
from cmc_lab.journal import Journal, JournalRow
from cmc_lab.journal.receipts import Receipt, ReceiptNotFound, read_receipt, slippage

GC_SPEC = load_specs().instruments["COMEX.GC"]


def test_a_filled_order_has_every_step_its_decision_quote_and_checks(eng: cmc.Engine) -> None:
    quote = eng.quote("COMEX.GC")
    order = eng.submit("COMEX.GC", "buy", 2, price=4177.4)
    assert order.wait(timeout=5) is OrderState.FILLED

    receipt = eng.receipt(order)

    assert isinstance(receipt, Receipt) and receipt.subject == "order" and receipt.outcome == "FILLED"
    frame = receipt.frame
    assert list(frame["step"])[:3] == ["intent", "checks passed", "ack"]
    assert frame["step"].iloc[-1] == "fill" and set(frame["order_id"]) == {order.client_order_id}
    assert frame["time"].dt.tz is not None
    decision = receipt.decision
    assert decision["kind"] == "OrderInitialized" and decision["reason"] == "manual order"
    seen = decision["quotes"].iloc[0]
    assert (seen["bid"], seen["ask"]) == (Decimal(str(quote.bid)), Decimal(str(quote.ask)))
    row = receipt.orders.iloc[0]
    assert row["client_order_id"] == order.client_order_id and row["venue_order_id"] == order.venue_order_id
    assert (row["instrument"], row["side"], row["qty"], row["price"], row["tif"]) == (
        GC,
        "buy",
        2,
        Decimal("4177.4"),
        "GFD",
    )
    assert row["account"] == "US-FUT" and "price_band" in row["checks"]
    assert row["avg_px"] == order.avg_px and row["filled"] == 2
    assert row["slippage_ref"] == "decision ask"
    expected_ticks, expected_money = slippage(order.avg_px, str(quote.ask), "buy", 2, GC_SPEC)
    assert (row["slippage_ticks"], row["slippage"]) == (expected_ticks, expected_money)
    assert isinstance(row["slippage"], Decimal)
    assert row["intent_to_ack_ns"] > 0 and row["intent_to_first_fill_ns"] >= row["intent_to_ack_ns"]


def test_a_denied_order_shows_the_check_that_refused_it(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price=2000.0)

    receipt = eng.receipt(order.client_order_id)

    assert receipt.outcome == "DENIED" and receipt.reason.startswith("daily_limits")
    assert list(receipt.frame["step"]) == ["intent", "checks denied"]
    assert receipt.orders.iloc[0]["checks"].startswith("DENIED: daily_limits")
    assert receipt.orders.iloc[0]["filled"] == 0 and receipt.frame["leaves_qty"].iloc[-1] == 0


def test_a_chased_ticket_rebuilds_the_report_of_the_live_ticket(eng: cmc.Engine) -> None:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.venues["COMEX"].inject("reject", times=1)
    ticket = eng.hedge("au_gc", "buy", 3, policy="chase")
    assert ticket.wait(timeout=10) is TicketState.FILLED

    receipt = eng.receipt(ticket)

    assert (receipt.subject, receipt.outcome, receipt.reason) == ("ticket", "FILLED", ticket.reason)
    steps = list(receipt.frame["step"])
    for step in ("decision", "intent", "checks passed", "sent", "ack", "rejected", "re-order", "fill"):
        assert step in steps, step
    assert steps.index("decision") < steps.index("intent") < steps.index("rejected") < steps.index("re-order")
    assert steps[-1] == "ticket FILLED"
    assert set(receipt.decision["quotes"]["instrument"]) == {AU, GC}
    report = ticket.report()["legs"]
    legs = receipt.legs.set_index("leg")
    for leg, figures in report.items():
        assert legs.loc[leg, "decision_px"] == figures["decision_px"]
        assert legs.loc[leg, "avg_px"] == figures["avg_px"]
        assert legs.loc[leg, "slippage_ticks"] == figures["slippage_ticks"]
        assert legs.loc[leg, "slippage"] == figures["slippage_money"]
        assert legs.loc[leg, "orders"] == figures["orders"]
    purposes = dict(zip(receipt.orders["client_order_id"], receipt.orders["purpose"], strict=True))
    assert sorted(purposes.values()) == ["chase", "leg", "leg"]


def test_the_receipt_of_a_re_order_starts_with_the_decision_that_made_it(eng: cmc.Engine) -> None:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.venues["COMEX"].inject("reject", times=1)
    ticket = eng.hedge("au_gc", "buy", 3, policy="chase")
    ticket.wait(timeout=10)
    chase = ticket.legs[1].orders[-1]

    receipt = eng.receipt(chase)

    first = receipt.frame.iloc[0]
    assert (first["kind"], first["step"], first["order_id"]) == ("HedgeChase", "re-order", None)
    assert set(receipt.frame["order_id"].dropna()) == {chase.client_order_id}
    assert receipt.decision["kind"] == "HedgeChase" and "missing leg" in receipt.decision["reason"]
    assert len(receipt.decision["quotes"]) == 1, "the re-order's own top of book"
    assert receipt.orders.iloc[0]["slippage_ref"] == "decision price"


def test_a_partial_fill_then_cancel_ends_canceled_with_what_was_filled(eng: cmc.Engine) -> None:
    eng.venues["SHFE"].inject("partial", times=1, ratio=0.34)
    ask = eng.quote("SHFE.au").ask
    order = eng.submit("SHFE.au", "buy", 3, price=eng.instrument("SHFE.au").round_to_tick(ask + 0.5))
    eng.sleep(0.5)
    if not order.done:
        order.cancel()
    order.wait(timeout=5)

    receipt = eng.receipt(order)

    frame = receipt.frame
    assert receipt.outcome == order.state.value == "CANCELED"
    assert list(frame["step"])[-2:] == ["partial fill", "canceled"] or "cancel request" in list(frame["step"])
    assert frame["leaves_qty"].iloc[-1] == 0 and frame["cum_qty"].iloc[-1] == order.filled_qty
    assert 0 < receipt.orders.iloc[0]["filled"] < 3


def test_latency_lists_each_hop_of_each_order(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "sell", 1, price=4022.6)
    order.wait(timeout=5)

    latency = eng.receipt(order).latency

    assert list(zip(latency["from"], latency["to"], strict=True)) == [
        ("intent", "checks passed"),
        ("checks passed", "ack"),
        ("ack", "fill"),
    ]
    assert latency["hop_ns"].iloc[1] > 0 and latency["venue_lag_ns"].iloc[1] >= 0


def test_an_unknown_id_says_what_to_pass(eng: cmc.Engine) -> None:
    with pytest.raises(ReceiptNotFound, match="no journal events for 'nope'; pass a client order id"):
        eng.receipt("nope")
    with pytest.raises(TypeError, match="not a client order id or ticket id"):
        read_receipt(eng.journal, "")


def test_html_and_repr_of_a_filled_order_render(eng: cmc.Engine) -> None:
    order = eng.submit("COMEX.GC", "buy", 1, price=4177.4)
    order.wait(timeout=5)
    receipt = eng.receipt(order)

    html = receipt._repr_html_()
    assert order.client_order_id in html and "FILLED" in html and "Decision" in html
    assert repr(receipt).startswith(f"Receipt(order {order.client_order_id}: FILLED; 4 events")


def test_receipt_html_renders_without_importing_the_ui_or_bokeh() -> None:
    script = (
        "import sys\n"
        "from cmc_lab.journal import Journal, read_receipt\n"
        "j = Journal(':memory:')\n"
        "j.append('OrderInitialized', ts_event=1, ts_init=1, mono_ns=0, order_id='C-1', payload="
        "{'instrument_id': 'COMEX.GC', 'side': 'buy', 'qty': 1, 'price': '4100.10', 'tif': 'GFD'})\n"
        "html = read_receipt(j, 'C-1')._repr_html_()\n"
        "assert 'C-1' in html and '<table' in html, html\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cmc_lab.ui', 'bokeh', 'jupyter_bokeh'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]", f"rendering a receipt imported {run.stdout.strip()}"


def rows_of_a_restarted_order() -> list[JournalRow]:
    intent = {
        "instrument_id": "COMEX.GC",
        "side": "sell",
        "qty": 2,
        "price": "4100.00",
        "tif": "GFD",
        "account": "US",
        "bid": "4100.1",
        "ask": "4100.3",
        "reason": "<script>",
    }
    fill = {"last_px": "4100.00", "last_qty": 1, "venue_order_id": "V-1", "trade_id": "T-1"}
    ids = {"order_id": "r1-000001", "venue": "COMEX", "instrument": "COMEX.GC"}
    return [
        JournalRow("OrderInitialized", 10, 10, 5_000, intent, **ids),
        JournalRow("OrderSubmitted", 10, 10, 5_000, {"checks": "tick"}, **ids),
        JournalRow("OrderAccepted", 11, 20, 9_000, {"venue_order_id": "V-1"}, **ids),
        JournalRow("OrderFilled", 12, 30, 100, fill, **ids),  # after a restart: a new monotonic clock
        JournalRow("OrderFilled", 13, 40, 400, fill | {"last_px": "4100.20", "trade_id": "T-2"}, **ids),
    ]


def test_a_receipt_comes_from_the_journal_alone_with_exact_money(tmp_path: Path) -> None:
    with Journal(tmp_path / "run.sqlite") as journal:
        journal.append_many(rows_of_a_restarted_order())
    with Journal(tmp_path / "run.sqlite", readonly=True) as journal:
        receipt = read_receipt(journal, "r1-000001")

    frame = receipt.frame
    assert list(frame["step"]) == ["intent", "checks passed", "ack", "partial fill", "fill"]
    assert frame["hop_ns"].tolist()[1:] == [0, 4_000, pd.NA, 300]
    assert frame["venue_lag_ns"].tolist()[2:] == [9, 18, 27]
    assert frame["last_px"].tolist()[3:] == [Decimal("4100.00"), Decimal("4100.20")]
    # sold 1 at 4100.00 and 1 at 4100.20 against the 4100.1 bid seen: +1 tick worse, then 1 better
    assert frame["slippage_ticks"].tolist()[3:] == [1.0, -1.0]
    assert frame["slippage"].tolist()[3:] == [Decimal("10.00"), Decimal("-10.00")]
    order = receipt.orders.iloc[0]
    assert (order["state"], order["filled"], order["avg_px"]) == ("FILLED", 2, Decimal("4100.10"))
    assert order["slippage"] == Decimal("0.00") and order["intent_to_done_ns"] is pd.NA
    assert "&lt;script&gt;" in receipt._repr_html_() and "<script>" not in receipt._repr_html_()


def test_slippage_is_positive_when_worse_for_either_side() -> None:
    assert slippage(Decimal("4100.30"), "4100.10", "buy", 1, GC_SPEC) == (2.0, Decimal("20.00"))
    assert slippage(Decimal("4100.30"), "4100.10", "sell", 3, GC_SPEC) == (-2.0, Decimal("-60.00"))
    assert slippage(None, "4100.10", "buy", 1, GC_SPEC) == (None, None)
    assert slippage(Decimal("1"), None, "buy", 1, GC_SPEC) == (None, None)
