"""The desk's trading record is owner-only: new journals, their archives and audit packs are 0600 (or 0400)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cmc_lab.journal import Journal, JournalRow
from cmc_lab.journal.archive import rotate
from cmc_lab.journal.audit import export_pack
from cmc_lab.journal.pack import verify_pack

T0 = 1_795_528_800_000_000_000


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> object:
    """A umask that lets everyone read new files, as on many desks: the 0600 must come from the code."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def some_rows(n: int) -> list[JournalRow]:
    return [
        JournalRow(
            "OrderInitialized", T0 + i, T0 + i, 0, {"qty": 1}, order_id=f"o-{i}", instrument="COMEX.GC"
        )
        for i in range(n)
    ]


def test_a_new_journal_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as journal:
        journal.append_many(some_rows(3))
        assert mode(path) == 0o600
        assert mode(path.with_name("run.sqlite-wal")) == 0o600


def test_an_existing_journal_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    Journal(path).close()
    path.chmod(0o640)
    with Journal(path) as journal:
        journal.append_many(some_rows(1))
    assert mode(path) == 0o640


def test_a_new_audit_pack_is_owner_only_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with Journal(path) as journal:
        journal.append_many(some_rows(5))
        pack = export_pack(journal, tmp_path / "audit.zip", progress=False, instruments={})
    assert mode(pack) == 0o600
    assert verify_pack(pack).ok


def test_a_journal_archive_is_owner_read_only(tmp_path: Path) -> None:
    with Journal(tmp_path / "run.sqlite") as journal:
        journal.append_many(some_rows(10))
        rot = rotate(journal, 5)
    assert mode(rot.archive) == 0o400
