"""FIX session layer against the served exchange in another process, over loopback TCP.

The plan is the FIX Trading Community's session-layer test cases; each test names its case
(1B = acceptor receives Logon, 2x = receive any message, 4/5 = heartbeats, 7 = resend,
10/11 = SequenceReset, 13 = Logout, 14 = field problems, ...). A raw client writes the bytes
itself so it can send what a correct FIX engine never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.clock import VirtualClock
from cmc_lab.core.listing import list_months
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FixMessage, Framer, encode
from cmc_lab.venues.fix.config import FixConfig, FixConfigError
from cmc_lab.venues.fix.interface import LogonError, Session, SessionApp
from cmc_lab.venues.fix.session import FixSession
from cmc_lab.venues.fix.store import SeqStore, SeqStoreError, store_path

PASSWORD = "s3cret"
PASSWORD_ENV = "CMC_LAB_FIX_PASSWORD_EXECUTOR"
CLIENTS = [f"T{i:02d}" for i in range(40)]
#: the symbol of the gold month the served exchange lists on its real clock (GCG27 ...)
GC = list_months(load_specs(), time.time_ns()).instrument("COMEX.GC").symbol


class RawClient:
    """A FIX client that writes bytes by hand: right ones, wrong ones and everything between."""

    def __init__(self, port: int, sender: str, target: str = "EXECUTOR") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sender, self.target = sender, target
        self.seq = 1
        self.framer = Framer()
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def send(
        self,
        msg_type: str,
        body: list[tuple[int, object]] | None = None,
        *,
        seq: int | None = None,
        sender: str | None = None,
        sending_time: str | None = None,
        poss_dup: bool = False,
        orig_sending_time: str | None = None,
        begin_string: str = "FIX.4.4",
    ) -> bytes:
        number = self.seq if seq is None else seq
        if seq is None:
            self.seq += 1
        header: list[tuple[int, object]] = [
            (35, msg_type),
            (49, self.sender if sender is None else sender),
            (56, self.target),
            (34, number),
            (52, sending_time or codec.format_timestamp(time.time_ns())),
        ]
        if poss_dup:
            header.append((43, "Y"))
        if orig_sending_time is not None:
            header.append((122, orig_sending_time))
        raw = encode(header + (body or []), begin_string=begin_string)
        self.sock.sendall(raw)
        return raw

    def logon(self, heartbeat: int = 1, reset: bool = True, password: str | None = PASSWORD) -> FixMessage:
        body: list[tuple[int, object]] = [(98, 0), (108, heartbeat)]
        if reset:
            body.append((141, "Y"))
            self.seq = 1
        if password is not None:
            body.append((554, password))
        self.send("A", body)
        return self.expect("A")

    def recv(self, timeout: float = 3.0) -> FixMessage | None:
        """The next message, or None once the acceptor has closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.framer.frames():
                if isinstance(item, bytes):
                    return codec.parse(item)
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no FIX message within the timeout")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no FIX message within the timeout") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.framer.feed(data)

    def expect(self, msg_type: str, timeout: float = 3.0, skip: str = "0WX") -> FixMessage:
        """Read until a message of ``msg_type`` (skipping heartbeats and market data)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg is None:
                raise AssertionError(f"connection closed while waiting for MsgType {msg_type}")
            if msg.msg_type == msg_type:
                return msg
            if msg.msg_type not in skip:
                raise AssertionError(
                    f"expected MsgType {msg_type}, got {codec.printable(encode(msg.fields[2:-1]))}"
                )

    def closed(self, timeout: float = 3.0) -> list[FixMessage]:
        """Read until the acceptor closes; the messages it sent before closing."""
        out: list[FixMessage] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg is None:
                return out
            out.append(msg)

    def test_request(self, test_id: str, **kwargs: Any) -> bytes:
        return self.send("1", [(112, test_id)], **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    log = tmp_path_factory.mktemp("fixsrv") / "server.log"
    options = [f"--target={c}" for c in CLIENTS] + ["--password-env", PASSWORD_ENV, "--log", str(log)]
    with served_exchange(*options, env={PASSWORD_ENV: PASSWORD}) as (port, _):
        yield port, log


_names = itertools.count()


@pytest.fixture
def client(server: tuple[int, Path]) -> Iterator[RawClient]:
    """A raw client with a CompID no other test uses, so each test starts from a fresh session."""
    raw = RawClient(server[0], CLIENTS[next(_names)])
    yield raw
    raw.close()


@pytest.fixture
def logged_on(client: RawClient) -> RawClient:
    client.logon()
    return client


def order(cl_ord_id: str, side: str = "1", price: str = "4486.8", tif: str = "3") -> list[tuple[int, object]]:
    return [(11, cl_ord_id), (1, "US-FUT"), (55, GC), (207, "COMEX"), (54, side),
            (60, codec.format_timestamp(time.time_ns())), (38, 1), (40, "2"), (44, price), (59, tif)]  # fmt: skip


# --------------------------------------------------------------------------- 1B: Logon


def test_1B_a_valid_logon_is_answered_with_logon_adopting_our_heartbeat(client: RawClient) -> None:
    answer = client.logon(heartbeat=1)
    assert answer.get(108) == "1" and answer.get(141) == "Y" and answer.seq == 1
    assert answer.get(49) == "EXECUTOR" and answer.get(56) == client.sender


def test_1B_b_logon_with_seq_too_high_is_answered_with_logon_then_resend_request(client: RawClient) -> None:
    client.seq = 5
    client.send("A", [(98, 0), (108, 1), (554, PASSWORD)])
    client.expect("A")
    resend = client.expect("2")
    assert (resend.get(7), resend.get(16)) == ("1", "0")
    client.send(
        "4",
        [(123, "Y"), (36, 6)],
        seq=1,
        poss_dup=True,
        orig_sending_time=codec.format_timestamp(time.time_ns()),
    )
    client.test_request("after-gap")
    assert client.expect("0").get(112) == "after-gap"


def test_1B_logon_with_seq_too_low_is_refused_with_logout(
    server: tuple[int, Path], client: RawClient
) -> None:
    client.logon()
    client.send("5", [])
    client.closed()
    again = RawClient(server[0], client.sender)
    try:
        again.seq = 1  # the acceptor expects 3 now
        again.send("A", [(98, 0), (108, 1), (554, PASSWORD)])
        logout = again.expect("5")
        assert "MsgSeqNum too low, expecting 3 but received 1" in (logout.get(58) or "")
        assert again.closed() == []
    finally:
        again.close()


def test_1B_c_logon_with_wrong_password_is_refused_and_the_password_is_never_logged(
    server: tuple[int, Path], client: RawClient
) -> None:
    client.send("A", [(98, 0), (108, 1), (141, "Y"), (554, "guess-me")])
    logout = client.expect("5")
    assert "wrong or missing Password (554)" in (logout.get(58) or "")
    assert client.closed() == []
    text = server[1].read_text()
    assert "guess-me" not in text and PASSWORD not in text and "554=***" in text


def test_1B_c_logon_with_unknown_compids_is_refused_naming_them(server: tuple[int, Path]) -> None:
    raw = RawClient(server[0], "NOBODY")
    try:
        raw.send("A", [(98, 0), (108, 1), (141, "Y"), (554, PASSWORD)])
        logout = raw.expect("5")
        assert "unknown CompIDs NOBODY->EXECUTOR" in (logout.get(58) or "")
        assert raw.closed() == []
    finally:
        raw.close()


def test_1B_d_first_message_not_logon_is_disconnected_without_logout(client: RawClient) -> None:
    client.test_request("hello")
    assert client.closed() == []


def test_1B_logon_without_heartbeat_interval_is_refused(client: RawClient) -> None:
    client.send("A", [(98, 0), (141, "Y"), (554, PASSWORD)])
    assert "HeartBtInt (108)" in (client.expect("5").get(58) or "")


# --------------------------------------------------------------------------- 2: receive any message


def test_2b_seq_too_high_brings_a_resend_request_and_a_gap_fill_closes_the_gap(logged_on: RawClient) -> None:
    logged_on.test_request("ahead", seq=5)
    resend = logged_on.expect("2")
    assert (resend.get(7), resend.get(16)) == ("2", "0")
    now = codec.format_timestamp(time.time_ns())
    logged_on.send("4", [(123, "Y"), (36, 6)], seq=2, poss_dup=True, orig_sending_time=now)
    logged_on.seq = 6
    logged_on.test_request("in-sync")
    assert logged_on.expect("0").get(112) == "in-sync"


def test_2c_seq_too_low_without_possdup_ends_the_session_with_logout(logged_on: RawClient) -> None:
    logged_on.test_request("late", seq=1)
    logout = logged_on.expect("5")
    assert "MsgSeqNum too low, expecting 2 but received 1" in (logout.get(58) or "")
    assert logged_on.closed() == []


def test_2d_garbled_bytes_and_a_wrong_checksum_are_ignored_without_using_a_seq(logged_on: RawClient) -> None:
    bad = bytearray(encode([(35, "1"), (49, logged_on.sender), (56, "EXECUTOR"), (34, 2),
                            (52, codec.format_timestamp(time.time_ns())), (112, "lost")]))  # fmt: skip
    bad[-4:-1] = b"999"
    logged_on.sock.sendall(b"\xde\xad garbage \x01" + bytes(bad))
    logged_on.sock.sendall(encode([(35, "1"), (49, logged_on.sender)])[:25])  # a truncated frame
    logged_on.test_request("kept")  # seq 2 again: the garbled ones did not count
    assert logged_on.expect("0").get(112) == "kept"


def test_2e_possdup_below_the_expected_seq_is_ignored_as_a_duplicate(logged_on: RawClient) -> None:
    earlier = codec.format_timestamp(time.time_ns() - 1_000_000_000)
    logged_on.test_request("dup", seq=1, poss_dup=True, orig_sending_time=earlier)
    logged_on.test_request("fresh")
    assert logged_on.expect("0").get(112) == "fresh"


def test_2f_possdup_with_orig_sending_time_after_sending_time_is_rejected(logged_on: RawClient) -> None:
    later = codec.format_timestamp(time.time_ns() + 5_000_000_000)
    logged_on.test_request("odd", poss_dup=True, orig_sending_time=later)
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(45)) == ("10", "2")
    logged_on.test_request("next")
    assert logged_on.expect("0").get(112) == "next"


def test_2g_possdup_without_orig_sending_time_is_rejected_as_required_tag_missing(
    logged_on: RawClient,
) -> None:
    logged_on.test_request("odd", poss_dup=True)
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371)) == ("1", "122")


def test_2h_wrong_begin_string_ends_the_session(logged_on: RawClient) -> None:
    logged_on.send("1", [(112, "x")], begin_string="FIX.4.2")
    assert "BeginString 'FIX.4.2'" in (logged_on.expect("5").get(58) or "")
    assert logged_on.closed() == []


def test_2i_wrong_sender_comp_id_is_rejected_then_logged_out(logged_on: RawClient) -> None:
    logged_on.send("1", [(112, "x")], sender="SPOOF")
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371)) == ("9", "49")
    assert "CompID problem" in (logged_on.expect("5").get(58) or "")
    assert logged_on.closed() == []


def test_2k_sending_time_far_off_is_rejected_then_logged_out(logged_on: RawClient) -> None:
    logged_on.test_request("stale", sending_time="20200101-00:00:00.000")
    assert logged_on.expect("3").get(373) == "10"
    assert "SendingTime accuracy problem" in (logged_on.expect("5").get(58) or "")


def test_2m_invalid_msg_type_is_rejected_and_unsupported_gets_business_reject(logged_on: RawClient) -> None:
    logged_on.send("ZZ", [(58, "what")])
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(372)) == ("11", "ZZ")
    logged_on.send("AE", [(571, "trade")])
    business = logged_on.expect("j")
    assert (business.get(380), business.get(372)) == ("3", "AE")


# --------------------------------------------------------------------------- 4-6: heartbeats, test requests, rejects


def test_4a_an_idle_acceptor_sends_a_heartbeat_without_test_req_id(logged_on: RawClient) -> None:
    assert logged_on.expect("0", timeout=5.0, skip="WX").get(112) is None


class Wire:
    """The acceptor's side of an in-memory connection: every message it writes, with the loop time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.framer = Framer()
        self.sent: list[tuple[float, FixMessage]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.framer.feed(data)
        for item in self.framer.frames():
            assert isinstance(item, bytes), item
            self.sent.append((self.loop.time(), codec.parse(item)))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_4a_heartbeats_keep_our_interval_on_a_virtual_clock() -> None:
    """HeartBtInt=2 in our Logon: an acceptor with nothing else to say sends a Heartbeat every 2 s
    of loop time (it looks every HeartBtInt/5, so one arrives within [2, 2.4] s of the last message)."""
    clock = VirtualClock()
    loop = clock.new_loop()
    seq = itertools.count(1)

    def from_client(msg_type: str, body: list[tuple[int, object]]) -> bytes:
        header: list[tuple[int, object]] = [
            (35, msg_type),
            (49, "CLIENT1"),
            (56, "EXECUTOR"),
            (34, next(seq)),
        ]
        return encode([*header, (52, codec.format_timestamp(time.time_ns())), *body])

    async def session_of_ten_seconds() -> tuple[Wire, FixSession]:
        wire = Wire(loop)
        session = FixSession("EXECUTOR", "CLIENT1", "acceptor", SessionApp(), SeqStore(None))
        session.attach(wire)
        session.feed(from_client("A", [(98, 0), (108, 2)]))
        for _ in range(5):  # the client stays alive with its own heartbeats, one every 2 s
            await clock.advance(asyncio.sleep(2.0))
            session.feed(from_client("0", []))
        return wire, session

    try:
        wire, session = loop.run_until_complete(session_of_ten_seconds())
    finally:
        loop.close()
    assert session.logged_on and session.heartbeat == 2
    kinds = [m.msg_type for _, m in wire.sent]
    assert kinds[0] == "A" and set(kinds[1:]) == {"0"}, kinds
    beats = [t for t, m in wire.sent if m.msg_type == "0"]
    assert all(m.get(112) is None for _, m in wire.sent[1:]), "an unasked Heartbeat has no TestReqID"
    gaps = [later - earlier for earlier, later in itertools.pairwise([wire.sent[0][0], *beats])]
    assert len(gaps) == 4 and all(2.0 - 1e-9 <= gap <= 2.4 + 1e-9 for gap in gaps), gaps  # float loop time


def test_4b_test_request_is_answered_with_heartbeat_echoing_its_id(logged_on: RawClient) -> None:
    logged_on.test_request("ping-42")
    assert logged_on.expect("0").get(112) == "ping-42"


def test_5_silence_brings_a_test_request_then_a_disconnect(logged_on: RawClient) -> None:
    request = logged_on.expect("1", timeout=4.0)
    assert request.get(112)
    rest = logged_on.closed(timeout=5.0)
    assert [m.msg_type for m in rest if m.msg_type not in "0WX"] == ["5"]
    assert "heartbeat timeout" in (rest[-1].get(58) or "")


def test_6_a_reject_received_uses_its_seq_and_the_session_goes_on(logged_on: RawClient) -> None:
    logged_on.send("3", [(45, 1), (58, "just so")])
    logged_on.test_request("after-reject")
    assert logged_on.expect("0").get(112) == "after-reject"


# --------------------------------------------------------------------------- 7: resend


def test_7_resend_request_gap_fills_admin_and_resends_reports_with_possdup(logged_on: RawClient) -> None:
    logged_on.send("D", order("res-1"))
    first = [logged_on.expect("8") for _ in range(2)]
    assert [m.get(150) for m in first] == ["0", "F"]
    logged_on.send("2", [(7, 1), (16, 0)])
    fill = logged_on.expect("4", skip="0WX")
    assert (fill.get(123), fill.get(34), fill.get(43)) == ("Y", "1", "Y")
    resent = [logged_on.expect("8", skip="04WX") for _ in range(2)]
    for old, new in zip(first, resent, strict=True):
        assert new.get(43) == "Y" and new.seq == old.seq and new.get(17) == old.get(17)
        assert new.get(122) == old.get(52)
    logged_on.test_request("after-resend")
    assert logged_on.expect("0", skip="4WX").get(112) == "after-resend"


def test_15_reports_produced_while_the_client_was_away_come_back_through_resend(
    server: tuple[int, Path], client: RawClient
) -> None:
    client.logon()
    client.send("D", order("away-1"))
    client.sock.close()  # gone before reading a single report
    time.sleep(0.3)
    again = RawClient(server[0], client.sender)
    try:
        again.seq = client.seq
        again.send("A", [(98, 0), (108, 1), (554, PASSWORD)])
        logon = again.expect("A")
        assert logon.seq == 4  # 1 Logon, 2-3 the reports we never read: our gap, so we ask
        again.send("2", [(7, 2), (16, 0)])
        reports = [again.expect("8", skip="04WX") for _ in range(2)]
        assert [(m.get(11), m.get(150), m.get(43)) for m in reports] == [
            ("away-1", "0", "Y"),
            ("away-1", "F", "Y"),
        ]
    finally:
        again.close()
    lines = [
        line for line in server[1].read_text().splitlines() if f"order in: {client.sender} away-1" in line
    ]
    assert len(lines) == 1


def test_20_a_resend_request_is_answered_even_while_our_own_gap_is_open(client: RawClient) -> None:
    client.seq = 5
    client.send("A", [(98, 0), (108, 1), (554, PASSWORD)])
    client.expect("A")
    assert client.expect("2").get(7) == "1"
    client.send("2", [(7, 1), (16, 0)])  # seq 6: still beyond the acceptor's gap
    fill = client.expect("4")
    assert (fill.get(34), fill.get(123)) == ("1", "Y")
    now = codec.format_timestamp(time.time_ns())
    client.send("4", [(123, "Y"), (36, 7)], seq=1, poss_dup=True, orig_sending_time=now)
    client.seq = 7
    client.test_request("synced")
    assert client.expect("0", skip="234WX").get(112) == "synced"


# --------------------------------------------------------------------------- 10-11: SequenceReset


def test_10_gap_fill_moves_the_expected_seq_forward_and_cannot_move_it_back(logged_on: RawClient) -> None:
    now = codec.format_timestamp(time.time_ns())
    logged_on.send("4", [(123, "Y"), (36, 10)], seq=2)
    logged_on.seq = 10
    logged_on.test_request("at-10")
    assert logged_on.expect("0").get(112) == "at-10"
    logged_on.send("4", [(123, "Y"), (36, 5)], seq=11, poss_dup=False, orig_sending_time=now)
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371)) == ("5", "36")


