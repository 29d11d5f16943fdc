"""Bench layer: the spread monitor's and the blotter's widget traffic (updates per second, bytes per update) under a quote storm."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from cmc_lab.core.model import Quote
from cmc_lab.engine.connect import connect
from cmc_lab.engine.facade import Engine
from cmc_lab.ui.blotter import Blotter
from cmc_lab.ui.pump import pump_for
from cmc_lab.ui.spread_monitor import SpreadMonitor

_LEG = "SHFE.au"


def widget_stream_rate(seconds: float = 3.0, quotes_per_second: int = 1000) -> dict[str, Any]:
    """Feed one leg of ``au_gc`` at ``quotes_per_second`` and measure what the monitor sends.

    A fresh engine (embedded exchange, real clock) gets extra ``SHFE.au`` quotes pushed
    through its own quote path on the engine loop, so the spread recomputes about
    ``quotes_per_second`` times a second. The :class:`SpreadMonitor` coalesces them at its pump
    rate (10 Hz); every message its ``BokehModel`` would send to the browser is counted.

    Returns a dict: ``quotes_per_second`` (achieved), ``snapshots_per_second`` (spread
    recomputations the monitor received), ``updates_per_second`` (bokeh stream patches),
    ``points_per_update``, ``bytes_per_update`` (the comm messages of one patch: header,
    metadata, content and buffers), ``stream_json_bytes_per_update`` (the new columns alone
    as JSON) and ``flush_ms`` (mean pump time per update).

    Examples
    --------
    >>> from cmc_lab.bench.ui import widget_stream_rate
    >>> widget_stream_rate(seconds=1)["updates_per_second"]   # doctest: +SKIP
    10.0
    """
    if seconds <= 0 or quotes_per_second < 1:
        raise ValueError("seconds must be > 0 and quotes_per_second >= 1")
    eng = connect("sim", seed=7, clock="real")
    try:
        if "au_gc" not in eng.spreads:
            eng.spread("au_gc", legs={_LEG: 1, "COMEX.GC": -1})
        monitor = SpreadMonitor(eng, "au_gc")
        try:
            return _measure(eng, monitor, seconds, quotes_per_second)
        finally:
            monitor.close()
    finally:
        eng.close()


def _measure(eng: Engine, monitor: SpreadMonitor, seconds: float, rate: int) -> dict[str, Any]:
    sent: list[int] = []
    stream_json: list[int] = []
    flush_ns: list[int] = []
    snapshots = 0
    lock = threading.Lock()

    def count_send(content: dict[str, Any], buffers: list[Any] | None = None) -> None:
        size = len(json.dumps(content)) + sum(len(bytes(b)) for b in buffers or ())
        with lock:
            sent.append(size)

    def timed_flush() -> None:
        started = time.perf_counter_ns()
        points = monitor.points
        monitor._flush()
        added = monitor.points - points
        if added:
            flush_ns.append(time.perf_counter_ns() - started)
            data = monitor.source.data
            stream_json.append(len(json.dumps({k: list(v[-added:]) for k, v in data.items()})))

    def count_snapshot(_: Any) -> None:
        nonlocal snapshots
        snapshots += 1

    monitor.widget.send = count_send
    pump = pump_for(eng)
    pump.remove(monitor._flush)
    pump.add(timed_flush)
    eng.desk.on_spread("au_gc", count_snapshot)
    try:
        time.sleep(0.5)  # let every leg and FX quote once
        with lock:
            sent0, stream0, flush0 = len(sent), len(stream_json), len(flush_ns)
        updates0, points0, snaps0 = monitor.updates, monitor.points, snapshots
        future = asyncio.run_coroutine_threadsafe(push_quotes(eng, seconds, rate), eng.runtime.loop)
        pushed = future.result(seconds + 10)
        storm_updates = monitor.updates - updates0
        time.sleep(0.25)  # the last batch
        with lock:
            storm_sent = sent[sent0:]
        updates = monitor.updates - updates0
        points = monitor.points - points0
        received = snapshots - snaps0
    finally:
        eng.desk.on_spread("au_gc", count_snapshot, remove=True)
        pump.remove(timed_flush)
    per = max(updates, 1)
    return {
        "seconds": seconds,
        "quotes_per_second": round(pushed / seconds, 1),
        "snapshots_per_second": round(received / seconds, 1),
        "updates_per_second": round(storm_updates / seconds, 1),
        "points_per_update": round(points / per, 1),
        "bytes_per_update": round(sum(storm_sent) / per),
        "messages_per_update": round(len(storm_sent) / per, 1),
        "stream_json_bytes_per_update": round(sum(stream_json[stream0:]) / per),
        "flush_ms": round(sum(flush_ns[flush0:]) / max(len(flush_ns[flush0:]), 1) / 1e6, 2),
        "pump_errors": list(pump.errors),
    }


async def push_quotes(eng: Engine, seconds: float, rate: int) -> int:
    """Push ``rate`` extra ``SHFE.au`` quotes a second for ``seconds`` through the engine's quote path.

    Runs on the engine loop (``asyncio.run_coroutine_threadsafe(push_quotes(...), eng.runtime.loop)``);
    the quotes step within 5 ticks of the first one, so resting orders 5 ticks or more below the bid
    never fill. Returns the number of quotes pushed.
    """
    base = eng.quote(_LEG)
    leg = eng.instrument(_LEG)  # the month the product stands for: quotes name it, as the venue's do
    tick = float(leg.tick)
    started = time.monotonic()
    pushed = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - pushed
        for _ in range(due):
            step = ((pushed * 7919) % 11 - 5) * tick
            now = eng.now_ns()
            quote = Quote(leg.id, base.bid + step, base.ask + step, base.bid_size, base.ask_size, now, now)
            eng.inbox.receive(quote)
            pushed += 1
        await asyncio.sleep(0.002)
    return pushed


def blotter_stream_cost(
    seconds: float = 3.0, quotes_per_second: int = 1000, orders: int = 50
) -> dict[str, Any]:
    """Bytes the blotter sends per pump tick with ``orders`` working orders under a quote storm.

    A fresh engine (embedded exchange, real clock) holds one lot of ``SHFE.au`` (so the mark and
    P&L move) and ``orders`` resting bids below the market; ``quotes_per_second`` extra quotes are
    pushed as in :func:`widget_stream_rate`. Every value the blotter's HTML widgets change is
    counted as the ipywidgets update message it makes (``{"method": "update", "state": ...}``
    as JSON, without the comm header).

    Returns a dict: ``quotes_per_second`` (achieved), ``ticks_per_second`` (pump passes),
    ``updates_per_second`` (widget value changes), ``bytes_per_update``, ``bytes_per_second``
    and ``full_redraw_bytes`` (every section and order row sent whole, what a table without
    row updates would send each tick).
    """
    if seconds <= 0 or quotes_per_second < 1 or orders < 0:
        raise ValueError("seconds must be > 0, quotes_per_second >= 1 and orders >= 0")
    eng = blotter_workload(orders)
    try:
        blotter = Blotter(eng)
        time.sleep(0.5)
        sent: list[int] = []
        lock = threading.Lock()

        def count(change: dict[str, Any]) -> None:
            size = len(
                json.dumps({"method": "update", "state": {"value": change["new"]}, "buffer_paths": []})
            )
            with lock:
                sent.append(size)

        watched = [
            blotter.positions,
            blotter.fills,
            blotter.tickets,
            *(r.label for r in blotter.rows.values()),
        ]
        for widget in watched:
            widget.observe(count, names="value")
        ticks0 = pump_for(eng).ticks
        future = asyncio.run_coroutine_threadsafe(
            push_quotes(eng, seconds, quotes_per_second), eng.runtime.loop
        )
        pushed = future.result(seconds + 10)
        ticks = pump_for(eng).ticks - ticks0
        with lock:
            storm = list(sent)
        full = sum(len(json.dumps({"method": "update", "state": {"value": x.value}})) for x in watched)
        return {
            "seconds": seconds,
            "working_orders": len(blotter.rows),
            "quotes_per_second": round(pushed / seconds, 1),
            "ticks_per_second": round(ticks / seconds, 1),
            "updates_per_second": round(len(storm) / seconds, 1),
            "bytes_per_update": round(sum(storm) / max(len(storm), 1)),
            "bytes_per_second": round(sum(storm) / seconds),
            "full_redraw_bytes": full,
            "pump_errors": list(pump_for(eng).errors),
        }
    finally:
        eng.cancel_all()
        eng.flatten(_LEG)
        eng.close()


def blotter_workload(orders: int = 50) -> Engine:
    """The blotter's benchmark desk: a fresh engine (embedded exchange, real clock) holding one lot of
    ``SHFE.au`` (so the mark and P&L move with its quotes) and ``orders`` resting bids 5 ticks and more
    below the market (they never fill under :func:`push_quotes`). The caller closes it.

    Examples
    --------
    >>> eng = blotter_workload(5)      # doctest: +SKIP
    >>> len(eng.working_orders())      # doctest: +SKIP
    5
    """
    if orders < 0:
        raise ValueError(f"orders must be >= 0, got {orders!r}")
    eng = connect("sim", seed=7, clock="real")
    try:
        q = eng.quote(_LEG)
        eng.submit(_LEG, "buy", 1, price=str(q.ask), tif="IOC").wait(5)
        tick = float(eng.instrument(_LEG).tick)
        for i in range(orders):
            eng.submit(_LEG, "buy", 1, price=f"{q.bid - (i + 5) * tick:.2f}")
    except BaseException:
        eng.close()
        raise
    return eng
