"""Journal audit layer: export the self-contained audit pack (zip) of a time window.

A pack holds every order event of the window as CSV and JSON Lines with the fields order-record
rules ask for, one row per order and per hedge ticket (each leg in columns, latencies in ms),
alerts, kill-switch uses, order-to-trade and cancel ratios per contract per day, the compliance
counts (messages per account per day; orders, cancels, large cancels, self-trades and self-match
denials per contract per day), every journal row of the window with its hashes, the chain head
and a verification report, a readable HTML summary, and ``manifest.json`` with the SHA-256 of
every other file (the members are :data:`~cmc_lab.journal.pack.FILES`). Prices and money are
exact decimal strings; times are integer ns since the epoch beside ISO 8601 UTC text with nine
fractional digits. A pack is checked with :func:`~cmc_lab.journal.pack.verify_pack`; its ratios
come from :mod:`cmc_lab.journal.ratios`, its compliance counts from
:mod:`cmc_lab.journal.compliance`, its tickets table from :mod:`cmc_lab.journal.tickets`.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import pandas as pd

from cmc_lab.core.instruments import Instrument
from cmc_lab.journal import schema
from cmc_lab.journal.chain import GENESIS
from cmc_lab.journal.compliance import (
    CONTRACT_FIELDS,
    ContractCounter,
    MessageCounter,
    load_abnormal,
    load_thresholds,
)
from cmc_lab.journal.compliance import FIELDS as COMPLIANCE_FIELDS
from cmc_lab.journal.fills import FILL_FIELDS, PNL_FIELDS, FillTable
from cmc_lab.journal.pack import FILES, PackFile, PackWriter, new_workdir
from cmc_lab.journal.ratios import ratio_frame, ratio_rows, ratio_text
from cmc_lab.journal.receipts import with_offset
from cmc_lab.journal.records import OrderRecord, order_summary, step_of
from cmc_lab.journal.report import slippage_table, summary_html, verification_text
from cmc_lab.journal.store import Journal, anchor
from cmc_lab.journal.tickets import TicketTable
from cmc_lab.journal.window import EmptyAuditWindow, empty_window_note, iso, to_ns, window


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ORDER_KINDS = frozenset(
    _names(
        "OrderInitialized OrderDenied OrderSubmitted OrderAccepted OrderRejected OrderFilled "
        "OrderCancelRequested OrderCanceled OrderCancelRejected OrderExpired DuplicateFillIgnored"
    )
)
#: Columns of order_events.csv / .jsonl: one row per order event. ``risk_checks`` is on the
#: submission (the checks passed) or denial row, ``decision`` on the intent row; every row carries
#: ``decision_seq``, the journal row of the decision behind the order.
ORDER_EVENT_FIELDS = _names(
    "seq event step ts_event_ns ts_event_utc ts_init_ns ts_init_utc client_order_id venue_order_id "
    "trade_id ticket_id purpose venue instrument side order_type price quantity time_in_force account "
    "last_px last_qty cum_qty leaves_qty state reason liquidity risk_checks decision_seq decision "
    "decision_bid decision_ask decision_quote_ts_ns hash"
)
ALERT_KINDS = ("Alert", "AlertsAcknowledged", "ThresholdCrossed", "ThresholdCleared", "ThresholdAction")
ALERT_FIELDS = ("seq", "time_utc", "kind", "level", "source", "message", "ticket_id", "order_id", "detail")
KILL_FIELDS = ("seq", "time_utc", "state", "reason", "who")
_CHUNK = 5_000
_SELECT = (
    "SELECT "
    + ", ".join(schema.EVENT_COLUMNS)
    + " FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_PURPOSES = (
    "SELECT order_id, json_extract(payload, '$.purpose') FROM events "
    "WHERE seq BETWEEN ? AND ? AND kind = 'HedgeOrderSent'"
)
_BEFORE = (
    "SELECT " + ", ".join(schema.EVENT_COLUMNS) + " FROM events WHERE seq < ?1 AND order_id IN "
    "(SELECT DISTINCT order_id FROM events WHERE seq BETWEEN ?1 AND ?2 AND order_id IS NOT NULL) ORDER BY seq"
)


# ============================================================================ export


def export_pack(
    journal: Journal | str | Path,
    path: str | Path,
    since: object = None,
    until: object = None,
    *,
    instruments: Mapping[str, Instrument] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write the audit pack (a zip) of the journal rows between ``since`` and ``until``; its path.

    The window runs from the first row whose ``ts_event`` is at or after ``since`` to the last
    row whose ``ts_event`` is before ``until``, in journal order, so its rows form one piece of
    the hash chain that ``verify_pack`` re-checks. ``since``/``until`` take int ns, datetimes or
    ISO 8601 text (UTC unless it says otherwise); None means the start or the end. The whole
    journal is verified too and the result goes into the pack. ``progress`` shows a bar
    (``tqdm.auto``: a widget in notebooks). An existing file at ``path`` is refused unless
    ``overwrite``.

    Examples
    --------
    >>> eng.audit("audit-2026-11-24.zip", since="2026-11-24", until="2026-11-25")  # doctest: +SKIP
    PosixPath('audit-2026-11-24.zip')
    """
    since_ns, until_ns = to_ns("since", since), to_ns("until", until)
    if since_ns is not None and until_ns is not None and since_ns > until_ns:
        raise ValueError(f"since ({iso(since_ns)}) is after until ({iso(until_ns)}); swap them")
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(
            f"audit pack path {target} is a directory; pass a file name such as audit.zip"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass another path, or overwrite=True to replace it")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {target.parent} does not exist")
    source = journal if isinstance(journal, Journal) else Journal(journal, readonly=True)
    try:
        if instruments is None:
            from cmc_lab.core.specs import load_specs

            instruments = load_specs().instruments
        with new_workdir(target) as work, PackWriter(Path(work)) as writer:
            chain = _Export(source, writer, instruments, since_ns, until_ns).run(progress)
            manifest = {
                "created_utc": iso(time.time_ns()),
                "journal": chain["journal"],
                "head": chain["head"],
            }
            writer.finish(target, manifest | {"window": chain["window"], "verify_ok": chain["verify"]["ok"]})
    finally:
        if source is not journal:
            source.close()
    if chain["window"].get("empty"):
        warnings.warn(EmptyAuditWindow(f"{target}: {chain['window']['empty']}"), stacklevel=2)
    return target


