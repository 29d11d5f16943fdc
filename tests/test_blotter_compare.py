"""The blotter-table comparison's plumbing (scripts/blotter), without a browser or its extra packages:
the snapshot is the blotter's four tables, row changes are found, the comm meter counts and lets go."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sim_months import AU

import cmc_lab as cmc
from cmc_lab.ui.blotter import FILL_HEADERS, POSITION_HEADERS, TICKET_HEADERS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "blotter"))

import candidates as bc  # noqa: E402


def test_the_snapshot_holds_the_blotters_four_tables_as_text(eng: cmc.Engine) -> None:
    q = eng.quote("SHFE.au")
    eng.submit("SHFE.au", "buy", 1, price=str(q.ask), tif="IOC").wait(5)
    resting = eng.submit("SHFE.au", "buy", 2, price=f"{q.bid - 0.2:.2f}")
    eng.sleep(0.5)
    tables = bc.snapshot(eng)
    assert list(tables["positions"].columns) == [label for _, label in POSITION_HEADERS]
    assert list(tables["fills"].columns) == [label for _, label in FILL_HEADERS]
    assert list(tables["tickets"].columns) == [label for _, label in TICKET_HEADERS]
    assert list(tables["orders"].index) == [resting.client_order_id]
    assert tables["positions"].loc[f"CN-FUT {AU}", "position"] == "long 1"
    assert tables["tickets"].empty
    assert all(isinstance(v, str) for frame in tables.values() for v in frame.to_numpy().ravel())


def test_changed_keys_names_changed_rows_and_none_when_rows_come_or_go() -> None:
    old = pd.DataFrame({"a": ["1", "2"]}, index=pd.Index(["x", "y"], name="key"))
    assert bc._changed_keys(old, old.copy()) == []
    assert bc._changed_keys(old, old.assign(a=["1", "3"])) == ["y"]
    assert bc._changed_keys(old, old.iloc[:1]) is None


def test_the_html_candidate_is_cmc_labs_blotter(eng: cmc.Engine) -> None:
    run = bc.Run(eng, "html")
    run.tick()
    assert run.table.widget is run.table.blotter.widget and run.errors == []
    with pytest.raises(ValueError, match="unknown candidate 'agGrid'"):
        bc.Run(eng, "agGrid")


class FakeSession:
    def serialize(self, msg: dict[str, Any], ident: Any = None) -> list[bytes]:
        return [b"<IDS|MSG>", b"hmac", b'{"msg_type": "comm_msg"}', b"{}", b"{}", b'{"data": 1}']

    def send(self, stream: Any, msg_type: str, content: Any = None, **kwargs: Any) -> dict[str, Any]:
        self.serialize({})
        return {"header": {"msg_type": msg_type}}


class FakeKernel:
    def __init__(self) -> None:
        self.session = FakeSession()
        self.received: list[Any] = []
        self.shell_handlers = {"comm_msg": lambda *args: self.received.append(args[-1])}


def test_the_comm_meter_counts_sent_frames_and_buffers_and_received_messages_then_unhooks() -> None:
    kernel = FakeKernel()
    handler = kernel.shell_handlers["comm_msg"]
    meter = bc.CommMeter(kernel)
    kernel.session.send(None, "comm_msg", {"data": 1}, buffers=[b"12345"])
    kernel.session.send(None, "status", {})
    kernel.shell_handlers["comm_msg"](None, None, {"content": {"a": 1}, "buffers": [b"123"]})
    reading = meter.reading()
    assert reading["sent_messages"] == 1
    assert reading["sent_payload_bytes"] == len(b'{"data": 1}') + 5
    assert reading["sent_wire_bytes"] == 9 + 4 + 24 + 2 + 2 + 11 + 5
    assert reading["received_messages"] == 1 and reading["received_bytes"] == len('{"a": 1}') + 3
    assert len(kernel.received) == 1
    meter.close()
    assert "send" not in vars(kernel.session) and kernel.shell_handlers["comm_msg"] is handler


def test_the_compared_tables_are_not_dependencies_of_cmc_lab() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [spec for specs in project["optional-dependencies"].values() for spec in specs]
    declared = " ".join(project["dependencies"] + extras)
    for package in ("ipydatagrid", "perspective", "pyarrow"):
        assert package not in declared
    assert "perspective-python" in (ROOT / "scripts" / "blotter" / "setup.sh").read_text()
