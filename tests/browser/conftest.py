"""Browser fixtures: JupyterLab (with cmc_lab's server route) on a free local port over a copy of the
notebooks, and headless Chromium."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
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

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab serving a fresh copy of notebooks/*.ipynb, with private Jupyter dirs (no old workspace)."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root)
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
    token = secrets.token_hex(16)
    port = free_port()
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
        # The kill switch's server route, enabled explicitly: an editable install made before the
        # route existed has no etc/jupyter/jupyter_server_config.d/cmc_lab.json.
        "--ServerApp.jpserver_extensions=cmc_lab.ui.server_ext=True",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        wait_for_server(server, proc)
        yield server
    finally:
        stop(proc)


def wait_for_server(server: Lab, proc: subprocess.Popen[Any], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode} before answering:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(
                f"{server.url}/api/status?token={server.token}", timeout=2
            ) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop the server and its kernels: they run in the process group this fixture started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # kernels still shutting down
    proc.wait(5)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, with a fresh profile. Missing Chromium fails, never skips."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
            "(sudo apt-get install chromium; bash scripts/test.sh installs it when it may)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('playwright is not installed: .venv/bin/pip install -e ".[dev]" (the dev extras have it)')
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def shots() -> Iterator[Any]:
    """``shots(page, "name")`` saves test-artifacts/<name>.png and prints its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    saved: list[Path] = []

    def shoot(target: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        try:
            target.screenshot(path=str(path), timeout=15_000)
        except Exception as exc:  # a failed screenshot must not hide the real failure
            print(f"screenshot {name} failed: {exc}")
            return path
        saved.append(path)
        print(f"screenshot: {path}")
        return path

    yield shoot
    if saved:
        print("screenshots:\n  " + "\n  ".join(map(str, saved)))
