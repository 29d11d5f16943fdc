"""Kernel side of the blotter-table comparison: the blotter's four tables as text, one adapter per
candidate table, a meter of the kernel's comm traffic, and the timed quote storm.

Imported by the notebooks that ``scripts/blotter/compare.py`` runs in JupyterLab, in the Python of
the environment ``scripts/blotter/setup.sh`` makes: ipydatagrid, perspective-python and pyarrow are
not dependencies of cmc_lab.

Every candidate is driven the same way: the engine's UI pump (10 Hz) takes a snapshot of the four
tables (positions, working orders, last 20 fills, tickets: the same rows and columns as
``cmc_lab.ui.blotter``, as display text) and hands it to the candidate, which sends what it needs in
its own best way:

- ``html``: cmc_lab's ``Blotter`` (ipywidgets HTML; a section or an order's row only when its text changed).
- ``datagrid``: ipydatagrid ``DataGrid`` per table; a changed row goes as one ``set_row_value``
  message, the whole frame (``grid.data = ...``) only when rows come or go.
- ``datagrid-stream``: ipydatagrid ``StreamingDataGrid`` per table; a change is a ``tick()`` and the
  browser asks for the rows it shows (the kernel answers with Arrow-like buffers).
- ``perspective``: Perspective's ``PerspectiveWidget`` per table, over an indexed ``perspective.Table``
  in the kernel (server mode); changed rows go in by ``table.update``, gone rows by ``table.remove``,
  and the browser's viewer asks the kernel's Perspective server for what it shows.
- ``none``: the same engine, storm and snapshots with no table shown (JupyterLab's own cost).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from cmc_lab.bench.ui import blotter_workload, push_quotes
from cmc_lab.engine.facade import Engine
from cmc_lab.ui.blotter import FILL_HEADERS, POSITION_HEADERS, TICKET_HEADERS, Blotter, fills_frame
from cmc_lab.ui.pump import pump_for

ORDER_HEADERS = (
    ("instrument", "instrument"),
    ("side", "side"),
    ("qty", "qty"),
    ("price", "price"),
    ("filled", "filled"),
    ("state", "state"),
)
TABLE_HEIGHTS = {"positions": 90, "orders": 420, "fills": 120, "tickets": 90}
CANDIDATES = ("none", "html", "datagrid", "datagrid-stream", "perspective")


def cell_text(value: Any) -> str:
    """One value as the blotter shows it: ``–`` for none, thousands separators on integers."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _frame(rows: list[dict[str, Any]], headers: tuple[tuple[str, str], ...], keys: list[str]) -> pd.DataFrame:
    data = {label: [cell_text(row.get(field)) for row in rows] for field, label in headers}
    return pd.DataFrame(data, index=pd.Index(keys, name="key"), dtype=object)


def snapshot(eng: Engine) -> dict[str, pd.DataFrame]:
    """The blotter's four tables now, as text frames indexed by a row key (str)."""
    positions = eng.positions().to_dict("records")
    orders = eng.working_orders()
    fills = fills_frame(eng).to_dict("records")
    tickets = eng.tickets().to_dict("records")
    return {
        "positions": _frame(
            positions, POSITION_HEADERS, [f"{p['account']} {p['instrument']}" for p in positions]
        ),
        "orders": _frame(
            [
                {
                    "instrument": o.instrument_id,
                    "side": o.side.value,
                    "qty": o.qty,
                    "price": o.price,
                    "filled": o.filled_qty,
                    "state": o.state.value,
                }
                for o in orders
            ],
            ORDER_HEADERS,
            [o.client_order_id for o in orders],
        ),
        "fills": _frame(fills, FILL_HEADERS, [str(f["trade"]) for f in fills]),
        "tickets": _frame(tickets, TICKET_HEADERS, [str(t["ticket"]) for t in tickets]),
    }


def _changed_keys(old: pd.DataFrame, new: pd.DataFrame) -> list[str] | None:
    """Keys of the rows whose text changed, or None when rows came, went or moved."""
    if not old.index.equals(new.index) or not old.columns.equals(new.columns):
        return None
    if new.empty:
        return []
    differs = (old.to_numpy() != new.to_numpy()).any(axis=1)
    return [str(k) for k in new.index[differs]]


