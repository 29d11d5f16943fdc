"""Journal storage layer, WAL checkpoints: run on a thread of their own, off the writer's commits.

SQLite's automatic checkpoint runs inside the commit that takes the write-ahead log past its
threshold: that commit copies the log into the database and waits for two fsyncs, milliseconds
where a commit takes tens of microseconds, and it can be the commit of an order's intent. A
journal writer switches it off and hands the work to a :class:`Checkpointer`: a daemon thread
with its own connection that runs a PASSIVE checkpoint (it never blocks a writer or a reader)
when rows were written since the last one. Committed rows are durable in the log either way.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Checkpointer:
    """Checkpoints the WAL of the journal at ``path`` every ``interval`` seconds while it is written.

    The writer calls :meth:`wrote` after each commit (one attribute store) and :meth:`close`
    before it closes its own connection.

    Examples
    --------
    >>> cp = Checkpointer(path)   # doctest: +SKIP
    >>> cp.wrote(); cp.close()    # doctest: +SKIP
    """

    def __init__(self, path: Path, interval: float = 0.25) -> None:
        self.errors: list[str] = []
        self._path = path
        self._interval = interval
        self._dirty = False
        self._stop = threading.Event()
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._thread = threading.Thread(target=self._run, name="cmc-journal-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """Rows were committed: the log has something to checkpoint."""
        self._dirty = True

    def close(self) -> None:
        """Stop the thread and close its connection (the writer's own close checkpoints what is left)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self._checkpoint()
        finally:
            self._conn.close()

    def _checkpoint(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # busy with another checkpointer, or a disk problem: next round
            self._dirty = True
            self.errors = [*self.errors[-9:], f"checkpoint of {self._path} failed: {exc}"]
