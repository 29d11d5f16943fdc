"""FIX codec layer: tag=value framing, BodyLength, CheckSum, repeating groups, timestamps. Pure, no IO.

>>> raw = encode([(35, "0"), (49, "A"), (56, "B"), (34, 1), (52, "20261124-14:00:00.000")])
>>> raw[:15]
b'8=FIX.4.4\\x019=45\\x01'
>>> framer = Framer()
>>> framer.feed(raw)
>>> [parse(frame).get(35) for frame in framer.frames()]
['0']
"""

from __future__ import annotations

import calendar
import functools
import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"

#: Session-level tags (FIX 4.4 standard header, trailer and admin messages).
BEGIN, BODY_LENGTH, CHECKSUM, MSG_TYPE, MSG_SEQ_NUM = 8, 9, 10, 35, 34
SENDER, TARGET, SENDING_TIME, POSS_DUP, ORIG_SENDING_TIME, POSS_RESEND = 49, 56, 52, 43, 122, 97
TEST_REQ_ID, BEGIN_SEQ_NO, END_SEQ_NO, NEW_SEQ_NO, GAP_FILL = 112, 7, 16, 36, 123
REF_SEQ_NUM, REF_TAG_ID, REF_MSG_TYPE, SESSION_REJECT_REASON, TEXT = 45, 371, 372, 373, 58
ENCRYPT_METHOD, HEART_BT_INT, RESET_SEQ_NUM, USERNAME, PASSWORD = 98, 108, 141, 553, 554
DELIVER_TO = 128

#: Tags whose values are secrets: never logged, never journaled (RawData, Password, NewPassword).
SECRET_TAGS = frozenset({96, PASSWORD, 925})

#: Header tags in the order they are written after BeginString and BodyLength.
HEADER_TAGS = frozenset({MSG_TYPE, SENDER, TARGET, MSG_SEQ_NUM, SENDING_TIME, POSS_DUP, ORIG_SENDING_TIME})

#: Every tag of the FIX 4.4 standard header (routing, resend, XML and signature fields included):
#: each comes before the first body tag, else Reject 373=14.
_MORE_HEADER = (50, 57, 90, 91, 115, 116, 129, 142, 143, 144, 145, 212, 213, 347, 369)
STANDARD_HEADER = HEADER_TAGS | {BEGIN, BODY_LENGTH, POSS_RESEND, DELIVER_TO, *_MORE_HEADER}

#: Tags that may appear once per message: the framing tags and the header tags we write.
_ONCE_TAGS = HEADER_TAGS | {BEGIN, BODY_LENGTH, CHECKSUM}

#: Tags whose value must be an integer wherever they appear.
INT_TAGS = frozenset(
    {BODY_LENGTH, MSG_SEQ_NUM, BEGIN_SEQ_NO, END_SEQ_NO, NEW_SEQ_NO, REF_SEQ_NUM, HEART_BT_INT}
)

# SessionRejectReason (373) values used here.
INVALID_TAG, REQUIRED_TAG_MISSING, TAG_NOT_DEFINED, UNDEFINED_TAG = 0, 1, 2, 3
TAG_WITHOUT_VALUE, VALUE_INCORRECT, INCORRECT_FORMAT, COMPID_PROBLEM = 4, 5, 6, 9
SENDING_TIME_ACCURACY, INVALID_MSG_TYPE, TAG_REPEATED, TAG_OUT_OF_ORDER = 10, 11, 13, 14
BAD_GROUP_ORDER, BAD_GROUP_COUNT = 15, 16

#: Every MsgType defined by FIX 4.4: a type outside this set is invalid (Reject 373=11); one
#: inside it that a peer does not handle is unsupported (BusinessMessageReject 380=3).
_FIX44_TYPES = (
    "0 1 2 3 4 5 6 7 8 9 A B C D E F G H J K L M N P Q R S T V W X Y Z a b c d e f g h i j k l m n o p q "
    "r s t u v w x y z AA AB AC AD AE AF AG AH AI AJ AK AL AM AN AO AP AQ AR AS AT AU AV AW AX AY AZ BA "
    "BB BC BD BE BF BG BH"
)
FIX44_MSG_TYPES = frozenset(_FIX44_TYPES.split())

