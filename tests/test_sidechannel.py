"""The kill switch's side channel: token, bad requests, CORS, a kill while the kernel is busy, and the
Jupyter server's route to it (cmc_lab.ui.server_ext) in a real ``jupyter server``."""

from __future__ import annotations

import http.client
import http.cookiejar
import http.server
import json
import os
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jupyter_server_fixture import Server, free_port, jupyter_server

import cmc_lab as cmc
from cmc_lab.core.model import OrderState
from cmc_lab.core.order import Order
from cmc_lab.ui.killswitch import side_channel
from cmc_lab.ui.server_ext import _jupyter_server_extension_points
from cmc_lab.ui.sidechannel import MAX_BODY, SIGNATURE, SideChannel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def live(make_engine: Callable[..., cmc.Engine]) -> cmc.Engine:
    """A real-clock engine: venue answers arrive by themselves, as in a notebook."""
    return make_engine(clock="real")


@pytest.fixture
def channel(live: cmc.Engine) -> Iterator[SideChannel]:
    chan = SideChannel(live, origins=["http://localhost:8888"])
    yield chan
    chan.close()


def call(
    chan: SideChannel,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    token: str | None = "good",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request; ``token="good"`` sends the channel's token, None sends none."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(chan.url + path, data=data, method=method, headers=dict(headers or {}))
    if token is not None:
        request.add_header("X-CMC-Token", chan.token if token == "good" else token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else {}, dict(exc.headers)


def resting_bid(eng: cmc.Engine) -> float:
    """2 % under the bid: rests on the book, inside the pre-trade price band."""
    return round(eng.quote("COMEX.GC").bid * 0.98, 1)


def reached(order: Order, state: OrderState) -> threading.Event:
    """An event set once ``order`` is in ``state`` (at once if it already is)."""
    event = threading.Event()

    def on_state(_: Order, new: OrderState) -> None:
        if new is state:
            event.set()

    order.on_state(on_state)
    if order.state is state:
        event.set()
    return event


def kill_rows(eng: cmc.Engine) -> list[dict[str, Any]]:
    return list(eng.journal.rows(kinds=["TradingStateChanged"]))


def test_get_state_with_token_reports_trading_state_and_working_orders(
    channel: SideChannel, live: cmc.Engine
) -> None:
    status, body, _ = call(channel, "GET", "/state")
    assert (status, body) == (200, {"state": "ACTIVE", "working_orders": 0})


def test_kill_and_rearm_with_token_change_state_and_journal_who(
    channel: SideChannel, live: cmc.Engine
) -> None:
    status, body, _ = call(channel, "POST", "/kill", {"reason": "test halt", "who": "tester"})
    assert status == 200
    assert body == {"cancelled": 0, "state": "HALTED", "working_orders": 0}
    assert live.trading_state is cmc.TradingState.HALTED

    status, body, _ = call(channel, "POST", "/rearm", {"who": "tester"})
    assert (status, body["state"]) == (200, "ACTIVE")
    assert live.trading_state is cmc.TradingState.ACTIVE
    rows = kill_rows(live)
    assert [(r["payload"]["state"], r["payload"]["who"]) for r in rows] == [
        ("HALTED", "tester"),
        ("ACTIVE", "tester"),
    ]
    assert rows[0]["payload"]["reason"] == "test halt"


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize("path", ["/kill", "/rearm"])
def test_post_without_the_right_token_is_403_and_changes_nothing(
    channel: SideChannel, live: cmc.Engine, token: str | None, path: str
) -> None:
    status, body, _ = call(channel, "POST", path, {"reason": "intruder"}, token=token)
    assert status == 403
    assert "token" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE
    assert kill_rows(live) == []


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_get_state_without_the_right_token_is_403(channel: SideChannel, token: str | None) -> None:
    status, body, _ = call(channel, "GET", "/state", token=token)
    assert status == 403
    assert "state" not in body


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'"kill"', b"\xff\xfe"], ids=["broken", "array", "string", "binary"]
)
def test_post_with_bad_json_is_400_and_changes_nothing(
    channel: SideChannel, live: cmc.Engine, raw: bytes
) -> None:
    status, body, _ = call(channel, "POST", "/kill", raw)
    assert status == 400
    assert "bad JSON body" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE


