"""Audit packs: every order event of a window with its record fields, verifiable, and any change found."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.bench.audit import audit_export_seconds, build_day
from cmc_lab.cli import main
from cmc_lab.execution.hedge import TicketState
from cmc_lab.journal import Journal, JournalRow
from cmc_lab.journal.audit import FILES, ORDER_EVENT_FIELDS, export_pack
from cmc_lab.journal.pack import MANIFEST, verify_pack
from cmc_lab.journal.ratios import ratios
from cmc_lab.journal.window import iso, to_ns

T0 = 1_795_528_800_000_000_000  # 2026-11-24T14:00:00Z
DAY = 86_400_000_000_000


@pytest.fixture
def session(eng: cmc.Engine) -> cmc.Engine:
    """A session with a filled order, a denied one, a chased ticket and a kill switch used and re-armed."""
    eng.submit("COMEX.GC", "buy", 1, price=4177.4).wait(timeout=5)
    eng.submit("COMEX.GC", "buy", 1, price=2000.0)
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    eng.venues["COMEX"].inject("reject", times=1)
    assert eng.hedge("au_gc", "buy", 3, policy="chase").wait(timeout=10) is TicketState.FILLED
    eng.kill("end of day drill", who="desk")
    eng.rearm(who="desk")
    return eng


def read(pack: Path, name: str) -> str:
    with zipfile.ZipFile(pack) as zf:
        return zf.read(name).decode()


def table(pack: Path, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read(pack, name))))


def rewrite(pack: Path, name: str, change: object) -> None:
    """Rewrite one member of the zip (a valid zip again, CRC and all): what someone editing a pack does."""
    with zipfile.ZipFile(pack) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if change is None:
        del members[name]
    elif callable(change):
        members[name] = change(members[name])
    else:
        members[name] = change  # type: ignore[assignment]
    pack.unlink()
    with zipfile.ZipFile(pack, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)


def test_the_pack_holds_every_file_each_listed_with_its_sha256(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)

    with zipfile.ZipFile(pack) as zf:
        assert sorted(zf.namelist()) == sorted([*FILES, MANIFEST])
        assert zf.testzip() is None
    manifest = json.loads(read(pack, MANIFEST))
    assert set(manifest["files"]) == set(FILES)
    assert manifest["head"]["seq"] == session.journal.head[0] - 0 or manifest["head"]["seq"] > 0
    report = verify_pack(pack)
    assert report.ok and report.altered == () and str(report).startswith("audit pack intact: 15 files")


def test_every_order_event_is_there_with_the_order_record_fields(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)

    rows = table(pack, "order_events.csv")
    journaled = [r for r in session.journal.rows() if r["kind"].startswith("Order")]
    assert [int(r["seq"]) for r in rows] == [r["seq"] for r in journaled]
    assert list(rows[0]) == list(ORDER_EVENT_FIELDS)
    fill = next(r for r in rows if r["event"] == "OrderFilled")
    for name in ("client_order_id", "venue_order_id", "trade_id", "instrument", "side", "price", "quantity"):
        assert fill[name], name
    assert (fill["order_type"], fill["time_in_force"], fill["account"]) == ("LIMIT", "GFD", "US-FUT")
    assert fill["last_px"] == "4100.10" and fill["price"] == "4177.4", "money as exact decimal text"
    assert fill["ts_event_utc"] == iso(int(fill["ts_event_ns"])) and len(fill["ts_event_utc"]) == 30
    submitted = next(r for r in rows if r["event"] == "OrderSubmitted")
    assert "price_band" in submitted["risk_checks"] and submitted["decision_seq"]
    denied = next(r for r in rows if r["event"] == "OrderDenied")
    assert denied["risk_checks"].startswith("daily_limits") and denied["state"] == "DENIED"
    intent = next(r for r in rows if r["event"] == "OrderInitialized" and r["ticket_id"])
    assert intent["decision"].startswith("HedgeDecision send") and intent["purpose"] == "leg"
    assert intent["decision_bid"] and intent["decision_ask"]
    lines = [json.loads(line) for line in read(pack, "order_events.jsonl").splitlines()]
    assert [line["seq"] for line in lines] == [int(r["seq"]) for r in rows]
    assert lines[0]["price"] == rows[0]["price"] and isinstance(lines[0]["ts_event_ns"], int)


def test_the_summary_tables_cover_tickets_alerts_kill_switch_and_ratios(
    session: cmc.Engine, tmp_path: Path
) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)

    (ticket,) = table(pack, "tickets.csv")
    assert (ticket["state"], ticket["policy"], ticket["decision"]) == ("FILLED", "chase", "send")
    legs = {ticket[f"leg{n}_instrument"]: n for n in (1, 2)}
    slippage = ticket[f"leg{legs[GC]}_slippage"]
    assert (
        re.fullmatch(r"-?\d+\.\d\d", slippage) and "legs" not in ticket
    )  # money to the cent, one column per leg
    live = session.ticket(ticket["ticket_id"]).report()["legs"][GC]["slippage_money"]
    assert Decimal(slippage) == live  # the pack, rebuilt from the journal, says what the live ticket said
    kills = table(pack, "kill_switch.csv")
    assert [(k["state"], k["who"]) for k in kills] == [("HALTED", "desk"), ("ACTIVE", "desk")]
    assert kills[0]["reason"] == "end of day drill"
    ratio = {r["instrument"]: r for r in table(pack, "ratios.csv")}
    assert ratio[GC]["new_orders"] == "3" and ratio[GC]["trades"] == "2"
    assert ratio[GC]["order_to_trade"] == "1.5000" and ratio[GC]["denied"] == "1"
    orders = table(pack, "orders.csv")
    assert {o["state"] for o in orders} == {"FILLED", "DENIED", "REJECTED"}
    html = read(pack, "summary.html")
    for text in ("Hash chain", "Hedge tickets", "Kill switch", "end of day drill", "intact", "Slippage"):
        assert text in html, text
    chain = json.loads(read(pack, "chain.json"))
    assert chain["verify"]["ok"] and chain["head"]["hash"] == session.journal.head[1]
    assert "--expect-head" in read(pack, "verification.txt")


def test_a_window_keeps_the_rows_between_since_and_until(tmp_path: Path) -> None:
    path = tmp_path / "day.sqlite"
    build_day(path, 3_000)
    with Journal(path, readonly=True) as journal:
        stamps = [r["ts_event"] for r in journal.rows()]
        since, until = stamps[1000], stamps[2000]
        pack = export_pack(journal, tmp_path / "w.zip", since, until, progress=False)
        expected = [r["seq"] for r in journal.rows(since_ns=since, until_ns=until)]
    window = json.loads(read(pack, MANIFEST))["window"]
    assert (window["first_seq"], window["last_seq"]) == (expected[0], expected[-1])
    rows = table(pack, "order_events.csv")
    assert all(expected[0] <= int(r["seq"]) <= expected[-1] for r in rows)
    first = rows[0]  # an order that began before the window still carries its record fields
    assert first["instrument"] and first["side"] and first["price"] and first["account"]
    assert verify_pack(pack).ok


@pytest.mark.parametrize(
    "name",
    ["order_events.csv", "order_events.jsonl", "orders.csv", "events.jsonl", "summary.html", "chain.json"],
)
def test_an_edited_file_fails_the_manifest_check_by_name(
    session: cmc.Engine, tmp_path: Path, name: str
) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    rewrite(pack, name, lambda data: data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])

    report = verify_pack(pack)

    assert not report.ok and report.altered == (name,)
    assert f"{name}: SHA-256 differs from manifest.json" in str(report)


def test_added_removed_and_rewritten_members_are_named(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    copy = tmp_path / "copy.zip"
    copy.write_bytes(pack.read_bytes())

    rewrite(pack, "notes.txt", b"nothing to see")
    assert verify_pack(pack).altered == ("notes.txt",)
    rewrite(copy, "alerts.csv", None)
    assert "alerts.csv is listed in manifest.json but missing" in str(verify_pack(copy))


def test_a_rewritten_manifest_does_not_hide_edited_journal_rows(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)

    edited = []

    def forge(data: bytes) -> bytes:
        lines = data.decode().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if '"qty":1,' in line)
        lines[at] = lines[at].replace('"qty":1,', '"qty":9,')
        edited.append(json.loads(lines[at])["seq"])
        return "".join(lines).encode()

    rewrite(pack, "events.jsonl", forge)
    with zipfile.ZipFile(pack) as zf:
        events = zf.read("events.jsonl")
    import hashlib

    manifest = json.loads(read(pack, MANIFEST))
    manifest["files"]["events.jsonl"] = {"sha256": hashlib.sha256(events).hexdigest(), "bytes": len(events)}
    rewrite(pack, MANIFEST, json.dumps(manifest).encode())

    report = verify_pack(pack)

    assert not report.ok and report.altered == ("events.jsonl",)
    assert f"row {edited[0]}" in str(report) and "hash mismatch" in str(report)


def test_a_member_removed_with_its_manifest_entry_is_named(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    manifest = json.loads(read(pack, MANIFEST))
    del manifest["files"]["compliance_contracts.csv"]
    rewrite(pack, "compliance_contracts.csv", None)
    rewrite(pack, MANIFEST, json.dumps(manifest).encode())

    report = verify_pack(pack)

    assert not report.ok and report.altered == ("compliance_contracts.csv",)
    assert "compliance_contracts.csv is not listed in manifest.json: it was removed" in str(report)


def test_a_pack_of_the_first_format_without_the_contract_counts_still_verifies(
    session: cmc.Engine, tmp_path: Path
) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    manifest = json.loads(read(pack, MANIFEST))
    del manifest["files"]["compliance_contracts.csv"]
    manifest["format"] = "cmc-lab-audit-pack/1"
    rewrite(pack, "compliance_contracts.csv", None)
    rewrite(pack, MANIFEST, json.dumps(manifest).encode())

    assert verify_pack(pack).ok


def test_bytes_flipped_inside_the_zip_name_the_damaged_file(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    with zipfile.ZipFile(pack) as zf:
        info = zf.getinfo("tickets.csv")
    data = bytearray(pack.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[at] ^= 0xFF
    pack.write_bytes(bytes(data))

    report = verify_pack(pack)

    assert not report.ok and report.altered == ("tickets.csv",)


def test_a_pack_checked_against_another_journal_says_so(session: cmc.Engine, tmp_path: Path) -> None:
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    with Journal(session.journal.path, readonly=True) as same:
        assert verify_pack(pack, same).ok
    other = tmp_path / "other.sqlite"
    build_day(other, 200)
    with Journal(other, readonly=True) as journal:
        report = verify_pack(pack, journal)
    assert not report.ok and "the pack and the journal differ" in str(report)


def test_a_broken_journal_is_exported_with_its_verification_report(tmp_path: Path) -> None:
    path = tmp_path / "day.sqlite"
    build_day(path, 300)
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET payload = payload || ' ' WHERE seq = 50")
    conn.commit()
    conn.close()

    pack = export_pack(path, tmp_path / "broken.zip", progress=False)

    chain = json.loads(read(pack, "chain.json"))
    assert not chain["verify"]["ok"] and chain["verify"]["first_bad_seq"] == 50
    assert "BROKEN" in read(pack, "summary.html") and "row 50" in read(pack, "verification.txt")
    assert verify_pack(pack).ok, "the pack is intact: it faithfully records a broken journal"


def test_times_accept_ns_datetimes_dates_and_iso_text() -> None:
    assert to_ns("since", None) is None
    assert to_ns("since", T0) == T0
    assert to_ns("since", "2026-11-24T14:00:00Z") == T0
    assert to_ns("since", "2026-11-24 22:00:00+08:00") == T0
    assert to_ns("since", "2026-11-24T14:00:00.000000001") == T0 + 1
    assert to_ns("since", datetime(2026, 11, 24, 14, tzinfo=UTC)) == T0
    assert to_ns("since", datetime(2026, 11, 24, 14)) == T0, "naive means UTC"
    assert to_ns("since", pd.Timestamp("2026-11-24 14:00", tz="UTC")) == T0
    assert to_ns("until", date(2026, 11, 25)) == T0 + DAY - 14 * 3_600_000_000_000
    assert iso(T0 + 101_865_313) == "2026-11-24T14:00:00.101865313Z"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("yesterday", ValueError),
        ("2026-13-45", ValueError),
        (True, TypeError),
        (1.5e18, TypeError),
        ([1], TypeError),
    ],
)
def test_a_bad_time_says_what_to_pass(value: object, error: type[Exception]) -> None:
    with pytest.raises(
        error, match=r"since=.* is not a time; pass ns since the epoch \(an int\), a datetime"
    ):
        to_ns("since", value)


def test_bad_windows_and_paths_are_refused_before_anything_is_written(
    eng: cmc.Engine, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="is after until"):
        eng.audit(tmp_path / "a.zip", since="2026-11-25", until="2026-11-24")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        eng.audit(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        eng.audit(tmp_path / "missing" / "a.zip")
    eng.audit(tmp_path / "a.zip", progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        eng.audit(tmp_path / "a.zip")
    assert eng.audit(tmp_path / "a.zip", overwrite=True, progress=False).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.zip",
        "run.sqlite",
        "run.sqlite-shm",
        "run.sqlite-wal",
    ]


def test_ratios_per_contract_per_day(tmp_path: Path) -> None:
    def order(n: int, ts: int, kinds: list[str], instrument: str = "SHFE.au") -> list[JournalRow]:
        ids = {"order_id": f"r1-{n:06d}", "instrument": instrument, "venue": instrument.split(".")[0]}
        payload = {"last_qty": 2}
        return [JournalRow(kind, ts, ts, 0, payload, **ids) for kind in kinds]

    rows = order(1, T0, ["OrderInitialized", "OrderSubmitted", "OrderFilled"])
    rows += order(2, T0, ["OrderInitialized", "OrderSubmitted", "OrderCancelRequested", "OrderCanceled"])
    rows += order(3, T0, ["OrderInitialized", "OrderSubmitted", "OrderCancelRequested", "OrderCanceled"])
    rows += order(4, T0, ["OrderInitialized", "OrderDenied"])
    rows += order(5, T0 + DAY, ["OrderInitialized", "OrderSubmitted", "OrderFilled", "OrderFilled"])
    rows += order(6, T0, ["OrderInitialized", "OrderSubmitted"], "COMEX.GC")
    with Journal(tmp_path / "r.sqlite") as journal:
        journal.append_many(rows)
        frame = ratios(journal)
        first_day = ratios(journal, until=T0 + DAY)

    by = frame.set_index(["day", "instrument"])
    # T0 is 22:00 in Shanghai (Tuesday's night session: Wednesday's trading day) and 08:00 in Chicago.
    au = by.loc[("2026-11-25", "SHFE.au")]
    assert (au["new_orders"], au["denied"], au["cancel_requests"], au["trades"], au["traded_lots"]) == (
        3,
        1,
        2,
        1,
        2,
    )
    assert au["order_to_trade"] == 5.0 and au["cancel_ratio"] == pytest.approx(2 / 3)
    assert by.loc[("2026-11-26", "SHFE.au"), "order_to_trade"] == 0.5
    assert pd.isna(by.loc[("2026-11-24", "COMEX.GC"), "order_to_trade"]), "no trades: undefined"
    assert sorted(first_day["day"].unique()) == ["2026-11-24", "2026-11-25"]


def test_cli_writes_and_verifies_a_pack(
    session: cmc.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(session.journal.path)
    pack = tmp_path / "cli.zip"

    assert main(["audit", str(pack), "--journal", journal, "--since", "2026-11-24", "--quiet"]) == 0
    assert f"wrote {pack}" in capsys.readouterr().out
    assert main(["audit", "verify", str(pack), "--journal", journal]) == 0
    assert "audit pack intact" in capsys.readouterr().out

    rewrite(pack, "kill_switch.csv", lambda data: data.replace(b"desk", b"ghost"))
    assert main(["audit", "verify", str(pack)]) == 1
    assert "kill_switch.csv: SHA-256 differs from manifest.json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["audit", "x.zip"], "needs --journal JOURNAL"),
        (["audit", "verify"], "name the audit pack"),
        (["audit", "verify", "nope.zip"], "no audit pack at nope.zip"),
        (["audit", "x.zip", "--journal", "missing.sqlite"], "journal missing.sqlite does not exist"),
    ],
)
def test_cli_audit_mistakes_get_a_message_and_exit_2(
    argv: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_cli_audit_of_a_bad_time_says_what_to_pass(
    session: cmc.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", str(tmp_path / "x.zip"), "--journal", str(session.journal.path), "--since", "noon"]
    assert main(argv) == 2
    assert "since='noon' is not a time" in capsys.readouterr().err


def test_the_progress_bar_runs_and_the_benchmark_reports_seconds(tmp_path: Path) -> None:
    path = tmp_path / "day.sqlite"
    build_day(path, 500)
    assert export_pack(path, tmp_path / "p.zip", progress=True).is_file()
    figures = audit_export_seconds(2_000, tmp_path)
    assert figures["n_events"] >= 2_000 and figures["export_s"] > 0 and figures["pack_bytes"] > 0


def test_the_audit_magic_writes_a_pack_of_the_session(tmp_path: Path) -> None:
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "cmc_lab")
    magics = ip.magics_manager.registry["CmcMagics"]
    try:
        ip.run_cell(
            f"%cmc connect sim --clock virtual --journal {tmp_path / 'm.sqlite'}", store_history=False
        )
        result = ip.run_cell(f"%cmc audit {tmp_path / 'm.zip'} --since 2026-11-24", store_history=False)
        assert result.error_in_exec is None and result.result == tmp_path / "m.zip"
        assert verify_pack(result.result).ok
    finally:
        if magics.engine is not None:
            magics.engine.close()
            magics.engine = None
        ip.user_ns.pop("eng", None)


def test_the_pack_lists_every_fill_with_its_fee_and_each_contracts_pnl_gross_and_net(
    session: cmc.Engine, tmp_path: Path
) -> None:
    """Fees in the audit pack (issue 15): each fill as booked, and P&L per contract net of fees,
    agreeing with the book's own fee ledger."""
    pack = session.audit(tmp_path / "audit.zip", progress=False)
    fills = table(pack, "fills.csv")
    assert fills and all(f["fee"] and f["fee_currency"] and f["fee_as_of"] for f in fills)
    assert {f["instrument"] for f in fills} == {GC, AU}
    pnl = {(r["account"], r["instrument"]): r for r in table(pack, "pnl.csv")}
    for (account, instrument), row in pnl.items():
        mine = [f for f in fills if (f["account"], f["instrument"]) == (account, instrument)]
        assert int(row["fills"]) == len(mine)
        assert Decimal(row["fees"]) == sum(Decimal(f["fee"]) for f in mine)
        assert Decimal(row["realized_gross"]) == sum(Decimal(f["realized"]) for f in mine)
        assert Decimal(row["realized_net"]) == Decimal(row["realized_gross"]) - Decimal(row["fees"])
    book = session.risk.capital.accounts
    for account in ("US-FUT", "CN-FUT"):
        assert sum(Decimal(r["fees"]) for (a, _), r in pnl.items() if a == account) == book[account].fees
    assert verify_pack(pack).ok
