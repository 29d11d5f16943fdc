"""FIX recovery layer: what to resend or gap-fill for a ResendRequest, and the gap we wait on. Pure, no IO.

>>> from cmc_lab.venues.fix.interface import StoredMessage
>>> sent = {3: StoredMessage(3, "8", "", "20261124-14:00:00.000", 0.0)}
>>> resend_plan(2, 0, 5, sent, lambda stored: True)
([(2, 3), StoredMessage(seq=3, msg_type='8', body='', sending_time='20261124-14:00:00.000', sent_at=0.0), (4, 5)], [])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.codec import FieldProblem
from cmc_lab.venues.fix.interface import StoredMessage

#: One step of an answer to a ResendRequest: a message to send again, or a gap fill ``(MsgSeqNum, NewSeqNo)``.
Step = StoredMessage | tuple[int, int]


def resend_plan(
    begin: int,
    end: int,
    next_out: int,
    sent: Mapping[int, StoredMessage],
    may_resend: Callable[[StoredMessage], bool],
) -> tuple[list[Step], list[StoredMessage]]:
    """The answer to ResendRequest(``begin``, ``end``), and the kept messages it gap-fills instead of resending.

    ``end`` 0 (or beyond what was sent) means up to the last message sent. Admin messages,
    messages no longer kept and those ``may_resend`` refuses are covered by SequenceReset-GapFill,
    consecutive ones by a single gap fill.
    """
    last = next_out - 1
    if end == 0 or end > last:
        end = last
    if begin < 1 or begin > last + 1:
        raise FieldProblem(
            codec.VALUE_INCORRECT, codec.BEGIN_SEQ_NO, f"BeginSeqNo {begin} is outside 1..{last}"
        )
    steps: list[Step] = []
    skipped: list[StoredMessage] = []
    gap_from: int | None = None
    for seq in range(begin, end + 1):
        stored = sent.get(seq)
        if stored is not None and may_resend(stored):
            if gap_from is not None:
                steps.append((gap_from, seq))
                gap_from = None
            steps.append(stored)
            continue
        if stored is not None:
            skipped.append(stored)
        if gap_from is None:
            gap_from = seq
    if gap_from is not None:
        steps.append((gap_from, end + 1))
    return steps, skipped


class GapWatch:
    """The ResendRequest we have out: one at a time, asked again only if it goes unanswered too long.

    Examples
    --------
    >>> watch = GapWatch()
    >>> watch.should_request(seen=9, now=0.0, patience=2.0), watch.should_request(seen=12, now=1.0, patience=2.0)
    (True, False)
    >>> watch.progress(next_in=13); watch.until is None
    True
    """

    def __init__(self) -> None:
        self.until: int | None = None  # the highest MsgSeqNum seen beyond the gap
        self._asked_at = 0.0

    def should_request(self, seen: int, now: float, patience: float) -> bool:
        if self.until is not None and now - self._asked_at < patience:
            self.until = max(self.until, seen)
            return False
        self.until, self._asked_at = seen, now
        return True

    def progress(self, next_in: int) -> None:
        if self.until is not None and next_in > self.until:
            self.until = None

    def clear(self) -> None:
        self.until = None


__all__ = ["GapWatch", "Step", "resend_plan"]
