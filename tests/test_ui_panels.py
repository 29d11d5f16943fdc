"""The workbench panels without a browser: streaming, triggers, the ticket's confirm step, alerts, the pump."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest
from bokeh.document.events import ColumnsStreamedEvent, DocumentChangedEvent
from bokeh.models import Span
from jupyter_bokeh.widgets import BokehModel
from sim_months import AU

import cmc_lab as cmc
from cmc_lab.bench.ui import widget_stream_rate
from cmc_lab.core.model import Quote
from cmc_lab.execution.hedge import TicketState
from cmc_lab.execution.spread import SpreadSnapshot
from cmc_lab.ui.killswitch import KillSwitch, side_channel
from cmc_lab.ui.panels import AlertsPanel, HedgeTicketPanel
from cmc_lab.ui.pump import Pump, pump_for
from cmc_lab.ui.receipt import HOP_COLOURS, plot_frame, receipt_timeline
from cmc_lab.ui.spread_monitor import SpreadMonitor
from cmc_lab.ui.workbench import Workbench


class Ticker:
    """A clock the test moves by hand (seconds), for a pump stepped with ``run_due``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def with_spread(eng: cmc.Engine) -> cmc.Engine:
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    return eng


@pytest.fixture
def live(make_engine: Callable[..., cmc.Engine]) -> cmc.Engine:
    """Real clock, quotes every 50 ms: the market moves by itself as in a notebook."""
    return with_spread(make_engine(clock="real", quote_interval=0.05))


@pytest.fixture
def virt(eng: cmc.Engine) -> cmc.Engine:
    """Virtual clock: the market moves only while a call waits on it."""
    eng.sleep(0.5)
    return with_spread(eng)


def streams_of(monitor: SpreadMonitor) -> list[ColumnsStreamedEvent]:
    """Record every stream patch of the monitor's main data source (what goes to the browser)."""
    events: list[ColumnsStreamedEvent] = []

    def on_change(event: DocumentChangedEvent) -> None:
        if isinstance(event, ColumnsStreamedEvent) and event.model is monitor.source:
            events.append(event)

    monitor.source.document.on_change(on_change)
    return events


def snapshots(eng: cmc.Engine, n: int, start_ns: int) -> list[SpreadSnapshot]:
    base = eng.spread("au_gc").quote()
    return [
        dataclasses.replace(base, ts_ns=start_ns + i * 1_000_000, mid=base.mid + i * 0.01) for i in range(n)
    ]


# ---------------------------------------------------------------------------- spread monitor


def test_spread_monitor_streams_every_point_once_at_its_own_rate(virt: cmc.Engine) -> None:
    clock = Ticker()
    pump = Pump(16, clock=clock, start=False)
    slow = SpreadMonitor(virt, "au_gc", rate_hz=4, pump=pump)
    fast = SpreadMonitor(virt, "au_gc", rate_hz=8, pump=pump)
    streamed = streams_of(slow)
    received: list[SpreadSnapshot] = []
    virt.desk.on_spread("au_gc", received.append)

    for _ in range(16):  # one second of pump passes, the market moving between them
        virt.sleep(0.25)
        pump.run_due()
        clock.now += 1 / 16
    pump.run_due()  # t = 1 s: both are due once more and send what is left

    assert pump.ticks == 9, "passes at 0, 1/8, 1/4, ... 1 s: one of them or both were due"
    assert (slow.updates, fast.updates) == (5, 9), "4 Hz and 8 Hz over [0, 1] s"
    assert slow.points == fast.points == len(received) > slow.updates, "every point, coalesced"
    assert [len(e.data["t"]) > 0 for e in streamed] == [True] * slow.updates, "an empty patch was sent"
    times = [t for e in streamed for t in e.data["t"]]
    assert times == [s.ts_ns / 1e6 for s in received], "each point sent once, in order"
    assert len(slow.source.data["t"]) == slow.points


