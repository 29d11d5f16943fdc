"""A person in JupyterLab cancels a working order from the workbench blotter; the browser's frame time while it streams."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from lab_page import CODE_PROMPTS, kernel_idle
from lab_server import wait_for

pytestmark = pytest.mark.slow

NOTEBOOK = "blotter_check.ipynb"
CELLS = [
    "import cmc_lab as cmc\neng = cmc.connect('sim', seed=7)\nwb = cmc.workbench(eng)\nwb",
    "q = eng.quote('SHFE.au')\nfill = eng.submit('SHFE.au', 'buy', 1, price=str(q.ask), tif='IOC')\n"
    "resting = eng.submit('SHFE.au', 'buy', 2, price=str(round(q.bid - 20 * float(eng.instrument('SHFE.au').tick), 2)))",
]
# Frame times (ms) over ``ms`` of requestAnimationFrame while the workbench streams.
FRAME_TIMES = """(ms) => new Promise(done => {
  const times = []; let last = performance.now(); const end = last + ms;
  const step = now => { times.push(now - last); last = now; if (now < end) requestAnimationFrame(step); else done(times); };
  requestAnimationFrame(step);
})"""


def test_cancel_a_working_order_from_the_blotter(
    lab: Any, browser_context: Any, shots: Callable[..., Any]
) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, lab.root / NOTEBOOK)
    page = browser_context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(lab.notebook_url(NOTEBOOK), wait_until="domcontentloaded", timeout=45_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=45_000)
        wait_for(lambda: kernel_idle(page), 45, lambda: f"the kernel never became idle\n{lab.log_tail()}")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        wait_for(
            lambda: all(re.fullmatch(r"\[\d+\]:", p) for p in page.evaluate(CODE_PROMPTS)),
            90,
            lambda: f"not every cell ran: {page.evaluate(CODE_PROMPTS)}\n{lab.log_tail()}",
        )
        outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea").all_inner_texts()
        assert not [o for o in outputs if "Traceback" in o or "Error" in o], outputs
        blotter = page.locator(".cmc-blotter")
        cancel = blotter.locator(".cmc-blotter-cancel")
        wait_for(
            lambda: cancel.count() == 1,
            20,
            lambda: f"no working order in the blotter: {blotter.inner_text()!r}",
        )
        wait_for(
            lambda: "long 1" in blotter.inner_text(), 20, lambda: f"no position: {blotter.inner_text()!r}"
        )
        frames = page.evaluate(FRAME_TIMES, 3000)[1:]
        frames.sort()
        print(
            f"frame time while streaming: median {frames[len(frames) // 2]:.1f} ms, "
            f"p95 {frames[int(len(frames) * 0.95)]:.1f} ms, max {frames[-1]:.1f} ms over {len(frames)} frames"
        )
        blotter.scroll_into_view_if_needed()
        shots(blotter, "blotter-01-working")
        cancel.first.click()
        wait_for(
            lambda: cancel.count() == 0 and "no working orders" in blotter.inner_text(),
            20,
            lambda: f"the order did not leave the blotter: {blotter.inner_text()!r}",
        )
        shots(blotter, "blotter-02-cancelled")
    except BaseException:
        shots(page, "blotter-99-failure")
        raise
    finally:
        page.close()
