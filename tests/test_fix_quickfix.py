"""An independent FIX engine (QuickFIX) logs on to ``cmc-lab venue serve``, trades, reconnects with a
gap, resets in session and reconciles, validating every message against its FIX 4.4 dictionary.

The README's test command (scripts/test.sh) builds QuickFIX once into .quickfix-venv (from source,
about 5 minutes on two cores) and names it in CMC_LAB_QUICKFIX_PYTHON, so CI runs this test. A bare
``pytest`` without that variable skips it and says how to get it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "quickfix" / "interop.py"
QUICKFIX_PYTHON = os.environ.get("CMC_LAB_QUICKFIX_PYTHON")


@pytest.mark.skipif(
    not QUICKFIX_PYTHON,
    reason="needs QuickFIX: run bash scripts/test.sh, or bash scripts/quickfix/setup.sh and set "
    "CMC_LAB_QUICKFIX_PYTHON=.quickfix-venv/bin/python",
)
def test_quickfix_logs_on_trades_reconnects_with_a_gap_resets_and_reconciles() -> None:
    run = subprocess.run(
        [str(QUICKFIX_PYTHON), str(SCRIPT), "--cmc-python", sys.executable],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-6000:]
    steps = [line for line in run.stdout.splitlines() if line.startswith("ok  ")]
    assert len(steps) == 6, run.stdout
