"""FIX acceptor layer: the embedded exchange served over FIX 4.4 (order entry and market data).

``cmc-lab venue serve --fix 127.0.0.1:9878`` runs :func:`~cmc_lab.venues.fix.serve.serve`: one
:class:`ExchangeServer` holding a :class:`~cmc_lab.venues.sim.exchange.SimExchange` (every venue
of the specs, no added latency) behind a TCP acceptor. Each configured client CompID has one
session that lives as long as the process: execution reports produced while its client is away
are numbered and kept, and reach it through a ResendRequest after the next Logon.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import ssl
import time as _time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from cmc_lab.core.clock import RealClock
from cmc_lab.core.hours import SessionWindow, TradingHours
from cmc_lab.core.ids import symbol_of, venue_of
from cmc_lab.core.listing import list_months
from cmc_lab.core.model import (
    CancelOrder,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderState,
    Quote,
    SubmitOrder,
)
from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.venues.fix import codec, mapping, venue_mapping
from cmc_lab.venues.fix import report_mapping as reports
from cmc_lab.venues.fix.codec import FieldProblem, FixMessage, Framer
from cmc_lab.venues.fix.interface import (
    BusinessReject,
    Session,
    SessionApp,
    StoredMessage,
    UnsupportedMessage,
)
from cmc_lab.venues.fix.session import FixSession
from cmc_lab.venues.fix.store import SeqStore
from cmc_lab.venues.fix.venue_mapping import FixOrder, OrderRefused
from cmc_lab.venues.sim.exchange import SimExchange, SimVenue

log = logging.getLogger("cmc_lab.fix")

#: Every day, all day: the served exchange's hours with ``sessions="always"`` (paper trading at any hour).
ALWAYS_OPEN = TradingHours("UTC", (SessionWindow("always", time(0), time(0), tuple(range(7))),))


class ServeError(ValueError):
    """A ``venue serve`` setting that cannot work; the message says what to change."""


@dataclass(slots=True)
class _Live:
    """An order on the served exchange: the FIX view, its owner and what is pending on it."""

    order: FixOrder
    owner: str  # the client's CompID
    internal: str  # the matcher's id of the current generation
    cancel: tuple[str, str] | None = None  # (cancel ClOrdID, OrigClOrdID) waiting for the matcher
    replace: tuple[str, str, int, Decimal] | None = None  # (new ClOrdID, orig, total qty, price)
    replaced: tuple[str, str] | None = None  # a replacement sent to the matcher, not yet accepted


def paper_specs(specs: Specs, sessions: str) -> Specs:
    """The specs the served exchange trades: ``"always"`` opens every instrument all day, ``"honour"`` keeps its hours."""
    if sessions == "honour":
        return specs
    if sessions != "always":
        raise ServeError(f"--sessions {sessions!r}: use 'always' (paper, any hour) or 'honour' (real hours)")
    instruments = {
        iid: dataclasses.replace(inst, hours=ALWAYS_OPEN) for iid, inst in specs.instruments.items()
    }
    return dataclasses.replace(specs, instruments=instruments)


class ExchangeServer(SessionApp):
    """The embedded exchange behind a FIX 4.4 acceptor.

    Parameters
    ----------
    sender
        Our CompID (the clients' TargetCompID).
    targets
        The client CompIDs we accept, one session each.
    seed, quote_interval
        Of the simulated market.
    sessions
        ``"always"``: orders are accepted at any hour (paper); ``"honour"``: each instrument's hours.
    reset_on_logon
        Every Logon starts new sequence numbers.
    password
        If set, the Logon must carry it in Password (554).
    store_dir
        Where to keep each session's sequence numbers; None keeps them in memory.

    Examples
    --------
    >>> server = ExchangeServer(targets=["CLIENT1"])        # doctest: +SKIP
    >>> host, port = await server.start("127.0.0.1", 0)     # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        sender: str = "EXECUTOR",
        targets: Iterable[str] = ("CLIENT1",),
        seed: int = 7,
        quote_interval: float = 0.2,
        sessions: str = "always",
        reset_on_logon: bool = False,
        password: str | None = None,
        store_dir: str | Path | None = None,
        max_skew: float = 120.0,
        logon_timeout: float = 5.0,
        specs: Specs | None = None,
    ) -> None:
        self.sender = sender
        self.clock = RealClock()
        self.specs = list_months(paper_specs(specs or load_specs(), sessions), self.clock.now_ns())
        self.exchange = SimExchange(
            self.specs, self.clock, seed=seed, quote_interval=quote_interval, latency=0
        )
        self.currencies = {iid: inst.currency for iid, inst in self.specs.instruments.items()}
        self.logon_timeout = logon_timeout
        self._password = password
        self.sessions: dict[str, FixSession] = {}
        if store_dir is not None:
            try:
                Path(store_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServeError(
                    f"--store {store_dir}: cannot create that directory ({exc}); name another"
                ) from None
        for target in targets:
            path = Path(store_dir) / f"{sender}-{target}.json" if store_dir is not None else None
            self.sessions[target] = FixSession(
                sender,
                target,
                "acceptor",
                self,
                SeqStore(path),
                max_skew=max_skew,
                reset_on_logon=reset_on_logon,
                logon_timeout=logon_timeout,
            )
        self.orders_in: list[tuple[str, str]] = []  # (client, ClOrdID) of every order taken, in order
        self._by_internal: dict[str, _Live] = {}
        self._by_cl: dict[tuple[str, str], _Live] = {}
        self._subs: dict[str, dict[str, str]] = {t: {} for t in self.sessions}  # client -> {iid: MDReqID}
        self._quotes: dict[str, Quote] = {}
        self._exec_seq = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        up = [t for t, s in self.sessions.items() if s.logged_on]
        return f"ExchangeServer({self.sender}, {len(self.sessions)} sessions, logged on: {', '.join(up) or 'none'})"

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Connect the exchange and listen; returns the bound (host, port)."""
        for venue in self.exchange.venues.values():
            await venue.connect(self._on_exchange)
        self._server = await asyncio.start_server(self._handle, host, port, ssl=ssl_context)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Log every client out, stop listening, disconnect the exchange."""
        for session in self.sessions.values():
            await session.logout("acceptor shutting down", timeout=1.0)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        for venue in self.exchange.venues.values():
            await venue.disconnect()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            received, first = await asyncio.wait_for(self._first_frame(reader), self.logon_timeout)
        except (TimeoutError, ConnectionError, OSError):
            writer.close()
            return
        session = self._route(first, writer, peer)
        if session is None:
            writer.close()
            return
        session.attach(writer)
        session.feed(received)
        await session.run(reader)

    async def _first_frame(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes | None]:
        framer, received = Framer(), b""
        while True:
            data = await reader.read(65536)
            if not data:
                return received, None
            received += data
            framer.feed(data)
            for item in framer.frames():
                if isinstance(item, bytes):
                    return received, item

    def _route(self, raw: bytes | None, writer: asyncio.StreamWriter, peer: object) -> FixSession | None:
        if raw is None:
            return None
        try:
            msg = codec.parse(raw)
        except FieldProblem:
            log.warning("connection from %s: first message unreadable; closed", peer)
            return None
        if msg.msg_type != "A":
            log.warning(
                "connection from %s: first message is MsgType %r, not Logon; closed", peer, msg.msg_type
            )
            return None
        client, us = msg.get(codec.SENDER) or "", msg.get(codec.TARGET) or ""
        session = self.sessions.get(client) if us == self.sender else None
        if session is None:
            known = ", ".join(self.sessions)
            text = f"unknown CompIDs {client}->{us}: this acceptor is {self.sender} and serves {known}"
        elif session.attached:
            text = f"session {client}->{self.sender} is already logged on from another connection"
        else:
            return session
        log.warning("Logon from %s refused: %s", peer, text)
        writer.write(self._bare_logout(client, us, text))
        return None

    def _bare_logout(self, client: str, us: str, text: str) -> bytes:
        return codec.encode(
            [
                (codec.MSG_TYPE, "5"),
                (codec.SENDER, us or self.sender),
                (codec.TARGET, client or "UNKNOWN"),
                (codec.MSG_SEQ_NUM, 1),
                (codec.SENDING_TIME, codec.format_timestamp(_time.time_ns())),
                (codec.TEXT, text),
            ]
        )

    # ------------------------------------------------------------------ session callbacks

    def check_logon(self, session: Session, message: FixMessage) -> str | None:
        if self._password is None:
            return None
        given = message.get(codec.PASSWORD) or ""
        if not hmac.compare_digest(given.encode(), self._password.encode()):
            return "wrong or missing Password (554)"
        return None

    def on_disconnect(self, session: Session, reason: str) -> None:
        self._subs[session.target].clear()

    def may_resend(self, session: Session, stored: StoredMessage) -> bool:
        return stored.msg_type in ("8", "9", "j")  # market data is stale by now: gap-fill it

    def on_message(self, session: Session, message: FixMessage) -> None:
        handler = self._handlers.get(message.msg_type)
        if handler is None:
            raise UnsupportedMessage(message.msg_type)
        handler(self, session, message)

    # ------------------------------------------------------------------ order entry

    def _new_order(self, session: Session, msg: FixMessage) -> None:
        client = session.target
        cl_ord_id = msg.require(mapping.CL_ORD_ID)
        if (client, cl_ord_id) in self._by_cl:
            raise BusinessReject(
                0, f"duplicate ClOrdID {cl_ord_id!r}: the first order with it stands", cl_ord_id
            )
        try:
            order = venue_mapping.parse_new_order(msg, self.currencies)
        except OrderRefused as refused:
            order = venue_mapping.refused_order(msg, self.currencies)
            order.state = OrderState.REJECTED
            self._send_er(client, order, "8", text=refused.text, ord_rej_reason=refused.reason)
            return
        internal = f"{client}|{cl_ord_id}"
        live = _Live(order, client, internal)
        self._by_internal[internal] = self._by_cl[(client, cl_ord_id)] = live
        self.orders_in.append((client, cl_ord_id))
        log.info("order in: %s %s %s %s %d @ %s (seq %s)", client, cl_ord_id, order.instrument,
                 order.side.value, order.qty, order.price, msg.seq)  # fmt: skip
        self._venue(order.instrument).submit(
            SubmitOrder(
                internal,
                order.instrument,
                order.side,
                order.qty,
                order.price,
                order.tif,
                order.account,
                self._now(),
                offset=order.offset,
            )
        )

    def _cancel(self, session: Session, msg: FixMessage) -> None:
        client = session.target
        cl_ord_id, orig = msg.require(mapping.CL_ORD_ID), msg.require(mapping.ORIG_CL_ORD_ID)
        live = self._by_cl.get((client, orig))
        if live is None:
            why, reason = "unknown order", "1"
        elif live.order.state.is_terminal:
            why, reason = f"too late to cancel: {live.order.state.value.lower()}", "0"
        elif live.cancel or live.replace or live.replaced:
            why, reason = "an earlier cancel or replace is pending", "3"
        else:
            live.cancel = (cl_ord_id, orig)
            self._by_cl[(client, cl_ord_id)] = live
            self._venue(live.order.instrument).cancel(
                CancelOrder(live.internal, live.order.instrument, self._now())
            )
            return
        order = live.order if live is not None else None
        self._send(
            client, "9", venue_mapping.cancel_reject(cl_ord_id, orig, order, "1", reason, why, self._ts())
        )

    def _replace(self, session: Session, msg: FixMessage) -> None:
        client = session.target
        cl_ord_id, orig = msg.require(mapping.CL_ORD_ID), msg.require(mapping.ORIG_CL_ORD_ID)
        qty, price = msg.decimal(mapping.ORDER_QTY), msg.decimal(mapping.PRICE)
        live = self._by_cl.get((client, orig))
        if live is None:
            why, reason = "unknown order", "1"
        elif live.order.state.is_terminal:
            why, reason = f"too late to replace: {live.order.state.value.lower()}", "0"
        elif live.cancel or live.replace or live.replaced:
            why, reason = "an earlier cancel or replace is pending", "3"
        elif qty != qty.to_integral_value() or int(qty) <= live.order.cum_qty:
            why, reason = (
                f"new OrderQty {qty} must be a whole number above the {live.order.cum_qty} filled",
                "99",
            )
        elif (client, cl_ord_id) in self._by_cl:
            why, reason = f"duplicate ClOrdID {cl_ord_id!r}", "6"
        else:
            why = reason = ""
        if why or live is None:
            order = live.order if live is not None else None
            self._send(
                client, "9", venue_mapping.cancel_reject(cl_ord_id, orig, order, "2", reason, why, self._ts())
            )
            return
        live.replace = (cl_ord_id, orig, int(qty), price)
        self._by_cl[(client, cl_ord_id)] = live
        self._venue(live.order.instrument).cancel(
            CancelOrder(live.internal, live.order.instrument, self._now())
        )

    def _status(self, session: Session, msg: FixMessage) -> None:
        client = session.target
        cl_ord_id = msg.require(mapping.CL_ORD_ID)
        req_id = msg.get(mapping.ORD_STATUS_REQ_ID)
        live = self._by_cl.get((client, cl_ord_id))
        if live is None:
            self._send(
                client,
                "8",
                venue_mapping.unknown_order_report(cl_ord_id, self._exec_id(), self._ts(), req_id),
            )
            return
        venue = self._venue(live.order.instrument)

        async def answer() -> None:
            with contextlib.suppress(Exception):  # sync with the matcher: earlier reports go out first
                await venue.order_status([live.internal])
            self._send_er(client, live.order, "I", cl_ord_id=cl_ord_id, status_req_id=req_id)

        self._later(answer())

    def _mass_status(self, session: Session, msg: FixMessage) -> None:
        """OrderMassStatusRequest: one ExecutionReport (150=I) per working order of this client, numbered."""
        client, req_id = session.target, msg.require(reports.MASS_STATUS_REQ_ID)
        kind = msg.get(reports.MASS_STATUS_REQ_TYPE)
        if kind != reports.ALL_ORDERS:
            raise BusinessReject(
                0, f"MassStatusReqType {kind!r} is not supported; send 7 (all orders)", req_id
            )

        async def answer() -> None:
            for venue in self.exchange.venues.values():  # sync with the matchers: earlier reports go first
                with contextlib.suppress(Exception):
                    await venue.working_orders()
            lives = {id(lv): lv for lv in self._by_cl.values() if lv.owner == client}
            working = [lv for lv in lives.values() if not lv.order.state.is_terminal]
            if not working:
                self._send(client, "8", reports.no_orders_report(req_id, self._exec_id(), self._ts()))
            for n, live in enumerate(working, start=1):
                extra = reports.numbered(req_id, len(working), n == len(working))
                self._send_er(client, live.order, "I", extra=extra)

        self._later(answer())

    def _positions(self, session: Session, msg: FixMessage) -> None:
        """RequestForPositions: RequestForPositionsAck, then one PositionReport per instrument held."""
        client, req_id, account = session.target, msg.require(reports.POS_REQ_ID), msg.get(mapping.ACCOUNT)
        kind = msg.get(reports.POS_REQ_TYPE)
        if kind != reports.POSITIONS:
            why = f"PosReqType {kind!r} is not supported; send 0 (positions)"
            self._send(client, "AO", reports.positions_ack(msg, self._exec_id(), 0, why))
            return

        async def answer() -> None:
            held = []
            for venue in self.exchange.venues.values():
                with contextlib.suppress(Exception):
                    held += [p for p in await venue.positions() if account in (None, p.account)]
            self._send(client, "AO", reports.positions_ack(msg, self._exec_id(), len(held)))
            date = reports.business_date(self._now())
            for p in held:
                mid = self._quotes[p.instrument_id].mid if p.instrument_id in self._quotes else 0.0
                body = reports.position_report(req_id, self._exec_id(), len(held), p, mid, date)
                self._send(client, "AP", body)

        self._later(answer())

    def _later(self, answer: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(answer)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ market data

    def _market_data(self, session: Session, msg: FixMessage) -> None:
        client = session.target
        req_id, kind, symbols = venue_mapping.parse_market_data_request(msg)
        wanted = []
        for symbol, exchange in symbols:
            iid = self._find(symbol, exchange)
            if iid is None:
                where = f" on {exchange}" if exchange else ""
                self._send(client, "Y", [(mapping.MD_REQ_ID, req_id), (mapping.MD_REJ_REASON, "0"),
                                         (codec.TEXT, f"unknown symbol {symbol}{where}")])  # fmt: skip
                return
            wanted.append(iid)
        subs = self._subs[client]
        for iid in wanted:
            if kind == "2":
                subs.pop(iid, None)
                continue
            self._send(client, "W", venue_mapping.market_data_snapshot(req_id, self._quotes.get(iid), iid))
            if kind == "1":
                subs[iid] = req_id

    def _find(self, symbol: str, exchange: str | None) -> str | None:
        if exchange:
            iid = mapping.instrument_id(symbol, exchange)
            return iid if iid in self.currencies else None
        matches = [iid for iid in self.currencies if symbol_of(iid) == symbol]
        return matches[0] if len(matches) == 1 else None

    _handlers: ClassVar[dict[str, Callable[[ExchangeServer, Session, FixMessage], None]]] = {
        "D": _new_order,
        "F": _cancel,
        "G": _replace,
        "H": _status,
        "V": _market_data,
        "AF": _mass_status,
        "AN": _positions,
    }

    # ------------------------------------------------------------------ exchange events

    def _on_exchange(self, message: Event | Quote) -> None:
        if isinstance(message, Quote):
            self._quotes[message.instrument_id] = message
            for client, subs in self._subs.items():
                req_id = subs.get(message.instrument_id)
                if req_id is not None and self.sessions[client].logged_on:
                    self.sessions[client].send("X", venue_mapping.market_data_incremental(req_id, message))
            return
        live = self._by_internal.get(getattr(message, "client_order_id", ""))
        if live is None:
            return
        order, client = live.order, live.owner
        if isinstance(message, OrderAccepted):
            if live.replaced is not None:
                new_cl, orig = live.replaced
                live.replaced = None
                self._send_er(client, order, "5", cl_ord_id=new_cl, orig_cl_ord_id=orig)
                return
            order.order_id = message.venue_order_id
            order.state = OrderState.ACCEPTED if not order.cum_qty else order.state
            self._send_er(client, order, "0")
        elif isinstance(message, OrderFilled):
            order.cum_qty += message.last_qty
            order.notional += message.last_px * message.last_qty
            order.state = OrderState.FILLED if order.cum_qty >= order.qty else OrderState.PARTIALLY_FILLED
            self._send_er(client, order, "F", exec_id=message.trade_id, last_px=message.last_px,
                          last_qty=message.last_qty, liquidity=message.liquidity)  # fmt: skip
        elif isinstance(message, OrderCanceled):
            if live.replace is not None:
                self._resubmit(live)
                return
            order.state = OrderState.CANCELED
            cancel, live.cancel = live.cancel, None
            if cancel is None:
                self._send_er(client, order, "4", text=message.reason)
            else:
                self._send_er(
                    client, order, "4", cl_ord_id=cancel[0], orig_cl_ord_id=cancel[1], text=message.reason
                )
        elif isinstance(message, OrderCancelRejected):
            pending = live.replace or live.cancel
            response_to = "2" if live.replace is not None else "1"
            live.replace = live.cancel = None
            if pending is not None:
                reason = "0" if message.reason.startswith("too late") else "99"
                self._send(client, "9", venue_mapping.cancel_reject(
                    pending[0], pending[1], order, response_to, reason, message.reason, self._ts()))  # fmt: skip
        elif isinstance(message, OrderRejected):
            if live.replaced is not None:  # the replacement failed after the original left the book
                new_cl, orig = live.replaced
                live.replaced = None
                order.state = OrderState.CANCELED
                self._send(
                    client,
                    "9",
                    venue_mapping.cancel_reject(new_cl, orig, order, "2", "99", message.reason, self._ts()),
                )
                self._send_er(client, order, "4", text=f"replace rejected: {message.reason}; order canceled")
                return
            order.state = OrderState.REJECTED
            self._send_er(client, order, "8", text=message.reason)
        elif isinstance(message, OrderExpired):
            order.state = OrderState.EXPIRED
            self._send_er(client, order, "C", text=message.reason)

    def _resubmit(self, live: _Live) -> None:
        """The cancel half of a replace is done: send the replacement for what is left."""
        assert live.replace is not None
        new_cl, orig, qty, price = live.replace
        live.replace = None
        order = live.order
        order.cl_ord_id, order.qty, order.price = new_cl, qty, price
        order.chain.append(new_cl)
        live.internal = f"{live.owner}|{new_cl}"
        live.replaced = (new_cl, orig)
        self._by_internal[live.internal] = live
        self._venue(order.instrument).submit(
            SubmitOrder(
                live.internal, order.instrument, order.side, qty - order.cum_qty, price, order.tif, order.account,
                self._now(), offset=order.offset,
            )
        )  # fmt: skip

    # ------------------------------------------------------------------ sending

    def _send_er(
        self, client: str, order: FixOrder, exec_type: str, exec_id: str | None = None, **kwargs: Any
    ) -> None:
        body = venue_mapping.execution_report(
            order, exec_type, exec_id or self._exec_id(), self._ts(), **kwargs
        )
        self._send(client, "8", body)

    def _send(self, client: str, msg_type: str, body: list[tuple[int, object]]) -> None:
        self.sessions[client].send(msg_type, body, queue=True)

    def _exec_id(self) -> str:
        self._exec_seq += 1
        return f"{self.sender}-E{self._exec_seq:08d}"

    def _venue(self, instrument: str) -> SimVenue:
        return self.exchange.venue(venue_of(instrument))

    def _now(self) -> int:
        return self.clock.now_ns()

    def _ts(self) -> str:
        return codec.format_timestamp(self.clock.now_ns())


__all__ = ["ALWAYS_OPEN", "ExchangeServer", "ServeError", "paper_specs"]
