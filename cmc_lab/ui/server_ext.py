"""Jupyter Server extension: the kill switch's route to the kernel's side channel, for remote hubs;
BokehJS served to the page, so executed notebooks need not carry it inline.

On Binder or any JupyterHub the browser cannot reach ``127.0.0.1:<port>`` on the kernel's
host, but it can reach the Jupyter server that runs there. This extension adds, under the
server's ``base_url``::

    POST {base_url}cmc-lab/kill/<port>     -> POST http://127.0.0.1:<port>/kill
    POST {base_url}cmc-lab/rearm/<port>    -> POST http://127.0.0.1:<port>/rearm
    GET  {base_url}cmc-lab/state/<port>    -> GET  http://127.0.0.1:<port>/state

Each request must pass the server's own authentication (and XSRF check for a POST) and the
``kernels`` permission, and carry the side channel's ``X-CMC-Token``. It is not a proxy: the
host is always 127.0.0.1, the path one of the three above, the only header forwarded is the
token, the body a JSON object of at most ``MAX_BODY`` bytes, and an answer that lacks the side
channel's signature header is dropped (502), so no other loopback service can be read.

It also serves BokehJS from the bokeh package installed next to the server (offline, no CDN)::

    GET  {base_url}cmc-lab/bokehjs/<version>/<file>   e.g. bokeh.min.js, bokeh-widgets.min.js

only the files inline resources would embed, only for the server's own bokeh version (a path is
the version, so the browser caches it for a year), to authenticated users. It puts
``CMC_LAB_BOKEHJS={base_url}cmc-lab/bokehjs/<version>/`` in the server's environment, which the
kernels it starts inherit: there :func:`cmc_lab.ui.bokehjs.load_bokehjs` writes a 1.8 kB loader
instead of 8 MB of inline BokehJS (when, and where not, is in :mod:`cmc_lab.ui.bokehjs`).

Enabled by ``etc/jupyter/jupyter_server_config.d/cmc_lab.json``, which ``pip install`` (editable
too) copies from ``jupyter-config/``, or on the command line with
``--ServerApp.jpserver_extensions=cmc_lab.ui.server_ext=True``. (``jupyter server extension
enable`` only toggles an extension some config file already lists.) Without the route the widget
talks to the side channel directly, which works when the browser runs on the kernel's host.

Examples
--------
>>> from cmc_lab.ui.server_ext import _jupyter_server_extension_points
>>> _jupyter_server_extension_points()
[{'module': 'cmc_lab.ui.server_ext'}]
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Awaitable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.simple_httpclient import HTTPTimeoutError

from cmc_lab.ui import bokehjs
from cmc_lab.ui.sidechannel import MAX_BODY, SIGNATURE

ROUTE = "cmc-lab"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")
CONNECT_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 10.0
_CLIENT = "cmc_lab_sidechannel_client"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cmc_lab.ui.server_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from bokeh import __version__ as bokeh_version
    from bokeh.util.paths import static_path

    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], ROUTE)
    served = url_path_join(web_app.settings["base_url"], bokehjs.ROUTE, bokeh_version) + "/"
    files = "|".join(re.escape(name) for name in bokehjs.bokehjs_files())
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, r"(kill|rearm)/([^/]+)"), ForwardPost),
            (url_path_join(base, r"state/([^/]+)"), ForwardState),
            (
                url_path_join(served, f"({files})"),
                BokehJSHandler,
                {"path": os.path.join(static_path(), "js")},
            ),
        ],
    )
    if os.environ.get(bokehjs.ENV) != "inline":  # the server's user may ask every kernel to inline it
        os.environ[bokehjs.ENV] = served  # inherited by the kernels this server starts
    serverapp.log.info("cmc_lab: kill-switch route at %s/{kill,rearm,state}/<port>", base)
    serverapp.log.info(
        "cmc_lab: BokehJS %s served at %s (%s=%s)",
        bokeh_version,
        served,
        bokehjs.ENV,
        os.environ[bokehjs.ENV],
    )


class BokehJSHandler(JupyterHandler, web.StaticFileHandler):
    """``GET {base_url}cmc-lab/bokehjs/<version>/<file>``: one of BokehJS's minified files."""

    _track_activity = False

    @web.authenticated  # the decorator's signature is not StaticFileHandler's: hence the ignores
    def head(self, path: str) -> Awaitable[None]:  # type: ignore[override]
        return super().head(path)

    @web.authenticated
    def get(self, path: str, include_body: bool = True) -> Awaitable[None]:  # type: ignore[override]
        return super().get(path, include_body)

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return self.CACHE_MAX_AGE // 10  # a year: the path names the version