def test_post_with_a_body_over_the_limit_is_413(channel: SideChannel, live: cmc.Engine) -> None:
    status, body, _ = call(channel, "POST", "/kill", {"reason": "x" * (MAX_BODY + 10)})
    assert status == 413
    assert "too large" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE


@pytest.mark.parametrize("length", ["-1", "abc", "12abc"])
def test_post_with_a_bad_content_length_is_400_not_a_hung_handler(channel: SideChannel, length: str) -> None:
    parts = urlsplit(channel.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.putrequest("POST", "/kill")
    conn.putheader("X-CMC-Token", channel.token)
    conn.putheader("Content-Length", length)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400
    assert "Content-Length" in json.loads(response.read())["error"]
    conn.close()


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/nope"), ("GET", "/state/x")])
def test_unknown_path_is_404(channel: SideChannel, method: str, path: str) -> None:
    status, body, _ = call(channel, method, path, {} if method == "POST" else None)
    assert status == 404
    assert "no such endpoint" in body["error"]


def test_cors_preflight_answers_with_allow_origin_and_the_token_header(channel: SideChannel) -> None:
    origin = "http://127.0.0.1:8888"
    status, _, headers = call(
        channel,
        "OPTIONS",
        "/kill",
        token=None,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-cmc-token",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert "X-CMC-Token" in headers["Access-Control-Allow-Headers"]
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_responses_carry_cors_headers_so_the_browser_can_read_them(channel: SideChannel) -> None:
    _, _, headers = call(channel, "GET", "/state", headers={"Origin": "http://localhost:8888"})
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:8888"


@pytest.mark.parametrize("path", ["/kill", "/rearm"])
@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:9999", "null"])
def test_a_request_from_another_origin_is_refused_even_with_the_token(
    channel: SideChannel, live: cmc.Engine, origin: str, path: str
) -> None:
    status, body, headers = call(channel, "POST", path, {"reason": "cross-site"}, headers={"Origin": origin})
    assert status == 403
    assert "origin" in body["error"] and origin in body["error"]
    assert "Access-Control-Allow-Origin" not in headers
    assert live.trading_state is cmc.TradingState.ACTIVE
    assert kill_rows(live) == []
    status, _, headers = call(
        channel,
        "OPTIONS",
        path,
        token=None,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers


def test_the_servers_own_origin_and_its_loopback_alias_are_answered(channel: SideChannel) -> None:
    for origin in ("http://localhost:8888", "http://127.0.0.1:8888"):
        status, _, headers = call(channel, "GET", "/state", headers={"Origin": origin})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == origin


def test_by_default_the_allowed_origin_is_a_running_jupyter_servers(
    live: cmc.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    chan = SideChannel(live)
    try:
        assert not chan.allows("http://localhost:8890")  # no server running: no browser origin
        info = {"url": "http://localhost:8890/lab/", "pid": os.getpid(), "port": 8890, "token": ""}
        (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
        assert chan.allows("http://localhost:8890") and chan.allows("http://127.0.0.1:8890")
        assert not chan.allows("http://localhost:8891")
        status, _, _ = call(chan, "GET", "/state", headers={"Origin": "http://elsewhere.example"})
        assert status == 403
    finally:
        chan.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_binding_to_a_non_loopback_host_is_refused(live: cmc.Engine, host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        SideChannel(live, host=host)


def test_each_channel_has_its_own_secret_token(live: cmc.Engine) -> None:
    first, second = SideChannel(live), SideChannel(live)
    try:
        assert first.token != second.token
        assert len(first.token) >= 32
        assert call(first, "GET", "/state", token=second.token)[0] == 403
    finally:
        first.close()
        second.close()


def test_engine_side_channel_is_one_per_engine_and_closes_with_it(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(clock="real")
    chan = side_channel(eng)
    assert side_channel(eng) is chan
    assert call(chan, "GET", "/state")[0] == 200
    eng.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(chan.url + "/state", timeout=2)


def test_kill_while_the_main_thread_is_blocked_cancels_a_resting_order_before_the_cell_returns(
    channel: SideChannel, live: cmc.Engine
) -> None:
    order = live.submit("COMEX.GC", "buy", 1, price=resting_bid(live))
    cancelled = reached(order, OrderState.CANCELED)
    assert reached(order, OrderState.ACCEPTED).wait(10), f"the resting order never rested: {order.state}"

    cell_done = threading.Event()
    result: dict[str, Any] = {}

    def press() -> None:  # the browser's button, while the "cell" below blocks the main thread
        try:
            result["response"] = call(
                channel, "POST", "/kill", {"reason": "busy kernel", "who": "kill button"}
            )
            result["cancelled_in_the_cell"] = cancelled.wait(10)
            result["state"] = order.state
        finally:
            cell_done.set()  # the cell ends only after the button's effect, or after a failure

    presser = threading.Thread(target=press)
    presser.start()
    cell_done.wait(30)  # the kernel's main thread is busy in a cell: it does nothing for the kill
    presser.join(5)

    status, body, _ = result["response"]
    assert status == 200
    assert body["cancelled"] == 1 and body["state"] == "HALTED"
    assert result["cancelled_in_the_cell"], (
        f"the order was not cancelled while the cell ran: {result['state']}"
    )
    assert result["state"] is OrderState.CANCELED
    assert call(channel, "GET", "/state")[1] == {"state": "HALTED", "working_orders": 0}
    halted = [r for r in kill_rows(live) if r["payload"]["state"] == "HALTED"]
    assert [(r["payload"]["who"], r["payload"]["reason"]) for r in halted] == [("kill button", "busy kernel")]
    blocked = live.submit("COMEX.GC", "buy", 1, price=resting_bid(live))
    assert blocked.state is OrderState.DENIED, "a halted engine must deny new orders"


def test_every_answer_carries_the_side_channel_signature(channel: SideChannel) -> None:
    assert call(channel, "GET", "/state")[2][SIGNATURE] == "1"
    assert call(channel, "GET", "/state", token="wrong-token")[2][SIGNATURE] == "1"
    assert call(channel, "POST", "/nope", {})[2][SIGNATURE] == "1"


# --- the Jupyter server's route: {base_url}cmc-lab/(kill|rearm|state)/<port> ------------------------


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter-server")) as server:
        yield server


def via_server(
    server: Server,
    method: str,
    route: str,
    cmc_token: str | None,
    body: dict[str, Any] | bytes | None = None,
    auth: bool = True,
) -> tuple[int, dict[str, Any]]:
    """One request to ``{base_url}cmc-lab/<route>``, token-authenticated to Jupyter unless ``auth=False``."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(f"{server.url}cmc-lab/{route}", data=data, method=method)
    if auth:
        request.add_header("Authorization", f"token {server.token}")
    if cmc_token is not None:
        request.add_header("X-CMC-Token", cmc_token)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def port_of(chan: SideChannel) -> int:
    return int(urlsplit(chan.url).port or 0)


def test_kill_through_the_server_route_reaches_the_side_channel_and_cancels_the_resting_order(
    jupyter: Server, channel: SideChannel, live: cmc.Engine
) -> None:
    order = live.submit("COMEX.GC", "buy", 1, price=resting_bid(live))
    cancelled = reached(order, OrderState.CANCELED)
    assert reached(order, OrderState.ACCEPTED).wait(10), f"the resting order never rested: {order.state}"

    status, body = via_server(
        jupyter,
        "POST",
        f"kill/{port_of(channel)}",
        channel.token,
        {"reason": "binder halt", "who": "hub user"},
    )
    assert (status, body["cancelled"], body["state"]) == (200, 1, "HALTED")
    assert live.trading_state is cmc.TradingState.HALTED, "the kill is done when the route answers"
    assert cancelled.wait(10), f"the resting order was not cancelled: {order.state}"
    halted = [r for r in kill_rows(live) if r["payload"]["state"] == "HALTED"]
    assert [(r["payload"]["who"], r["payload"]["reason"]) for r in halted] == [("hub user", "binder halt")]
    assert f"POST /kill via server -> 127.0.0.1:{port_of(channel)} answered 200" in jupyter.log_text()

    assert via_server(jupyter, "GET", f"state/{port_of(channel)}", channel.token) == (
        200,
        {"state": "HALTED", "working_orders": 0},
    )
    status, body = via_server(
        jupyter, "POST", f"rearm/{port_of(channel)}", channel.token, {"who": "hub user"}
    )
    assert (status, body["state"]) == (200, "ACTIVE")
    assert live.trading_state is cmc.TradingState.ACTIVE


@pytest.mark.parametrize("token", [None, "short", "wrong-token-of-the-right-shape-xyz"])
def test_route_with_a_missing_or_wrong_side_channel_token_is_403_and_changes_nothing(
    jupyter: Server, channel: SideChannel, live: cmc.Engine, token: str | None
) -> None:
    status, body = via_server(jupyter, "POST", f"kill/{port_of(channel)}", token, {"reason": "intruder"})
    assert status == 403
    assert "token" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE
    assert kill_rows(live) == []


def test_route_without_jupyter_authentication_is_403_and_changes_nothing(
    jupyter: Server, channel: SideChannel, live: cmc.Engine
) -> None:
    status, _ = via_server(jupyter, "POST", f"kill/{port_of(channel)}", channel.token, {}, auth=False)
    assert status == 403
    assert via_server(jupyter, "GET", f"state/{port_of(channel)}", channel.token, auth=False)[0] == 403
    assert live.trading_state is cmc.TradingState.ACTIVE


def test_route_from_a_browser_session_needs_the_xsrf_header(
    jupyter: Server, channel: SideChannel, live: cmc.Engine
) -> None:
    """As the widget does: the login cookie from the page, the ``_xsrf`` cookie echoed as X-XSRFToken."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{jupyter.url}api/status?token={jupyter.token}").close()  # sets the login cookie
    browser.open(f"{jupyter.url}login").close()  # a page: sets the _xsrf cookie
    xsrf = next(c.value for c in jar if c.name == "_xsrf")

    def press(headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            f"{jupyter.url}cmc-lab/kill/{port_of(channel)}",
            data=b'{"who": "browser"}',
            method="POST",
            headers={"X-CMC-Token": channel.token, **headers},
        )
        try:
            with browser.open(request, timeout=15) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert press({}) == 403
    assert live.trading_state is cmc.TradingState.ACTIVE
    assert press({"X-XSRFToken": xsrf}) == 200
    assert live.trading_state is cmc.TradingState.HALTED


@pytest.mark.parametrize("route", ["kill", "rearm"])
def test_route_get_on_kill_or_rearm_is_405_and_changes_nothing(
    jupyter: Server, channel: SideChannel, live: cmc.Engine, route: str
) -> None:
    status, body = via_server(jupyter, "GET", f"{route}/{port_of(channel)}", channel.token)
    assert status == 405
    assert "takes POST" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE


@pytest.mark.parametrize("port", ["10.0.0.1:8888", "example.com", "80", "0", "70000", "-1"])
def test_route_to_anything_but_a_loopback_port_number_is_400(jupyter: Server, port: str) -> None:
    status, body = via_server(jupyter, "POST", f"kill/{port}", "a" * 32, {})
    assert status == 400
    assert "127.0.0.1" in body["error"] and "port" in body["error"]


def test_route_to_a_port_where_nothing_listens_is_502_naming_the_fix(jupyter: Server) -> None:
    status, body = via_server(jupyter, "POST", f"kill/{free_port()}", "a" * 32, {})
    assert status == 502
    assert "no cmc_lab side channel listens" in body["error"]
    assert "workbench cell" in body["error"]


def test_route_to_another_loopback_service_is_502_and_relays_none_of_its_answer(jupyter: Server) -> None:
    class Other(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            secret = b'{"secret": "not for the browser"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(secret)))
            self.end_headers()
            self.wfile.write(secret)

        def log_message(self, format: str, *args: Any) -> None:
            return

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        status, body = via_server(jupyter, "POST", f"kill/{other.server_address[1]}", "a" * 32, {})
    finally:
        other.shutdown()
        other.server_close()
    assert status == 502
    assert "not a cmc_lab side channel" in body["error"]
    assert "secret" not in json.dumps(body)


def test_route_with_a_body_over_the_limit_is_413_before_reaching_the_side_channel(
    jupyter: Server, channel: SideChannel, live: cmc.Engine
) -> None:
    status, body = via_server(
        jupyter, "POST", f"kill/{port_of(channel)}", channel.token, {"reason": "x" * (MAX_BODY + 10)}
    )
    assert status == 413
    assert "too large" in body["error"]
    assert live.trading_state is cmc.TradingState.ACTIVE


def test_the_wheel_installs_a_jupyter_config_file_that_enables_the_extension() -> None:
    shared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"
    ]["shared-data"]
    [source] = [s for s, t in shared.items() if t == "etc/jupyter/jupyter_server_config.d"]
    config = json.loads((ROOT / source / "cmc_lab.json").read_text())
    [point] = _jupyter_server_extension_points()
    assert config == {"ServerApp": {"jpserver_extensions": {point["module"]: True}}}
