"""Journal receipts layer: the complete record of one order or hedge ticket, rebuilt from the journal.

A receipt is read from the journal alone, so it is the same in the session that traded, in a
later notebook and in an audit: the decision with the quotes it saw, the pre-trade checks, the
intent, the send, the venue's ack, each fill, each re-order or unwind and the final state, with
the latency of every hop (``mono_ns``) and the slippage of every fill against the decision price.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd

from cmc_lab.core.instruments import Instrument
from cmc_lab.journal.records import (
    VENUE_ANSWERS,
    OrderRecord,
    decimal_or_none,
    order_summary,
    reference,
    slippage,
    step_of,
)
from cmc_lab.journal.report import STYLE, as_text, pairs, state_html, table

if TYPE_CHECKING:
    from cmc_lab.journal.store import Journal

#: The journal columns a receipt reads, payload as stored text.
COLUMNS = ("seq", "ts_event", "ts_init", "mono_ns", "kind", "order_id", "ticket_id", "venue", "instrument")
_SELECT = ", ".join(COLUMNS) + ", payload"
_BY_ID = f"SELECT {_SELECT} FROM events WHERE order_id = ?1 OR ticket_id = ?1 ORDER BY seq"
_TICKET_DECISION = (
    f"SELECT {_SELECT} FROM events WHERE ticket_id = ? AND seq < ? "
    "AND kind IN ('HedgeDecision', 'HedgeChase', 'HedgeUnwind') ORDER BY seq DESC LIMIT 1"
)
_TICKET_LEGS = (
    "SELECT payload FROM events WHERE ticket_id = ? AND seq < ? AND kind = 'HedgeDecision' "
    "ORDER BY seq DESC LIMIT 1"
)

_DECISIONS = frozenset({"HedgeDecision", "HedgeChase", "HedgeUnwind"})


class ReceiptNotFound(KeyError):
    """No journal row names this order or ticket id."""


@dataclass(frozen=True, eq=False)
class Receipt:
    """Everything the journal holds about one order or hedge ticket, in journal order.

    Attributes
    ----------
    id
        The client order id or ticket id asked for; ``subject`` says which ("order" or "ticket").
    frame
        One row per journal row: seq, time (UTC), ts_event, ts_init, mono_ns, step, kind, ids,
        side, qty, price, fill (last_qty, last_px, cum_qty, leaves_qty), the order's state after
        the row, hop_ns (``mono_ns`` since the previous row; None across a restart), elapsed_ns,
        venue_lag_ns (``ts_init - ts_event`` of a venue answer), slippage of each fill (ticks and
        money against ``slippage_ref``) and a readable detail. Prices and money are ``Decimal``.
    orders
        One row per order: the order-record fields, checks, final state, fills, average price,
        slippage against the decision, and latency per hop (intent to ack, to first fill, to done).
    decision
        The decision: seq, kind, reason and the quotes it saw (``decision["quotes"]``, a DataFrame).
    legs
        For a ticket, one row per leg: target, filled, decision and average price, slippage (the
        figures of ``HedgeTicket.report()``, rebuilt from the journal); empty for an order.
    outcome
        The final state (order state or ticket state) and why.

    Examples
    --------
    >>> r = eng.receipt(ticket.ticket_id)                  # doctest: +SKIP
    >>> r.orders[["client_order_id", "state", "slippage_ticks", "intent_to_ack_ns"]]  # doctest: +SKIP
    >>> from cmc_lab.ui.receipt import receipt_timeline      # doctest: +SKIP
    >>> receipt_timeline(r)                                # the chart (Jupyter)  # doctest: +SKIP
    """

    id: str
    subject: str
    frame: pd.DataFrame
    orders: pd.DataFrame
    decision: dict[str, Any]
    legs: pd.DataFrame
    outcome: str
    reason: str

    @property
    def latency(self) -> pd.DataFrame:
        """Latency per hop: for each row, the step before it of the same order (or of the ticket)."""
        frame = self.frame
        lane = frame["order_id"].fillna("ticket")
        previous = frame.groupby(lane, sort=False)["step"].shift()
        hop = frame.groupby(lane, sort=False)["mono_ns"].diff()
        out = pd.DataFrame(
            {
                "seq": frame["seq"],
                "order_id": frame["order_id"],
                "from": previous,
                "to": frame["step"],
                "hop_ns": hop.where(hop >= 0).astype("Int64"),
                "venue_lag_ns": frame["venue_lag_ns"],
            }
        )
        return out[out["from"].notna()].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (
            f"Receipt({self.subject} {self.id}: {self.outcome}; {len(self.frame)} events, "
            f"{len(self.orders)} order(s))"
        )

    def _repr_html_(self) -> str:
        """The receipt as HTML tables: outcome, decision and its quotes, legs, orders, rows."""
        r = self
        parts = [
            STYLE,
            '<div class="cmc-report">',
            f"<h4>Receipt of {escape(r.subject)} {escape(r.id)}: {state_html(r.outcome)} "
            f"<i>{escape(r.reason)}</i></h4>",
        ]
        if r.decision:
            d = r.decision
            parts.append(
                f"<b>Decision</b> (row {d['seq']}, {escape(d['kind'])}, {escape(as_text(d.get('time')))}): "
                f"{escape(as_text(d.get('action')))} - {escape(as_text(d.get('reason')))}"
            )
            if d.get("spread_bid") is not None:
                parts.append(
                    pairs(
                        [
                            ("spread bid / ask", f"{d['spread_bid']:.6g} / {d['spread_ask']:.6g}"),
                            ("sizes", f"{d.get('bid_size')} / {d.get('ask_size')}"),
                            ("USD/CNH", d.get("fx")),
                        ]
                    )
                )
            parts.append(table(d["quotes"]))
        if not r.legs.empty:
            parts += ["<b>Legs</b> (slippage against the decision price, positive = worse)", table(r.legs)]
        parts += [
            "<b>Orders</b>",
            table(
                r.orders,
                [
                    "client_order_id",
                    "venue_order_id",
                    "purpose",
                    "instrument",
                    "side",
                    "offset",
                    "qty",
                    "price",
                    "tif",
                    "account",
                    "state",
                    "filled",
                    "avg_px",
                    "slippage_ticks",
                    "slippage",
                    "currency",
                    "fee",
                    "fee_currency",
                    "intent_to_ack_ns",
                    "intent_to_first_fill_ns",
                    "checks",
                ],
            ),
            "<b>Timeline</b> (hop: monotonic ns since the row before; venue lag: ts_init - ts_event)",
            table(
                r.frame,
                [
                    "seq",
                    "time",
                    "step",
                    "order_id",
                    "venue",
                    "state",
                    "detail",
                    "hop_ns",
                    "venue_lag_ns",
                    "slippage_ticks",
                ],
            ),
            "</div>",
        ]
        return "".join(parts)


def read_receipt(journal: Journal, id: str, instruments: Mapping[str, Instrument] | None = None) -> Receipt:
    """The :class:`Receipt` of one order (client order id) or hedge ticket (ticket id).

    ``instruments`` (id -> Instrument) give tick and lot size for slippage; the shipped specs
    by default. Raises :class:`ReceiptNotFound` when no journal row names ``id``.

    Examples
    --------
    >>> from cmc_lab.journal import Journal
    >>> j = Journal(":memory:")
    >>> _ = j.append("OrderInitialized", ts_event=1, ts_init=1, mono_ns=0, order_id="C-1",
    ...              payload={"instrument_id": "COMEX.GC", "side": "buy", "qty": 1, "price": "2650.10",
    ...                       "tif": "GFD", "account": "US", "ask": "2650.1", "bid": "2649.9"})
    >>> _ = j.append("OrderFilled", ts_event=5, ts_init=9, mono_ns=800, order_id="C-1",
    ...              payload={"last_px": "2650.00", "last_qty": 1, "venue_order_id": "V-1"})
    >>> r = read_receipt(j, "C-1")
    >>> order = r.orders.loc[0]
    >>> order["state"], order["avg_px"], float(order["slippage_ticks"])
    ('INITIALIZED', Decimal('2650.00'), -1.0)
    """
    if not isinstance(id, str) or not id:
        raise TypeError(f"receipt id {id!r} is not a client order id or ticket id (a non-empty str)")
    with journal._reading() as conn:
        rows = conn.execute(_BY_ID, (id,)).fetchall()
        fees = _fees(conn, rows)
        if not rows:
            raise ReceiptNotFound(f"no journal events for {id!r}; pass a client order id or ticket id")
        subject = "order" if any(row[5] == id for row in rows) else "ticket"
        legs: list[str] = []  # the ticket's decision (leg prices) behind one of its orders
        if subject == "order":
            rows = [row for row in rows if row[5] == id]
            ticket = next((row[6] for row in rows if row[6]), None)
            if ticket is not None:
                legs = [r[0] for r in conn.execute(_TICKET_LEGS, (ticket, rows[0][0]))]
                rows = conn.execute(_TICKET_DECISION, (ticket, rows[0][0])).fetchall() + rows
    if instruments is None:
        from cmc_lab.core.specs import load_specs

        instruments = load_specs().instruments
    receipt = _build(id, subject, rows, instruments, context=legs)
    if not receipt.orders.empty:
        cid = receipt.orders["client_order_id"]
        receipt.orders["fee"] = pd.Series([fees[c][0] if c in fees else None for c in cid], dtype=object)
        receipt.orders["fee_currency"] = [fees[c][1] if c in fees else None for c in cid]
    return receipt


#: How the book took each fill (``FillBooked``: lots, P&L, fee) is journaled right after the fill,
#: outside the order's own rows; a receipt looks for them just after its last row.
_BOOKED = (
    "SELECT payload FROM events WHERE kind = 'FillBooked' AND seq BETWEEN ? AND ? "
    "AND json_extract(payload, '$.order_id') IN (SELECT value FROM json_each(?))"
)
_BOOKED_AFTER = 256


def _fees(conn: Any, rows: Sequence[Sequence[Any]]) -> dict[str, tuple[Decimal, str]]:
    """Each order's fees as the book charged them (instrument currency), from its FillBooked rows."""
    ids = sorted({row[5] for row in rows if row[5] and row[4] == "OrderFilled"})
    if not ids:
        return {}
    first, last = rows[0][0], rows[-1][0] + _BOOKED_AFTER
    out: dict[str, tuple[Decimal, str]] = {}
    for (text,) in conn.execute(_BOOKED, (first, last, json.dumps(ids))):
        booked = json.loads(text)
        fee, currency = out.get(booked["order_id"], (Decimal(0), booked.get("fee_currency", "")))
        out[booked["order_id"]] = (fee + Decimal(booked.get("fee", "0")), currency)
    return out