def test_spread_monitor_streams_exactly_the_pending_points_and_respects_rollover(virt: cmc.Engine) -> None:
    monitor = SpreadMonitor(virt, "au_gc", window=50)
    pump_for(virt).remove(monitor._flush)  # flush by hand
    virt.desk.on_spread("au_gc", monitor._on_snapshot, remove=True)
    streamed = streams_of(monitor)
    start = virt.now_ns()

    for snap in snapshots(virt, 30, start):
        monitor._on_snapshot(snap)
    monitor._flush()
    assert [len(e.data["t"]) for e in streamed] == [30]
    assert len(monitor.source.data["t"]) == 30

    monitor._flush()  # nothing pending: nothing sent
    assert len(streamed) == 1 and monitor.updates == 1

    for snap in snapshots(virt, 40, start + 30_000_000):
        monitor._on_snapshot(snap)
    monitor._flush()
    assert [len(e.data["t"]) for e in streamed] == [30, 40], "only the new points are streamed"
    assert streamed[-1].rollover == 50
    assert len(monitor.source.data["t"]) == 50, "rollover keeps the window"
    assert monitor.source.data["t"][-1] == (start + 69_000_000) / 1e6
    assert monitor.source.data["t"][0] == (start + 20_000_000) / 1e6
    assert (monitor.updates, monitor.points) == (2, 70)


def test_spread_monitor_draws_nan_for_a_missing_z_score(virt: cmc.Engine) -> None:
    monitor = SpreadMonitor(virt, "au_gc")
    pump_for(virt).remove(monitor._flush)
    snap = dataclasses.replace(virt.spread("au_gc").quote(), z=None)
    monitor._on_snapshot(snap)
    monitor._flush()
    assert math.isnan(monitor.source.data["z"][-1])


def test_spread_monitor_shows_a_trigger_line_while_a_ticket_is_armed(virt: cmc.Engine) -> None:
    monitor = SpreadMonitor(virt, "au_gc")
    pump_for(virt).remove(monitor._flush)
    ticket = virt.hedge("au_gc", "buy", 3, when="ask <= -50")
    assert ticket.state is TicketState.ARMED
    monitor._flush()
    spans = [s for s in monitor.figure.center if isinstance(s, Span) and s.visible]
    assert [(s.location, s.dimension) for s in spans] == [(-50.0, "width")]

    ticket.cancel("test over")
    monitor._flush()
    assert not any(isinstance(s, Span) and s.visible for s in monitor.figure.center)


def test_spread_monitor_marks_a_filled_ticket_at_its_executed_spread(virt: cmc.Engine) -> None:
    monitor = SpreadMonitor(virt, "au_gc")
    pump_for(virt).remove(monitor._flush)
    ticket = virt.hedge("au_gc", "buy", 3)
    assert ticket.wait(timeout=10) is TicketState.FILLED
    monitor._flush()
    monitor._flush()
    assert len(monitor.fill_source.data["t"]) == 1, "one marker per filled ticket, once"
    price = monitor.fill_source.data["price"][0]
    assert abs(price - ticket.decision.mid) < 1.0, (price, ticket.decision)
    assert monitor.fill_source.data["color"] == ["#2ca02c"]


def test_spread_monitor_close_stops_streaming(virt: cmc.Engine) -> None:
    clock = Ticker()
    pump = Pump(16, clock=clock, start=False)
    monitor = SpreadMonitor(virt, "au_gc", pump=pump)
    virt.sleep(0.5)
    pump.run_due()
    assert monitor.points > 0
    monitor.close()
    sent = (monitor.points, monitor.updates)
    for _ in range(5):
        virt.sleep(0.5)
        clock.now += 1.0
        pump.run_due()
    assert (monitor.points, monitor.updates) == sent, "the pump still refreshes a closed monitor"
    monitor._flush()
    assert (monitor.points, monitor.updates) == sent, "a closed monitor still receives snapshots"


# ---------------------------------------------------------------------------- hedge ticket panel


