"""A loopback HTTP endpoint for the kill switch, so a press reaches the engine while the kernel is busy.

Widget messages travel on the kernel's shell channel and wait behind a running cell; this
server runs in its own thread, bound to 127.0.0.1 only, and answers only requests that carry
the per-session secret token. The browser reaches it directly when it runs on the kernel's
host, or through the Jupyter server's ``cmc-lab/`` route (``cmc_lab.ui.server_ext``) on a
remote hub such as Binder; every answer carries ``X-CMC-Side-Channel`` so that route can tell
a side channel from any other service on loopback.

A browser request is answered only from the Jupyter server's own origin (the origins of the
servers listed in Jupyter's runtime folder, with ``localhost`` and ``127.0.0.1`` standing for
each other, or the ``origins`` given): any other ``Origin`` gets 403 and no CORS grant, so a
page on another site cannot drive the kill switch even if it learns the token. A request with
no ``Origin`` (the server's own route, a script) still needs the token.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine

MAX_BODY = 4096
DRAIN_MAX = 1 << 20
SIGNATURE = "X-CMC-Side-Channel"  # on every answer: "this port is a cmc_lab side channel"


class SideChannel:
    """Serve ``GET /state``, ``POST /kill`` and ``POST /rearm`` for one engine on loopback.

    Every request needs the ``X-CMC-Token`` header; a POST body is a JSON object of at most
    ``MAX_BODY`` bytes. ``errors`` keeps the last 50 broken connections (a client that stalls or
    hangs up), which would otherwise print a traceback into whichever cell ran last.

    Examples
    --------
    >>> channel = SideChannel(eng)          # doctest: +SKIP
    >>> channel.url, len(channel.token)     # doctest: +SKIP
    """

    def __init__(
        self, engine: Engine, host: str = "127.0.0.1", port: int = 0, origins: Iterable[str] | None = None
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the kill-switch side channel binds to loopback only, not {host!r}")
        self.engine = engine
        self.origins = None if origins is None else frozenset(_with_aliases(origins))
        self.token = secrets.token_urlsafe(24)
        self.errors: list[str] = []
        server = _Server6 if ":" in host else _Server
        self._server = server((host, port), _handler_for(self))
        self._server.channel = self
        where = f"[{host}]" if ":" in host else host
        self.url = f"http://{where}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="cmc-killswitch", daemon=True)
        self._thread.start()

    def allows(self, origin: str) -> bool:
        """Whether a browser page at ``origin`` may call this channel (the Jupyter server's own)."""
        if self.origins is not None:
            return origin in self.origins
        return origin in _with_aliases(_jupyter_origins())

    def state(self) -> dict[str, Any]:
        eng = self.engine
        working = len(eng.working_orders())
        return {"state": eng.trading_state.value, "working_orders": working}

    def kill(self, reason: str, who: str) -> dict[str, Any]:
        cancelled = self.engine.kill(reason or "kill switch pressed", who=who)
        return {"cancelled": cancelled, **self.state()}

    def rearm(self, who: str) -> dict[str, Any]:
        self.engine.rearm("re-armed from the workbench", who=who)
        return {"cancelled": 0, **self.state()}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def _with_aliases(urls: Iterable[str]) -> set[str]:
    """Origins of ``urls``; ``localhost`` and ``127.0.0.1`` name the same loopback server."""
    found = set()
    for url in urls:
        origin = _origin(url)
        found.add(origin)
        for a, b in (("//localhost", "//127.0.0.1"), ("//127.0.0.1", "//localhost")):
            if a + ":" in origin or origin.endswith(a):
                found.add(origin.replace(a, b, 1))
    return found


def _jupyter_origins() -> list[str]:
    """The origins of the Jupyter servers running on this host (their runtime files)."""
    try:
        from jupyter_server.serverapp import list_running_servers

        return [str(info["url"]) for info in list_running_servers() if info.get("url")]
    except Exception:  # no jupyter_server, or an unreadable runtime folder: no browser origin allowed
        return []


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    channel: SideChannel

    def handle_error(self, request: Any, client_address: Any) -> None:  # not a traceback in a cell
        self.channel.errors.append(f"{client_address}: {sys.exc_info()[1]!r}")
        del self.channel.errors[:-50]


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler_for(channel: SideChannel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5.0  # a client that stalls mid-request loses its socket, not a thread forever

        def log_message(self, format: str, *args: Any) -> None:  # keep the notebook quiet
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._common_headers()
            self.end_headers()
            self.wfile.write(data)

        def _common_headers(self) -> None:  # the signature and CORS (only for an allowed origin)
            self.send_header(SIGNATURE, "1")
            origin = self.headers.get("Origin")
            if origin is None or not channel.allows(origin):
                return
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Headers", "Content-Type, X-CMC-Token")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Private-Network", "true")
            self.send_header("Vary", "Origin")

        def _origin_refused(self) -> bool:
            origin = self.headers.get("Origin")
            if origin is None or channel.allows(origin):
                return False
            self._send(
                403,
                {
                    "error": f"origin {origin!r} is not this Jupyter server's: the side channel answers "
                    "pages of the Jupyter server that runs this kernel only (SideChannel(origins=...))"
                },
            )
            return True

        def _authorised(self) -> bool:
            if self._origin_refused():
                return False
            given = self.headers.get("X-CMC-Token", "")
            if hmac.compare_digest(given.encode(), channel.token.encode()):
                return True
            self._send(403, {"error": "missing or wrong token"})
            return False

        def do_OPTIONS(self) -> None:
            if self._origin_refused():
                return
            self.send_response(204)
            self._common_headers()
            self.end_headers()

        def do_GET(self) -> None:
            if self.path != "/state":
                self._send(404, {"error": f"no such endpoint {self.path}"})
            elif self._authorised():
                self._send(200, channel.state())

        def do_POST(self) -> None:
            raw = self.headers.get("Content-Length") or "0"
            length = int(raw) if raw.isascii() and raw.isdigit() else -1
            if length < 0:
                self._send(400, {"error": f"bad Content-Length {raw!r}"})
                return
            if length > MAX_BODY:
                self.rfile.read(min(length, DRAIN_MAX))  # unread bytes would reset the connection
                self._send(413, {"error": f"body too large: {length} bytes, at most {MAX_BODY}"})
                return
            data = self.rfile.read(length)
            if not self._authorised():
                return
            try:
                body = json.loads(data or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as exc:
                self._send(400, {"error": f"bad JSON body: {exc}"})
                return
            who = str(body.get("who", "side channel"))[:100]
            try:
                if self.path == "/kill":
                    self._send(200, channel.kill(str(body.get("reason", ""))[:500], who))
                elif self.path == "/rearm":
                    self._send(200, channel.rearm(who))
                else:
                    self._send(404, {"error": f"no such endpoint {self.path}"})
            except Exception as exc:  # the engine's own error, reported to the button
                self._send(500, {"error": str(exc)})

    return Handler
