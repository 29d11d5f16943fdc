"""Audit pack container layer: a zip whose manifest holds every file's SHA-256, written and checked.

Files are written as text streams; a worker thread hashes and deflates each block while the
caller builds the next (zlib and hashlib release the GIL), then the zip is assembled from the
compressed members and renamed into place, so a pack is either whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from cmc_lab.journal import schema
from cmc_lab.journal.chain import encode_payload
from cmc_lab.journal.store import Journal
from cmc_lab.journal.verify import verify_chain

FORMAT = "cmc-lab-audit-pack/3"
MANIFEST = "manifest.json"
#: The members of a pack of :data:`FORMAT` (besides the manifest), each with what it holds.
FILES = {
    "order_events.csv": "every order event of the window with the order-record fields",
    "order_events.jsonl": "the same, one JSON object per line",
    "orders.csv": "one row per order: final state, fills, average price, slippage, latency",
    "tickets.csv": "one row per hedge ticket: decision and outcome, each leg in columns (instrument, side, "
    "qty, filled, decision and average price, slippage), latencies from the decision in ms",
    "alerts.csv": "alerts, acknowledgements, threshold crossings and actions",
    "kill_switch.csv": "every change of trading state (kill switch, re-arm) with who and why",
    "ratios.csv": "order-to-trade and cancel ratios per contract per exchange trading day",
    "compliance.csv": "each account's orders and cancels per exchange trading day, its busiest second, "
    "flagged at the programmatic-trading high-frequency thresholds",
    "compliance_contracts.csv": "per account, contract and exchange trading day: orders, cancels (IOC "
    "cancels apart), large cancels, self-trades and self-match denials, flagged at the exchanges' "
    "abnormal-trading thresholds",
    "fills.csv": "every fill as the book took it: lots opened and closed (today, yesterday), realized P&L, "
    "the fee with its schedule and as-of date, the cash it moved",
    "pnl.csv": "per account and contract: fills, lots bought and sold, realized P&L gross, fees, net",
    "events.jsonl": "every journal row of the window with its hashes (re-verifiable chain)",
    "chain.json": "the journal head at export, the window's links and the verification report",
    "verification.txt": "the verification report, readable",
    "summary.html": "the readable summary",
}
#: Earlier formats still verified, with the members a pack of each must have.
_MEMBERS = {
    "cmc-lab-audit-pack/1": frozenset(FILES) - {"compliance_contracts.csv", "fills.csv", "pnl.csv"},
    "cmc-lab-audit-pack/2": frozenset(FILES) - {"fills.csv", "pnl.csv"},
    FORMAT: frozenset(FILES),
}
_BLOCK = 1 << 20
_LIMIT = 0xFFFFFFFF  # beyond this a member would need ZIP64
_READ_ONLY = 0o100444 << 16  # regular file, r--r--r--


class PackFile:
    """One file of the pack: ``write(text)`` buffers; each full block is hashed and deflated."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self._out = path.open("wb")
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
        self._sha = hashlib.sha256()
        self.crc = self.size = 0
        self._buffer: list[str] = []
        self._buffered = 0

    def write(self, text: str) -> int:
        self._buffer.append(text)
        self._buffered += len(text)
        if self._buffered >= _BLOCK:
            self._flush()
        return len(text)

    def _flush(self) -> None:
        data = "".join(self._buffer).encode()
        self._buffer, self._buffered = [], 0
        self._sha.update(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._out.write(self._deflate.compress(data))

    def close(self) -> None:
        if self._out.closed:
            return
        self._flush()
        self._out.write(self._deflate.flush())
        self._out.close()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class PackWriter:
    """Write the files of a pack, then :meth:`finish` it into a zip at ``target`` with its manifest."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.members: dict[str, PackFile] = {}

    def open(self, name: str) -> PackFile:
        member = self.members[name] = PackFile(name, self.work / f"{len(self.members):02d}.deflate")
        return member

    def finish(self, target: Path, manifest: dict[str, Any]) -> None:
        """Close every file, write ``manifest.json`` (SHA-256 and size of each) and the zip, atomically."""
        for member in self.members.values():
            member.close()
        files = {name: {"sha256": m.sha256, "bytes": m.size} for name, m in self.members.items()}
        last = self.open(MANIFEST)
        last.write(json.dumps({"format": FORMAT, **manifest, "files": files}, indent=2))
        last.close()
        partial = target.with_name(f".{target.name}.partial")
        try:
            _assemble(partial, self.members.values())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        for member in self.members.values():
            member.close()


def _assemble(path: Path, members: Any) -> None:
    """Write a zip of already-deflated members: local headers, data, central directory, end record."""
    now = time.gmtime()
    dos_time = (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2)
    dos_date = ((now.tm_year - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday
    central: list[bytes] = []
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:  # owner-only
        for m in members:
            name = m.name.encode()
            compressed = m.path.stat().st_size
            offset = out.tell()
            if max(compressed, m.size, offset) >= _LIMIT:
                raise OverflowError(
                    f"{m.name} is too large for one audit pack; export a shorter window (since/until)"
                )
            fields = (0x0800, 8, dos_time, dos_date, m.crc, compressed, m.size, len(name))
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, *fields, 0) + name)
            with m.path.open("rb") as src:
                while block := src.read(_BLOCK):
                    out.write(block)
            central.append(
                struct.pack("<IHH", 0x02014B50, (3 << 8) | 20, 20)
                + struct.pack("<HHHHIIIHHHHHII", *fields, 0, 0, 0, 0, _READ_ONLY, offset)
                + name
            )
        start = out.tell()
        directory = b"".join(central)
        out.write(directory)
        out.write(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0)
        )
        out.flush()
        os.fsync(out.fileno())


def new_workdir(target: Path) -> tempfile.TemporaryDirectory[str]:
    """A scratch directory beside ``target`` (same file system, so the final rename is atomic)."""
    return tempfile.TemporaryDirectory(dir=target.parent, prefix=".audit-")


# ============================================================================ verify


@dataclass(frozen=True)
class PackReport:
    """The outcome of :func:`verify_pack`; true in a boolean context only when ``ok``.

    ``altered`` names the files that differ from the manifest (or were added, removed, or whose
    rows no longer chain); ``problems`` says what is wrong with each.
    """

    ok: bool
    path: Path
    files: int
    altered: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    window: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok and self.window.get("empty"):
            return (
                f"audit pack intact but EMPTY: {self.files} files match manifest.json; {self.window['empty']}"
            )
        if self.ok:
            w = self.window
            rows = f"rows {w.get('first_seq')} to {w.get('last_seq')}" if w.get("rows") else "no rows"
            return (
                f"audit pack intact: {self.files} files match manifest.json (SHA-256); window {rows} "
                "re-verified as a hash chain"
            )
        return f"audit pack ALTERED: {'; '.join(self.problems)}"

    def _repr_html_(self) -> str:
        colour, status = ("#1a7f37", "intact") if self.ok else ("#cf222e", "ALTERED")
        items = "".join(f"<li>{escape(p)}</li>" for p in self.problems)
        return f'<b style="color:{colour}">audit pack {status}</b> {escape(str(self.path))}<ul>{items}</ul>'


def verify_pack(path: str | Path, journal: Journal | None = None) -> PackReport:
    """Check an audit pack against its own manifest; a report naming every altered file.

    Every file's SHA-256 and size must match ``manifest.json``, no file may be missing or
    added (the manifest must list every member of its format: :data:`FILES` for this one, the
    earlier formats' without the files added after them: ``compliance_contracts.csv`` in 2, ``fills.csv`` and
    ``pnl.csv`` in 3), and the rows of ``events.jsonl`` must recompute and link as a hash chain from the
    window's first link to its last hash. With ``journal``, that last hash must also be the
    journal's own row at that seq (the pack came from this journal).

    Examples
    --------
    >>> verify_pack("audit-2026-11-24.zip").ok           # doctest: +SKIP
    True
    """
    pack = Path(path)
    if not pack.is_file():
        raise FileNotFoundError(f"no audit pack at {pack}; pass the .zip file cmc-lab audit wrote")
    problems: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(pack)
    except (zipfile.BadZipFile, OSError) as exc:
        return PackReport(False, pack, 0, (pack.name,), (f"{pack.name} is not a readable zip file ({exc})",))
    with zf:
        manifest = _manifest(zf, problems)
        listed: dict[str, Any] = manifest.get("files", {}) if manifest else {}
        names = zf.namelist()
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append((name, f"{name} appears more than once in the zip"))
        for name, meta in listed.items():
            problem = _check_file(zf, name, meta, names)
            if problem:
                problems.append((name, problem))
        for name in names:
            if manifest and name not in listed and name != MANIFEST:
                problems.append((name, f"{name} is not listed in manifest.json: it was added"))
        window = manifest.get("window", {}) if manifest else {}
        if "events.jsonl" in listed and not problems and manifest and manifest.get("verify_ok", True):
            problem = _check_events(zf, window)
            if problem:
                problems.append(("events.jsonl", problem))
    if journal is not None and not problems:
        problem = _check_source(journal, window)
        if problem:
            problems.append(("events.jsonl", problem))
    altered = tuple(dict.fromkeys(name for name, _ in problems))
    return PackReport(not problems, pack, len(listed), altered, tuple(p for _, p in problems), window)


def _manifest(zf: zipfile.ZipFile, problems: list[tuple[str, str]]) -> dict[str, Any] | None:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        problems.append((MANIFEST, "manifest.json is missing: this is not a pack cmc-lab audit wrote"))
        return None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        problems.append((MANIFEST, f"manifest.json cannot be read ({exc}): it was altered"))
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") not in _MEMBERS
        or not isinstance(manifest.get("files"), dict)
    ):
        problems.append((MANIFEST, f"manifest.json is not a {FORMAT} manifest: it was altered"))
        return None
    for name in sorted(_MEMBERS[manifest["format"]] - set(manifest["files"])):
        problems.append((name, f"{name} is not listed in manifest.json: it was removed from the pack"))
    return manifest


def _check_file(zf: zipfile.ZipFile, name: str, meta: Any, names: list[str]) -> str | None:
    if name not in names:
        return f"{name} is listed in manifest.json but missing from the pack"
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(name) as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
                size += len(block)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        return f"{name} cannot be read ({exc}): it was altered"
    if not isinstance(meta, dict) or digest.hexdigest() != meta.get("sha256") or size != meta.get("bytes"):
        return f"{name}: SHA-256 differs from manifest.json - the file was altered"
    return None


def _event_rows(zf: zipfile.ZipFile) -> Iterator[tuple[Any, ...]]:
    with zf.open("events.jsonl") as handle:
        for line in handle:
            row = json.loads(line)
            payload = row["payload"]
            text = encode_payload(payload) if isinstance(payload, dict) else payload
            yield (*(row[c] for c in schema.EVENT_COLUMNS[:9]), text, row["prev_hash"], row["hash"])


def _check_events(zf: zipfile.ZipFile, window: Mapping[str, Any]) -> str | None:
    if not window.get("rows"):
        return None
    start = (window["first_seq"] - 1, window["first_prev_hash"])
    try:
        report = verify_chain(_event_rows(zf), (window["last_seq"], window["last_hash"]), start)
    except (KeyError, TypeError, ValueError) as exc:
        return f"events.jsonl cannot be read as journal rows ({exc!r}): it was altered"
    return None if report.ok else f"events.jsonl: {report.reason}"


def _check_source(journal: Journal, window: Mapping[str, Any]) -> str | None:
    if not window.get("rows"):
        return None
    with journal._reading() as conn:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", (window["last_seq"],)).fetchone()
    if row is None:
        return f"journal {journal.path} has no row {window['last_seq']}: the pack came from another journal"
    if row[0] != window["last_hash"]:
        return (
            f"the pack's row {window['last_seq']} has hash {window['last_hash'][:16]}... but journal "
            f"{journal.path} has {row[0][:16]}...: the pack and the journal differ"
        )
    return None