class NoTable:
    """The baseline: nothing shown, nothing sent."""

    name = "none"

    def __init__(self, eng: Engine, tables: dict[str, pd.DataFrame]) -> None:
        import ipywidgets as w

        self.widget = w.HTML("<b>no table</b> (baseline: engine, storm and snapshots only)")

    def refresh(self, tables: dict[str, pd.DataFrame]) -> None:
        pass


class HtmlTable:
    """Ours: cmc_lab's blotter (ipywidgets HTML), refreshed by the harness's tick instead of its own."""

    name = "html"

    def __init__(self, eng: Engine, tables: dict[str, pd.DataFrame]) -> None:
        self.blotter = Blotter(eng, start=False)
        self.widget = self.blotter.widget

    def refresh(self, tables: dict[str, pd.DataFrame]) -> None:
        self.blotter.refresh()


def _titled(sections: list[tuple[str, Any]]) -> Any:
    import ipywidgets as w

    children: list[Any] = [w.HTML("<b>Blotter</b>")]
    for title, widget in sections:
        children += [w.HTML(f"<div style='font-weight:600;margin-top:6px'>{title}</div>"), widget]
    return w.VBox(children, layout={"width": "1100px"})


def _grids(kind: Any, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """One ipydatagrid grid of ``kind`` per table, sized alike for every grid candidate."""
    return {
        name: kind(
            frame.copy(),
            base_column_size=100,
            base_row_header_size=150,
            layout={"height": f"{TABLE_HEIGHTS[name]}px"},
        )
        for name, frame in tables.items()
    }


class DataGridTable:
    """ipydatagrid ``DataGrid`` per table: a changed row as ``set_row_value``, the frame only when rows change."""

    name = "datagrid"

    def __init__(self, eng: Engine, tables: dict[str, pd.DataFrame]) -> None:
        from ipydatagrid import DataGrid

        self.shown = {name: frame.copy() for name, frame in tables.items()}
        self.grids = _grids(DataGrid, tables)
        self.widget = _titled(list(self.grids.items()))

    def refresh(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, frame in tables.items():
            changed = _changed_keys(self.shown[name], frame)
            grid = self.grids[name]
            if changed is None:
                grid.data = frame.copy()
            else:
                for key in changed:
                    grid.set_row_value(key, list(frame.loc[key]))
            self.shown[name] = frame


class StreamingGridTable:
    """ipydatagrid ``StreamingDataGrid`` per table: on a change, ``tick()``; the browser pulls the rows it shows."""

    name = "datagrid-stream"

    def __init__(self, eng: Engine, tables: dict[str, pd.DataFrame]) -> None:
        from ipydatagrid import StreamingDataGrid

        self.shown = {name: frame.copy() for name, frame in tables.items()}
        self.grids = _grids(StreamingDataGrid, tables)
        self.widget = _titled(list(self.grids.items()))

    def refresh(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, frame in tables.items():
            if frame.equals(self.shown[name]):
                continue
            grid = self.grids[name]
            grid.data = frame.copy()
            grid.tick()
            self.shown[name] = frame


class PerspectiveTable:
    """Perspective's ``PerspectiveWidget`` per table over an indexed ``perspective.Table`` (server mode)."""

    name = "perspective"

    def __init__(self, eng: Engine, tables: dict[str, pd.DataFrame]) -> None:
        import perspective
        from perspective.widget import PerspectiveWidget

        self.shown = {name: frame.copy() for name, frame in tables.items()}
        self.tables: dict[str, Any] = {}
        widgets: dict[str, Any] = {}
        for name, frame in tables.items():
            columns = [str(c) for c in frame.columns]
            table = perspective.table({"key": "string", **dict.fromkeys(columns, "string")}, index="key")
            if not frame.empty:
                table.update(self._columns(frame))
            self.tables[name] = table
            widget = PerspectiveWidget(table, plugin="Datagrid", columns=["key", *columns], settings=False)
            # its container is "flex: 1" with no height of its own in a VBox: give it one
            widget.layout.flex = "0 0 auto"
            widget.layout.height = f"{TABLE_HEIGHTS[name] + 40}px"
            widgets[name] = widget
        self.widget = _titled(list(widgets.items()))

    @staticmethod
    def _columns(frame: pd.DataFrame) -> dict[str, list[str]]:
        return {"key": [str(k) for k in frame.index], **{str(c): list(frame[c]) for c in frame.columns}}

    def refresh(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, frame in tables.items():
            old = self.shown[name]
            changed = _changed_keys(old, frame)
            table = self.tables[name]
            if changed is None:
                gone = [str(k) for k in old.index.difference(frame.index)]
                if gone:
                    table.remove(gone)
                if not frame.empty:
                    table.update(self._columns(frame))
            elif changed:
                table.update(self._columns(frame.loc[changed]))
            self.shown[name] = frame


MAKERS: dict[str, Callable[[Engine, dict[str, pd.DataFrame]], Any]] = {
    "none": NoTable,
    "html": HtmlTable,
    "datagrid": DataGridTable,
    "datagrid-stream": StreamingGridTable,
    "perspective": PerspectiveTable,
}


class CommMeter:
    """Counts the kernel's comm traffic: every ``comm_msg`` it publishes (the frames as sent, and the
    content + buffers alone) and every ``comm_msg`` it receives from the browser (content + buffers).

    Hooks ``kernel.session.send`` (per thread: the pump publishes from its own thread) and the shell
    handler of ``comm_msg``; :meth:`close` puts them back.
    """

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.session = kernel.session
        self.lock = threading.Lock()
        self.counts = {"sent_messages": 0, "sent_wire_bytes": 0, "sent_payload_bytes": 0}
        self.counts |= {"received_messages": 0, "received_bytes": 0}
        self._local = threading.local()
        self._serialize = self.session.serialize
        self._send = self.session.send
        self._on_comm_msg = kernel.shell_handlers["comm_msg"]
        self.session.serialize = self._counting_serialize
        self.session.send = self._counting_send
        kernel.shell_handlers["comm_msg"] = self._counting_comm_msg

    def _counting_serialize(self, msg: dict[str, Any], ident: Any = None) -> list[bytes]:
        frames = self._serialize(msg, ident)
        self._local.frames = frames
        return frames

    def _counting_send(self, stream: Any, msg_or_type: Any, *args: Any, **kwargs: Any) -> Any:
        self._local.frames = None
        msg = self._send(stream, msg_or_type, *args, **kwargs)
        frames = self._local.frames
        if msg is None or frames is None or msg["header"]["msg_type"] != "comm_msg":
            return msg
        buffers = kwargs.get("buffers") or (args[3] if len(args) > 3 else None) or msg.get("buffers") or []
        extra = sum(memoryview(b).nbytes for b in buffers)
        with self.lock:
            self.counts["sent_messages"] += 1
            self.counts["sent_wire_bytes"] += sum(len(f) for f in frames) + extra
            self.counts["sent_payload_bytes"] += len(frames[-1]) + extra
        return msg

    def _counting_comm_msg(self, *args: Any) -> Any:
        msg = args[-1]
        size = len(json.dumps(msg.get("content", {}), default=str))
        size += sum(memoryview(b).nbytes for b in msg.get("buffers") or [])
        with self.lock:
            self.counts["received_messages"] += 1
            self.counts["received_bytes"] += size
        return self._on_comm_msg(*args)

    def reading(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def close(self) -> None:
        del self.session.serialize, self.session.send
        self.kernel.shell_handlers["comm_msg"] = self._on_comm_msg


class Run:
    """One candidate under the storm: the pump job that feeds it, its counters, and the timed window."""

    def __init__(self, eng: Engine, name: str) -> None:
        if name not in MAKERS:
            raise ValueError(f"unknown candidate {name!r}: pick one of {', '.join(MAKERS)}")
        self.eng = eng
        self.name = name
        self.last = snapshot(eng)
        self.table = MAKERS[name](eng, self.last)
        self.lock = threading.Lock()
        self.ticks = 0
        self.updates = 0
        self.refresh_ns = 0
        self.snapshot_ns = 0
        self.errors: list[str] = []

    def tick(self) -> None:
        taken = time.perf_counter_ns()
        tables = snapshot(self.eng)
        changed = any(not tables[k].equals(self.last[k]) for k in tables)
        started = time.perf_counter_ns()
        try:
            self.table.refresh(tables)
        except Exception as exc:
            self.errors.append(repr(exc))
            del self.errors[:-10]
        elapsed = time.perf_counter_ns() - started
        self.last = tables
        with self.lock:
            self.ticks += 1
            self.updates += changed
            self.refresh_ns += elapsed
            self.snapshot_ns += started - taken

    def counters(self) -> dict[str, int]:
        with self.lock:
            return {
                "ticks": self.ticks,
                "updates": self.updates,
                "refresh_ns": self.refresh_ns,
                "snapshot_ns": self.snapshot_ns,
            }

    def start(
        self, out: str | Path, warmup: float = 2.0, window: float = 10.0, quotes_per_second: int = 1000
    ) -> threading.Thread:
        """Start the storm and the 10 Hz job now; after ``warmup`` s, count for ``window`` s and write
        the figures to ``out`` as JSON (then stop the job and close the engine). Returns at once."""
        from IPython import get_ipython

        meter = CommMeter(get_ipython().kernel)
        storm = warmup + window + 3.0
        future = asyncio.run_coroutine_threadsafe(
            push_quotes(self.eng, storm, quotes_per_second), self.eng.runtime.loop
        )
        pump = pump_for(self.eng)
        pump.add(self.tick)

        def measure() -> None:
            result: dict[str, Any] = {"candidate": self.name}
            try:
                time.sleep(warmup)
                m0, c0, t0 = meter.reading(), self.counters(), time.monotonic()
                time.sleep(window)
                m1, c1, t1 = meter.reading(), self.counters(), time.monotonic()
                seconds = t1 - t0
                pushed = future.result(storm + 10)
                delta = {k: m1[k] - m0[k] for k in m1} | {k: c1[k] - c0[k] for k in c1}
                updates = max(delta["updates"], 1)
                result |= {
                    "seconds": round(seconds, 2),
                    "quotes_per_second": round(pushed / storm, 1),
                    "working_orders": len(self.last["orders"]),
                    "ticks_per_second": round(delta["ticks"] / seconds, 2),
                    "updates_per_second": round(delta["updates"] / seconds, 2),
                    "sent_messages_per_second": round(delta["sent_messages"] / seconds, 1),
                    "sent_bytes_per_second": round(delta["sent_wire_bytes"] / seconds),
                    "sent_bytes_per_update": round(delta["sent_wire_bytes"] / updates),
                    "sent_payload_bytes_per_update": round(delta["sent_payload_bytes"] / updates),
                    "received_messages_per_second": round(delta["received_messages"] / seconds, 1),
                    "received_bytes_per_update": round(delta["received_bytes"] / updates),
                    "refresh_ms_per_tick": round(delta["refresh_ns"] / max(delta["ticks"], 1) / 1e6, 3),
                    "snapshot_ms_per_tick": round(delta["snapshot_ns"] / max(delta["ticks"], 1) / 1e6, 3),
                    "errors": self.errors + list(pump.errors),
                }
            except Exception as exc:
                result["errors"] = [*result.get("errors", []), repr(exc)]
            finally:
                pump.remove(self.tick)
                meter.close()
                Path(out).write_text(json.dumps(result, indent=1))

        thread = threading.Thread(target=measure, name="blotter-compare", daemon=True)
        thread.start()
        return thread


def workload(orders: int = 50) -> Engine:
    """The benchmark desk of ``cmc_lab.bench.ui.blotter_stream_cost``: one lot held, ``orders`` resting bids."""
    return blotter_workload(orders)
