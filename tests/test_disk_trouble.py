"""Disk trouble under the journal: trading stops with a clear alert, and nothing already written is lost.

A full disk is a real size-limited tmpfs mounted into the test's directory (we run as root); where
mounting is refused, the journal's writer is made to fail with the OSError a full disk raises. A
read-only journal is a real read-only mount at connect time, and SQLite's own SQLITE_READONLY
(``PRAGMA query_only``) mid-session, since a filesystem holding open files cannot be remounted.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc
from cmc_lab.core.model import SubmitOrder
from cmc_lab.journal import Journal, JournalReadOnly


@dataclass
class Disk:
    """A small disk for a journal: a tmpfs when the kernel lets us mount one, else a plain directory
    whose "full" state is an injected ENOSPC on the journal's writer."""

    path: Path
    mounted: bool
    filler: Path | None = None
    patched: list[tuple[Journal, Any]] = field(default_factory=list)

    def fill(self, eng: cmc.Engine) -> None:
        if not self.mounted:
            conn = eng.journal._conn  # fault injection reaches into the writer on purpose
            eng.journal._conn = _FullDisk(conn)  # type: ignore[assignment]
            self.patched.append((eng.journal, conn))
            return
        self.filler = self.path / "filler.bin"
        with self.filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        for size in (4096, 512, 1):  # the last scraps of space, so the next page SQLite needs fails
            try:
                with self.filler.open("ab") as fh:
                    while True:
                        fh.write(b"\0" * size)
                        fh.flush()
            except OSError:
                pass

    def free(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None
        for journal, conn in self.patched:
            journal._conn = conn
        self.patched.clear()

    def remount_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)