def test_ticket_panel_fire_asks_for_confirmation_before_sending(virt: cmc.Engine) -> None:
    panel = HedgeTicketPanel(virt, "au_gc")
    assert panel.qty.value == 3, "qty starts at the spread's lot ratio"
    assert panel.confirm_box.layout.display == "none"
    panel.fire.click()
    assert panel.confirm_box.layout.display == "flex"
    assert "Fire <b>buy 3 au_gc</b> now, policy chase?" in panel.confirm_box.children[0].value
    assert panel.ticket is None and virt.tickets().empty, "nothing is sent before Confirm"
    panel.back.click()
    assert panel.confirm_box.layout.display == "none"
    assert virt.tickets().empty


def test_ticket_panel_confirm_fills_and_then_shows_the_receipt(virt: cmc.Engine) -> None:
    panel = HedgeTicketPanel(virt, "au_gc")
    panel.fire.click()
    panel.confirm.click()
    assert panel.confirm_box.layout.display == "none"
    ticket = panel.ticket
    assert ticket is not None
    assert ticket.wait(timeout=10) is TicketState.FILLED
    panel._refresh()
    assert "FILLED" in panel.status.value and ticket.ticket_id in panel.status.value
    (receipt,) = panel.receipt.children
    assert isinstance(receipt, BokehModel)
    assert f"receipt {ticket.ticket_id}" in str(receipt._model.title.text)
    panel._refresh()
    assert panel.receipt.children == (receipt,), "the receipt is made once"


def test_ticket_panel_with_a_trigger_arms_instead_of_firing(virt: cmc.Engine) -> None:
    panel = HedgeTicketPanel(virt, "au_gc")
    panel.when.value = "ask <= -50"
    assert panel.fire.description == "Arm..."
    panel.side.value = "sell"
    panel.fire.click()
    assert "Arm <b>sell 3 au_gc</b> when ask &lt;= -50" in panel.confirm_box.children[0].value
    panel.confirm.click()
    assert panel.ticket is not None and panel.ticket.state is TicketState.ARMED
    panel._refresh()
    assert "ARMED" in panel.status.value
    assert panel.receipt.children == ()


@pytest.mark.parametrize(
    ("qty", "when", "says"),
    [(2, "", "not a multiple of the 3:1 lot ratio"), (3, "ask <", "is not understood")],
)
def test_ticket_panel_shows_bad_input_as_a_message(virt: cmc.Engine, qty: int, when: str, says: str) -> None:
    panel = HedgeTicketPanel(virt, "au_gc")
    panel.qty.value = qty
    panel.when.value = when
    panel.fire.click()
    panel.confirm.click()
    assert panel.ticket is None
    assert says in panel.status.value and "color:#c62828" in panel.status.value
    assert virt.tickets().empty


# ---------------------------------------------------------------------------- alerts


def raise_alert(eng: cmc.Engine, message: str) -> None:
    async def alert() -> None:
        eng.alert("test", "warning", message)

    asyncio.run_coroutine_threadsafe(alert(), eng.runtime.loop).result(5)


def test_alerts_panel_shows_alerts_and_acknowledges_them(virt: cmc.Engine) -> None:
    panel = AlertsPanel(virt)
    panel._refresh()
    assert "0 open of 0" in panel.table.value
    raise_alert(virt, "margin <utilisation> 81%")
    raise_alert(virt, "second")
    panel._refresh()
    assert "2 open of 2" in panel.table.value
    assert "margin &lt;utilisation&gt; 81%" in panel.table.value, "messages are escaped"
    assert panel.table.value.index("second") < panel.table.value.index("margin"), "newest first"

    panel.ack.click()
    assert "0 open of 2" in panel.table.value
    assert virt.alerts()["acknowledged"].all()
    (row,) = list(virt.journal.rows(kinds=["AlertsAcknowledged"]))
    assert row["payload"] == {"ids": [1, 2], "who": "alerts panel"}


