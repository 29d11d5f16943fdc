"""FIX codec: golden bytes, framing of whole, split, garbled and truncated streams, groups, time; fuzzing.

The fuzz tests drive a real session (the served exchange's acceptor, and the gateway's
initiator) with random bytes and random well-framed messages: nothing may escape as an
exception; the session answers with a Reject, ignores the bytes, or disconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmc_lab.core.clock import RealClock
from cmc_lab.core.model import Side, SubmitOrder, TimeInForce
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.fix import codec, mapping, venue_mapping
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage, Framer, Garbled, encode, parse
from cmc_lab.venues.fix.gateway import fix_venues
from cmc_lab.venues.fix.interface import SessionApp, SessionState
from cmc_lab.venues.fix.server import ExchangeServer
from cmc_lab.venues.fix.session import FixSession
from cmc_lab.venues.fix.store import SeqStore

SOH = "\x01"

# The Logon example of the FIX protocol's Wikipedia article: BodyLength 65, CheckSum 062.
WIKIPEDIA_LOGON = "8=FIX.4.2|9=65|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|10=062|"


def wire(text: str) -> bytes:
    return text.replace("|", SOH).encode()


def heartbeat(seq: int = 2) -> bytes:
    return encode([(35, "0"), (49, "CLIENT1"), (56, "EXECUTOR"), (34, seq), (52, "20261124-14:00:00.000")])


# --------------------------------------------------------------------------- golden bytes


def test_encode_reproduces_the_published_logon_example_byte_for_byte() -> None:
    fields = [
        (35, "A"),
        (49, "SERVER"),
        (56, "CLIENT"),
        (34, 177),
        (52, "20090107-18:15:16"),
        (98, 0),
        (108, 30),
    ]
    assert encode(fields, begin_string="FIX.4.2") == wire(WIKIPEDIA_LOGON)


def test_encode_heartbeat_golden_bytes() -> None:
    assert heartbeat() == wire(
        "8=FIX.4.4|9=58|35=0|49=CLIENT1|56=EXECUTOR|34=2|52=20261124-14:00:00.000|10=032|"
    )


def test_new_order_single_golden_bytes() -> None:
    cmd = SubmitOrder("r1-000001", "COMEX.GC", Side.SELL, 2, Decimal("2650.10"), TimeInForce.IOC, "US-FUT", 0)
    body = mapping.new_order_single(cmd, "US-FUT", "USD", "20261124-14:00:00.000")
    header = [(35, "D"), (49, "CLIENT1"), (56, "EXECUTOR"), (34, 7), (52, "20261124-14:00:00.001")]
    assert encode(header + body) == wire(
        "8=FIX.4.4|9=159|35=D|49=CLIENT1|56=EXECUTOR|34=7|52=20261124-14:00:00.001|11=r1-000001|1=US-FUT|"
        "55=GC|207=COMEX|54=2|60=20261124-14:00:00.000|38=2|40=2|44=2650.10|59=3|15=USD|10=104|"
    )


def test_market_data_incremental_golden_bytes_with_repeating_group() -> None:
    from cmc_lab.core.model import Quote

    ts = codec.parse_timestamp("20261124-14:00:00.250")
    quote = Quote("COMEX.GC", 2649.9, 2650.0, 12, 7, ts, ts)
    header = [(35, "X"), (49, "EXECUTOR"), (56, "CLIENT1"), (34, 9), (52, "20261124-14:00:00.251")]
    raw = encode(header + venue_mapping.market_data_incremental("md-1", quote))
    assert raw == wire(
        "8=FIX.4.4|9=224|35=X|49=EXECUTOR|56=CLIENT1|34=9|52=20261124-14:00:00.251|262=md-1|268=2|"
        "279=1|269=0|55=GC|207=COMEX|270=2649.9|271=12|272=20261124|273=14:00:00.250|"
        "279=1|269=1|55=GC|207=COMEX|270=2650.0|271=7|272=20261124|273=14:00:00.250|10=137|"
    )
    books: dict[str, mapping.TopOfBook] = {}
    (back,) = mapping.market_data_quotes(parse(raw), books, ts_init=ts + 5)
    assert (back.bid, back.ask, back.bid_size, back.ask_size, back.ts_event) == (2649.9, 2650.0, 12, 7, ts)


def test_checksum_is_the_byte_sum_modulo_256_and_body_length_counts_from_msgtype() -> None:
    raw = heartbeat()
    end = raw.index(b"10=")
    assert int(raw[end + 3 : end + 6]) == sum(raw[:end]) % 256
    body_start = raw.index(b"35=")
    assert int(raw.split(b"\x01")[1][2:]) == end - body_start


def test_encode_refuses_a_value_with_soh() -> None:
    with pytest.raises(ValueError, match="SOH"):
        encode([(35, "0"), (58, "a\x01b")])


# --------------------------------------------------------------------------- framing


def frames_of(*chunks: bytes) -> list[bytes | Garbled]:
    framer = Framer()
    out: list[bytes | Garbled] = []
    for chunk in chunks:
        framer.feed(chunk)
        out += list(framer.frames())
    return out


def test_framer_joins_a_message_split_byte_by_byte() -> None:
    raw = heartbeat()
    assert frames_of(*(raw[i : i + 1] for i in range(len(raw)))) == [raw]


def test_framer_splits_two_messages_in_one_read() -> None:
    assert frames_of(heartbeat(2) + heartbeat(3)) == [heartbeat(2), heartbeat(3)]


def test_framer_drops_junk_before_begin_string_and_says_so() -> None:
    out = frames_of(b"\x00\xffnoise" + heartbeat())
    assert isinstance(out[0], Garbled) and out[0].reason == "bytes before BeginString"
    assert out[1:] == [heartbeat()]


def test_framer_drops_a_message_with_a_wrong_checksum_and_keeps_the_next() -> None:
    bad = bytearray(heartbeat(2))
    bad[-4:-1] = b"000" if bad[-4:-1] != b"000" else b"001"
    out = frames_of(bytes(bad) + heartbeat(3))
    assert [type(x).__name__ for x in out] == ["Garbled", "bytes"]
    assert isinstance(out[0], Garbled) and "CheckSum" in out[0].reason
    assert out[1] == heartbeat(3)


def test_framer_drops_a_truncated_message_and_resynchronises_on_the_next() -> None:
    truncated = heartbeat(2)[:-20]
    out = frames_of(truncated, heartbeat(3))
    assert isinstance(out[0], Garbled) and "BodyLength" in out[0].reason
    assert out[1:] == [heartbeat(3)]


def test_framer_drops_a_wrong_body_length() -> None:
    raw = heartbeat(2).replace(b"9=58", b"9=56")
    out = frames_of(raw + heartbeat(3))
    assert isinstance(out[0], Garbled)
    assert out[-1] == heartbeat(3)


def test_framer_waits_for_the_rest_of_a_partial_header() -> None:
    framer = Framer()
    framer.feed(b"8=FIX.4.4\x019=5")
    assert list(framer.frames()) == []
    assert framer.pending == 13


def test_framer_refuses_an_absurd_body_length_without_waiting_for_it() -> None:
    out = frames_of(b"8=FIX.4.4\x019=999999999\x0135=0\x01" + heartbeat(3))
    assert isinstance(out[0], Garbled) and "beyond the limit" in out[0].reason
    assert out[-1] == heartbeat(3)


# --------------------------------------------------------------------------- fields


def test_parse_reads_fields_in_wire_order() -> None:
    msg = parse(heartbeat(5))
    assert msg.msg_type == "0" and msg.seq == 5 and msg.get(49) == "CLIENT1"
    assert msg.fields[0] == (8, "FIX.4.4") and msg.fields[-1][0] == 10


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([(35, "0"), (49, "A"), (56, "B"), (34, 2), (58, "")], codec.TAG_WITHOUT_VALUE),
        ([(35, "0"), (49, "A"), (56, "B"), (34, "x2")], codec.INCORRECT_FORMAT),
        ([(35, "0"), (49, "A"), (49, "A"), (34, 2)], codec.TAG_REPEATED),
    ],
)
def test_parse_names_the_field_problem_and_keeps_the_message(
    fields: list[tuple[int, object]], reason: int
) -> None:
    with pytest.raises(FieldProblem) as err:
        parse(encode(fields))
    assert err.value.reason == reason
    assert err.value.message is not None and err.value.message.msg_type == "0"


def test_parse_rejects_a_non_numeric_tag_and_msgtype_out_of_place() -> None:
    with pytest.raises(FieldProblem) as err:
        parse(wire("8=FIX.4.4|9=5|35=0|ab=1|10=000|"))
    assert err.value.reason == codec.INVALID_TAG
    with pytest.raises(FieldProblem) as err2:
        parse(encode([(49, "A"), (35, "0")]))
    assert err2.value.reason == codec.TAG_OUT_OF_ORDER


def test_repeating_group_count_must_match_its_entries() -> None:
    body = [(35, "W"), (262, "m"), (55, "GC"), (268, 2), (269, "0"), (270, "1"), (271, "1")]
    msg = parse(encode(body))
    with pytest.raises(FieldProblem) as err:
        msg.group(268)
    assert err.value.reason == codec.BAD_GROUP_COUNT


def test_tag_repeated_outside_a_group_is_refused_inside_a_group_is_fine() -> None:
    good = parse(encode([(35, "V"), (262, "m"), (263, "1"), (264, 1), (267, 2), (269, "0"), (269, "1")]))
    codec.check_repeats(good)
    bad = parse(encode([(35, "D"), (11, "a"), (11, "b")]))
    with pytest.raises(FieldProblem) as err:
        codec.check_repeats(bad)
    assert err.value.reason == codec.TAG_REPEATED and err.value.tag == 11


def test_decimal_and_integer_reject_garbage_and_absurd_magnitudes() -> None:
    msg = FixMessage(((38, "1e999999"), (44, "NaN"), (34, "²"), (7, "12")))
    for tag in (38, 44):
        with pytest.raises(FieldProblem):
            msg.decimal(tag)
    with pytest.raises(FieldProblem):
        msg.integer(34)
    assert msg.integer(7) == 12 and msg.seq is None


def test_timestamps_round_trip_at_millisecond_precision() -> None:
    ns = 1_795_528_800_123_456_789
    text = codec.format_timestamp(ns)
    assert text == "20261124-14:00:00.123"
    assert codec.parse_timestamp(text) == 1_795_528_800_123_000_000
    assert codec.parse_timestamp("20261124-14:00:00") == 1_795_528_800_000_000_000
    assert codec.parse_date_time("20261124", "14:00:00.5") == 1_795_528_800_500_000_000
    for bad in ("2026-11-24 14:00", "20261324-14:00:00", "20261124-25:00:00"):
        with pytest.raises(ValueError):
            codec.parse_timestamp(bad)


def test_a_message_of_a_shape_already_seen_still_has_its_integers_checked() -> None:
    header = [(35, "0"), (49, "CLIENT1"), (56, "EXECUTOR")]
    parse(encode([*header, (34, 7), (52, "20261124-14:00:00.000")]))  # this tag order is now known good
    with pytest.raises(FieldProblem) as err:
        parse(encode([*header, (34, "7x"), (52, "20261124-14:00:00.000")]))
    assert err.value.reason == codec.INCORRECT_FORMAT and err.value.tag == 34


def test_a_repeat_check_remembered_for_one_msgtype_does_not_pass_another() -> None:
    codec.check_repeats(parse(encode([(35, "D"), (11, "a"), (1, "x")])))
    with pytest.raises(FieldProblem):
        codec.check_repeats(parse(encode([(35, "D"), (11, "a"), (11, "b")])))


def test_a_timestamp_in_a_second_read_before_still_refuses_a_bad_fraction() -> None:
    assert codec.parse_timestamp("20261124-14:00:01.5") == 1_795_528_801_500_000_000
    assert codec.parse_timestamp("20261124-14:00:01.25") == 1_795_528_801_250_000_000
    assert codec.parse_timestamp("20261124-14:00:01") == 1_795_528_801_000_000_000
    for bad in (
        "20261124-14:00:01.",
        "20261124-14:00:01.x",
        "20261124-14:00:01.1234567890",
        "20261124-14:00:01Z",
    ):
        with pytest.raises(ValueError):
            codec.parse_timestamp(bad)


class _Wire:
    """A connection's write side that records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def test_the_acceptor_writes_one_turn_of_the_loop_in_one_piece_and_flushes_before_closing() -> None:
    async def run() -> tuple[list[bytes], list[bytes], list[bytes]]:
        session = FixSession(
            "EXECUTOR", "CLIENT1", "acceptor", ExchangeServer(targets=["CLIENT1"]), SeqStore(None)
        )
        wire = _Wire()
        session.attach(wire)
        session.out.write(b"new")
        session.out.write(b"fill")
        held = list(wire.writes)
        await asyncio.sleep(0)
        turn = list(wire.writes)
        session.out.write(b"logout")
        session.abort("closing")
        return held, turn, wire.writes

    held, turn, closed = asyncio.run(run())
    assert held == [] and turn == [b"newfill"] and closed == [b"newfill", b"logout"]


