"""FIX session interface layer: the states, errors and callbacks a session shares with its application.

:class:`~cmc_lab.venues.fix.session.FixSession` runs the protocol; a :class:`SessionApp`
(the gateway, the served exchange) gives its messages meaning, and sees the session that calls
it as a :class:`Session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cmc_lab.venues.fix.codec import FixMessage


class SessionState(StrEnum):
    IDLE = "IDLE"  # no connection
    LOGON_SENT = "LOGON_SENT"  # initiator: waiting for the Logon answer
    AWAIT_LOGON = "AWAIT_LOGON"  # acceptor: connected, waiting for Logon
    ACTIVE = "ACTIVE"
    LOGOUT_SENT = "LOGOUT_SENT"


class SessionDown(ConnectionError):
    """An application message for a session that is not logged on."""


class LogonError(ConnectionError):
    """The counterparty refused our Logon or never answered it; the reason is its Text (58)."""


class UnsupportedMessage(Exception):
    """Raised by a :class:`SessionApp` for a valid MsgType it does not handle (BusinessMessageReject 380=3)."""


class BusinessReject(Exception):
    """Raised by a :class:`SessionApp` to refuse a message with a BusinessMessageReject."""

    def __init__(self, reason: int, text: str, ref_id: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.ref_id = ref_id


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def is_closing(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An application message as first sent, kept to answer a ResendRequest."""

    seq: int
    msg_type: str
    body: str  # its fields after the header, rendered (``tag=value<SOH>...``): text, not tuples for the GC to walk
    sending_time: str
    sent_at: float  # loop time


class Session(Protocol):
    """The session as its application sees it in a callback: the CompIDs and the session's clock."""

    @property
    def sender(self) -> str:
        """Our CompID."""

    @property
    def target(self) -> str:
        """The counterparty's CompID."""

    def now(self) -> float:
        """Loop time (monotonic seconds), the clock of ``StoredMessage.sent_at``."""


class SessionApp:
    """What a session tells its application; override what you need."""

    def on_logon(self, session: Session) -> None:
        """The session is ACTIVE (both Logons exchanged)."""

    def on_disconnect(self, session: Session, reason: str) -> None:
        """The connection ended (Logout, error, silence or peer gone)."""

    def on_message(self, session: Session, message: FixMessage) -> None:
        """An application message, in sequence. Raise FieldProblem, BusinessReject or UnsupportedMessage to refuse it."""
        raise UnsupportedMessage(message.msg_type)

    def on_reject(self, session: Session, message: FixMessage) -> None:
        """A session-level Reject (35=3) of one of our messages."""

    def check_logon(self, session: Session, message: FixMessage) -> str | None:
        """Acceptor: a reason to refuse this Logon, or None to accept it."""
        return None

    def may_resend(self, session: Session, stored: StoredMessage) -> bool:
        """Whether to resend ``stored`` (PossDupFlag=Y) when asked; False gap-fills over it."""
        return True

    def not_resent(self, session: Session, stored: StoredMessage) -> None:
        """``stored`` was asked for again and gap-filled instead: the counterparty never processed it."""


__all__ = [
    "BusinessReject",
    "LogonError",
    "Session",
    "SessionApp",
    "SessionDown",
    "SessionState",
    "StoredMessage",
    "UnsupportedMessage",
    "Writer",
]