def test_11_sequence_reset_ignores_msgseqnum_raises_expected_and_refuses_to_lower_it(
    logged_on: RawClient,
) -> None:
    logged_on.send("4", [(36, 20)], seq=999)
    logged_on.seq = 20
    logged_on.test_request("at-20")
    assert logged_on.expect("0").get(112) == "at-20"
    logged_on.send("4", [(36, 3)], seq=1)
    reject = logged_on.expect("3")
    assert reject.get(373) == "5" and "attempt to lower sequence number" in (reject.get(58) or "")


# --------------------------------------------------------------------------- 13: Logout


def test_13_logout_from_the_client_is_answered_with_logout_and_a_disconnect(logged_on: RawClient) -> None:
    logged_on.send("5", [(58, "done for the day")])
    assert logged_on.expect("5").msg_type == "5"
    assert logged_on.closed() == []


# --------------------------------------------------------------------------- 14: field problems


@pytest.mark.parametrize(
    ("body", "reason", "tag"),
    [
        ([(11, "f-1"), (55, GC), (207, "COMEX"), (38, 1), (40, "2"), (44, "4100")], "1", "54"),
        (
            [(11, "f-2"), (55, GC), (207, "COMEX"), (54, "1"), (38, "lots"), (40, "2"), (44, "4100")],
            "6",
            "38",
        ),
        ([(11, "f-3"), (11, "f-3b"), (55, GC), (54, "1"), (38, 1), (40, "2"), (44, "4100")], "13", "11"),
        ([(11, "f-4"), (55, ""), (54, "1"), (38, 1), (40, "2"), (44, "4100")], "4", "55"),
    ],
    ids=["required-tag-missing", "incorrect-data-format", "tag-repeated", "tag-without-value"],
)
def test_14_a_malformed_order_gets_a_session_reject_naming_the_tag(
    logged_on: RawClient, body: list[tuple[int, object]], reason: str, tag: str
) -> None:
    logged_on.send("D", body)
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371), reject.get(372)) == (reason, tag, "D")
    logged_on.test_request("still-here")
    assert logged_on.expect("0").get(112) == "still-here"