class _FullDisk:
    """A writer connection whose writes fail as a full disk fails them (used only if mounting is refused)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def executemany(self, *args: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device (injected: tmpfs could not be mounted)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _mount(path: Path, size: str) -> bool:
    path.mkdir()
    if os.name != "posix" or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    small = Disk(tmp_path / "disk", _mount(tmp_path / "disk", "4m"))
    yield small
    small.free()
    if small.mounted:
        subprocess.run(["umount", "-l", str(small.path)], capture_output=True, check=False)


@pytest.fixture
def sent() -> list[str]:
    return []


def connect(path: Path, sent: list[str]) -> cmc.Engine:
    eng = cmc.connect("sim", seed=7, clock="virtual", journal=path)
    venue = eng.venues["COMEX"]
    original = venue.submit

    def recording(command: SubmitOrder) -> None:
        sent.append(command.client_order_id)
        original(command)

    venue.submit = recording  # type: ignore[method-assign]
    return eng


def buy_gc(eng: cmc.Engine) -> cmc.Order:
    ask = eng.quote("COMEX.GC").ask
    return eng.submit("COMEX.GC", "buy", 1, price=eng.instrument("COMEX.GC").round_to_tick(ask + 1.0))


def journal_alert(eng: cmc.Engine) -> dict[str, Any]:
    alerts = eng.alerts()
    assert not alerts.empty, "the halt must be explained by an alert"
    rows = alerts[alerts["source"] == "journal"]
    assert len(rows) == 1, alerts
    return dict(rows.iloc[0])


def assert_blocked_by_the_journal(eng: cmc.Engine, sent: list[str]) -> None:
    assert eng.trading_state is cmc.TradingState.HALTED
    alert = journal_alert(eng)
    assert alert["level"] == "critical"
    assert "trading HALTED: the journal cannot be written" in alert["message"]
    assert "eng.rearm()" in alert["message"]
    before = list(sent)
    again = buy_gc(eng)
    assert again.state is cmc.OrderState.DENIED
    assert "journal" in again.reason, again.reason
    assert sent == before, "nothing may leave for a venue while the journal cannot be written"
    assert eng.runtime.thread.is_alive()


def test_a_full_disk_halts_trading_with_an_alert_and_keeps_every_committed_row(
    disk: Disk, sent: list[str]
) -> None:
    path = disk.path / "run.sqlite"
    eng = connect(path, sent)
    try:
        filled = []
        for _ in range(3):  # one at a time: an identical order still working would be a duplicate
            filled.append(buy_gc(eng))
            assert filled[-1].wait(5) is cmc.OrderState.FILLED
        head = eng.journal.head

        disk.fill(eng)
        refused = None
        for _ in range(100):  # pages SQLite already holds absorb a few rows; keep trading until refused
            order = buy_gc(eng)
            if order.state is cmc.OrderState.DENIED:
                refused = order
                break
            order.wait(5)
        assert refused is not None, "a full disk never refused a journal write"
        assert refused.reason.startswith("journal unavailable:")
        assert "disk is full" in refused.reason or "No space left on device" in refused.reason
        assert_blocked_by_the_journal(eng, sent)

        disk.free()
        eng.rearm("disk space freed")
        assert eng.trading_state is cmc.TradingState.ACTIVE
        after = buy_gc(eng)
        assert after.wait(5) is cmc.OrderState.FILLED
        report = eng.journal.verify(expected_head=head)
        assert report.ok, report
        outage = [r["payload"] for r in eng.journal.rows(kinds=["JournalFault"])]
        assert len(outage) == 1 and outage[0]["alert"] == journal_alert(eng)["id"]
    finally:
        eng.close()

    with Journal(path, readonly=True) as journal:
        assert journal.verify(expected_head=head).ok
        for order in filled:
            kinds = list(journal.timeline(order.client_order_id)["kind"])
            assert kinds == ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"], kinds
        assert "OrderFilled" in set(journal.timeline(after.client_order_id)["kind"])


def test_rearm_while_the_disk_is_still_full_keeps_trading_halted(disk: Disk, sent: list[str]) -> None:
    eng = connect(disk.path / "run.sqlite", sent)
    try:
        assert buy_gc(eng).wait(5) is cmc.OrderState.FILLED
        disk.fill(eng)
        for _ in range(100):
            if buy_gc(eng).state is cmc.OrderState.DENIED:
                break
        eng.rearm("too early")
        assert eng.trading_state is cmc.TradingState.HALTED
        alerts = eng.alerts()
        assert list(alerts["source"]).count("journal") == 2  # the refused rearm alerts again
        assert_halted = buy_gc(eng)
        assert assert_halted.state is cmc.OrderState.DENIED and "journal" in assert_halted.reason
    finally:
        disk.free()
        eng.close()


def test_a_journal_that_turns_read_only_mid_session_halts_trading_and_resumes_when_fixed(
    tmp_path: Path, sent: list[str]
) -> None:
    path = tmp_path / "run.sqlite"
    eng = connect(path, sent)
    try:
        first = buy_gc(eng)
        assert first.wait(5) is cmc.OrderState.FILLED
        head = eng.journal.head
        conn = eng.journal._conn
        assert conn is not None
        conn.execute("PRAGMA query_only = ON")  # SQLITE_READONLY, as a read-only file gives

        refused = buy_gc(eng)
        assert refused.state is cmc.OrderState.DENIED
        assert "cannot be written" in refused.reason and "read-only" in refused.reason, refused.reason
        assert_blocked_by_the_journal(eng, sent)
        assert eng.journal.head == head

        conn.execute("PRAGMA query_only = OFF")
        eng.rearm("journal writable again")
        assert buy_gc(eng).wait(5) is cmc.OrderState.FILLED
        assert eng.journal.verify(expected_head=head).ok
        kinds = [r["kind"] for r in eng.journal.rows() if r["seq"] > head[0]]
        assert kinds[:2] == ["JournalFault", "TradingStateChanged"], kinds
    finally:
        eng.close()


def test_a_journal_on_a_read_only_filesystem_refuses_to_trade_and_stays_readable(
    disk: Disk, sent: list[str]
) -> None:
    if not disk.mounted:
        pytest.skip("mounting a tmpfs was refused; a read-only filesystem cannot be made here")
    path = disk.path / "run.sqlite"
    eng = connect(path, sent)
    order = buy_gc(eng)
    assert order.wait(5) is cmc.OrderState.FILLED
    head = eng.journal.head
    eng.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    disk.remount_read_only()

    with pytest.raises(JournalReadOnly, match=r"cannot be written.*read-only") as refused:
        cmc.connect("sim", seed=7, clock="virtual", journal=path)
    assert "readonly=True" in str(refused.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with Journal(path, readonly=True) as journal:
        assert journal.verify(expected_head=head).ok
        assert "OrderFilled" in set(journal.timeline(order.client_order_id)["kind"])
