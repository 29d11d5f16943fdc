"""Each shipped notebook run as a person would in JupyterLab (headless Chromium): Run All Cells, no cell
errs, Bokeh charts draw, the notebook saves without inline BokehJS where the cells leave BokehJS to
cmc_lab; a picture of every notebook's outputs in test-artifacts/notebook-0N-*.png (issue 17).

Run with ``-s`` it prints each notebook's run time and its size as JupyterLab saves it; with
``CMC_LAB_BOKEHJS=inline`` in the environment the same run measures BokehJS inlined (as before the
server route), for docs/notebooks.md.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bokeh import __version__ as BOKEH
from lab_page import CODE_PROMPTS, PANEL, kernel_idle

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb"))
RUN_ALL_S = 150.0  # the slowest notebook (06, a dask sweep) takes about 40 s on two cores
SHOT_MAX_PX = 16_000  # Chromium's screenshot limit is about 16k pixels a side
# Output text that means a cell or a view failed.
BROKEN = re.compile(
    r"Traceback|Could not create a view|Error displaying widget|javascript error|BokehJS .* could not be loaded"
)


def wait_for(page: Any, condition: Callable[[], Any], timeout: float, failure: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f} s: {failure()}")
        page.wait_for_timeout(200)


def inlines_bokehjs_itself(name: str) -> bool:
    """The notebook's own cells call bokeh's output_notebook(resources=INLINE)."""
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    return any("resources=INLINE" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


def shut_down_kernels(lab: Any) -> None:
    """Free the two cores for the next notebook (the workbench's engine keeps streaming otherwise)."""
    auth = {"Authorization": f"token {lab.token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab.url}/api/sessions", headers=auth)) as r:
        sessions = json.loads(r.read())
    for session in sessions:
        request = urllib.request.Request(
            f"{lab.url}/api/sessions/{session['id']}", method="DELETE", headers=auth
        )
        urllib.request.urlopen(request, timeout=30).close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_and_its_outputs_are_pictured(
    lab: Any, browser_context: Any, shots: Callable[[Any, str], Any], name: str
) -> None:
    page = browser_context.new_page()
    page.set_default_timeout(20_000)
    served: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            served.append((r.url.split("?")[0].rsplit("/", 1)[-1], r.status))
            if "/cmc-lab/bokehjs/" in r.url
            else None
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    shot = f"notebook-{name.removesuffix('.ipynb').replace('_', '-')}"
    try:
        started = time.monotonic()
        page.goto(lab.notebook_url(name), wait_until="domcontentloaded", timeout=45_000)
        page.wait_for_selector(f"{PANEL} .jp-CodeCell", timeout=45_000)
        wait_for(
            page, lambda: kernel_idle(page), 45, lambda: f"the kernel never became idle\n{lab.log_tail()}"
        )
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        wait_for(
            page,
            lambda: (p := page.evaluate(CODE_PROMPTS)) and all(re.fullmatch(r"\[\d+\]:", x) for x in p),
            RUN_ALL_S,
            lambda: f"not every cell ran; prompts: {page.evaluate(CODE_PROMPTS)}\n{lab.log_tail()}",
        )
        ran = time.monotonic() - started
        outputs = page.locator(f"{PANEL} .jp-OutputArea").all_inner_texts()
        broken = [o for o in outputs if BROKEN.search(o)]
        assert broken == [], f"{name}: cells failed or views did not render:\n" + "\n---\n".join(broken)

        uses_bokeh = page.evaluate("() => window.Bokeh !== undefined")
        if uses_bokeh:
            wait_for(
                page,
                lambda: charts_drawn(page),
                20,
                lambda: (
                    f"{name}: no Bokeh chart drew (BokehJS {page.evaluate('() => window.Bokeh.version')})"
                ),
            )
        assert errors == [], f"{name}: JavaScript errors on the page: {errors}"

        # Saved as JupyterLab saves it (File > Save): how big an executed notebook is.
        saved = lab.root / name
        before = saved.stat().st_mtime_ns
        page.keyboard.press("Control+s")
        wait_for(page, lambda: saved.stat().st_mtime_ns != before, 20, lambda: f"{name} was not saved")
        page.wait_for_timeout(300)
        size = saved.stat().st_size
        via = "served" if served else "none needed"
        if uses_bokeh and os.environ.get("CMC_LAB_BOKEHJS") == "inline":  # the "before" measurement
            via = "inline (CMC_LAB_BOKEHJS=inline)"
        elif uses_bokeh and not inlines_bokehjs_itself(name):
            assert served and all(status in (200, 304) for _, status in served), served
            assert {f for f, _ in served} >= {"bokeh.min.js", "bokeh-widgets.min.js"}, served
            assert size < 1_000_000, f"{name} saved {size:,} bytes: BokehJS inline?"
            via = f"served ({BOKEH}, {len(served)} files)"
        elif inlines_bokehjs_itself(name):
            via = "inline (the notebook's own output_notebook(resources=INLINE))"
        print(f"{name}: ran in {ran:.1f} s; saved by JupyterLab {size:,} bytes; BokehJS {via}")

        picture(page, shot, shots)
    except BaseException:
        shots(page, f"{shot}-failure")
        raise
    finally:
        page.close()
        shut_down_kernels(lab)


def charts_drawn(page: Any) -> int:
    """How many Bokeh canvases in the outputs have a real size (locators see into Bokeh's shadow DOM)."""
    boxes = [c.bounding_box() for c in page.locator(f"{PANEL} .jp-OutputArea canvas").all()]
    return sum(1 for b in boxes if b and b["width"] > 50 and b["height"] > 50)


def picture(page: Any, shot: str, shots: Callable[[Any, str], Any]) -> None:
    """The whole notebook in one picture: the window grown to the notebook's height, the side bar closed."""
    page.evaluate("() => document.activeElement?.blur()")
    if page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").count():
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
    scroller = page.locator(f"{PANEL} .jp-WindowedPanel-outer").first
    height = page.evaluate(f"() => document.querySelector('{PANEL} .jp-WindowedPanel-outer').scrollHeight")
    page.set_viewport_size({"width": 1200, "height": min(SHOT_MAX_PX, int(height) + 200)})
    page.wait_for_timeout(1000)  # charts re-lay out to the new size
    scroller.evaluate("el => el.scrollTo(0, 0)")
    shots(page, shot)
    page.set_viewport_size({"width": 1400, "height": 1000})
