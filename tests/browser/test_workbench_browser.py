"""A person in JupyterLab: run the quickstart, see the chart, fire a ticket, and KILL while a cell sleeps
(the press goes through the Jupyter server's cmc-lab route, as it must on Binder)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from lab_page import CODE_PROMPTS, kernel_idle, status_bar

pytestmark = pytest.mark.slow

NOTEBOOK = "01_quickstart.ipynb"
RESTING_CELL = (
    'o = eng.submit("COMEX.GC", "buy", 1, price=round(eng.quote("COMEX.GC").bid * 0.98, 1)); '
    "import time; time.sleep(30)"
)

# The spread monitor's data source (the one with a "mid" column): point count and newest time.
MONITOR_POINTS = """() => {
  const found = [];
  for (const doc of (window.Bokeh ? window.Bokeh.documents : [])) {
    for (const m of doc.all_models) {
      if (m.type !== "ColumnDataSource" || !m.columns().includes("mid")) continue;
      const t = m.data instanceof Map ? m.data.get("t") : m.data["t"];
      found.push({n: m.get_length() ?? 0, last: t && t.length ? t[t.length - 1] : null});
    }
  }
  return found;
}"""

RECEIPT_CHARTS = """() => {
  let n = 0;
  for (const doc of (window.Bokeh ? window.Bokeh.documents : [])) {
    for (const m of doc.all_models) {
      if (m.type === "Title" && String(m.text).startsWith("receipt ")) n += 1;
    }
  }
  return n;
}"""

# What cmc_lab.ui.server_ext logs when it forwards a press to the kernel's side channel.
KILL_FORWARDED = "POST /kill via server -> 127.0.0.1:"


BUDGET_S = 120.0  # the whole test, however slow each step: generous waits, bounded in sum
_deadline = [time.monotonic() + BUDGET_S]


def wait_for(page: Any, condition: Callable[[], Any], timeout: float, failure: Callable[[], str]) -> Any:
    """Poll ``condition`` until truthy; on timeout fail with ``failure()`` (computed then, so it says what is)."""
    started = time.monotonic()
    deadline = min(started + timeout, _deadline[0])
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            over = " (the test's whole budget is spent)" if deadline == _deadline[0] else ""
            pytest.fail(f"after {time.monotonic() - started:.1f} s{over}: {failure()}")
        page.wait_for_timeout(100)


def text_of(page: Any, selector: str) -> str:
    loc = page.locator(selector)
    return loc.first.inner_text(timeout=2000).strip() if loc.count() else ""


def monitor(page: Any) -> dict[str, Any]:
    sources = page.evaluate(MONITOR_POINTS)
    return max(sources, key=lambda s: s["n"]) if sources else {"n": 0, "last": None}


def test_workbench_in_jupyterlab(lab: Any, browser_context: Any, shots: Callable[[Any, str], Any]) -> None:
    page = browser_context.new_page()
    try:
        run_the_workbench(page, lab, shots)
    except BaseException:
        shots(page, "99-failure")
        raise
    finally:
        page.close()


def run_the_workbench(page: Any, lab: Any, shots: Callable[[Any, str], Any]) -> None:
    started = time.monotonic()
    _deadline[0] = started + BUDGET_S
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)

    # --- open the notebook in a fresh workspace, wait for the kernel
    page.goto(lab.notebook_url(NOTEBOOK), wait_until="domcontentloaded", timeout=45_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=45_000)
    wait_for(
        page,
        lambda: kernel_idle(page),
        45,
        lambda: f"the kernel never became idle; status bar: {status_bar(page)!r}\n{lab.log_tail()}",
    )
    shots(page, "01-opened")

    # --- Run > Run All Cells, as a person would
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    wait_for(
        page,
        lambda: (p := page.evaluate(CODE_PROMPTS)) and all(re.fullmatch(r"\[\d+\]:", x) for x in p),
        90,
        lambda: f"not every cell ran; prompts: {page.evaluate(CODE_PROMPTS)}\n{lab.log_tail()}",
    )
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea").all_inner_texts()
    broken = [
        o for o in outputs if "Traceback" in o or "javascript error" in o or "Error displaying widget" in o
    ]
    assert broken == [], f"cells failed or widgets did not render:\n{broken}"
    shots(page, "02-run-all")

    # --- the workbench: kill switch ACTIVE, a spread chart with points on a canvas
    board = page.locator(".cmc-workbench")
    board.scroll_into_view_if_needed()
    wait_for(
        page,
        lambda: text_of(page, ".cmc-kill-state") == "ACTIVE",
        15,
        lambda: (
            f"kill switch state {text_of(page, '.cmc-kill-state')!r}, note {text_of(page, '.cmc-kill-note')!r}"
        ),
    )
    wait_for(
        page,
        lambda: board.locator("canvas").count() > 0 and monitor(page)["n"] > 0,
        20,
        lambda: (
            f"no chart points: canvases {board.locator('canvas').count()}, monitor {monitor(page)}, "
            f"BokehJS loaded: {page.evaluate('() => typeof window.Bokeh')}"
        ),
    )
    box = board.locator("canvas").first.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100, f"the chart canvas is not visible: {box}"
    shots(board, "03-workbench")

    # --- the hedge-ticket panel: Fire... then Confirm, the ticket fills, its receipt appears
    ticket = page.locator(".cmc-ticket-panel")
    receipts_before = page.evaluate(RECEIPT_CHARTS)
    ticket.locator("button", has_text="Fire...").click()
    confirm = ticket.locator("button", has_text=re.compile(r"^\s*Confirm\s*$"))
    confirm.wait_for(state="visible", timeout=10_000)
    assert "Fire buy 3 au_gc now" in ticket.inner_text()
    confirm.click()
    wait_for(
        page,
        lambda: "FILLED" in ticket.inner_text(),
        20,
        lambda: f"the ticket did not fill; the panel says: {ticket.inner_text()!r}",
    )
    wait_for(
        page,
        lambda: page.evaluate(RECEIPT_CHARTS) > receipts_before and ticket.locator("canvas").count() > 0,
        20,
        lambda: f"no receipt timeline in the ticket panel ({page.evaluate(RECEIPT_CHARTS)} receipt charts)",
    )
    ticket.scroll_into_view_if_needed()
    shots(board, "04-ticket-filled")

    # --- capital panel, once another part of the workbench adds it
    capital = page.locator(".cmc-workbench .cmc-capital-panel")
    if capital.count():
        assert re.search(r"\d", capital.first.inner_text()), "the capital panel shows no numbers"

    # --- a new cell rests an order and sleeps: the kernel is busy
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(RESTING_CELL)
    page.keyboard.press("Control+Enter")
    wait_for(
        page,
        lambda: page.evaluate(CODE_PROMPTS)[-1] == "[*]:",
        10,
        lambda: f"the new cell is not running; prompts {page.evaluate(CODE_PROMPTS)}",
    )
    cell_started = time.monotonic()
    board.scroll_into_view_if_needed()  # back up to the kill switch
    wait_for(
        page,
        lambda: text_of(page, ".cmc-kill-orders") == "1 working order",
        10,
        lambda: (
            f"the resting order is not shown: {text_of(page, '.cmc-kill-orders')!r}, "
            f"cell output {page.locator('.jp-Cell').last.inner_text()!r}"
        ),
    )
    page.wait_for_timeout(max(0, 2000 - int((time.monotonic() - cell_started) * 1000)))
    before = monitor(page)
    route = page.locator(".cmc-kill").first.get_attribute("data-via")
    assert route == "server", (
        f"the kill switch polls {route!r}, not through the Jupyter server's cmc-lab route"
    )
    forwarded_before = lab.log_text().count(KILL_FORWARDED)

    # --- KILL while the cell sleeps
    page.locator(".cmc-kill-button").click()
    pressed = time.monotonic()
    wait_for(
        page,
        lambda: (
            text_of(page, ".cmc-kill-state") == "HALTED"
            and re.search(r"cancelled 1 order", text_of(page, ".cmc-kill-note"))
            and text_of(page, ".cmc-kill-orders") == "0 working orders"
        ),
        1.0,
        lambda: (
            f"kill switch shows {text_of(page, '.cmc-kill-state')!r} / {text_of(page, '.cmc-kill-orders')!r}"
            f" / note {text_of(page, '.cmc-kill-note')!r}"
        ),
    )
    took = time.monotonic() - pressed
    assert page.evaluate(CODE_PROMPTS)[-1] == "[*]:", "the sleeping cell should still be running"
    note = text_of(page, ".cmc-kill-note")
    assert "via the Jupyter server" in note, f"the press did not go through the server route: {note!r}"
    wait_for(
        page,
        lambda: lab.log_text().count(KILL_FORWARDED) == forwarded_before + 1,
        5,
        lambda: f"the server log does not show the kill forwarded once:\n{lab.log_tail()}",
    )
    shots(board, "05-killed-while-busy")
    print(
        f"kill switch (through the server route): HALTED, 1 cancelled, 0 working after {took * 1000:.0f} ms"
    )
    forwarded = [line for line in lab.log_text().splitlines() if KILL_FORWARDED in line]
    print(f"kill switch note: {note}\nserver log: {forwarded[-1]}")

    # --- the chart keeps moving while the cell sleeps
    page.wait_for_timeout(3000)
    after = monitor(page)
    assert page.evaluate(CODE_PROMPTS)[-1] == "[*]:", "the cell ended before the chart check"
    assert after["last"] is not None and before["last"] is not None and after["last"] > before["last"], (
        f"the spread chart did not move during the sleeping cell: {before} -> {after}"
    )
    print(f"spread chart during the sleeping cell: {before['n']} -> {after['n']} points in 3 s")
    shots(board, "06-chart-moved-while-busy")

    # --- without the server route (as with the extension off: 404) the widget talks to loopback directly
    page.route("**/cmc-lab/**", lambda route: route.fulfill(status=404, body="{}"))
    wait_for(
        page,
        lambda: page.locator(".cmc-kill").first.get_attribute("data-via") == "direct",
        3,
        lambda: f"the kill switch did not fall back to loopback: {text_of(page, '.cmc-kill-note')!r}",
    )
    assert text_of(page, ".cmc-kill-state") == "HALTED"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".cmc-kill-rearm").click()
    wait_for(
        page,
        lambda: (
            text_of(page, ".cmc-kill-state") == "ACTIVE" and text_of(page, ".cmc-kill-note") == "re-armed"
        ),
        3,
        lambda: f"re-arm over loopback failed: {text_of(page, '.cmc-kill-note')!r}",
    )
    page.unroute("**/cmc-lab/**")

    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert time.monotonic() - started < BUDGET_S, f"the browser test took {time.monotonic() - started:.0f} s"