def test_14_an_order_for_a_symbol_not_listed_is_rejected_with_no_tag_left_empty(logged_on: RawClient) -> None:
    body = [(field, value) for field, value in order("nolist-1") if field != 55] + [(55, "GC")]  # the product
    logged_on.send("D", body)
    report = logged_on.expect("8")
    assert (report.get(150), report.get(39)) == ("8", "8") and "unknown instrument GC" in (
        report.get(58) or ""
    )
    assert [tag for tag, value in report.fields if value == ""] == []  # no Currency (15) it never had
    logged_on.test_request("still-here")
    assert logged_on.expect("0").get(112) == "still-here"


def test_14_repeating_group_with_a_wrong_count_is_rejected(logged_on: RawClient) -> None:
    logged_on.send(
        "V", [(262, "md"), (263, "1"), (264, 1), (267, 3), (269, "0"), (269, "1"), (146, 1), (55, GC)]
    )
    reject = logged_on.expect("3", skip="0")
    assert (reject.get(373), reject.get(371)) == ("16", "267")


def test_14_non_numeric_tag_is_rejected_as_invalid_tag(logged_on: RawClient) -> None:
    body = f"35=1\x0149={logged_on.sender}\x0156=EXECUTOR\x0134=2\x0152={codec.format_timestamp(time.time_ns())}\x01x1=2\x01"
    head = f"8=FIX.4.4\x019={len(body)}\x01"
    raw = (head + body).encode()
    logged_on.sock.sendall(raw + f"10={sum(raw) % 256:03d}\x01".encode())
    assert logged_on.expect("3").get(373) == "0"