def test_alerts_panel_refreshes_from_the_pump(live: cmc.Engine) -> None:
    panel = AlertsPanel(live)
    raise_alert(live, "from the engine thread")
    wait_until(lambda: "from the engine thread" in panel.table.value, what="the pump to show the alert")


# ---------------------------------------------------------------------------- receipts


def test_plot_frame_of_a_ticket_receipt_has_plot_columns_and_starts_at_zero(virt: cmc.Engine) -> None:
    ticket = virt.hedge("au_gc", "buy", 3)
    assert ticket.wait(timeout=10) is TicketState.FILLED
    receipt = virt.receipt(ticket)
    frame = plot_frame(receipt.frame)
    expected = {"seq", "kind", "order_id", "venue", "hop_ns", "elapsed_ns"}
    expected |= {"t_ms", "hop_ms", "start_ms", "lane", "label", "colour"}
    assert expected <= set(frame.columns)
    assert frame["t_ms"].iloc[0] == 0
    assert (frame["t_ms"].diff().dropna() >= 0).all()
    assert (frame["start_ms"] <= frame["t_ms"]).all()
    filled = frame[frame["kind"] == "OrderFilled"]
    assert len(filled) == 2 and set(filled["colour"]) == {HOP_COLOURS["OrderFilled"]}
    assert all(lane.endswith(kind) for lane, kind in zip(frame["lane"], frame["kind"], strict=True))
    chart = receipt_timeline(receipt)
    assert isinstance(chart, BokehModel)
    assert f"receipt {ticket.ticket_id}" in str(chart._model.title.text)


def test_receipt_labels_one_per_row_in_ms_or_us_and_the_chart_leaves_room_for_them(virt: cmc.Engine) -> None:
    ticket = virt.hedge("au_gc", "buy", 3)
    assert ticket.wait(timeout=10) is TicketState.FILLED
    receipt = virt.receipt(ticket)
    frame = plot_frame(receipt.frame)
    labelled = frame[frame["label"] != ""]
    assert labelled["lane"].is_unique  # never two labels on one row
    assert all(
        re.fullmatch(r"\+[\d,]+\.\d (ms|µs|s)(, \+[\d,]+\.\d (ms|µs|s))?( \(last of \d+\))?", t)
        for t in labelled["label"]
    )
    assert "0.00 ms" not in " ".join(frame["label"])
    chart = receipt_timeline(receipt)
    fig = chart._model
    assert fig.x_range.end >= 1.25 * frame["t_ms"].max()  # the rightmost label is not clipped


# ---------------------------------------------------------------------------- workbench and pump


def test_workbench_builds_every_panel_with_the_kill_switch_on_top(virt: cmc.Engine) -> None:
    board = cmc.workbench(virt)
    assert isinstance(board, Workbench)
    assert isinstance(board.kill, KillSwitch)
    channel = side_channel(virt)
    assert (board.kill.url, board.kill.token) == (channel.url, channel.token)
    assert board.kill.state == "ACTIVE"
    assert isinstance(board.monitor, SpreadMonitor) and board.monitor.spread.name == "au_gc"
    assert isinstance(board.ticket, HedgeTicketPanel) and board.ticket.spread.value == "au_gc"
    assert isinstance(board.alerts, AlertsPanel)
    top, chart, *_ = board.widget.children
    assert board.kill in top.children
    assert chart is board.monitor.widget
    shown = {id(c) for c in widget_tree(board.widget)}
    assert {id(board.ticket.widget), id(board.alerts.widget)} <= shown
    capital = getattr(board, "capital", None)
    if capital is not None:
        assert id(capital.widget) in shown
    bundle = board._repr_mimebundle_()
    assert bundle is not None and "application/vnd.jupyter.widget-view+json" in bundle


def widget_tree(widget: w.Widget) -> list[w.Widget]:
    return [widget, *(d for child in getattr(widget, "children", ()) for d in widget_tree(child))]