def test_the_initiator_writes_each_message_at_once() -> None:
    async def run() -> list[bytes]:
        session = FixSession("CLIENT1", "EXECUTOR", "initiator", SessionApp(), SeqStore(None))
        wire = _Wire()
        session.attach(wire)
        session.out.write(b"order")
        return list(wire.writes)

    assert asyncio.run(run()) == [b"order"]


def test_printable_redacts_every_secret_tag() -> None:
    raw = encode([(35, "A"), (49, "C"), (56, "E"), (34, 1), (553, "desk"), (554, "s3cret"), (925, "n3w")])
    text = codec.printable(raw)
    assert "s3cret" not in text and "n3w" not in text
    assert "|554=***|" in text and "|553=desk|" in text


# --------------------------------------------------------------------------- fuzz: random bytes never crash a session


class RecordingWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


TAGS = st.sampled_from(
    [1, 6, 7, 11, 14, 16, 17, 31, 32, 34, 36, 37, 38, 39, 40, 41, 43, 44, 45, 52, 54, 55, 58, 59, 60, 97, 108,
     112, 122, 123, 146, 150, 151, 207, 262, 263, 264, 267, 268, 269, 270, 271, 272, 273, 279, 372, 373, 380,
     434, 554, 790, 851]
) | st.integers(1, 99_999)  # fmt: skip
VALUES = st.sampled_from(
    ["0", "1", "2", "3", "4", "8", "F", "I", "Y", "N", "-1", "0.5", "NaN", "1e30", "GC", "COMEX", "CLIENT1",
     "EXECUTOR", "20261124-14:00:00.000", "99999999999999999999", ""]
) | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=8)  # fmt: skip
MSG_TYPES = st.sampled_from(
    ["0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "V", "8", "9", "W", "X", "j", "ZZ"]
)


NOW = "20261124-14:00:00.000"  # TransactTime in templates; SendingTime is always current
#: Valid messages each side sends, mutated by the fuzzer so that it reaches the application handlers.
TO_ACCEPTOR: dict[str, list[tuple[int, str]]] = {
    "D": [(11, "f1"), (1, "US-FUT"), (55, "GC"), (207, "COMEX"), (54, "1"), (60, NOW), (38, "1"), (40, "2"),
          (44, "2650.0"), (59, "3"), (15, "USD")],
    "F": [(41, "f1"), (11, "f1.C1"), (55, "GC"), (207, "COMEX"), (54, "1"), (60, NOW), (38, "1")],
    "G": [(41, "f1"), (11, "f1.R1"), (55, "GC"), (207, "COMEX"), (54, "1"), (60, NOW), (38, "2"), (40, "2"),
          (44, "2600.0"), (59, "0")],
    "H": [(11, "f1"), (790, "s1"), (55, "GC"), (54, "1")],
    "V": [(262, "m1"), (263, "1"), (264, "1"), (265, "1"), (267, "2"), (269, "0"), (269, "1"), (146, "1"),
          (55, "GC"), (207, "COMEX")],
}  # fmt: skip
TO_INITIATOR: dict[str, list[tuple[int, str]]] = {
    "8": [(37, "COMEX-1"), (11, "f1"), (790, "st-2"), (17, "E1"), (150, "F"), (39, "2"), (55, "GC"),
          (207, "COMEX"), (54, "1"), (38, "1"), (32, "1"), (31, "2650.0"), (151, "0"), (14, "1"),
          (6, "2650.0"), (60, NOW)],
    "9": [(37, "COMEX-1"), (11, "f1.C1"), (41, "f1"), (39, "0"), (434, "1"), (102, "0"), (58, "too late")],
    "W": [(262, "m"), (55, "GC"), (207, "COMEX"), (268, "2"), (269, "0"), (270, "2650"), (271, "5"),
          (269, "1"), (270, "2651"), (271, "5")],
    "X": [(262, "m"), (268, "1"), (279, "1"), (269, "0"), (55, "GC"), (207, "COMEX"), (270, "2650"),
          (271, "5"), (272, "20261124"), (273, "14:00:00.000")],
    "Y": [(262, "m"), (281, "0"), (58, "no")],
    "j": [(45, "2"), (372, "D"), (380, "3"), (58, "no")],
}  # fmt: skip
ADMIN: dict[str, list[tuple[int, str]]] = {
    "0": [], "1": [(112, "t")], "2": [(7, "1"), (16, "0")], "3": [(45, "1"), (373, "5")],
    "4": [(123, "Y"), (36, "9")], "5": [(58, "bye")], "A": [(98, "0"), (108, "30")],
}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """One thing the fuzzer sends: ``raw`` bytes as they are, or a message framed when it is sent.

    A message gets MsgSeqNum ``expected + offset`` (None: no MsgSeqNum at all), a SendingTime
    ``skew`` ns off, PossDupFlag if ``poss_dup``, and one byte spoiled at ``flip``/256 of its length.
    """

    raw: bytes = b""
    msg_type: str = ""
    body: tuple[tuple[int, str], ...] = ()
    offset: int | None = 0
    skew: int = 0
    flip: int = 0
    poss_dup: bool = False

    def render(self, session: FixSession) -> bytes:
        if not self.msg_type:
            return self.raw
        header: list[tuple[int, object]] = [(35, self.msg_type), (49, session.target), (56, session.sender)]
        if self.offset is not None:
            header.append((34, max(session.store.next_in + self.offset, 0)))
        now = codec.format_timestamp(time.time_ns() + self.skew)
        header.append((52, now))
        if self.poss_dup:
            header += [(43, "Y"), (122, now)]
        raw = encode(header + list(self.body))
        if self.flip:
            at = self.flip * len(raw) // 256
            raw = raw[:at] + bytes([raw[at] ^ 0x5A]) + raw[at + 1 :]
        return raw


@st.composite
def fix_plans(draw: st.DrawFn, templates: dict[str, list[tuple[int, str]]]) -> Plan:
    """Random bytes, or a message (mostly a mutated valid one) with a MsgSeqNum near the expected one."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return Plan(raw=draw(st.binary(max_size=120)))
    choices = {**ADMIN, **templates}
    if kind == 1:
        msg_type, body = draw(MSG_TYPES), draw(st.lists(st.tuples(TAGS, VALUES), max_size=12))
    else:
        msg_type = draw(st.sampled_from(sorted(choices)))
        body = list(choices[msg_type])
        for _ in range(draw(st.integers(0, 2))):
            op = draw(st.sampled_from(["delete", "replace", "insert", "repeat"]))
            at = draw(st.integers(0, max(len(body) - 1, 0)))
            if op == "insert" or not body:
                body.insert(at, (draw(TAGS), draw(VALUES)))
            elif op == "delete":
                del body[at]
            elif op == "replace":
                body[at] = (body[at][0], draw(VALUES))
            else:
                body.insert(at, body[at])
    return Plan(
        msg_type=msg_type,
        body=tuple(body),
        offset=draw(st.sampled_from([0, 0, 0, 0, 0, 1, -1, 4, None])),
        skew=draw(st.sampled_from([0, 0, 0, 0, -(10**12)])),
        flip=draw(st.integers(1, 255)) if kind == 9 else 0,
        poss_dup=draw(st.booleans()),
    )


@pytest.fixture(scope="module")
def fuzz_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def exchange_server(fuzz_loop: asyncio.AbstractEventLoop) -> Iterator[ExchangeServer]:
    server = ExchangeServer(targets=["CLIENT1"], quote_interval=60.0)
    fuzz_loop.run_until_complete(server.start("127.0.0.1", 0))
    yield server
    fuzz_loop.run_until_complete(server.close())


def assert_well_formed_output(writer: RecordingWriter) -> None:
    framer = Framer()
    framer.feed(bytes(writer.out))
    assert all(isinstance(f, bytes) for f in framer.frames()), "the session wrote a malformed frame"
    assert framer.pending == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(logged_on=st.booleans(), plans=st.lists(fix_plans(TO_ACCEPTOR), max_size=10))
def test_fuzz_acceptor_session_only_rejects_ignores_or_disconnects(
    fuzz_loop: asyncio.AbstractEventLoop,
    exchange_server: ExchangeServer,
    logged_on: bool,
    plans: list[Plan],
) -> None:
    session = exchange_server.sessions["CLIENT1"]
    session.store.reset()

    async def scenario() -> None:
        writer = RecordingWriter()
        session.attach(writer)
        if logged_on:
            logon = [(35, "A"), (49, "CLIENT1"), (56, "EXECUTOR"), (34, 1), (52, codec.format_timestamp(time.time_ns())),
                     (98, 0), (108, 30)]  # fmt: skip
            session.feed(encode(logon))
            assert session.state is SessionState.ACTIVE
        for plan in plans:
            session.feed(plan.render(session))
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert session.internal_errors == 0
        assert session.state in (SessionState.ACTIVE, SessionState.AWAIT_LOGON) or writer.closed
        assert_well_formed_output(writer)
        session.abort("end of example")
        await asyncio.sleep(0)

    fuzz_loop.run_until_complete(scenario())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(fix_plans(TO_INITIATOR), max_size=10))
def test_fuzz_initiator_gateway_only_rejects_ignores_or_disconnects(
    fuzz_loop: asyncio.AbstractEventLoop, plans: list[Plan]
) -> None:
    venue = fix_venues(
        {"COMEX": "fix://127.0.0.1:1?sender=CLIENT1&target=EXECUTOR"}, load_specs(), RealClock()
    )["COMEX"]
    gateway = venue.gateway
    received: list[object] = []
    gateway.sinks["COMEX"] = received.append
    session: FixSession = gateway.session

    async def scenario() -> None:
        writer = RecordingWriter()
        session.attach(writer)
        logon = asyncio.get_running_loop().create_task(session.logon())
        await asyncio.sleep(0)
        answer = [(35, "A"), (49, "EXECUTOR"), (56, "CLIENT1"), (34, 1), (52, codec.format_timestamp(time.time_ns())),
                  (98, 0), (108, 30)]  # fmt: skip
        session.feed(encode(answer))
        await logon
        venue.submit(
            SubmitOrder("f1", "COMEX.GC", Side.BUY, 1, Decimal("2650.0"), TimeInForce.GFD, "US-FUT", 0)
        )
        status = asyncio.get_running_loop().create_task(venue.order_status(["f1"]))
        for plan in plans:
            session.feed(plan.render(session))
            await asyncio.sleep(0)
        status.cancel()
        await asyncio.gather(status, return_exceptions=True)
        await asyncio.sleep(0)
        assert session.internal_errors == 0
        assert session.state is SessionState.ACTIVE or writer.closed
        assert_well_formed_output(writer)
        session.abort("end of example")

    fuzz_loop.run_until_complete(scenario())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_fuzz_framer_never_raises_and_never_loses_a_following_good_frame(chunks: list[bytes]) -> None:
    framer = Framer()
    for chunk in chunks:
        framer.feed(chunk)
        for item in framer.frames():
            assert isinstance(item, bytes | Garbled)
    framer.feed(b"\x01" + heartbeat(9))
    good = [f for f in framer.frames() if isinstance(f, bytes)]
    assert good[-1:] == [heartbeat(9)] or framer.pending > 0