# --------------------------------------------------------------------------- configuration and the sequence store


def test_sequence_store_survives_a_restart_and_is_replaced_atomically(tmp_path: Path) -> None:
    path = store_path(tmp_path / "run.sqlite", "CLIENT1", "EXECUTOR")
    assert path.name == "run.sqlite.fix-CLIENT1-EXECUTOR.json"
    store = SeqStore(path)
    store.next_out, store.next_in = 42, 17
    store.save()
    assert json.loads(path.read_text()) == {"next_out": 42, "next_in": 17}
    assert not path.with_name(path.name + ".tmp").exists()
    again = SeqStore(path)
    assert (again.next_out, again.next_in) == (42, 17)


def test_a_corrupt_sequence_store_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(SeqStoreError, match=r"delete it and log on with ResetSeqNumFlag \(add &reset=1"):
        SeqStore(path)


def test_fix_address_parses_its_settings_and_prints_without_secrets() -> None:
    cfg = FixConfig.parse("fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR&heartbeat=1&tls=1&reset=1")
    assert (cfg.heartbeat, cfg.tls, cfg.reset, cfg.loopback) == (1, True, True, True)
    assert str(cfg) == "fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR&heartbeat=1&tls=1&reset=1"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("fix://127.0.0.1:9878?sender=C&target=E&password=x", "must not carry secrets"),
        ("fix://user:pw@127.0.0.1:9878?sender=C&target=E", "must not carry credentials"),
        ("fix://127.0.0.1:9878?target=E", "sender= must be a CompID"),
        ("fix://127.0.0.1?sender=C&target=E", "write fix://HOST:PORT"),
        ("fix://127.0.0.1:99999?sender=C&target=E", "port must be a number"),
        ("fix://127.0.0.1:9878?sender=C&target=E&heartbeat=0", "heartbeat= must be a whole number"),
        ("fix://127.0.0.1:9878?sender=C&target=E&colour=red", "unknown setting colour"),
        ("tcp://127.0.0.1:9878", "is not a FIX address"),
    ],
)
def test_bad_fix_addresses_say_what_to_fix(address: str, message: str) -> None:
    with pytest.raises(FixConfigError, match=message) as err:
        FixConfig.parse(address)
    assert "pw@" not in str(err.value)