class _Export:
    """One pass over the window's rows, writing the streamed files as it goes."""

    def __init__(
        self,
        journal: Journal,
        writer: PackWriter,
        instruments: Mapping[str, Instrument],
        since_ns: int | None,
        until_ns: int | None,
    ) -> None:
        self.journal, self.writer, self.instruments = journal, writer, instruments
        self.since_ns, self.until_ns = since_ns, until_ns
        self.records: dict[str, OrderRecord] = {}
        self.in_window: dict[str, None] = {}
        self.purposes: dict[str, str] = {}
        self.offsets: dict[str, str] = {}  # order id -> its offset (SHFE/INE), from its intent
        self.tickets = TicketTable()
        self.fills = FillTable()
        self.alerts: list[tuple[Any, ...]] = []
        self.kills: list[tuple[Any, ...]] = []
        self.kinds: Counter[str] = Counter()
        self.order_events = 0
        self.messages = MessageCounter(instruments, load_thresholds())
        self.contracts = ContractCounter(instruments, load_abnormal())
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def run(self, progress: bool) -> dict[str, Any]:
        """Write every file of the pack; the chain facts (head, window, verification) for the manifest."""
        with self.journal._reading() as conn:
            head = self.journal._head(conn)
            lo, hi = window(conn, self.since_ns, self.until_ns, head[0])
            start = anchor(conn) or (0, GENESIS)
            self.purposes = dict(conn.execute(_PURPOSES, (lo, hi)).fetchall())
            before = conn.execute(_BEFORE, (lo, hi)).fetchall() if hi >= lo else []
            counts = ratio_rows(conn, lo, hi, self.since_ns, self.until_ns, self.instruments)
            first_prev = conn.execute("SELECT prev_hash FROM events WHERE seq = ?", (lo,)).fetchone()
            spans = conn.execute("SELECT MIN(ts_event), MAX(ts_event) FROM events").fetchone()
        for row in before:  # orders that began before the window: their state when it opens
            payload, _ = _decode(row[9])
            if payload is not None:
                self._record(row[5], row[6]).apply(row[4], payload, row[3], row[1], row[2])
                self._offset(row[4], row[5], payload)
        span = {
            "since_ns": self.since_ns,
            "until_ns": self.until_ns,
            "since_utc": iso(self.since_ns),
            "until_utc": iso(self.until_ns),
            "first_seq": lo if hi >= lo else None,
            "last_seq": hi if hi >= lo else None,
            "rows": max(hi - lo + 1, 0),
            "first_prev_hash": first_prev[0] if first_prev and hi >= lo else "",
            "last_hash": "",
        }
        if hi < lo:
            span["empty"] = empty_window_note(self.since_ns, self.until_ns, spans)
        files = {name: self.writer.open(name) for name in FILES}
        span["last_hash"] = self._stream(files, lo, hi, progress)
        report = self.journal.verify()
        self._write_tables(files, counts)
        chain = {
            "journal": str(self.journal.path),
            "head": {"seq": head[0], "hash": head[1]},
            "window": span,
            "verify": {
                "ok": report.ok,
                "rows": report.rows,
                "first_bad_seq": report.first_bad_seq,
                "reason": report.reason,
                "head_hash": report.head_hash,
                "text": str(report),
            },
            "starts_after": {"seq": start[0], "hash": start[1]},
            "rotations": self._rotations(),
        }
        json.dump(chain, files["chain.json"], indent=2)
        files["verification.txt"].write(verification_text(chain))
        files["summary.html"].write(self._summary(chain))
        return chain

    # ------------------------------------------------------------------ the pass

    def _rows(self, lo: int, hi: int) -> Iterator[list[tuple[Any, ...]]]:
        after = lo - 1
        while after < hi:
            with self.journal._reading() as conn:
                chunk = conn.execute(_SELECT, (after, hi, _CHUNK)).fetchall()
            if not chunk:
                return
            yield chunk
            after = chunk[-1][0]

    def _stream(self, files: Mapping[str, PackFile], lo: int, hi: int, progress: bool) -> str:
        self._order_csv = csv.writer(files["order_events.csv"])
        self._order_csv.writerow(ORDER_EVENT_FIELDS)
        order_json, events = files["order_events.jsonl"], files["events.jsonl"]
        bar = _bar(max(hi - lo + 1, 0), progress)
        last_hash = ""
        try:
            for chunk in self._rows(lo, hi):
                lines, order_lines = [], []
                for row in chunk:
                    payload, body = _decode(row[9])
                    lines.append(_event_line(row, body))
                    if payload is not None:
                        line = self._take(row, payload)
                        if line is not None:
                            order_lines.append(line)
                events.write("".join(lines))
                order_json.write("".join(order_lines))
                last_hash = chunk[-1][11]
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return last_hash

    def _take(self, row: tuple[Any, ...], payload: dict[str, Any]) -> str | None:
        """One row of the window: order events to the order files (their JSON line returned), hedge
        rows to the tickets, alerts and kill-switch uses to theirs. Rows whose ts_event falls
        outside [since, until) still move their order's state but are not listed."""
        seq, ts_event, kind, order_id, ticket_id = row[0], row[1], row[4], row[5], row[6]
        inside = (self.since_ns is None or ts_event >= self.since_ns) and (
            self.until_ns is None or ts_event < self.until_ns
        )
        self.kinds[kind] += 1
        if order_id and kind in ORDER_KINDS:
            values = self._order_event(row, payload)
            if not inside:
                return None
            self.order_events += 1
            self._order_csv.writerow(values)
            record = {k: v for k, v in zip(ORDER_EVENT_FIELDS, values, strict=True) if v is not None}
            return self._dumps(record) + "\n"
        if kind.startswith("Hedge") and ticket_id:
            self.tickets.hedge(seq, kind, ticket_id, payload, row[3])
        elif inside and kind == "FillBooked":
            self.fills.add(seq, ts_event, payload)
        elif inside and kind in ALERT_KINDS:
            self._alert(row, payload)
        elif inside and kind == "TradingStateChanged":
            self.kills.append(
                (seq, iso(ts_event), payload.get("state"), payload.get("reason"), payload.get("who"))
            )
        return None

    def _record(self, order_id: str, ticket_id: str | None) -> OrderRecord:
        record = self.records.get(order_id)
        if record is None:
            record = self.records[order_id] = OrderRecord(
                order_id, ticket_id=ticket_id, purpose=self.purposes.get(order_id) or "manual"
            )
        return record

    def _order_event(self, row: tuple[Any, ...], payload: dict[str, Any]) -> list[Any]:
        seq, ts_event, ts_init, mono, kind, order_id, ticket_id, venue, instrument = row[:9]
        record = self._record(order_id, ticket_id)
        self.in_window[order_id] = None
        record.apply(kind, payload, mono, ts_event, ts_init)
        self._offset(kind, order_id, payload)
        self._count(record, kind, payload, ts_event, mono, record.instrument or instrument)
        if kind == "OrderInitialized":
            ticket = self.tickets.get(record.ticket_id or "")
            if ticket is not None and ticket.decision is not None:
                record.decision_seq, record.decision = ticket.decision
            else:
                record.decision_seq, record.decision = seq, record.reason or "manual order"
        fill = kind == "OrderFilled"
        reason = payload.get("reason")
        checks = (
            record.checks if kind == "OrderSubmitted" else record.denial if kind == "OrderDenied" else None
        )
        return [
            seq,
            kind,
            step_of(kind, payload, record),
            ts_event,
            iso(ts_event),
            ts_init,
            iso(ts_init),
            order_id,
            record.venue_order_id,
            payload.get("trade_id"),
            record.ticket_id,
            record.purpose,
            venue,
            record.instrument or instrument,
            record.side,
            "LIMIT",
            record.price,
            record.qty,
            record.tif,
            record.account,
            payload.get("last_px") if fill else None,
            payload.get("last_qty") if fill else None,
            record.cum_qty,
            record.leaves_qty,
            record.state,
            reason if reason else None,
            payload.get("liquidity") if fill else None,
            checks,
            record.decision_seq,
            (record.decision or None) if kind == "OrderInitialized" else None,
            record.bid,
            record.ask,
            record.quote_ts or None,
            row[11],
        ]

    def _count(
        self,
        record: OrderRecord,
        kind: str,
        payload: dict[str, Any],
        ts: int,
        mono: int,
        instrument: str | None,
    ) -> None:
        """The compliance counts and the ticket's legs leaving, from one order event."""
        account, contracts = record.account, self.contracts
        if kind == "OrderSubmitted":
            self.messages.count(account, instrument, ts)
            contracts.order(account, instrument, ts)
            self.tickets.order_submitted(record.ticket_id, instrument, record.side, mono)
        elif kind == "OrderCancelRequested":
            self.messages.count(account, instrument, ts)
            contracts.cancel(account, instrument, ts, record.tif, record.qty)
        elif kind == "OrderDenied":
            contracts.denied(account, instrument, ts, str(payload.get("reason") or ""))
        elif kind == "OrderFilled":
            contracts.fill(account, instrument, ts, payload)

    def _alert(self, row: tuple[Any, ...], p: dict[str, Any]) -> None:
        message = p.get("message") or p.get("reason") or ""
        detail = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        level = p.get("level") or p.get("action")
        self.alerts.append(
            (row[0], iso(row[1]), row[4], level, p.get("source"), message, row[6], row[5], detail)
        )

    # ------------------------------------------------------------------ the tables

    def _write_tables(self, files: Mapping[str, PackFile], counts: list[tuple[Any, ...]]) -> None:
        orders = [self._order_row(self.records[oid]) for oid in self.in_window]
        order_fields = list(orders[0]) if orders else list(self._order_row(OrderRecord("")))
        _csv(files["orders.csv"], order_fields, ([o[k] for k in order_fields] for o in orders))
        ticket_fields = self.tickets.fields()
        tickets = ([t.get(k) for k in ticket_fields] for t in self.tickets.rows())
        _csv(files["tickets.csv"], ticket_fields, tickets)
        _csv(files["alerts.csv"], ALERT_FIELDS, self.alerts)
        _csv(files["kill_switch.csv"], KILL_FIELDS, self.kills)
        _csv(files["compliance.csv"], COMPLIANCE_FIELDS, self.messages.rows())
        _csv(files["compliance_contracts.csv"], CONTRACT_FIELDS, self.contracts.rows())
        _csv(files["fills.csv"], FILL_FIELDS, self.fills.fills())
        currency_of = {iid: inst.currency for iid, inst in self.instruments.items()}
        _csv(files["pnl.csv"], PNL_FIELDS, self.fills.pnl(currency_of))
        self.ratios = ratio_frame(counts)
        _csv(files["ratios.csv"], list(self.ratios.columns), ratio_text(self.ratios))
        self.orders = pd.DataFrame(orders)

    def _offset(self, kind: str, order_id: str, payload: dict[str, Any]) -> None:
        if kind == "OrderInitialized":
            self.offsets[order_id] = payload.get("offset") or ""

    def _order_row(self, record: OrderRecord) -> dict[str, Any]:
        ticket = self.tickets.get(record.ticket_id or "")
        legs = ticket.legs if ticket is not None else {}
        summary = order_summary(record, legs, self.instruments.get(record.instrument or ""))
        row = with_offset(summary, self.offsets.get(record.client_order_id))
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}

    def _rotations(self) -> list[dict[str, Any]]:
        with self.journal._reading() as conn:
            rows = conn.execute("SELECT value FROM meta WHERE key LIKE 'rotation:%' ORDER BY key").fetchall()
        out = []
        for (text,) in rows:
            try:
                out.append(json.loads(text))
            except ValueError:
                out.append({"unreadable": text})
        return out

    def _summary(self, chain: dict[str, Any]) -> str:
        orders = self.orders
        outcomes = (
            orders.groupby("state").size().rename("orders").reset_index()
            if not orders.empty
            else pd.DataFrame()
        )
        frames = {
            "outcomes": outcomes,
            "slippage": slippage_table(orders),
            "tickets": self.tickets.frame()[self.tickets.summary_fields()],
            "contracts": pd.DataFrame(list(self.contracts.rows()), columns=list(CONTRACT_FIELDS)),
            "alerts": pd.DataFrame(self.alerts, columns=list(ALERT_FIELDS)),
            "kill_switch": pd.DataFrame(self.kills, columns=list(KILL_FIELDS)),
            "ratios": self.ratios,
            "kinds": pd.DataFrame(sorted(self.kinds.items()), columns=["kind", "rows"]),
        }
        summary = {
            "journal": chain["journal"],
            "created_utc": iso(time.time_ns()),
            "window": chain["window"],
            "head": chain["head"],
            "verify": chain["verify"],
            "order_events": self.order_events,
            "orders": len(orders),
            "tickets": len(self.tickets.tickets),
            "files": {**FILES, "manifest.json": "SHA-256 of every other file"},
        }
        return summary_html(summary, frames)


def _decode(text: Any) -> tuple[dict[str, Any] | None, str]:
    """A stored payload decoded, and the JSON to embed for it (as text if it is not an object)."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError):
        return None, encode_basestring(str(text))
    return (payload, text) if isinstance(payload, dict) else (None, encode_basestring(text))


def _event_line(row: tuple[Any, ...], payload_json: str) -> str:
    """One journal row as a JSON line; ints and texts as stored (an edited row's odd types survive)."""
    v = [
        str(x)
        if type(x) is int
        else "null"
        if x is None
        else encode_basestring(x)
        if type(x) is str
        else json.dumps(x)
        for x in row
    ]
    return (
        f'{{"seq":{v[0]},"ts_event":{v[1]},"ts_init":{v[2]},"mono_ns":{v[3]},"kind":{v[4]},"order_id":{v[5]},'
        f'"ticket_id":{v[6]},"venue":{v[7]},"instrument":{v[8]},"payload":{payload_json},'
        f'"prev_hash":{v[10]},"hash":{v[11]}}}\n'
    )


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", desc="audit export", leave=False)


def _csv(handle: PackFile, header: Any, rows: Any) -> None:
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows(rows)


__all__ = ["FILES", "ORDER_EVENT_FIELDS", "export_pack"]
