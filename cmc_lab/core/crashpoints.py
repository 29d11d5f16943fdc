"""Crash points: a test seam that kills this process with SIGKILL at a named place in the code.

Crash-survival tests set ``CMC_LAB_CRASH_AT="NAME:N"`` (several: ``"a:1,b:3"``) in a child
process; the N-th time that process reaches ``crash_point("NAME")`` it sends itself SIGKILL:
no ``finally``, no ``atexit``, no flush, exactly as ``kill -9`` would. The variable is read once,
at import; without it a crash point costs one dict lookup.

Examples
--------
>>> crash_point("after_send")  # not armed: nothing happens
"""

from __future__ import annotations

import os
import signal

#: The environment variable that arms crash points.
ENV = "CMC_LAB_CRASH_AT"

#: Every crash point placed in the code, and where it is.
CRASH_POINTS = {
    "after_intent_commit": "engine: an order's intent is committed, its message not yet handed to the venue",
    "after_send": "engine: the venue took the order's message (the next leg of a batch not yet)",
    "before_answer_journaled": "engine: an event arrived (a venue's answer), not journaled yet",
    "after_answer_journaled": "engine: the event is journaled, not yet applied to its order",
    "fill_before_journal": "FIX gateway: a fill's ExecutionReport is decoded, not yet handed to the engine",
    "mid_commit": "journal: rows inserted, the transaction not yet committed",
}


class CrashPointError(ValueError):
    """``CMC_LAB_CRASH_AT`` does not name known crash points."""


def parse(text: str) -> dict[str, int]:
    """``"NAME:N,..."`` as {name: N}; raises :class:`CrashPointError` saying what to write.

    Examples
    --------
    >>> parse("after_send:3, mid_commit:1")
    {'after_send': 3, 'mid_commit': 1}
    """
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition(":")
        if name not in CRASH_POINTS:
            raise CrashPointError(
                f"{ENV}={text!r}: unknown crash point {name!r}; known: {', '.join(CRASH_POINTS)}"
            )
        if not (count.isascii() and count.isdigit() and int(count) >= 1):
            raise CrashPointError(f"{ENV}={text!r}: write NAME:N with N >= 1, e.g. {name}:3")
        armed[name] = int(count)
    return armed


_armed: dict[str, int] = parse(os.environ.get(ENV, ""))


def crash_point(name: str, reached: bool = True) -> None:
    """Count a pass through crash point ``name`` (only when ``reached``); SIGKILL this process on the armed one."""
    if name not in _armed or not reached:
        return
    _armed[name] -= 1
    if _armed[name] == 0:
        os.write(2, f"\ncmc_lab crash point {name} reached: SIGKILL\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["CRASH_POINTS", "ENV", "CrashPointError", "crash_point", "parse"]