def test_password_comes_from_the_environment_per_target(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = FixConfig.parse("fix://127.0.0.1:9878?sender=CLIENT1&target=EXEC-2")
    monkeypatch.setenv("CMC_LAB_FIX_PASSWORD_EXEC_2", "pa55")
    assert cfg.password() == "pa55"
    assert "pa55" not in repr(cfg) and "pa55" not in str(cfg)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fix", "0.0.0.0:9878"], "0.0.0.0 is not a loopback address"),
        (["--fix", "127.0.0.1:http"], "write HOST:PORT"),
        (["--fix", "127.0.0.1:0", "--password-env", "CMC_LAB_TEST_UNSET_VARIABLE"], "is not set or empty"),
    ],
)
def test_venue_serve_refuses_settings_that_cannot_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cmc_lab.cli import main

    assert main(["venue", "serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_paper_venue_opens_every_instrument_all_day_unless_told_to_honour_sessions() -> None:
    from datetime import UTC, datetime

    from cmc_lab.venues.fix.server import ServeError, paper_specs

    saturday = int(datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
    specs = load_specs()
    assert not specs.instruments["SHFE.au"].hours.is_open(saturday)
    assert all(i.hours.is_open(saturday) for i in paper_specs(specs, "always").instruments.values())
    assert paper_specs(specs, "honour") is specs
    with pytest.raises(ServeError, match="use 'always'"):
        paper_specs(specs, "sometimes")


# --------------------------------------------------------------------------- issue 16: both roles, in process
#
# The same case against our acceptor and our initiator: a FixSession on an in-memory Wire, driven
# by a Peer that writes the counterparty's bytes, on a virtual clock (no timing thresholds).

ROLES = ["acceptor", "initiator"]


class Peer:
    """The counterparty of the session under test: numbers and frames its messages."""

    def __init__(self, sender: str, target: str) -> None:
        self.sender, self.target = sender, target
        self.seq = 1

    def msg(
        self,
        msg_type: str,
        body: list[tuple[int, object]] | None = None,
        *,
        seq: int | None = None,
        header: list[tuple[int, object]] | None = None,
        sending_time: str | None = None,
        sender: str | None = None,
        begin_string: str = "FIX.4.4",
    ) -> bytes:
        number = self.seq if seq is None else seq
        if seq is None:
            self.seq += 1
        fields: list[tuple[int, object]] = [
            (35, msg_type),
            (49, self.sender if sender is None else sender),
            (56, self.target),
            (34, number),
            (52, sending_time or codec.format_timestamp(time.time_ns())),
            *(header or []),
            *(body or []),
        ]
        return encode(fields, begin_string=begin_string)


def logon_body(heartbeat: int = 1, reset: bool = False) -> list[tuple[int, object]]:
    return [(98, 0), (108, heartbeat), *([(141, "Y")] if reset else [])]


def run_case(role: str, case: Any, **session_options: Any) -> tuple[FixSession, Wire]:
    """Run ``case(session, peer, wire, clock)`` against a fresh session playing ``role``."""
    clock = VirtualClock()
    loop = clock.new_loop()
    us, them = ("EXECUTOR", "CLIENT1") if role == "acceptor" else ("CLIENT1", "EXECUTOR")

    async def main() -> tuple[FixSession, Wire]:
        wire = Wire(loop)
        options = {"heartbeat": 1, **session_options}
        session = FixSession(us, them, role, SessionApp(), SeqStore(None), **options)
        session.attach(wire)
        await case(session, Peer(them, us), wire, clock)
        return session, wire

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def log_on(session: FixSession, peer: Peer, answer: bytes) -> None:
    """The counterparty's Logon (acceptor) or its answer to ours (initiator)."""
    if session.role == "acceptor":
        session.feed(answer)
        return
    pending = asyncio.ensure_future(session.logon())
    await asyncio.sleep(0)
    session.feed(answer)
    with contextlib.suppress(LogonError):
        await pending


def after_logon(wire: Wire) -> list[FixMessage]:
    """What the session wrote after its Logon (the initiator's own, or the acceptor's answer)."""
    assert wire.sent and wire.sent[0][1].msg_type == "A"
    return [m for _, m in wire.sent[1:]]


@pytest.mark.parametrize("asked", [False, True], ids=["not-asked", "asked"])
def test_1B_reset_on_logon_resets_silently_and_echoes_141_only_when_the_client_asked(asked: bool) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        session.store.next_out, session.store.next_in = 7, 7
        await log_on(session, peer, peer.msg("A", logon_body(reset=asked)))

    session, wire = run_case("acceptor", case, reset_on_logon=True)
    answer = wire.sent[0][1]
    assert answer.msg_type == "A" and answer.seq == 1 and session.logged_on
    assert answer.get(141) == ("Y" if asked else None)


@pytest.mark.parametrize("role", ROLES)
def test_1B_b_logon_with_seq_too_high_is_accepted_answered_then_a_resend_request_follows(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body(), seq=5))

    session, wire = run_case(role, case)
    kinds = [m.msg_type for _, m in wire.sent]
    assert session.logged_on and kinds == ["A", "2"], kinds
    resend = wire.sent[1][1]
    assert (resend.get(7), resend.get(16)) == ("1", "0")


BAD_FIRST: dict[str, dict[str, Any]] = {
    "not-logon": {"msg_type": "1", "body": [(112, "hello")]},
    "begin-string": {"begin_string": "FIX.4.2"},
    "unknown-sender": {"sender": "NOBODY"},
    "stale-sending-time": {"sending_time": "20200101-00:00:00.000"},
    "tag-without-value": {"body": [(98, 0), (108, "")]},
}


@pytest.mark.parametrize("kind", BAD_FIRST)
@pytest.mark.parametrize("role", ROLES)
def test_1B_d_a_bad_first_message_disconnects_without_opening_the_session(role: str, kind: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        options: dict[str, Any] = dict(BAD_FIRST[kind])
        msg_type, body = options.pop("msg_type", "A"), options.pop("body", logon_body())
        await log_on(session, peer, peer.msg(msg_type, body, **options))

    session, wire = run_case(role, case)
    assert not session.logged_on and wire.closed
    kinds = [m.msg_type for _, m in wire.sent]
    own_logon = ["A"] if role == "initiator" else []
    assert kinds in (own_logon, [*own_logon, "5"]), kinds  # never a Logon answer


def test_1B_a_second_connection_for_a_logged_on_session_is_refused_and_the_first_kept(
    server: tuple[int, Path], logged_on: RawClient
) -> None:
    second = RawClient(server[0], logged_on.sender)
    try:
        second.send("A", [*logon_body(reset=True), (554, PASSWORD)], seq=1)
        assert "already logged on from another connection" in (second.expect("5").get(58) or "")
        assert second.closed() == []
    finally:
        second.close()
    logged_on.test_request("first-kept")
    assert logged_on.expect("0").get(112) == "first-kept"


@pytest.mark.parametrize("role", ROLES)
def test_1B_logon_with_141_while_logged_on_resets_both_sequences_in_session(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body()))
        session.feed(peer.msg("1", [(112, "before")]))
        session.feed(peer.msg("A", logon_body(reset=True), seq=1))
        peer.seq = 2
        session.feed(peer.msg("1", [(112, "after")]))

    session, wire = run_case(role, case)
    answer, beat = after_logon(wire)[-2:]
    assert (answer.msg_type, answer.seq, answer.get(141)) == ("A", 1, "Y")
    assert (beat.msg_type, beat.seq, beat.get(112)) == ("0", 2, "after")
    assert session.logged_on and (session.store.next_out, session.store.next_in) == (3, 3)


@pytest.mark.parametrize("role", ROLES)
def test_1B_logon_without_141_while_logged_on_is_logged_out(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body()))
        session.feed(peer.msg("A", logon_body()))

    session, wire = run_case(role, case)
    logout = after_logon(wire)[-1]
    assert logout.msg_type == "5" and "already logged on" in (logout.get(58) or "")
    assert wire.closed and not session.logged_on


@pytest.mark.parametrize("role", ROLES)
def test_5_a_test_request_not_answered_in_time_disconnects(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body(heartbeat=1)))
        await clock.advance(asyncio.sleep(10.0))

    session, wire = run_case(role, case)
    kinds = [m.msg_type for m in after_logon(wire) if m.msg_type != "0"]
    assert kinds == ["1", "5"], kinds
    assert "heartbeat timeout" in (after_logon(wire)[-1].get(58) or "")
    assert wire.closed and session.last_disconnect.startswith("heartbeat timeout")


