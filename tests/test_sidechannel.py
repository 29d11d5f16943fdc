"""The kill switch's loopback side channel: token, bad requests, CORS, and a kill while the kernel is busy."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import cmc_lab as cmc
from cmc_lab.model import OrderState
from cmc_lab.ui.killswitch import side_channel
from cmc_lab.ui.sidechannel import MAX_BODY, SideChannel


@pytest.fixture
def live(make_engine: Callable[..., cmc.Engine]) -> cmc.Engine:
    """A real-clock engine: venue answers arrive by themselves, as in a notebook."""
    return make_engine(clock="real")


@pytest.fixture
def channel(live: cmc.Engine) -> Iterator[SideChannel]:
    chan = SideChannel(live)
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


def test_kill_while_the_main_thread_sleeps_cancels_a_resting_order_within_one_second(
    channel: SideChannel, live: cmc.Engine
) -> None:
    order = live.submit("COMEX.GC", "buy", 1, price=resting_bid(live))
    deadline = time.monotonic() + 5
    while order.state is not OrderState.ACCEPTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order.state is OrderState.ACCEPTED, f"the resting order never rested: {order.state}"

    result: dict[str, Any] = {}

    def press() -> None:  # the browser's button, while the "cell" below is blocked
        time.sleep(0.3)
        started = time.monotonic()
        result["response"] = call(channel, "POST", "/kill", {"reason": "busy kernel", "who": "kill button"})
        while not order.done and time.monotonic() - started < 2:
            time.sleep(0.005)
        result["cancelled_after"] = time.monotonic() - started
        result["state"] = order.state

    presser = threading.Thread(target=press)
    presser.start()
    time.sleep(2.0)  # the kernel's main thread is busy in a cell
    presser.join(5)

    status, body, _ = result["response"]
    assert status == 200
    assert body["cancelled"] == 1 and body["state"] == "HALTED"
    assert result["state"] is OrderState.CANCELED
    assert result["cancelled_after"] < 1.0, f"cancel took {result['cancelled_after']:.3f} s"
    assert call(channel, "GET", "/state")[1] == {"state": "HALTED", "working_orders": 0}
    halted = [r for r in kill_rows(live) if r["payload"]["state"] == "HALTED"]
    assert [(r["payload"]["who"], r["payload"]["reason"]) for r in halted] == [("kill button", "busy kernel")]
    blocked = live.submit("COMEX.GC", "buy", 1, price=resting_bid(live))
    assert blocked.state is OrderState.DENIED, "a halted engine must deny new orders"
