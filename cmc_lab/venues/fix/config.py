"""FIX configuration layer: a session's settings from a ``fix://`` address; secrets from the environment.

Secrets never travel in the address, a notebook cell, the journal or a log: the logon
password (tag 554) comes from ``CMC_LAB_FIX_PASSWORD_<TARGET>`` or the system keyring
(service ``cmc_lab.fix``, user ``SENDER@TARGET``) when the ``keyring`` package is installed;
TLS client certificates from ``CMC_LAB_FIX_CERT_<TARGET>`` / ``CMC_LAB_FIX_KEY_<TARGET>`` and a
private CA from ``CMC_LAB_FIX_CAFILE_<TARGET>``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

PASSWORD_ENV = "CMC_LAB_FIX_PASSWORD_{}"
CERT_ENV, KEY_ENV, CAFILE_ENV = "CMC_LAB_FIX_CERT_{}", "CMC_LAB_FIX_KEY_{}", "CMC_LAB_FIX_CAFILE_{}"
KEYRING_SERVICE = "cmc_lab.fix"

_COMP_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "pwd", "secret", "key", "token", "554"})
_PARAMS = (
    "sender",
    "target",
    "heartbeat",
    "tls",
    "reset",
    "username",
    "account",
    "max_skew",
    "reconnect_min",
    "reconnect_max",
    "resend_age",
    "timeout",
)


class FixConfigError(ValueError):
    """A ``fix://`` address or FIX setting that cannot be used; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class FixConfig:
    """One initiator session: where to connect, the CompIDs and the timers. Holds no secret.

    Parameters (query string of the address)
    ----------------------------------------
    sender, target
        SenderCompID (us) and TargetCompID (the venue). Required.
    heartbeat
        HeartBtInt in whole seconds (default 30).
    tls
        1 to wrap the connection in TLS (default 0).
    reset
        1 to log on with ResetSeqNumFlag=Y, both sides starting again at 1 (default 0).
    username
        Username (553) if the venue wants one; the password is never in the address.
    account
        Account (1) on every order; default: the venue's account in the instrument specs.
    max_skew
        Largest SendingTime difference accepted, in seconds (default 120).
    reconnect_min, reconnect_max
        Back-off bounds between reconnect attempts, in seconds (default 0.25 and 10).
    resend_age
        An order younger than this many seconds is resent (PossDupFlag=Y) when the venue
        asks for it again; an older one is gap-filled and reported rejected (default 2).
    timeout
        Seconds to wait for a TCP connect, a Logon answer or a status answer (default 5).

    Examples
    --------
    >>> cfg = FixConfig.parse("fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR&heartbeat=1")
    >>> cfg.host, cfg.port, cfg.sender, cfg.target, cfg.heartbeat
    ('127.0.0.1', 9878, 'CLIENT1', 'EXECUTOR', 1)
    >>> str(cfg)
    'fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR&heartbeat=1'
    """

    host: str
    port: int
    sender: str
    target: str
    heartbeat: int = 30
    tls: bool = False
    reset: bool = False
    username: str | None = None
    account: str | None = None
    max_skew: float = 120.0
    reconnect_min: float = 0.25
    reconnect_max: float = 10.0
    resend_age: float = 2.0
    timeout: float = 5.0

    @classmethod
    def parse(cls, address: str) -> FixConfig:
        """Read ``fix://HOST:PORT?sender=ID&target=ID[&heartbeat=30&tls=0&reset=0...]``."""
        if not isinstance(address, str) or not address.startswith("fix://"):
            raise FixConfigError(
                f"{address!r} is not a FIX address; write fix://HOST:PORT?sender=ID&target=ID"
            )
        parts = urlsplit(address)
        if parts.username or parts.password:
            raise FixConfigError(
                "a fix:// address must not carry credentials; set the password in the environment "
                "(CMC_LAB_FIX_PASSWORD_<TARGET>) or the keyring"
            )
        try:
            port = parts.port
        except ValueError:
            raise FixConfigError(f"{_public(address)}: the port must be a number from 1 to 65535") from None
        if not parts.hostname or port is None or not 1 <= port <= 65535:
            raise FixConfigError(f"{_public(address)}: write fix://HOST:PORT?sender=ID&target=ID")
        query = parse_qs(parts.query, keep_blank_values=True)
        secret = sorted(k for k in query if k.lower() in _SECRET_PARAMS)
        if secret:
            raise FixConfigError(
                f"a fix:// address must not carry secrets ({', '.join(secret)}); set the password in "
                "CMC_LAB_FIX_PASSWORD_<TARGET> or the keyring, never in a notebook cell"
            )
        unknown = sorted(set(query) - set(_PARAMS))
        if unknown:
            raise FixConfigError(
                f"{_public(address)}: unknown setting {', '.join(unknown)}; known: {', '.join(_PARAMS)}"
            )
        values = {k: v[-1] for k, v in query.items()}
        for key in ("sender", "target"):
            value = values.get(key, "")
            if not _COMP_ID.match(value):
                raise FixConfigError(
                    f"{_public(address)}: {key}= must be a CompID of 1-32 letters, digits, '_', '.' or '-'"
                    f"{'' if value else ' (missing)'}"
                )
        kwargs: dict[str, object] = {}
        if "heartbeat" in values:
            kwargs["heartbeat"] = _int(values["heartbeat"], "heartbeat", 1, 3600)
        for flag in ("tls", "reset"):
            if flag in values:
                if values[flag] not in ("0", "1"):
                    raise FixConfigError(f"{flag}= must be 0 or 1, got {values[flag]!r}")
                kwargs[flag] = values[flag] == "1"
        for name in ("username", "account"):
            if name in values:
                kwargs[name] = values[name]
        for name in ("max_skew", "reconnect_min", "reconnect_max", "resend_age", "timeout"):
            if name in values:
                kwargs[name] = _positive(values[name], name)
        config = cls(parts.hostname, port, values["sender"], values["target"], **kwargs)  # type: ignore[arg-type]
        if config.reconnect_min > config.reconnect_max:
            raise FixConfigError("reconnect_min must not exceed reconnect_max")
        return config

    @property
    def key(self) -> tuple[str, int, str, str]:
        """Venues that share this key share one session."""
        return (self.host, self.port, self.sender, self.target)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def password(self) -> str | None:
        """The logon password from the environment or the keyring; read at logon, never stored."""
        value = os.environ.get(PASSWORD_ENV.format(env_suffix(self.target)))
        if value:
            return value
        try:
            import keyring
        except ImportError:
            return None
        try:
            found = keyring.get_password(KEYRING_SERVICE, f"{self.sender}@{self.target}")
        except Exception:  # a keyring without a backend must not stop a paper session
            return None
        return found or None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context when ``tls=1``: system CAs or ``CMC_LAB_FIX_CAFILE_<TARGET>``, optional client cert."""
        if not self.tls:
            return None
        suffix = env_suffix(self.target)
        context = ssl.create_default_context(cafile=os.environ.get(CAFILE_ENV.format(suffix)) or None)
        cert = os.environ.get(CERT_ENV.format(suffix))
        if cert:
            context.load_cert_chain(cert, os.environ.get(KEY_ENV.format(suffix)) or None)
        return context

    def __str__(self) -> str:
        query = [f"sender={self.sender}", f"target={self.target}", f"heartbeat={self.heartbeat}"]
        query += [f"{flag}=1" for flag in ("tls", "reset") if getattr(self, flag)]
        return f"fix://{self.host}:{self.port}?" + "&".join(query)


def env_suffix(comp_id: str) -> str:
    """The environment-variable suffix of a CompID: upper case, anything else than A-Z0-9 as ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", comp_id.upper())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _public(address: str) -> str:
    return address.split("?", 1)[0]


def _int(value: str, name: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise FixConfigError(f"{name}= must be a whole number of seconds from {low} to {high}, got {value!r}")
    return int(value)


def _positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0 or number != number or number == float("inf"):
        raise FixConfigError(f"{name}= must be a positive number of seconds, got {value!r}")
    return number


__all__ = ["FixConfig", "FixConfigError", "env_suffix", "is_loopback"]
