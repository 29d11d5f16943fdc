"""JupyterLab on a free local port with private Jupyter dirs, and headless Chromium's flags: the one
launcher of the browser tests (conftest.py) and of scripts/blotter/compare.py (run from its own venv,
so this module needs nothing but the standard library)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def api(self, method: str, path: str) -> Any:
        """One call of the Jupyter server's REST API; its JSON answer (None when empty)."""
        request = urllib.request.Request(f"{self.url}{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(urllib.error.URLError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, failure: Callable[[], str]) -> Any:
    """Poll ``condition`` every 0.2 s until it is truthy (its value) or ``timeout`` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(failure())


@contextlib.contextmanager
def lab_server(base: Path, root: Path, *extra_args: str, timeout: float = 60.0) -> Iterator[Lab]:
    """JupyterLab of this Python serving ``root``, its Jupyter dirs under ``base`` (no old workspace,
    no news toast, every cell kept in the DOM); stopped with its kernels on exit."""
    home = base / "jupyter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    # No "get notified about Jupyter news?" toast over the widgets, and every cell stays in the DOM
    # (JupyterLab's windowing detaches cells scrolled out of view).
    user_settings = home / "config" / "lab" / "user-settings" / "@jupyterlab"
    for plugin, settings in (
        ("apputils-extension/notification", '{"fetchNews": "false"}'),
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
    ):
        path = user_settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(settings)
    token, port = secrets.token_hex(16), free_port()
    log = base / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *extra_args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        wait_for(
            lambda: proc.poll() is not None or _answers(server),
            timeout,
            lambda: f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}",
        )
        if proc.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with {proc.returncode} before answering:\n{server.log_tail()}"
            )
        yield server
    finally:
        _stop(proc)


def _answers(server: Lab) -> bool:
    try:
        server.api("GET", "/api/status")
    except (urllib.error.URLError, OSError):
        return False
    return True


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Stop the server and its kernels: they run in the process group it was started in."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # kernels still shutting down
    proc.wait(5)
