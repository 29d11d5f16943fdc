"""FIX serve layer: the ``cmc-lab venue serve`` process: address, password, TLS, log file, signals, run.

It holds no exchange logic: :func:`serve` checks its settings, builds one
:class:`~cmc_lab.venues.fix.server.ExchangeServer` and runs it until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Iterable
from typing import TextIO

from cmc_lab.venues.fix.config import is_loopback
from cmc_lab.venues.fix.server import ExchangeServer, ServeError

log = logging.getLogger("cmc_lab.fix")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (loopback) as (host, port); port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 <= int(port) <= 65535:
        raise ServeError(f"--fix {value!r}: write HOST:PORT, e.g. 127.0.0.1:9878 (port 0 picks a free one)")
    return host, int(port)


def serve(
    listen: str,
    *,
    sender: str = "EXECUTOR",
    targets: Iterable[str] = ("CLIENT1",),
    reset_on_logon: bool = False,
    sessions: str = "always",
    seed: int = 7,
    quote_interval: float = 0.2,
    password_env: str | None = None,
    store_dir: str | None = None,
    log_path: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    allow_remote: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Run the served exchange until SIGINT/SIGTERM; prints ``listening on HOST:PORT`` once bound."""
    host, port = parse_listen(listen)
    if not allow_remote and not is_loopback(host):
        raise ServeError(
            f"--fix {listen}: {host} is not a loopback address; a paper venue binds 127.0.0.1 unless you "
            "add --allow-remote (and then set a password with --password-env)"
        )
    if not is_loopback(host) and not password_env:
        raise ServeError(
            f"--fix {listen}: an acceptor on {host} is reachable from other machines; set a password with "
            "--password-env VAR (the Logon must carry it in 554) or bind 127.0.0.1"
        )
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise ServeError(f"--password-env {password_env}: that environment variable is not set or empty")
    context = None
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_cert, tls_key)
    if log_path:
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
    server = ExchangeServer(
        sender=sender,
        targets=list(targets),
        seed=seed,
        quote_interval=quote_interval,
        sessions=sessions,
        reset_on_logon=reset_on_logon,
        password=password,
        store_dir=store_dir,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        bound_host, bound_port = await server.start(host, port, context)
        clients = ", ".join(server.sessions)
        print(
            f"cmc-lab venue: FIX 4.4 acceptor {sender} listening on {bound_host}:{bound_port} "
            f"(clients {clients}; sessions {sessions}; reset-on-logon {'on' if reset_on_logon else 'off'})",
            file=out,
            flush=True,
        )
        await stop.wait()
        await server.close()

    asyncio.run(main())
    return 0


__all__ = ["parse_listen", "serve"]
