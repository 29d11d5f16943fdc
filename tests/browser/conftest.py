"""Browser fixtures: JupyterLab (with cmc_lab's server route) on a free local port over a copy of the
notebooks, and headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_server import CHROMIUM, CHROMIUM_ARGS, Lab, lab_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab serving a fresh copy of notebooks/*.ipynb, with private Jupyter dirs (no old workspace)."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root)
    # The kill switch's server route, enabled explicitly: an editable install made before the route
    # existed has no etc/jupyter/jupyter_server_config.d/cmc_lab.json.
    with lab_server(
        base, root, "--ServerApp.jpserver_extensions=cmc_lab.ui.server_ext=True", timeout=45.0
    ) as server:
        yield server


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
