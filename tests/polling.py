"""Waiting on a real peer in tests: poll a condition on the wall clock, fail with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(predicate: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    """Return once ``predicate()`` holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
