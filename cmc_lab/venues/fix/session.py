"""FIX session layer: Logon, heartbeats, sequence numbers, gaps, resends, rejects and Logout over asyncio.

One :class:`FixSession` is one pair of CompIDs. It outlives its TCP connections: the sequence
numbers (in a :class:`~cmc_lab.venues.fix.store.SeqStore`) and the messages its
:class:`~cmc_lab.venues.fix.outbox.Outbox` keeps for resending carry over from one connection to
the next. The same class plays the initiator (our gateway)
and the acceptor (the served exchange); what the messages mean is the job of its
:class:`SessionApp`.

Behaviour follows the FIX 4.4 session rules and the FIX Trading Community's session-layer test
cases: a garbled frame is ignored without using up a sequence number; a gap is answered with a
ResendRequest; a message below the expected number ends the session unless it is a PossDup
duplicate; silence for HeartBtInt brings a TestRequest and, unanswered, a disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage, Framer, Garbled
from cmc_lab.venues.fix.interface import (
    BusinessReject,
    LogonError,
    SessionApp,
    SessionDown,
    SessionState,
    UnsupportedMessage,
    Writer,
)
from cmc_lab.venues.fix.outbox import Outbox
from cmc_lab.venues.fix.recovery import GapWatch
from cmc_lab.venues.fix.store import SeqStore

log = logging.getLogger("cmc_lab.fix")


class FixSession:
    """One FIX 4.4 session (initiator or acceptor) across its TCP connections.

    Parameters
    ----------
    sender, target
        Our CompID and the counterparty's.
    role
        ``"initiator"`` (sends the first Logon) or ``"acceptor"``.
    app
        Receives application messages and session events.
    store
        Sequence numbers, persisted across restarts.
    heartbeat
        HeartBtInt in seconds (the acceptor adopts the initiator's).
    max_skew
        Largest accepted SendingTime difference, seconds.
    reset_on_logon
        Acceptor: every Logon starts new sequence numbers (ours from 1, theirs as they come).

    Examples
    --------
    >>> session = FixSession("CLIENT1", "EXECUTOR", "initiator", SessionApp(), SeqStore(None), heartbeat=1)
    >>> session.state
    <SessionState.IDLE: 'IDLE'>
    """

    def __init__(
        self,
        sender: str,
        target: str,
        role: str,
        app: SessionApp,
        store: SeqStore,
        *,
        heartbeat: int = 30,
        max_skew: float = 120.0,
        reset_on_logon: bool = False,
        logon_timeout: float = 5.0,
    ) -> None:
        if role not in ("initiator", "acceptor"):
            raise ValueError(f"role must be 'initiator' or 'acceptor', got {role!r}")
        self.sender, self.target, self.role = sender, target, role
        self._name = f"{sender}->{target}"
        self.app = app
        self.store = store
        self.heartbeat = heartbeat
        self.max_skew = max_skew
        self.reset_on_logon = reset_on_logon
        self.logon_timeout = logon_timeout
        self.state = SessionState.IDLE
        self.stats = {"in": 0, "out": 0, "garbled": 0, "rejects_sent": 0, "resent": 0, "gap_fills": 0}
        self.out = Outbox(
            sender, target, store, self.stats, self.now, self._disconnect, coalesce=role == "acceptor"
        )
        self.internal_errors = 0
        self.last_disconnect = ""
        self._framer = Framer()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._connected_at = self._last_recv = 0.0
        self._test_req: tuple[str, float] | None = None
        self._logout_at = 0.0
        self._gap = GapWatch()
        self._logon_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[str] | None = None

    def __repr__(self) -> str:
        return (
            f"FixSession({self.sender}->{self.target}, {self.role}, {self.state.value}, "
            f"out={self.store.next_out}, in={self.store.next_in})"
        )

    @property
    def logged_on(self) -> bool:
        return self.state is SessionState.ACTIVE

    @property
    def attached(self) -> bool:
        return self.out.writer is not None

    # ------------------------------------------------------------------ connection

    def attach(self, writer: Writer) -> None:
        """Take a fresh connection; the acceptor then waits for Logon, the initiator calls :meth:`logon`."""
        if self.out.writer is not None:
            raise RuntimeError(f"{self!r} already has a connection")
        self._loop = asyncio.get_running_loop()
        self.out.writer = writer
        self._framer = Framer()
        now = self._loop.time()
        self._connected_at = self.out.last_sent = self._last_recv = now
        self._test_req = None
        self._gap.clear()
        self._closed = self._loop.create_future()
        self.state = SessionState.AWAIT_LOGON if self.role == "acceptor" else SessionState.IDLE
        self._arm_timer()

    async def run(self, reader: asyncio.StreamReader) -> str:
        """Read until the connection ends; returns why it ended."""
        reason = "connection closed by the counterparty"
        try:
            while self.out.writer is not None:
                data = await reader.read(65536)
                if not data:
                    break
                self.feed(data)
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc.__class__.__name__}"
        self._disconnect(reason)
        return self.last_disconnect

    async def logon(
        self, *, reset: bool = False, username: str | None = None, password: str | None = None
    ) -> None:
        """Initiator: send Logon and wait for the answer; raises :class:`LogonError` if refused."""
        if self.out.writer is None or self._loop is None:
            raise SessionDown(f"{self!r} has no connection to log on over")
        if reset:
            self.store.reset()
            self.out.sent.clear()
        body: list[tuple[int, object]] = [(codec.ENCRYPT_METHOD, 0), (codec.HEART_BT_INT, self.heartbeat)]
        if reset:
            body.append((codec.RESET_SEQ_NUM, "Y"))
        if username:
            body.append((codec.USERNAME, username))
        if password:
            body.append((codec.PASSWORD, password))
        self._logon_waiter = self._loop.create_future()
        self.state = SessionState.LOGON_SENT
        self.out.admin("A", body)
        try:
            await asyncio.wait_for(asyncio.shield(self._logon_waiter), self.logon_timeout)
        except TimeoutError:
            self._disconnect(f"no Logon answer within {self.logon_timeout:g} s")
            raise LogonError(self.last_disconnect) from None

    async def logout(self, text: str = "", timeout: float = 2.0) -> None:
        """Send Logout, wait (bounded) for the answer, then close the connection."""
        if self.out.writer is None:
            return
        closed = self._closed
        if self.state is SessionState.ACTIVE:
            self.out.admin("5", [(codec.TEXT, text)] if text else [])
            self.state = SessionState.LOGOUT_SENT
            self._logout_at = self.now()
            if closed is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed), timeout)
        self._disconnect(f"logged out: {text}" if text else "logged out")

    def abort(self, reason: str) -> None:
        """Drop the connection now, without Logout."""
        self._disconnect(reason)

    # ------------------------------------------------------------------ sending

    def send(self, msg_type: str, body: Sequence[tuple[int, object]], *, queue: bool = False) -> int:
        """Send an application message and keep it for resending; returns its MsgSeqNum.

        Not logged on: raises :class:`SessionDown`, or with ``queue=True`` (acceptor) numbers and
        keeps it so that the counterparty gets it through a ResendRequest after its next Logon.
        """
        if self.state is not SessionState.ACTIVE and not queue:
            raise SessionDown(
                f"FIX session {self.sender}->{self.target} is not logged on ({self.state.value})"
            )
        stored = self.out.keep(msg_type, body)
        if self.state is SessionState.ACTIVE:
            self.out.send(stored)
        return stored.seq

    def now(self) -> float:
        """Loop time (monotonic seconds), the clock of the timers and of ``StoredMessage.sent_at``."""
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------------ receiving

    def feed(self, data: bytes) -> None:
        """Process received bytes; never raises (a problem rejects or ends the session)."""
        if self.out.writer is None:
            return
        self._framer.feed(data)
        for item in self._framer.frames():
            if self.out.writer is None:
                return
            if isinstance(item, Garbled):
                self.stats["garbled"] += 1
                log.warning("%s ignored garbled bytes (%s): %r", self._name, item.reason, item.raw[:80])
                continue
            try:
                self._on_frame(item)
            except Exception as exc:  # a bug must not leave a half-processed session running
                self.internal_errors += 1
                log.exception("%s internal error on %s", self._name, codec.printable(item))
                self._logout_and_close(f"internal error: {exc.__class__.__name__}")

    def _on_frame(self, raw: bytes) -> None:
        self._last_recv = self.now()
        self.stats["in"] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s IN  %s", self._name, codec.printable(raw))
        begin = codec.begin_string_of(raw)
        if begin != codec.BEGIN_STRING:
            self._logout_and_close(f"BeginString {begin!r} is not {codec.BEGIN_STRING}")
            return
        problem: FieldProblem | None = None
        try:
            message = codec.parse(raw)
        except FieldProblem as exc:
            if exc.message is None or exc.message.seq is None:
                self.stats["garbled"] += 1
                log.warning("%s ignored unreadable message: %s", self._name, exc.text)
                return
            problem, message = exc, exc.message
        self._on_message(message, problem)

    def _on_message(self, msg: FixMessage, problem: FieldProblem | None) -> None:
        mt, seq = msg.msg_type, msg.seq
        if seq is None:
            self._logout_and_close("MsgSeqNum (34) missing")
            return
        if self.state is SessionState.IDLE:
            self._disconnect(f"MsgType {mt!r} arrived before our Logon")
            return
        if self.state in (SessionState.AWAIT_LOGON, SessionState.LOGON_SENT) and mt != "A":
            if mt == "5" and self.state is SessionState.LOGON_SENT:
                self._disconnect(f"Logon refused: {msg.get(codec.TEXT) or 'no reason given'}")
            else:
                self._disconnect(f"first message was MsgType {mt!r}, not Logon")
            return
        empty = problem.tag if problem is not None and problem.reason == codec.TAG_WITHOUT_VALUE else None
        if empty not in (codec.SENDER, codec.TARGET) and (
            msg.get(codec.SENDER) != self.target or msg.get(codec.TARGET) != self.sender
        ):  # an empty CompID is a tag without a value (373=4), rejected below
            tag = codec.SENDER if msg.get(codec.SENDER) != self.target else codec.TARGET
            text = f"CompID problem: expected {self.target}->{self.sender}, got {msg.get(49)}->{msg.get(56)}"
            if self.state is SessionState.ACTIVE:
                self.out.reject(msg, codec.COMPID_PROBLEM, tag, text)
            self._logout_and_close(text)
            return
        sending = msg.get(codec.SENDING_TIME)
        try:
            sent_ns = codec.parse_timestamp(sending) if sending else None
        except ValueError:
            sent_ns = None
        if sent_ns is None:
            self._reject_in_sequence(
                msg, FieldProblem(codec.REQUIRED_TAG_MISSING, 52, "SendingTime (52) missing or invalid")
            )
            return
        skew = abs(time.time_ns() - sent_ns) / 1e9
        if skew > self.max_skew:
            if self.state is SessionState.ACTIVE:
                self.out.reject(
                    msg, codec.SENDING_TIME_ACCURACY, 52, f"SendingTime accuracy problem ({skew:.0f} s off)"
                )
            self._logout_and_close(
                f"SendingTime accuracy problem: {skew:.0f} s off, allowed {self.max_skew:g} s"
            )
            return
        if msg.get(codec.POSS_DUP) == "Y" and not self._poss_dup_ok(msg, sent_ns):
            return
        if mt == "4" and msg.get(codec.GAP_FILL) != "Y":
            self._sequence_reset(msg)
            return
        if mt == "A":
            if problem is not None:
                self._logout_and_close(f"Logon refused: {problem.text}")
            else:
                self._on_logon(msg)
            return
        expected = self.store.next_in
        if seq > expected:
            if mt == "5":
                self._on_logout(msg)
                return
            if mt == "2" and problem is None:  # answer it even before our own gap is filled
                try:
                    self._on_resend_request(msg)
                except FieldProblem as exc:
                    self.out.reject(msg, exc.reason, exc.tag, exc.text)
            self._request_resend(expected, seq)
            return
        if seq < expected:
            if msg.get(codec.POSS_DUP) != "Y":
                self._logout_and_close(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        if problem is not None:
            self._reject_in_sequence(msg, problem)
            return
        self._dispatch(msg)

    def _poss_dup_ok(self, msg: FixMessage, sent_ns: int) -> bool:
        orig = msg.get(codec.ORIG_SENDING_TIME)
        try:
            orig_ns = codec.parse_timestamp(orig) if orig else None
        except ValueError:
            orig_ns = None
        if orig_ns is None:
            problem = FieldProblem(
                codec.REQUIRED_TAG_MISSING, 122, "OrigSendingTime (122) missing on PossDupFlag=Y"
            )
        elif orig_ns > sent_ns:
            problem = FieldProblem(codec.SENDING_TIME_ACCURACY, 122, "OrigSendingTime is after SendingTime")
        else:
            return True
        self._reject_in_sequence(msg, problem)
        return False

    def _dispatch(self, msg: FixMessage) -> None:
        mt, seq = msg.msg_type, msg.seq or 0
        self.store.next_in = seq + 1
        self._gap.progress(self.store.next_in)
        try:
            if mt not in codec.FIX44_MSG_TYPES:
                raise FieldProblem(codec.INVALID_MSG_TYPE, 35, f"invalid MsgType {mt!r}")
            codec.check_repeats(msg)
            deliver_to = msg.get(codec.DELIVER_TO)
            if deliver_to is not None and deliver_to != self.sender:
                raise FieldProblem(
                    codec.VALUE_INCORRECT,
                    codec.DELIVER_TO,
                    f"DeliverToCompID {deliver_to!r} is not served: {self.sender} routes to no third party",
                )
            if mt == "0":
                if self._test_req is not None and msg.get(codec.TEST_REQ_ID) == self._test_req[0]:
                    self._test_req = None
            elif mt == "1":
                self.out.admin("0", [(codec.TEST_REQ_ID, msg.require(codec.TEST_REQ_ID))])
            elif mt == "2":
                self._on_resend_request(msg)
            elif mt == "3":
                self.app.on_reject(self, msg)
            elif mt == "4":
                self._gap_fill(msg)
            elif mt == "5":
                self._on_logout(msg)
            else:
                self.app.on_message(self, msg)
        except FieldProblem as problem:
            self.out.reject(msg, problem.reason, problem.tag, problem.text)
        except UnsupportedMessage:
            self._business_reject(msg, 3, f"unsupported MsgType {mt!r}")
        except BusinessReject as exc:
            self._business_reject(msg, exc.reason, exc.text, exc.ref_id)
        finally:
            self.store.save()

    def _reject_in_sequence(self, msg: FixMessage, problem: FieldProblem) -> None:
        """Reject a message; it uses up its sequence number only when it is the expected one."""
        seq = msg.seq or 0
        if seq > self.store.next_in:
            self._request_resend(self.store.next_in, seq)
            return
        if seq == self.store.next_in:
            self.store.next_in = seq + 1
            self.store.save()
        if self.state is SessionState.ACTIVE:
            self.out.reject(msg, problem.reason, problem.tag, problem.text)
        else:
            self._logout_and_close(f"Logon refused: {problem.text}")

    def _business_reject(self, msg: FixMessage, reason: int, text: str, ref_id: str | None = None) -> None:
        body: list[tuple[int, object]] = [
            (codec.REF_SEQ_NUM, msg.seq or 0),
            (codec.REF_MSG_TYPE, msg.msg_type),
        ]
        if ref_id:
            body.append((379, ref_id))
        body += [(380, reason), (codec.TEXT, text)]
        self.send("j", body, queue=True)

    # ------------------------------------------------------------------ admin messages

    def _on_logon(self, msg: FixMessage) -> None:
        if self.state is SessionState.ACTIVE:
            if msg.get(codec.RESET_SEQ_NUM) == "Y" and msg.seq == 1:
                self._reset_in_session()
            else:
                self._logout_and_close("Logon received while already logged on, without ResetSeqNumFlag=Y")
            return
        heartbeat = msg.get(codec.HEART_BT_INT)
        if heartbeat is None or not codec.is_uint(heartbeat) or int(heartbeat) < 1:
            self._logout_and_close("Logon refused: HeartBtInt (108) missing or not a positive integer")
            return
        reset = msg.get(codec.RESET_SEQ_NUM) == "Y"
        seq = msg.seq or 0
        if self.role == "acceptor":
            refused = self.app.check_logon(self, msg)
            if refused is not None:
                self._logout_and_close(f"Logon refused: {refused}")
                return
            self.heartbeat = int(heartbeat)
            if reset or self.reset_on_logon:
                self.store.next_out = 1
                self.store.next_in = 1 if reset else seq
                self.out.sent.clear()
        elif reset:
            self.store.next_in = seq
        expected = self.store.next_in
        if seq < expected:
            self._logout_and_close(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        if self.role == "acceptor":
            body: list[tuple[int, object]] = [(codec.ENCRYPT_METHOD, 0), (codec.HEART_BT_INT, self.heartbeat)]
            if reset:  # echoed only when asked: a configured reset-on-logon resets silently
                body.append((codec.RESET_SEQ_NUM, "Y"))
            self.out.admin("A", body)
        self.state = SessionState.ACTIVE
        if seq == expected:
            self.store.next_in = seq + 1
        self.store.save()
        log.info("%s logged on (out=%d, in=%d)", self._name, self.store.next_out, self.store.next_in)
        if self._logon_waiter is not None and not self._logon_waiter.done():
            self._logon_waiter.set_result(None)
        if seq > expected:
            self._request_resend(expected, seq)
        self.app.on_logon(self)

    def _reset_in_session(self) -> None:
        """A Logon with ResetSeqNumFlag=Y while logged on: both sequences start again, ours with the answer."""
        self.store.next_out, self.store.next_in = 1, 2
        self.out.sent.clear()
        self._gap.clear()
        self.out.admin(
            "A", [(codec.ENCRYPT_METHOD, 0), (codec.HEART_BT_INT, self.heartbeat), (codec.RESET_SEQ_NUM, "Y")]
        )
        log.info("%s sequence numbers reset in session", self._name)

    def _on_logout(self, msg: FixMessage) -> None:
        text = msg.get(codec.TEXT) or ""
        if msg.seq == self.store.next_in:
            self.store.next_in += 1
            self.store.save()
        if self.state is SessionState.LOGOUT_SENT:
            self._disconnect("logout confirmed")
            return
        self.out.admin("5", [])
        self._disconnect(f"logout by counterparty: {text}" if text else "logout by counterparty")

    def _request_resend(self, expected: int, seen: int) -> None:
        if not self._gap.should_request(seen, self.now(), patience=2 * self.heartbeat):
            return
        log.info("%s gap: expected %d, received %d; ResendRequest", self._name, expected, seen)
        self.out.admin("2", [(codec.BEGIN_SEQ_NO, expected), (codec.END_SEQ_NO, 0)])

    def _on_resend_request(self, msg: FixMessage) -> None:
        begin, end = msg.integer(codec.BEGIN_SEQ_NO), msg.integer(codec.END_SEQ_NO)
        self.out.answer_resend(
            begin,
            end,
            lambda stored: self.app.may_resend(self, stored),
            lambda stored: self.app.not_resent(self, stored),
        )
        log.info("%s answered ResendRequest %d..%d", self._name, begin, end)

    def _gap_fill(self, msg: FixMessage) -> None:
        new_seq = msg.integer(codec.NEW_SEQ_NO)
        if new_seq <= (msg.seq or 0):
            raise FieldProblem(
                codec.VALUE_INCORRECT,
                codec.NEW_SEQ_NO,
                f"attempt to lower sequence number: NewSeqNo {new_seq}",
            )
        self.store.next_in = new_seq
        self._gap.progress(new_seq)

    def _sequence_reset(self, msg: FixMessage) -> None:
        value = msg.get(codec.NEW_SEQ_NO)
        if value is None or not codec.is_uint(value):
            self.out.reject(
                msg, codec.REQUIRED_TAG_MISSING, codec.NEW_SEQ_NO, "NewSeqNo (36) missing or invalid"
            )
            return
        new_seq = int(value)
        if new_seq < self.store.next_in:
            self.out.reject(
                msg,
                codec.VALUE_INCORRECT,
                codec.NEW_SEQ_NO,
                f"attempt to lower sequence number, invalid value NewSeqNo={new_seq}",
            )
            return
        if new_seq == self.store.next_in:
            log.warning("%s SequenceReset to the expected number %d", self._name, new_seq)
        self.store.next_in = new_seq
        self._gap.clear()
        self.store.save()

    # ------------------------------------------------------------------ timers and closing

    def _arm_timer(self) -> None:
        if self._loop is None:
            return
        interval = min(1.0, max(0.05, self.heartbeat / 5))
        self._timer = self._loop.call_later(interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.out.writer is None:
            return
        now = self.now()
        hb = self.heartbeat
        if self.state in (SessionState.AWAIT_LOGON, SessionState.LOGON_SENT):
            if now - self._connected_at > self.logon_timeout:
                self._disconnect(f"no Logon within {self.logon_timeout:g} s")
                return
        elif self.state is SessionState.LOGOUT_SENT:
            if now - self._logout_at > min(hb, 2.0):
                self._disconnect("no Logout answer")
                return
        elif self.state is SessionState.ACTIVE:
            if now - self.out.last_sent >= hb:
                self.out.admin("0", [])
            if self._test_req is not None and self._last_recv > self._test_req[1]:
                self._test_req = None
            if self._test_req is None and now - self._last_recv >= hb * 1.2:
                test_id = f"TEST-{time.time_ns()}"
                self._test_req = (test_id, now)
                log.info("%s silent for %.1f s: TestRequest", self._name, now - self._last_recv)
                self.out.admin("1", [(codec.TEST_REQ_ID, test_id)])
            elif self._test_req is not None and now - self._test_req[1] >= hb * 1.2:
                self._logout_and_close(f"heartbeat timeout: no answer to TestRequest within {hb * 1.2:g} s")
                return
        self._arm_timer()

    def _logout_and_close(self, text: str) -> None:
        if self.out.writer is not None and self.state is not SessionState.IDLE:
            self.out.admin("5", [(codec.TEXT, text)])
        self._disconnect(text)

    def _disconnect(self, reason: str) -> None:
        self.out.flush()  # what the acceptor holds (a Logout, the last reports) goes out before the close
        writer, self.out.writer = self.out.writer, None
        if writer is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(Exception):
            writer.close()
        was = self.state
        self.state = SessionState.IDLE
        self.last_disconnect = reason
        self.store.save()
        log.info("%s disconnected: %s", self._name, reason)
        if self._logon_waiter is not None and not self._logon_waiter.done():
            self._logon_waiter.set_exception(LogonError(reason))
            self._logon_waiter.exception()  # retrieved here: logon() may already have given up
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(reason)
        if was is not SessionState.IDLE:
            self.app.on_disconnect(self, reason)


__all__ = ["FixSession"]