@pytest.mark.parametrize("role", ROLES)
def test_7_resend_request_over_admin_messages_only_is_one_gap_fill(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body()))
        session.feed(peer.msg("1", [(112, "admin")]))
        session.feed(peer.msg("2", [(7, 1), (16, 0)]))

    session, wire = run_case(role, case)
    sent = [m for _, m in wire.sent]
    assert [m.msg_type for m in sent] == ["A", "0", "4"], [m.msg_type for m in sent]
    fill = sent[-1]
    assert (fill.seq, fill.get(123), fill.get(36), fill.get(43)) == (1, "Y", "3", "Y")
    assert fill.get(122) is not None and session.logged_on


@pytest.mark.parametrize("role", ROLES)
def test_2e_possdup_below_the_expected_seq_is_ignored_not_logged_out(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body()))
        earlier = codec.format_timestamp(time.time_ns() - 1_000_000_000)
        session.feed(peer.msg("1", [(112, "dup")], seq=1, header=[(43, "Y"), (122, earlier)]))
        session.feed(peer.msg("1", [(112, "fresh")]))

    session, wire = run_case(role, case)
    assert [(m.msg_type, m.get(112)) for m in after_logon(wire)] == [("0", "fresh")]
    assert session.logged_on


@pytest.mark.parametrize("role", ROLES)
def test_11_a_sequence_reset_that_lowers_the_number_is_rejected_value_incorrect(role: str) -> None:
    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        await log_on(session, peer, peer.msg("A", logon_body()))
        session.feed(peer.msg("4", [(36, 10)]))
        session.feed(peer.msg("4", [(36, 3)], seq=10))

    session, wire = run_case(role, case)
    reject = after_logon(wire)[-1]
    assert (reject.msg_type, reject.get(373), reject.get(371)) == ("3", "5", "36")
    assert session.logged_on and session.store.next_in == 10


