"""FIX outbound layer: one session's MsgSeqNum, header, bytes on the wire and the messages kept for resending.

An :class:`Outbox` is the sending half of a :class:`~cmc_lab.venues.fix.session.FixSession`: it
numbers each message (the number is stored before the message leaves, so a restart never reuses
it), frames and writes it, keeps application messages to answer a ResendRequest, and answers one
with resends (PossDupFlag=Y) and gap fills. What to send and when is the session's decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FixMessage
from cmc_lab.venues.fix.interface import StoredMessage, Writer
from cmc_lab.venues.fix.recovery import resend_plan
from cmc_lab.venues.fix.store import SeqStore

log = logging.getLogger("cmc_lab.fix")

_KEEP_SENT = 100_000  # application messages kept for resending
_MAX_WRITE_BUFFER = 32 << 20  # a peer that reads slower than this is cut off


class Outbox:
    """Numbers, frames and writes the messages of one pair of CompIDs; keeps the application ones.

    Parameters
    ----------
    sender, target
        Our CompID and the counterparty's (the header of every message).
    store
        Sequence numbers; ``next_out`` is taken and saved here.
    stats
        Counters shared with the session: ``out``, ``resent``, ``gap_fills`` are counted here.
    now
        The session's clock (loop time), for ``last_sent`` and ``StoredMessage.sent_at``.
    overflow
        Called with the reason when the counterparty reads too slowly to keep the connection.
    coalesce
        Hold what is written during one turn of the event loop and write it in one piece at the
        start of the next (:meth:`flush`): the acceptor's reports of one order (New, then Fill) reach
        the counterparty in one TCP segment and one wake-up instead of one each. The initiator writes
        each message at once: an order must not wait for the loop's next turn.

    Examples
    --------
    >>> box = Outbox("CLIENT1", "EXECUTOR", SeqStore(None), {"out": 0}, lambda: 0.0, print)
    >>> box.keep("D", [(11, "C-1")]).seq, box.writer is None
    (1, True)
    """

    def __init__(
        self,
        sender: str,
        target: str,
        store: SeqStore,
        stats: dict[str, int],
        now: Callable[[], float],
        overflow: Callable[[str], None],
        *,
        coalesce: bool = False,
    ) -> None:
        self.sender, self.target = sender, target
        self.coalesce = coalesce
        self.store = store
        self.stats = stats
        self.now = now
        self.overflow = overflow
        self.writer: Writer | None = None  # the connection's write side; None while disconnected
        self.sent: dict[int, StoredMessage] = {}
        self.last_sent = 0.0
        self._name = f"{sender}->{target}"
        self._comp_ids = ""  # "49=sender<SOH>56=target<SOH>", rendered by the first frame
        self._held: list[bytes] = []  # coalesce: written this turn of the loop, not yet on the wire

    def keep(self, msg_type: str, body: Sequence[tuple[int, object]]) -> StoredMessage:
        """Number an application message and keep it for resending; nothing is written."""
        text = codec.render(body)  # a value holding SOH raises here, before a number is taken
        stored = StoredMessage(self.take_seq(), msg_type, text, sending_time(), self.now())
        self.sent[stored.seq] = stored
        if len(self.sent) > _KEEP_SENT:
            del self.sent[next(iter(self.sent))]
        return stored

    def send(self, stored: StoredMessage) -> None:
        """Write a kept message for the first time."""
        self.write(self._frame(stored.msg_type, stored.seq, stored.body, stored.sending_time))

    def admin(self, msg_type: str, body: Sequence[tuple[int, object]]) -> int:
        """Number and write an admin message (not kept: a resend gap-fills over it); its MsgSeqNum."""
        seq = self.take_seq()
        self.write(self.frame(msg_type, seq, body, sending_time()))
        return seq

    def reject(self, msg: FixMessage, reason: int, tag: int | None, text: str) -> None:
        """A session-level Reject (35=3) of ``msg``: SessionRejectReason ``reason``, about ``tag``."""
        body: list[tuple[int, object]] = [(codec.REF_SEQ_NUM, msg.seq or 0)]
        if tag is not None:
            body.append((codec.REF_TAG_ID, tag))
        if msg.msg_type:
            body.append((codec.REF_MSG_TYPE, msg.msg_type))
        body += [(codec.SESSION_REJECT_REASON, reason), (codec.TEXT, text)]
        self.stats["rejects_sent"] += 1
        log.warning("%s Reject of seq %s: %s", self._name, msg.seq, text)
        self.admin("3", body)

    def answer_resend(
        self,
        begin: int,
        end: int,
        may_resend: Callable[[StoredMessage], bool],
        not_resent: Callable[[StoredMessage], None],
    ) -> None:
        """Answer ResendRequest(``begin``, ``end``): resend what ``may_resend`` allows, gap-fill the rest."""
        plan, skipped = resend_plan(begin, end, self.store.next_out, self.sent, may_resend)
        for stored in skipped:
            not_resent(stored)
        for step in plan:
            now = sending_time()
            if isinstance(step, StoredMessage):
                self.stats["resent"] += 1
                self.write(self._frame(step.msg_type, step.seq, step.body, now, step.sending_time))
            else:
                seq, new_seq = step
                self.stats["gap_fills"] += 1
                body = [(codec.GAP_FILL, "Y"), (codec.NEW_SEQ_NO, new_seq)]
                self.write(self.frame("4", seq, body, now, now))

    def take_seq(self) -> int:
        seq = self.store.next_out
        self.store.next_out = seq + 1
        self.store.save()  # before the message leaves: a restart never reuses a number
        return seq

    def frame(
        self,
        msg_type: str,
        seq: int,
        body: Sequence[tuple[int, object]],
        sending_time: str,
        orig_sending_time: str | None = None,
    ) -> bytes:
        return self._frame(msg_type, seq, codec.render(body), sending_time, orig_sending_time)

    def _frame(
        self, msg_type: str, seq: int, body: str, sending_time: str, orig_sending_time: str | None = None
    ) -> bytes:
        """The message with our header in front of ``body``, its rendered fields."""
        if not self._comp_ids:  # the same in every message: rendered (and checked) once
            self._comp_ids = codec.render([(codec.SENDER, self.sender), (codec.TARGET, self.target)])
        head = (
            f"{codec.MSG_TYPE}={msg_type}\x01{self._comp_ids}"
            f"{codec.MSG_SEQ_NUM}={seq}\x01{codec.SENDING_TIME}={sending_time}\x01"
        )
        if orig_sending_time is not None:
            head += f"{codec.POSS_DUP}=Y\x01{codec.ORIG_SENDING_TIME}={orig_sending_time}\x01"
        return codec.frame(head + body)

    def write(self, raw: bytes) -> None:
        writer = self.writer
        if writer is None or writer.is_closing():
            return
        if not (self.coalesce and self._hold(raw)):
            self._put(writer, raw)
        self.last_sent = self.now()
        self.stats["out"] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s OUT %s", self._name, codec.printable(raw))

    def flush(self) -> None:
        """Write what ``coalesce`` holds, in one piece; the session calls it before it closes the connection."""
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        writer = self.writer
        if writer is not None and not writer.is_closing():
            self._put(writer, data)

    def _hold(self, raw: bytes) -> bool:
        """Hold ``raw`` for the loop's next turn; False outside a running loop (write it now)."""
        if not self._held:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                return False
        self._held.append(raw)
        return True

    def _put(self, writer: Writer, data: bytes) -> None:
        writer.write(data)
        transport = getattr(writer, "transport", None)
        if transport is not None and transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            self.overflow("the counterparty reads too slowly (write buffer full)")


def sending_time() -> str:
    """SendingTime (52) of a message leaving now."""
    return codec.format_timestamp(time.time_ns())


__all__ = ["Outbox", "sending_time"]
