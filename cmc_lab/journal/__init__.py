"""Journal: the append-only, hash-chained SQLite record of every event of a run (receipts, audit).

>>> from cmc_lab.journal import Journal
>>> with Journal(":memory:") as j:
...     _ = j.append("OrderSubmitted", ts_event=1, ts_init=2, mono_ns=3, payload={"qty": 1}, order_id="C-1")
...     j.verify().ok
True
"""

from cmc_lab.journal.chain import GENESIS
from cmc_lab.journal.errors import (
    CorruptJournal,
    ForeignDatabase,
    JournalClosed,
    JournalError,
    JournalIsDirectory,
    JournalNotFound,
    JournalReadOnly,
    JournalVersionTooNew,
    JournalWriteError,
)
from cmc_lab.journal.pack import PackReport, verify_pack
from cmc_lab.journal.receipts import Receipt, ReceiptNotFound, read_receipt
from cmc_lab.journal.rows import JournalRow
from cmc_lab.journal.store import Journal
from cmc_lab.journal.verify import VerifyReport

__all__ = [
    "GENESIS",
    "CorruptJournal",
    "ForeignDatabase",
    "Journal",
    "JournalClosed",
    "JournalError",
    "JournalIsDirectory",
    "JournalNotFound",
    "JournalReadOnly",
    "JournalRow",
    "JournalVersionTooNew",
    "JournalWriteError",
    "PackReport",
    "Receipt",
    "ReceiptNotFound",
    "VerifyReport",
    "read_receipt",
    "verify_pack",
]