def test_workbench_header_follows_the_trading_state(virt: cmc.Engine) -> None:
    board = cmc.workbench(virt)
    assert "ACTIVE" in board.header.value
    virt.kill("test", who="test")
    board._refresh_header()
    assert "HALTED" in board.header.value


def test_workbench_defines_the_gold_spread_when_there_is_none(eng: cmc.Engine) -> None:
    board = Workbench(eng)
    assert list(eng.spreads) == ["au_gc"]
    assert board.ticket.qty.value == 3
    assert isinstance(board.widget, w.VBox)


def test_pump_keeps_running_when_a_panel_raises_and_records_the_error(virt: cmc.Engine) -> None:
    clock = Ticker()
    pump = Pump(16, clock=clock, start=False)
    monitor = SpreadMonitor(virt, "au_gc", rate_hz=16, pump=pump)

    def broken_panel() -> None:
        raise RuntimeError("panel bug")

    pump.add(broken_panel)
    updates = []
    for _ in range(8):
        virt.sleep(0.25)
        pump.run_due()
        updates.append(monitor.updates)
        clock.now += 1 / 16
    assert pump.ticks == 8, "the pump stopped"
    assert updates == list(range(1, 9)), "the other panels stopped"
    assert len(pump.errors) == 8
    assert all("broken_panel" in e and "RuntimeError('panel bug')" in e for e in pump.errors)


def test_pump_keeps_only_the_last_50_errors() -> None:
    clock = Ticker()
    pump = Pump(60, clock=clock, start=False)
    calls: list[int] = []

    def broken_panel() -> None:
        calls.append(1)
        raise ValueError(f"bug {len(calls)}")

    pump.add(broken_panel)
    for _ in range(61):
        pump.run_due()
        clock.now += 1.0
    assert len(calls) == 61
    assert len(pump.errors) == 50
    assert pump.errors[0].endswith("ValueError('bug 12')")
    assert pump.errors[-1].endswith("ValueError('bug 61')")


def test_pump_runs_each_job_at_its_own_rate_and_says_when_the_next_is_due() -> None:
    clock = Ticker()
    pump = Pump(16, clock=clock, start=False)
    runs: dict[str, list[float]] = {"default": [], "slow": []}
    pump.add(lambda: runs["default"].append(clock.now))
    pump.add(lambda: runs["slow"].append(clock.now), rate_hz=4)
    waits = []
    for _ in range(16):
        waits.append(pump.run_due())
        clock.now += 1 / 16
    assert runs["default"] == [i / 16 for i in range(16)]
    assert runs["slow"] == [0.0, 0.25, 0.5, 0.75]
    assert waits == [1 / 16] * 16


def test_pump_that_fell_behind_skips_the_missed_refreshes_instead_of_bursting() -> None:
    clock = Ticker()
    pump = Pump(4, clock=clock, start=False)
    runs: list[float] = []
    pump.add(lambda: runs.append(clock.now))
    pump.run_due()
    clock.now = 10.0  # a long stall: forty refreshes missed
    assert pump.run_due() == 0.25
    assert pump.run_due() == 0.25, "nothing else is due right now"
    clock.now = 10.25
    pump.run_due()
    assert runs == [0.0, 10.0, 10.25]


def test_pump_with_nothing_to_run_waits_one_period() -> None:
    pump = Pump(4, clock=Ticker(), start=False)
    assert (pump.run_due(), pump.ticks) == (0.25, 0)


@pytest.mark.parametrize("rate", [0, -1, 61, float("nan"), True, "10", None])
def test_pump_and_monitor_reject_a_silly_rate_and_say_the_range(virt: cmc.Engine, rate: Any) -> None:
    says = re.escape(f"rate_hz must be a number of refreshes per second in (0, 60], got {rate!r}")
    with pytest.raises(ValueError, match=says):
        Pump(rate, start=False)
    if rate is not None:  # add(job) without a rate takes the pump's
        with pytest.raises(ValueError, match=says):
            Pump(start=False).add(lambda: None, rate_hz=rate)
    with pytest.raises(ValueError, match=says):
        SpreadMonitor(virt, "au_gc", rate_hz=rate, pump=Pump(start=False))