#: Repeating groups of the messages this package reads: {MsgType: {NoXxx tag: member tags}};
#: the first member is the delimiter that opens every instance.
GROUPS: dict[str, dict[int, tuple[int, ...]]] = {
    "V": {267: (269,), 146: (55, 207, 15)},
    "W": {268: (269, 270, 271, 272, 273, 290)},
    "X": {268: (279, 269, 55, 207, 270, 271, 272, 273, 290)},
    "AN": {453: (448, 447, 452)},
    "AO": {453: (448, 447, 452)},
    "AP": {453: (448, 447, 452), 702: (703, 704, 705)},
}

_TIMESTAMP = re.compile(rb"^(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_TIME_ONLY = re.compile(rb"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_TRAILER = re.compile(rb"10=(\d{3})\x01")
_BODY_LENGTH = re.compile(rb"9=(\d{1,9})\x01")
_BODY_LENGTH_PREFIX = re.compile(rb"9?|9=\d{0,9}")
_MAX_DIGITS = 15  # a price or quantity beyond 10**15 (or below 10**-15) is garbage, not money
_MAX_KNOWN_TAGS = 4096  # tag texts already seen valid, kept so parse checks each tag once per process
_TAG_NUMBERS: dict[str, int] = {}
_MAX_SHAPES = 1024  # tag sequences already seen well ordered (a session sends a few dozen), see parse
_SHAPES: dict[tuple[int, ...], tuple[int, ...]] = {}  # tag sequence -> positions of its integer tags
_NO_REPEATS: set[tuple[str, tuple[int, ...]]] = set()  # (MsgType, tags) without groups seen unrepeated
_SPLIT_FIELD = operator.methodcaller("partition", "=")
_TAG_OF = operator.itemgetter(0)
_SECONDS: dict[str, int] = {}  # "YYYYMMDD-HH:MM:SS" of timestamps read lately -> epoch seconds
_MAX_SECONDS = 64
_MAX_HEADER = 40  # bytes of "8=...<SOH>9=...<SOH>" before we call a frame garbled


class FieldProblem(ValueError):
    """A well-framed message whose fields break the rules: answered with a session Reject."""

    def __init__(self, reason: int, tag: int | None, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.tag = tag
        self.text = text
        self.message: FixMessage | None = None  # what could be read of it, for the Reject


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes the framer threw away (no BeginString, wrong BodyLength, bad CheckSum): ignored, not rejected."""

    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One decoded message: its fields in wire order, values as text.

    Examples
    --------
    >>> m = FixMessage(((35, "D"), (11, "c1"), (38, "3")))
    >>> m.msg_type, m.get(11), m.integer(38), m.get(44, "none")
    ('D', 'c1', 3, 'none')
    """

    fields: tuple[tuple[int, str], ...]
    #: MsgType (35), "" if missing; MsgSeqNum (34), None if missing or not a number; the tags in wire
    #: order. Worked out once: the session and the application read them several times a message.
    msg_type: str = field(init=False, repr=False, compare=False)
    seq: int | None = field(init=False, repr=False, compare=False)
    tags: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _first: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first = dict(reversed(self.fields))  # each tag's first value: a report is read by a dozen gets
        seq = first.get(MSG_SEQ_NUM)
        put = object.__setattr__
        put(self, "_first", first)
        put(self, "msg_type", first.get(MSG_TYPE) or "")
        put(self, "seq", int(seq) if seq is not None and is_uint(seq) else None)
        put(self, "tags", tuple(map(_TAG_OF, self.fields)))

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self._first.get(tag, default)

    def __contains__(self, tag: object) -> bool:
        return tag in self._first

    def require(self, tag: int) -> str:
        """The value of ``tag``, or a :class:`FieldProblem` (required tag missing)."""
        value = self.get(tag)
        if value is None:
            raise FieldProblem(REQUIRED_TAG_MISSING, tag, f"required tag {tag} missing")
        return value

    def integer(self, tag: int, default: int | None = None) -> int:
        value = self.get(tag)
        if value is None:
            if default is not None:
                return default
            raise FieldProblem(REQUIRED_TAG_MISSING, tag, f"required tag {tag} missing")
        digits = value[1:] if value.startswith("-") else value
        if not is_uint(digits):
            raise FieldProblem(INCORRECT_FORMAT, tag, f"tag {tag} must be an integer, got {value[:20]!r}")
        return int(value)

    def decimal(self, tag: int) -> Decimal:
        value = self.require(tag)
        try:
            number = Decimal(value)
        except ArithmeticError:
            raise FieldProblem(INCORRECT_FORMAT, tag, f"tag {tag} must be a number, got {value!r}") from None
        if not number.is_finite():
            raise FieldProblem(INCORRECT_FORMAT, tag, f"tag {tag} must be a finite number, got {value!r}")
        if number and not -_MAX_DIGITS <= number.adjusted() <= _MAX_DIGITS:
            raise FieldProblem(VALUE_INCORRECT, tag, f"tag {tag} is out of range: {value[:20]!r}")
        return number

    def group(self, count_tag: int) -> list[dict[int, str]]:
        """The instances of one repeating group (see :data:`GROUPS`), each as ``{tag: value}``."""
        members = GROUPS.get(self.msg_type, {}).get(count_tag)
        if members is None:
            raise KeyError(f"no repeating group {count_tag} is defined for MsgType {self.msg_type!r}")
        count = self.integer(count_tag, 0)
        out: list[dict[int, str]] = []
        inside = False
        for tag, value in self.fields:
            if tag == count_tag:
                inside = True
                continue
            if not inside:
                continue
            if tag == members[0]:
                out.append({tag: value})
            elif tag in members and out and tag not in out[-1]:
                out[-1][tag] = value
            elif tag in members:
                raise FieldProblem(BAD_GROUP_ORDER, tag, f"tag {tag} out of order in group {count_tag}")
            else:
                break
        if len(out) != count:
            raise FieldProblem(
                BAD_GROUP_COUNT, count_tag, f"group {count_tag} declares {count} entries, found {len(out)}"
            )
        return out


def is_uint(text: str) -> bool:
    """ASCII digits only, at most 18 of them: a FIX int we can hold (``"²"`` and 5,000 digits are not)."""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()


def checksum(data: bytes) -> int:
    return sum(data) % 256


def encode(fields: Sequence[tuple[int, object]], begin_string: str = BEGIN_STRING) -> bytes:
    """Frame ``fields`` (MsgType first, no 8/9/10) with BeginString, BodyLength and CheckSum."""
    return frame(render(fields), begin_string)


def render(fields: Sequence[tuple[int, object]]) -> str:
    """``fields`` as ``tag=value<SOH>`` text; ValueError if a value holds the SOH delimiter."""
    text = "".join([f"{tag}={value!s}\x01" for tag, value in fields])
    if text.count("\x01") != len(fields):  # one SOH a field, or a value holds one
        tag = next(tag for tag, value in fields if "\x01" in str(value))
        raise ValueError(f"tag {tag}: a value may not contain the SOH delimiter")
    return text


def frame(text: str, begin_string: str = BEGIN_STRING) -> bytes:
    """Rendered fields (:func:`render`) framed with BeginString, BodyLength and CheckSum."""
    body = text.encode("latin-1", errors="replace")
    head = f"8={begin_string}\x019={len(body)}\x01".encode("latin-1")
    total = sum(head) + sum(body)
    return head + body + f"10={total % 256:03d}\x01".encode("latin-1")


def parse(raw: bytes) -> FixMessage:
    """Split a framed message into fields; a malformed field raises :class:`FieldProblem`.

    The framer has already checked BeginString, BodyLength and CheckSum. Checked here: every
    field is ``tag=value``, the tag is a positive integer, the value is not empty, MsgType is
    the third field, header tags are not repeated and come before the body, and integer tags
    hold integers.
    """
    text = raw.decode("latin-1")
    if not text.endswith("\x01"):
        raise FieldProblem(INVALID_TAG, None, "message does not end with SOH")
    items = text[:-1].split("\x01")
    problem: FieldProblem | None = None
    try:  # the common case: every tag already seen valid, every value present
        fields = [(_TAG_NUMBERS[tag], value) for tag, _, value in map(_SPLIT_FIELD, items) if value]
    except KeyError:
        fields = []
    if len(fields) != len(items):
        fields, problem = _fields_checked(items)
    message = FixMessage(tuple(fields))
    if len(fields) < 3 or fields[2][0] != MSG_TYPE:
        raise FieldProblem(TAG_OUT_OF_ORDER, MSG_TYPE, "MsgType (35) must be the third field")
    if problem is not None:
        raise _with_message(problem, message)
    shape = message.tags
    integers = _SHAPES.get(shape)
    if integers is None:  # a tag sequence not seen before: every check, in wire order
        _check_fields(fields, message)
        if len(_SHAPES) < _MAX_SHAPES:
            _SHAPES[shape] = tuple(i for i, tag in enumerate(shape) if tag in INT_TAGS)
        return message
    for i in integers:  # the order of the tags is known good; only the integers' values can be wrong
        tag, value = fields[i]
        if not is_uint(value):
            raise _with_message(
                FieldProblem(INCORRECT_FORMAT, tag, f"tag {tag} must be an integer, got {value!r}"), message
            )
    return message


def _check_fields(fields: list[tuple[int, str]], message: FixMessage) -> None:
    """Header tags once and before the body, integer tags holding integers; the first problem raises."""
    seen: set[int] = set()
    in_body = False
    for position, (tag, value) in enumerate(fields):
        if tag in _ONCE_TAGS:
            if tag in seen:
                raise _with_message(FieldProblem(TAG_REPEATED, tag, f"tag {tag} appears twice"), message)
            seen.add(tag)
        if tag in INT_TAGS and not is_uint(value):
            raise _with_message(
                FieldProblem(INCORRECT_FORMAT, tag, f"tag {tag} must be an integer, got {value!r}"), message
            )
        if position < 3:
            continue
        if tag not in STANDARD_HEADER:
            in_body = True
        elif in_body:
            raise _with_message(
                FieldProblem(TAG_OUT_OF_ORDER, tag, f"header tag {tag} comes after the body"), message
            )


def _fields_checked(items: list[str]) -> tuple[list[tuple[int, str]], FieldProblem | None]:
    """The fields of ``items`` one by one, and the first problem met; new valid tags are remembered."""
    fields: list[tuple[int, str]] = []
    problem: FieldProblem | None = None
    for item in items:
        tag_text, eq, value = item.partition("=")
        tag = _TAG_NUMBERS.get(tag_text) if eq else None
        if tag is None:
            if not eq or not is_uint(tag_text) or tag_text.startswith("0"):
                problem = problem or FieldProblem(INVALID_TAG, None, f"invalid tag number in {item[:20]!r}")
                continue
            tag = int(tag_text)
            if len(_TAG_NUMBERS) < _MAX_KNOWN_TAGS:
                _TAG_NUMBERS[tag_text] = tag
        if value == "":
            problem = problem or FieldProblem(TAG_WITHOUT_VALUE, tag, f"tag {tag} has no value")
        fields.append((tag, value))
    return fields, problem


def _with_message(problem: FieldProblem, message: FixMessage) -> FieldProblem:
    problem.message = message
    return problem


def check_repeats(message: FixMessage) -> None:
    """Reject a body tag that appears twice outside the message type's repeating groups."""
    groups = GROUPS.get(message.msg_type, {})
    key = (message.msg_type, message.tags) if not groups else None
    if key in _NO_REPEATS:  # the same tags as a message already checked (an order's every report)
        return
    in_groups = {tag for members in groups.values() for tag in members}
    seen: set[int] = set()
    for tag, _ in message.fields:
        if tag in in_groups:
            continue
        if tag in seen:
            raise FieldProblem(TAG_REPEATED, tag, f"tag {tag} appears more than once")
        seen.add(tag)
    for count_tag in groups:
        if count_tag in message:
            message.group(count_tag)
    if key is not None and len(_NO_REPEATS) < _MAX_SHAPES:
        _NO_REPEATS.add(key)


class Framer:
    """Cuts a byte stream into whole FIX messages; bytes that cannot be a message come out as Garbled.

    A frame is ``8=...<SOH>9=<len><SOH>`` + ``len`` bytes + ``10=nnn<SOH>`` with the right
    CheckSum. On anything else the framer skips to the next ``8=FIX`` and says what it dropped.
    """

    def __init__(self, max_body: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max_body = max_body

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf)

    def frames(self) -> Iterator[bytes | Garbled]:
        buf = self._buf
        while buf:
            start = buf.find(b"8=FIX")
            if start < 0:
                keep = next((k for k in range(min(4, len(buf)), 0, -1) if b"8=FIX".startswith(buf[-k:])), 0)
                if len(buf) > keep:
                    yield Garbled("bytes before BeginString", bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return
            if start:
                yield Garbled("bytes before BeginString", bytes(buf[:start]))
                del buf[:start]
            begin_end = buf.find(SOH, 0, _MAX_HEADER)
            if begin_end < 0:
                if len(buf) >= _MAX_HEADER:
                    yield from self._skip("BeginString (8) without SOH")
                    continue
                return
            m = _BODY_LENGTH.match(buf, begin_end + 1)
            if m is None:
                head = bytes(buf[begin_end + 1 : begin_end + 13])
                if _BODY_LENGTH_PREFIX.fullmatch(head) and len(head) < 12:
                    return  # "9=12" so far: wait for the rest
                yield from self._skip("BodyLength (9) missing or malformed after BeginString")
                continue
            length = int(m.group(1))
            if length > self._max_body:
                yield from self._skip(f"BodyLength {length} is beyond the limit of {self._max_body}")
                continue
            end = m.end() + length
            if len(buf) < end + 7:
                return
            trailer = _TRAILER.match(buf, end)
            if trailer is None:
                yield from self._skip("BodyLength (9) does not end at CheckSum (10)")
                continue
            if int(trailer.group(1)) != checksum(bytes(buf[:end])):
                yield from self._skip("CheckSum (10) is wrong", end + 7)
                continue
            frame = bytes(buf[: end + 7])
            del buf[: end + 7]
            yield frame

    def _skip(self, reason: str, upto: int | None = None) -> Iterator[Garbled]:
        buf = self._buf
        nxt = buf.find(b"8=FIX", 1)
        cut = len(buf) if nxt < 0 else nxt
        if upto is not None:
            cut = min(cut, upto) if nxt >= 0 else upto
        yield Garbled(reason, bytes(buf[:cut]))
        del buf[:cut]


def begin_string_of(raw: bytes) -> str:
    return raw[2 : raw.index(SOH)].decode("latin-1")


# --------------------------------------------------------------------------- time


def format_timestamp(ts_ns: int) -> str:
    """UTCTimestamp with milliseconds: ``YYYYMMDD-HH:MM:SS.sss``."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return f"{_second(seconds)}.{ns // 1_000_000:03d}"


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%d-%H:%M:%S")


def parse_timestamp(value: str) -> int:
    """A UTCTimestamp (seconds, or up to nanoseconds) as int ns since the epoch; ValueError if not one."""
    second = _SECONDS.get(value[:17])  # the second of a recent timestamp: only the fraction to read
    if second is not None:
        fraction = value[18:]
        if value[17:18] == "." and 0 < len(fraction) <= 9 and fraction.isascii() and fraction.isdigit():
            return second * 1_000_000_000 + int(fraction.ljust(9, "0"))
        if len(value) == 17:
            return second * 1_000_000_000
    m = _TIMESTAMP.match(value.encode("latin-1"))
    if m is None:
        raise ValueError(f"{value!r} is not a UTCTimestamp (YYYYMMDD-HH:MM:SS[.sss])")
    date, hh, mm, ss, frac = m.groups()
    second = _epoch_second(date, hh, mm, ss)
    if len(_SECONDS) >= _MAX_SECONDS:
        _SECONDS.clear()
    _SECONDS[value[:17]] = second
    return second * 1_000_000_000 + int((frac or b"0").decode().ljust(9, "0"))


@functools.lru_cache(maxsize=64)
def _epoch_second(date: bytes, hh: bytes, mm: bytes, ss: bytes) -> int:
    year, month, day = int(date[:4]), int(date[4:6]), int(date[6:])
    return calendar.timegm(datetime(year, month, day, int(hh), int(mm), int(ss)).timetuple())


def format_date_time(ts_ns: int) -> tuple[str, str]:
    """MDEntryDate and MDEntryTime of one instant: ``("YYYYMMDD", "HH:MM:SS.sss")``."""
    stamp = format_timestamp(ts_ns)
    return stamp[:8], stamp[9:]


def parse_date_time(date: str, time_of_day: str) -> int:
    if _TIME_ONLY.match(time_of_day.encode("latin-1")) is None:
        raise ValueError(f"{time_of_day!r} is not a UTCTimeOnly (HH:MM:SS[.sss])")
    return parse_timestamp(f"{date}-{time_of_day}")


def printable(raw: bytes) -> str:
    """A message for a log line: SOH as ``|`` and every secret value (tag 554, ...) as ``***``."""
    out = []
    for item in raw.decode("latin-1").split("\x01"):
        tag, eq, _ = item.partition("=")
        out.append(f"{tag}=***" if eq and is_uint(tag) and int(tag) in SECRET_TAGS else item)
    return "|".join(out)


__all__ = [
    "BEGIN_STRING",
    "FIX44_MSG_TYPES",
    "GROUPS",
    "SECRET_TAGS",
    "SOH",
    "FieldProblem",
    "FixMessage",
    "Framer",
    "Garbled",
    "check_repeats",
    "checksum",
    "encode",
    "format_date_time",
    "format_timestamp",
    "frame",
    "is_uint",
    "parse",
    "parse_date_time",
    "parse_timestamp",
    "printable",
    "render",
]