@pytest.mark.parametrize("role", ROLES)
def test_a_message_for_a_deliver_to_comp_id_we_do_not_serve_is_rejected_in_both_roles(role: str) -> None:
    class Recorder(SessionApp):
        def __init__(self) -> None:
            self.got: list[FixMessage] = []

        def on_message(self, session: Session, message: FixMessage) -> None:
            self.got.append(message)

    app = Recorder()

    async def case(session: FixSession, peer: Peer, wire: Wire, clock: VirtualClock) -> None:
        session.app = app
        await log_on(session, peer, peer.msg("A", logon_body()))
        session.feed(peer.msg("B", [(128, "ELSEWHERE"), (148, "routed")]))
        session.feed(peer.msg("B", [(128, session.sender), (148, "ours")]))

    session, wire = run_case(role, case)
    reject = after_logon(wire)[-1]
    assert (reject.msg_type, reject.get(373), reject.get(371), reject.get(45)) == ("3", "5", "128", "2")
    assert [m.get(148) for m in app.got] == ["ours"] and session.logged_on


# --------------------------------------------------------------------------- issue 16: reject reasons, routing, serve


def test_14_an_empty_sender_comp_id_is_a_tag_without_value_not_a_compid_problem(logged_on: RawClient) -> None:
    logged_on.send("1", [(112, "x")], sender="")
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371)) == ("4", "49")
    logged_on.test_request("still-on")
    assert logged_on.expect("0").get(112) == "still-on"