@pytest.mark.parametrize("window", [0, -5, 2.5, True, None])
def test_spread_monitor_rejects_a_window_that_keeps_no_points(virt: cmc.Engine, window: Any) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"window must be a whole number of points >= 1 (the chart keeps them), got {window!r}"
        ),
    ):
        SpreadMonitor(virt, "au_gc", window=window, pump=Pump(start=False))


def test_pump_is_one_per_engine_and_stops_with_it(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine()
    pump = pump_for(eng)
    assert pump_for(eng) is pump
    assert pump.running
    eng.close()
    assert not pump.running


# ---------------------------------------------------------------------------- widget traffic


def push_quotes(eng: cmc.Engine, instrument_id: str, n: int) -> None:
    """``n`` quotes of one instrument through the engine's own quote path, on its loop."""
    base = eng.quote(instrument_id)
    tick = float(eng.instrument(instrument_id).tick)

    async def push() -> None:
        for i in range(n):
            step = (i % 11 - 5) * tick
            now = eng.now_ns()
            eng.inbox.receive(
                Quote(instrument_id, base.bid + step, base.ask + step, base.bid_size, base.ask_size, now, now)
            )

    asyncio.run_coroutine_threadsafe(push(), eng.runtime.loop).result(30)


def test_spread_monitor_coalesces_a_quote_storm_into_one_patch_per_refresh(virt: cmc.Engine) -> None:
    clock = Ticker()
    pump = Pump(10, clock=clock, start=False)
    monitor = SpreadMonitor(virt, "au_gc", pump=pump)
    pump.run_due()
    streamed = streams_of(monitor)
    received: list[SpreadSnapshot] = []
    virt.desk.on_spread("au_gc", received.append)

    push_quotes(virt, AU, 1000)  # quotes name the month, as the venue's do
    clock.now += 0.1
    pump.run_due()

    assert len(received) == 1000, "the spread recomputes on every quote of its leg"
    assert [len(e.data["t"]) for e in streamed] == [1000], "one patch carries the whole storm"
    assert streamed[0].data["mid"] == [s.mid for s in received]


def test_widget_stream_rate_benchmark_reports_its_figures() -> None:
    result = widget_stream_rate(seconds=0.5, quotes_per_second=200)
    expected = {"seconds", "quotes_per_second", "snapshots_per_second", "updates_per_second"}
    expected |= {"points_per_update", "bytes_per_update", "messages_per_update"}
    expected |= {"stream_json_bytes_per_update", "flush_ms", "pump_errors"}
    assert set(result) == expected
    assert result["pump_errors"] == []
    assert result["seconds"] == 0.5
    assert all(result[k] >= 0 for k in expected - {"pump_errors", "seconds"})


def test_a_saved_notebook_holds_no_side_channel_token_and_the_page_gets_it_by_message(
    virt: cmc.Engine, tmp_path: Path
) -> None:
    import ipywidgets
    import nbformat

    board = cmc.workbench(virt)
    token = side_channel(virt).token
    # Widget state as JupyterLab saves it into the notebook's metadata.
    state = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    assert board.kill.model_id in state["state"]
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
    saved = tmp_path / "shared.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    assert board.kill.url in text  # the widget state is there ...
    assert token not in text  # ... without the secret
    assert "token" not in state["state"][board.kill.model_id]["state"]
    # The page asks for the token in a custom message and gets it in the reply.
    sent: list[object] = []
    board.kill.comm.publish_msg = lambda msg_type, data=None, **kw: sent.append(data)
    board.kill._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"ask": "token"}}}, "buffers": []}
    )
    assert sent == [{"method": "custom", "content": {"token": token}}]
    board.kill._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"ask": "other"}}}, "buffers": []}
    )
    assert len(sent) == 1
