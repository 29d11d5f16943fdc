"""What the browser tests read off a JupyterLab page: the code cells' prompts and the kernel's status."""

from __future__ import annotations

import re
from typing import Any

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: Each code cell's prompt in the open notebook: "[ ]:" not run, "[*]:" running, "[3]:" ran.
CODE_PROMPTS = f"""() => [...document.querySelectorAll('{PANEL} .jp-CodeCell')]
  .map(cell => (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim())"""


def status_bar(page: Any) -> str:
    loc = page.locator("#jp-main-statusbar")
    return loc.first.inner_text(timeout=2000).strip() if loc.count() else ""


def kernel_idle(page: Any) -> bool:
    """The kernel is started and idle, and no "Select Kernel" dialog is up: one (a slow start; the status
    bar may say Idle behind it) is answered as a person would, and the next poll looks again."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.locator("button", has_text=re.compile(r"^\s*Select\s*$")).click()
        return False
    return "Python 3 (ipykernel) | Idle" in status_bar(page)