def _build(
    id: str,
    subject: str,
    rows: Sequence[Sequence[Any]],
    instruments: Mapping[str, Instrument],
    context: Sequence[str] = (),
) -> Receipt:
    records: dict[str, OrderRecord] = {}
    offsets: dict[str, str] = {}  # order id -> its offset (SHFE/INE), from its intent
    leg_px: dict[str, tuple[str, str]] = {}  # instrument -> (leg side, decision price)
    for text in context:  # payloads of HedgeDecision rows outside ``rows``: the legs' decision prices
        leg_px.update({i: (v[0], v[2]) for i, v in (json.loads(text).get("legs") or {}).items()})
    decisions: list[tuple[int, str, dict[str, Any], int]] = []  # ticket decision rows
    intent: tuple[int, str, dict[str, Any], int] | None = None  # the first OrderInitialized
    ticket_payloads: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    first_mono = rows[0][3]
    prev_mono: int | None = None
    for row in rows:
        seq, ts_event, ts_init, mono, kind, order_id, ticket_id, venue, instrument = row[:9]
        payload = json.loads(row[9])
        record = None
        if order_id and (kind.startswith("Order") or kind in ("HedgeOrderSent", "DuplicateFillIgnored")):
            record = records.setdefault(order_id, OrderRecord(order_id, ticket_id=ticket_id))
            record.apply(kind, payload, mono, ts_event, ts_init)
            if kind == "OrderInitialized":
                offsets[order_id] = payload.get("offset") or ""
        if kind in _DECISIONS:
            decisions.append((seq, kind, payload, ts_event))
        elif kind == "OrderInitialized" and intent is None:
            intent = (seq, kind, payload, ts_event)
        if kind == "HedgeDecision":
            leg_px.update({i: (v[0], v[2]) for i, v in (payload.get("legs") or {}).items()})
        if kind.startswith("Hedge"):
            ticket_payloads[kind] = payload
        item = {
            "seq": seq,
            "time": ts_event,
            "ts_event": ts_event,
            "ts_init": ts_init,
            "mono_ns": mono,
            "step": step_of(kind, payload, record),
            "kind": kind,
            "order_id": order_id,
            "ticket_id": ticket_id,
            "venue": venue,
            "instrument": instrument,
            "side": record.side if record else payload.get("side"),
            "qty": record.qty if record else payload.get("qty"),
            "price": decimal_or_none(record.price if record else payload.get("price")),
            "venue_order_id": record.venue_order_id if record else None,
            "last_qty": payload.get("last_qty") if kind == "OrderFilled" else None,
            "last_px": decimal_or_none(payload.get("last_px")) if kind == "OrderFilled" else None,
            "cum_qty": record.cum_qty if record else None,
            "leaves_qty": record.leaves_qty if record else None,
            "state": record.state if record else payload.get("to"),
            "hop_ns": None if prev_mono is None or mono < prev_mono else mono - prev_mono,
            "elapsed_ns": mono - first_mono,
            "venue_lag_ns": ts_init - ts_event if kind in VENUE_ANSWERS else None,
            "slippage_ticks": None,
            "slippage": None,
            "slippage_ref": None,
            "detail": _detail(kind, payload),
        }
        if kind == "OrderFilled" and record is not None:
            ref, label = reference(record, leg_px)
            inst = instruments.get(record.instrument or "")
            item["slippage_ticks"], item["slippage"] = slippage(
                item["last_px"], ref, record.side, int(payload.get("last_qty") or 0), inst
            )
            item["slippage_ref"] = label if ref is not None else None
        prev_mono = mono
        out.append(item)
    frame = pd.DataFrame(out)
    frame["time"] = pd.to_datetime(frame["time"], unit="ns", utc=True)
    for column in ("hop_ns", "venue_lag_ns", "cum_qty", "leaves_qty", "qty", "last_qty"):
        frame[column] = frame[column].astype("Int64")
    for column in ("order_id", "ticket_id", "venue", "instrument", "side", "venue_order_id", "slippage_ref"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    decision = _decision(decisions[0] if decisions else None, intent if subject == "order" else None)
    orders = _orders(records, leg_px, instruments, offsets)
    legs = _legs(records, leg_px, instruments) if subject == "ticket" else pd.DataFrame()
    if subject == "ticket":
        final = ticket_payloads.get("HedgeStateChanged", {})
        outcome, reason = final.get("to", "NEW"), final.get("reason", "")
    else:
        record = records.get(id)
        outcome = record.state if record else "UNKNOWN"
        reason = (record.denial or record.last_reason) if record else ""
    return Receipt(id, subject, frame, orders, decision, legs, outcome, reason)


def with_offset(summary: dict[str, Any], offset: str | None) -> dict[str, Any]:
    """An order summary with its offset (SHFE/INE: open, close_today ...; "" where the venue nets) after its side."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        out[key] = value
        if key == "side":
            out["offset"] = offset or ""
    return out


def _detail(kind: str, payload: Mapping[str, Any]) -> str:
    if kind == "OrderInitialized":
        quote = f" (saw {payload.get('bid')} / {payload.get('ask')})" if payload.get("bid") else ""
        why = payload.get("reason") or "manual order"
        offset = f" {payload['offset']}" if payload.get("offset") else ""
        part = f", part of {payload['part_of']}" if payload.get("part_of") else ""
        return (
            f"{payload.get('side')}{offset} {payload.get('qty')} @ {payload.get('price')} {payload.get('tif')}: "
            f"{why}{part}{quote}"
        )
    if kind == "OrderSubmitted":
        return f"checks passed: {payload.get('checks', '')}"
    if kind == "OrderFilled":
        return f"{payload.get('last_qty')} @ {payload.get('last_px')} ({payload.get('trade_id')})"
    if kind == "OrderAccepted":
        return f"venue order id {payload.get('venue_order_id')}"
    if kind == "HedgeDecision":
        return f"{payload.get('action')}: {payload.get('reason')}"
    if kind == "HedgeOrderSent":
        return f"{payload.get('purpose')} {payload.get('side')} {payload.get('qty')} @ {payload.get('price')}"
    if kind == "HedgeStateChanged":
        return f"{payload.get('from')} -> {payload.get('to')}: {payload.get('reason', '')}"
    return str(payload.get("reason") or payload.get("detail") or "")


_Row = tuple[int, str, dict[str, Any], int]


def _decision(ticket: _Row | None, intent: _Row | None) -> dict[str, Any]:
    """The decision and the quotes it saw (a DataFrame: instrument, bid, ask, sizes or quote time).

    A ticket's is its ``HedgeDecision`` (or, for one of its orders, the re-order or unwind that
    made it); a plain order's is its ``OrderInitialized`` with the top of book it saw.
    """
    if ticket is None and intent is None:
        return {}
    seq, kind, payload, ts = ticket or intent  # type: ignore[misc]
    out: dict[str, Any] = {"seq": seq, "kind": kind, "time": pd.Timestamp(ts, unit="ns", tz="UTC")}
    out["action"] = payload.get("action", "send")
    out["reason"] = payload.get("reason") or "manual order"
    if kind == "HedgeDecision":
        out.update({k: payload.get(k) for k in ("spread_bid", "spread_ask", "bid_size", "ask_size", "fx")})
        rows = [
            {"instrument": i, "bid": q[0], "ask": q[1], "bid_size": q[2], "ask_size": q[3]}
            for i, q in (payload.get("quotes") or {}).items()
        ]
    elif intent is not None and intent[2].get("bid") is not None:
        seen = intent[2]
        when = pd.Timestamp(seen.get("quote_ts") or 0, unit="ns", tz="UTC")
        rows = [
            {
                "instrument": seen.get("instrument_id"),
                "bid": decimal_or_none(seen["bid"]),
                "ask": decimal_or_none(seen.get("ask")),
            }
            | {"quote_time": when}
        ]
    else:
        rows = []
    out["quotes"] = pd.DataFrame(rows)
    return out


def _orders(
    records: Mapping[str, OrderRecord],
    leg_px: Mapping[str, tuple[str, str]],
    instruments: Mapping[str, Instrument],
    offsets: Mapping[str, str],
) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            with_offset(
                order_summary(r, leg_px, instruments.get(r.instrument or "")), offsets.get(r.client_order_id)
            )
            for r in records.values()
        ]
    )
    for column in ("intent_to_ack_ns", "intent_to_first_fill_ns", "intent_to_done_ns", "venue_lag_ns"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _legs(
    records: Mapping[str, OrderRecord],
    leg_px: Mapping[str, tuple[str, str]],
    instruments: Mapping[str, Instrument],
) -> pd.DataFrame:
    """Per leg, the figures ``HedgeTicket.report()`` gives, from the journal: forward fills only."""
    rows = []
    for leg, (side, decision_px) in leg_px.items():
        forward = [r for r in records.values() if r.instrument == leg and r.side == side]
        qty = sum(r.cum_qty for r in forward)
        money = sum((r.money for r in forward), Decimal(0))
        avg = money / qty if qty else None
        ticks, slip = slippage(avg, decision_px, side, qty, instruments.get(leg))
        inst = instruments.get(leg)
        rows.append(
            {
                "leg": leg,
                "side": side,
                "filled": qty,
                "decision_px": decimal_or_none(decision_px),
                "avg_px": avg,
                "slippage_ticks": ticks,
                "slippage": slip,
                "currency": inst.currency if inst else None,
                "orders": sum(1 for r in records.values() if r.instrument == leg),
            }
        )
    return pd.DataFrame(rows)
