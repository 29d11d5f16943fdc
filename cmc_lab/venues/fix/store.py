"""Sequence-number store layer: the next MsgSeqNum each way of one FIX session, kept across restarts.

The file sits beside the journal (``run.sqlite.fix-CLIENT1-EXECUTOR.json``). It is created
atomically (a temporary file renamed into place), then updated in place by one fixed-size write
per change: a killed process leaves the old numbers or the new ones, never half of each, and a
save costs microseconds rather than the quarter millisecond of a rename on every message. It
holds no secrets.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

#: Fixed width, so that every save overwrites the whole record and the file never shrinks.
_RECORD = b'{"next_out": %20d, "next_in": %20d}\n'


class SeqStoreError(ValueError):
    """The sequence store file cannot be read; the message says how to recover."""


def store_path(journal: str | Path, sender: str, target: str) -> Path:
    """Where the sequence numbers of ``sender -> target`` live beside ``journal``.

    Examples
    --------
    >>> store_path("run.sqlite", "CLIENT1", "EXECUTOR").name
    'run.sqlite.fix-CLIENT1-EXECUTOR.json'
    """
    safe = "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", part) for part in (sender, target))
    path = Path(journal)
    return path.with_name(f"{path.name}.fix-{safe}.json")


class SeqStore:
    """``next_out`` (our next MsgSeqNum) and ``next_in`` (the one we expect); in memory when ``path`` is None.

    ``save()`` is called after every change: before a message is written to the socket and
    after an incoming one is processed, so a restart never reuses a number it sent.

    Examples
    --------
    >>> store = SeqStore(None)
    >>> store.next_out, store.next_in
    (1, 1)
    >>> store.next_out = 5; store.save(); store.next_out
    5
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.next_out = 1
        self.next_in = 1
        self._fd: int | None = None
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def __repr__(self) -> str:
        where = self.path.name if self.path is not None else "memory"
        return f"SeqStore({where}, next_out={self.next_out}, next_in={self.next_in})"

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            next_out, next_in = int(data["next_out"]), int(data["next_in"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SeqStoreError(
                f"FIX sequence store {path} is unreadable ({exc}); delete it and log on with "
                "ResetSeqNumFlag (add &reset=1 to the fix:// address) once, agreed with the counterparty"
            ) from None
        if next_out < 1 or next_in < 1:
            raise SeqStoreError(f"FIX sequence store {path} holds numbers below 1: {data!r}")
        self.next_out, self.next_in = next_out, next_in

    def reset(self) -> None:
        self.next_out = self.next_in = 1
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        record = _RECORD % (self.next_out, self.next_in)
        if self._fd is None:
            if not self.path.exists():
                tmp = self.path.with_name(self.path.name + ".tmp")
                try:
                    tmp.write_bytes(record)
                    os.replace(tmp, self.path)
                except OSError:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                    raise
            self._fd = os.open(self.path, os.O_RDWR)
            os.ftruncate(self._fd, len(record))
        os.pwrite(self._fd, record, 0)

    def close(self) -> None:
        """Release the file (the next save opens it again)."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


__all__ = ["SeqStore", "SeqStoreError", "store_path"]
