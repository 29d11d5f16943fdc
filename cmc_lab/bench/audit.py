"""Audit benchmark: build a realistic trading day in a journal, then time the audit pack's export."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cmc_lab.bench.journal import workdir
from cmc_lab.core.clock import SIM_START_NS
from cmc_lab.core.ids import venue_of
from cmc_lab.journal.audit import export_pack
from cmc_lab.journal.pack import verify_pack
from cmc_lab.journal.rows import JournalRow
from cmc_lab.journal.store import Journal

_CHECKS = (
    "trading_state,tradeable,venue_connected,session_open,tick,daily_limits,price_band,order_qty,notional,"
    "position,working_orders,message_rate,duplicate,self_match,cancel_count,margin"
)
#: instrument, account, reference price, tick (as text, to keep prices exact)
_BOOK = (
    ("SHFE.au", "CN-FUT", 620, "0.02"),
    ("COMEX.GC", "US-FUT", 2650, "0.10"),
    ("INE.sc", "CN-FUT", 540, "0.1"),
    ("NYMEX.CL", "US-FUT", 72, "0.01"),
)


class _Day:
    """Rows of a day: plain orders (filled, partly filled then cancelled, rejected, denied), hedge
    tickets with their decisions and legs, alerts and a kill switch used once, in journal order."""

    def __init__(self, n_events: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.step_ns = max(86_400_000_000_000 // max(n_events, 1), 1)
        self.i = 0
        self.orders = 0
        self.tickets = 0

    def row(self, kind: str, payload: dict[str, Any], **ids: Any) -> JournalRow:
        self.i += 1
        ts = SIM_START_NS + self.i * self.step_ns
        lag = self.rng.randrange(50_000, 900_000) if kind in ("OrderAccepted", "OrderFilled") else 0
        return JournalRow(kind, ts - lag, ts, self.i * 350_000, payload, **ids)

    def order(self, fate: str, ticket: str | None = None, purpose: str = "leg") -> Iterator[JournalRow]:
        self.orders += 1
        inst, account, ref, tick = _BOOK[self.orders % len(_BOOK)]
        cid = f"r1-{self.orders:06d}"
        ids = {"order_id": cid, "ticket_id": ticket, "venue": venue_of(inst), "instrument": inst}
        side = "buy" if self.orders % 2 else "sell"
        qty = 1 + self.orders % 5
        price = f"{ref + self.rng.randrange(-50, 50) * float(tick):.{len(tick) - 2}f}"
        base = {"client_order_id": cid, "instrument_id": inst}
        reason = f"ticket {ticket}: legs sent together" if ticket else ""
        yield self.row(
            "OrderInitialized",
            base
            | {
                "side": side,
                "qty": qty,
                "price": price,
                "tif": "GFD",
                "account": account,
                "ticket_id": ticket,
            }
            | {
                "reason": reason,
                "bid": price,
                "ask": price,
                "quote_ts": SIM_START_NS + self.i * self.step_ns,
            },
            **ids,
        )
        if fate == "denied":
            yield self.row("OrderDenied", base | {"reason": "price_band: price outside the band"}, **ids)
            return
        yield self.row("OrderSubmitted", base | {"checks": _CHECKS}, **ids)
        if ticket:
            payload = {"leg": inst, "purpose": purpose, "side": side, "qty": qty, "price": price}
            yield self.row("HedgeOrderSent", payload | {"reason": reason, "state": "SUBMITTED"}, **ids)
        if fate == "rejected":
            yield self.row("OrderRejected", base | {"reason": "rejected by venue"}, **ids)
            return
        vid = f"{ids['venue']}-{self.orders:08d}"
        yield self.row("OrderAccepted", base | {"venue_order_id": vid}, **ids)
        fills = qty if fate == "filled" else max(qty - 1, 1) if fate == "partial" else 0
        done = 0
        while done < fills:
            lots = min(fills - done, 1 + self.rng.randrange(2))
            done += lots
            trade = {"venue_order_id": vid, "trade_id": f"T-{self.i:09d}", "side": side, "last_px": price}
            yield self.row("OrderFilled", base | trade | {"last_qty": lots, "liquidity": "taker"}, **ids)
        if done < qty:
            yield self.row("OrderCancelRequested", base | {"reason": "user request"}, **ids)
            yield self.row("OrderCanceled", base | {"reason": "canceled"}, **ids)

    def ticket(self) -> Iterator[JournalRow]:
        self.tickets += 1
        tid = f"Tr1-{self.tickets:04d}"
        ids = {"ticket_id": tid}
        legs = {"SHFE.au": ["buy", 3], "COMEX.GC": ["sell", 1]}
        policy = {"policy": "chase", "mode": "concurrent"}
        yield self.row(
            "HedgeCreated",
            {"spread": "au_gc", "side": "buy", "units": 1, "legs": legs, "policy": policy},
            **ids,
        )
        yield self.row("HedgeStateChanged", {"from": "NEW", "to": "CHECKING", "reason": "trigger met"}, **ids)
        quotes = {"SHFE.au": [619.98, 620.0, 53, 53], "COMEX.GC": [2649.9, 2650.1, 20, 20]}
        decision = {"action": "send", "reason": "trigger ask <= 2.5 met at 2.41", "quotes": quotes}
        decision |= {"legs": {"SHFE.au": ["buy", 3, "620.00"], "COMEX.GC": ["sell", 1, "2649.90"]}}
        yield self.row(
            "HedgeDecision", decision | {"spread_bid": 2.26, "spread_ask": 2.33, "fx": 7.24995}, **ids
        )
        yield self.row(
            "HedgeStateChanged", {"from": "CHECKING", "to": "WORKING", "reason": "both legs checked"}, **ids
        )
        yield from self.order("filled", tid)
        yield from self.order("filled", tid)
        report = {"attempts": 1, "unwind_attempts": 0, "hedged_units": 1, "legs": {}}
        yield self.row(
            "HedgeStateChanged",
            {"from": "WORKING", "to": "FILLED", "reason": "all legs filled"} | {"report": report},
            **ids,
        )

    def rows(self, n_events: int) -> Iterator[JournalRow]:
        yield self.row("EngineStarted", {"label": "sim", "venues": {"SHFE": "sim", "COMEX": "sim"}})
        drill = n_events // 2
        while self.i < n_events - 1:
            roll = self.rng.random()
            if roll < 0.08:
                yield from self.ticket()
            elif roll < 0.09:
                yield self.row(
                    "Alert", {"id": self.i, "source": "threshold", "level": "warn", "message": "margin 72 %"}
                )
            else:
                fate = self.rng.choices(("filled", "partial", "rejected", "denied"), (60, 20, 10, 10))[0]
                yield from self.order(fate)
            if drill and self.i >= drill:
                drill = 0
                yield self.row("TradingStateChanged", {"state": "HALTED", "reason": "drill", "who": "desk"})
                yield self.row(
                    "TradingStateChanged", {"state": "ACTIVE", "reason": "drill over", "who": "desk"}
                )
        yield self.row("EngineStopped", {"working_orders": []})


def build_day(path: Path, n_events: int, seed: int = 7) -> int:
    """Write a realistic day of at least ``n_events`` journal rows to a new journal; rows written."""
    with Journal(path) as journal:
        return journal.append_many(_Day(n_events, seed).rows(n_events))


def audit_export_seconds(n_events: int = 100_000, tmpdir: Path | None = None) -> dict[str, Any]:
    """Seconds to export the audit pack of a day of ``n_events`` journal rows (no engine involved).

    Also the seconds to build the journal and to verify the pack, and the pack's size.

    Examples
    --------
    >>> sorted(audit_export_seconds(500))
    ['build_s', 'export_s', 'n_events', 'pack_bytes', 'verify_s']
    """
    with workdir(tmpdir) as work:
        start = time.perf_counter()
        rows = build_day(work / "day.sqlite", n_events)
        build_s = time.perf_counter() - start
        with Journal(work / "day.sqlite", readonly=True) as journal:
            start = time.perf_counter()
            pack = export_pack(journal, work / "day-audit.zip", progress=False, overwrite=True)
            export_s = time.perf_counter() - start
        start = time.perf_counter()
        ok = verify_pack(pack).ok
        verify_s = time.perf_counter() - start
        if not ok:
            raise RuntimeError(f"the benchmark's own audit pack does not verify: {verify_pack(pack)}")
        return {
            "n_events": rows,
            "export_s": export_s,
            "build_s": build_s,
            "verify_s": verify_s,
            "pack_bytes": pack.stat().st_size,
        }