def test_14_a_header_field_after_the_body_is_out_of_order_not_missing(logged_on: RawClient) -> None:
    fields: list[tuple[int, object]] = [(35, "1"), (49, logged_on.sender), (56, "EXECUTOR"), (34, logged_on.seq),
                                        (112, "late"), (52, codec.format_timestamp(time.time_ns()))]  # fmt: skip
    logged_on.seq += 1
    logged_on.sock.sendall(encode(fields))
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371)) == ("14", "52")
    logged_on.test_request("in-order")
    assert logged_on.expect("0").get(112) == "in-order"


def test_an_order_for_a_deliver_to_comp_id_we_do_not_serve_is_rejected_not_executed(
    server: tuple[int, Path], logged_on: RawClient
) -> None:
    logged_on.send("D", [(128, "ELSEWHERE"), *order("dlv-1")])
    reject = logged_on.expect("3")
    assert (reject.get(373), reject.get(371), reject.get(372)) == ("5", "128", "D")
    logged_on.test_request("after-deliver-to")
    assert logged_on.expect("0").get(112) == "after-deliver-to"
    assert f"order in: {logged_on.sender} dlv-1" not in server[1].read_text()


def test_venue_serve_refuses_a_remote_acceptor_without_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    from cmc_lab.cli import main

    assert main(["venue", "serve", "--fix", "0.0.0.0:0", "--allow-remote"]) == 2
    assert "set a password with --password-env" in capsys.readouterr().err


def test_venue_serve_store_creates_a_missing_directory(tmp_path: Path) -> None:
    from cmc_lab.venues.fix.server import ExchangeServer

    store = tmp_path / "not" / "yet"
    server = ExchangeServer(targets=["CLIENT1"], store_dir=store)
    server.sessions["CLIENT1"].store.save()
    assert (store / "EXECUTOR-CLIENT1.json").exists()