class _Forward(APIHandler):
    auth_resource = "kernels"

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def _port(self, raw: str) -> int | None:
        port = int(raw) if raw.isascii() and raw.isdigit() else 0
        if 1024 <= port <= 65535:
            return port
        self._reply(
            400,
            {
                "error": f"{raw!r} is not a side-channel port: the route forwards only to a port number "
                "1024-65535 on this server's loopback (127.0.0.1), the one in the kill switch's url"
            },
        )
        return None

    def _token(self) -> str | None:
        token = self.request.headers.get("X-CMC-Token", "")
        if TOKEN_SHAPE.fullmatch(token):
            return token
        self._reply(403, {"error": "missing or wrong token: send the side channel's X-CMC-Token header"})
        return None

    async def _forward(self, method: str, action: str, port: int, token: str, body: bytes | None) -> None:
        client = self.settings.get(_CLIENT)
        if client is None:  # our own: a kill must not queue behind other extensions' fetches
            client = AsyncHTTPClient(force_instance=True, max_clients=20, max_body_size=64 * 1024)
            self.settings[_CLIENT] = client
        target = f"127.0.0.1:{port}"
        headers = {"X-CMC-Token": token}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            f"http://{target}/{action}",
            method=method,
            headers=headers,
            body=body,
            follow_redirects=False,
            connect_timeout=CONNECT_TIMEOUT_S,
            request_timeout=REQUEST_TIMEOUT_S,
        )
        started = time.perf_counter()
        try:
            response: HTTPResponse = await client.fetch(request, raise_error=False)
        except ConnectionRefusedError:
            self._reply(
                502,
                {
                    "error": f"no cmc_lab side channel listens at {target}: has the engine been closed "
                    "or the kernel restarted? Run the workbench cell again"
                },
            )
            return
        except Exception as exc:  # whatever else stopped the exchange: reset, timeout, an oversized answer
            status = 504 if isinstance(exc, HTTPTimeoutError) else 502
            self._reply(status, {"error": f"the side channel at {target} did not answer: {exc}"})
            return
        ms = (time.perf_counter() - started) * 1000
        if response.headers.get(SIGNATURE) != "1":
            self.log.warning(
                "cmc_lab: %s answered %s without the side-channel signature", target, response.code
            )
            self._reply(502, {"error": f"{target} answered, but it is not a cmc_lab side channel"})
            return
        log = self.log.debug if action == "state" else self.log.info
        log(
            "cmc_lab: %s /%s via server -> %s answered %s in %.1f ms",
            method,
            action,
            target,
            response.code,
            ms,
        )
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self._reply(502, {"error": f"the side channel at {target} answered without a JSON object"})
            return
        self._reply(response.code, answer)


class ForwardPost(_Forward):
    """``POST {base_url}cmc-lab/(kill|rearm)/<port>``: the press, forwarded to the kernel's loopback."""

    @web.authenticated
    @authorized
    async def post(self, action: str, raw_port: str) -> None:
        port = self._port(raw_port)
        token = self._token() if port else None
        if port is None or token is None:
            return
        body = self.request.body or b"{}"
        if len(body) > MAX_BODY:
            self._reply(413, {"error": f"body too large: {len(body)} bytes, at most {MAX_BODY}"})
            return
        await self._forward("POST", action, port, token, body)

    @web.authenticated
    def get(self, action: str, raw_port: str) -> None:
        self.set_header("Allow", "POST")
        self._reply(405, {"error": f"{ROUTE}/{action}/<port> takes POST (with X-XSRFToken), not GET"})


class ForwardState(_Forward):
    """``GET {base_url}cmc-lab/state/<port>``: the widget's poll; not counted as user activity."""

    _track_activity = False

    @web.authenticated
    @authorized
    async def get(self, raw_port: str) -> None:
        port = self._port(raw_port)
        token = self._token() if port else None
        if port is None or token is None:
            return
        await self._forward("GET", "state", port, token, None)
