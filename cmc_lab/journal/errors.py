"""Journal errors: what is wrong with a journal file or a write, and what to do about it."""

from __future__ import annotations


class JournalError(RuntimeError):
    """Base of every journal error; the message says what is wrong and what to do."""


class JournalIsDirectory(JournalError):
    """The journal path names a directory, not a file."""


class JournalNotFound(JournalError):
    """Nothing to open: no file (read-only open), an empty file, or a missing directory."""


class ForeignDatabase(JournalError):
    """The path holds another program's SQLite database; it is never modified."""


class CorruptJournal(JournalError):
    """The file is not an SQLite database, or it is damaged; it is never overwritten."""


class JournalVersionTooNew(JournalError):
    """The journal was written by a newer cmc_lab whose schema this code does not know."""


class JournalReadOnly(JournalError):
    """A write to a journal opened with ``readonly=True`` or whose file cannot be written."""


class JournalClosed(JournalError):
    """A call on a journal after :meth:`Journal.close`."""


class JournalWriteError(JournalError):
    """A write failed (disk full, I/O error, locked); nothing of it was kept.

    ``error`` is the original exception (also the ``__cause__``). Rows committed before the
    failed write are intact and the chain continues from them on the next write.
    """

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error
