"""FIX initiator layer: :class:`FixGateway`, our end of one FIX 4.4 session, shared by the venues that name it.

One TCP connection, one sequence and one reconnect loop (bounded exponential back-off) per
session: orders go out as NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest and
OrderStatusRequest; execution reports, cancel rejects and market data come back to the sink of
the venue they belong to. :class:`~cmc_lab.venues.fix.gateway.FixVenue` puts one venue of it
behind the Venue protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from cmc_lab.core.clock import Clock
from cmc_lab.core.crashpoints import crash_point
from cmc_lab.core.ids import venue_of
from cmc_lab.core.listing import maturity_month_year
from cmc_lab.core.model import (
    CancelOrder,
    OrderCancelRejected,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    ReplaceOrder,
    SubmitOrder,
    VenueConnected,
    VenueDisconnected,
)
from cmc_lab.core.specs import Specs
from cmc_lab.venues.base import EventSink, OrderStatusReport, VenueNotConnected
from cmc_lab.venues.fix import codec, mapping
from cmc_lab.venues.fix.codec import FixMessage
from cmc_lab.venues.fix.config import FixConfig, env_suffix
from cmc_lab.venues.fix.interface import LogonError, Session, SessionApp, StoredMessage, UnsupportedMessage
from cmc_lab.venues.fix.queries import VenueQueries
from cmc_lab.venues.fix.session import FixSession
from cmc_lab.venues.fix.store import SeqStore

log = logging.getLogger("cmc_lab.fix")

_KEEP_SEQ = 10_000  # outgoing sequence numbers remembered to map a Reject back to its order


class FixLogonRefused(VenueNotConnected):
    """The FIX counterparty refused our Logon (CompIDs, password, sequence numbers)."""


class ReplaceRejected(RuntimeError):
    """The venue refused an OrderCancelReplaceRequest; the order stands as it was."""


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    """An accepted replace: the order (still known by our ``client_order_id``) now rests as ``qty`` @ ``price``."""

    client_order_id: str
    cl_ord_id: str  # the ClOrdID the venue now knows it by
    venue_order_id: str
    qty: int
    price: Decimal


@dataclass(slots=True)
class _Sent:
    command: SubmitOrder
    venue: str
    current: str  # the ClOrdID the venue knows the order by now
    order_id: str | None = None
    amendments: int = 0


class FixGateway(SessionApp):
    """One initiator session and the venues that share it; reconnects with bounded exponential back-off."""

    def __init__(self, config: FixConfig, store: SeqStore, clock: Clock, specs: Specs) -> None:
        self.config = config
        self.clock = clock
        self.specs = specs
        self.session = FixSession(
            config.sender,
            config.target,
            "initiator",
            self,
            store,
            heartbeat=config.heartbeat,
            max_skew=config.max_skew,
            logon_timeout=config.timeout,
        )
        self.sinks: dict[str, EventSink] = {}
        self.reconnects = 0
        self._orders: dict[str, _Sent] = {}
        self._root: dict[str, str] = {}  # any ClOrdID we sent -> our client order id
        self._by_seq: dict[int, tuple[str, str]] = {}  # MsgSeqNum -> (MsgType, client order id or request id)
        self._status: dict[str, tuple[asyncio.Future[OrderStatusReport | None], str, str]] = {}
        self._replaces: dict[str, asyncio.Future[ReplaceResult]] = {}
        self._books: dict[str, mapping.TopOfBook] = {}
        self._maturities: dict[str, str] = {}  # instrument id -> MaturityMonthYear ("" for none), as sent
        self.queries = VenueQueries(self._send, lambda cl: self._root.get(cl, cl), config.timeout)
        self._requests = 0
        self._reader: asyncio.Task[str] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._was_up = False

    def __repr__(self) -> str:
        return (
            f"FixGateway({self.config}, {self.session.state.value}, venues {', '.join(self.sinks) or 'none'})"
        )

    # ------------------------------------------------------------------ connection

    async def attach(self, venue: str, sink: EventSink) -> None:
        """Open the session if it is not up (raising if that fails) and route ``venue``'s messages to ``sink``."""
        known = venue in self.sinks
        self.sinks[venue] = sink
        if self.session.logged_on and known:
            return  # connected already: only the sink changes
        if self.session.logged_on:
            self._subscribe([venue])
            now = self.clock.now_ns()
            sink(VenueConnected(now, now, venue, self._describe()))
            return
        if self._supervisor is not None and not self._supervisor.done():
            raise VenueNotConnected(
                f"the FIX session is reconnecting by itself ({self.session.last_disconnect}); "
                "VenueConnected follows its Logon"
            )
        self._closing = False
        try:
            await self._connect_once()
        except BaseException:
            self.sinks.pop(venue, None)
            raise
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def detach(self, venue: str) -> None:
        """Stop routing to ``venue``; the last venue out logs the session out."""
        sink = self.sinks.pop(venue, None)
        if sink is not None:
            now = self.clock.now_ns()
            sink(VenueDisconnected(now, now, venue, "session closed by client"))
        if self.sinks:
            return
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self.session.logout("client disconnecting")
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
            self._reader = None
        self.session.store.close()

    async def _connect_once(self) -> None:
        cfg = self.config
        context = cfg.ssl_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    cfg.host, cfg.port, ssl=context, server_hostname=cfg.host if context else None
                ),
                cfg.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise VenueNotConnected(
                f"cannot reach the FIX acceptor at {cfg.host}:{cfg.port} ({exc.__class__.__name__}: {exc}); "
                f"is it running? a paper venue: cmc-lab venue serve --fix {cfg.host}:{cfg.port}"
            ) from None
        self.session.attach(writer)
        self._reader = asyncio.get_running_loop().create_task(self.session.run(reader))
        try:
            await self.session.logon(reset=cfg.reset, username=cfg.username, password=cfg.password())
        except LogonError as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
            where = f"FIX session {cfg.sender}->{cfg.target} at {cfg.host}:{cfg.port}"
            if str(exc).startswith("Logon refused"):
                raise FixLogonRefused(
                    f"{where}: {exc}; check sender=/target= in the address and the password in "
                    f"CMC_LAB_FIX_PASSWORD_{env_suffix(cfg.target)}"
                ) from None
            raise VenueNotConnected(f"{where}: no Logon answer: {exc}") from None

    async def _supervise(self) -> None:
        """Wait for the connection to end, then reconnect with back-off until it logs on or we close."""
        while not self._closing:
            if self._reader is not None:
                await asyncio.shield(self._reader)
            delay = self.config.reconnect_min
            while not self._closing:
                await asyncio.sleep(delay)
                if self._closing:
                    return
                try:
                    await self._connect_once()
                except (VenueNotConnected, OSError) as exc:
                    log.warning("%s: reconnect failed (%s); next try in %.2f s", self.config, exc, delay)
                    delay = min(delay * 2, self.config.reconnect_max)
                    continue
                self.reconnects += 1
                break

    def _describe(self) -> str:
        cfg = self.config
        tls = ", TLS" if cfg.tls else ""
        return f"FIX 4.4 session {cfg.sender}->{cfg.target} at {cfg.host}:{cfg.port}{tls}"

    # ------------------------------------------------------------------ session callbacks

    def on_logon(self, session: Session) -> None:
        self._was_up = True
        self._subscribe(list(self.sinks))
        now = self.clock.now_ns()
        for venue, sink in list(self.sinks.items()):
            sink(VenueConnected(now, now, venue, self._describe()))

    def on_disconnect(self, session: Session, reason: str) -> None:
        self._books.clear()
        failure = VenueNotConnected(
            f"FIX session {self.config.sender}->{self.config.target} went down: {reason}"
        )
        for future, _, _ in self._status.values():
            if not future.done():
                future.set_exception(failure)
        self._status.clear()
        for pending in self._replaces.values():
            if not pending.done():
                pending.set_exception(failure)
        self._replaces.clear()
        self.queries.fail_all(failure)
        was_up, self._was_up = self._was_up, False
        if not was_up:  # a refused or unanswered Logon: the venues were down already
            return
        now = self.clock.now_ns()
        for venue, sink in list(self.sinks.items()):
            sink(VenueDisconnected(now, now, venue, f"FIX session down: {reason}"))

    def may_resend(self, session: Session, stored: StoredMessage) -> bool:
        if stored.msg_type == "V":
            return True
        if stored.msg_type in ("D", "F", "G"):
            return session.now() - stored.sent_at <= self.config.resend_age
        return False

    def not_resent(self, session: Session, stored: StoredMessage) -> None:
        entry = self._by_seq.get(stored.seq)
        if entry is None:
            return
        msg_type, key = entry
        why = (
            f"lost in a sequence gap: {self.config.target} never processed it, and it was older than "
            f"resend_age={self.config.resend_age:g} s, so it was not resent"
        )
        self._fail(msg_type, key, why)

    def on_reject(self, session: Session, message: FixMessage) -> None:
        ref = message.get(codec.REF_SEQ_NUM)
        entry = self._by_seq.get(int(ref)) if ref and codec.is_uint(ref) else None
        if entry is not None:
            self._fail(entry[0], entry[1], f"session Reject: {message.get(codec.TEXT) or 'no reason given'}")

    def on_message(self, session: Session, message: FixMessage) -> None:
        if self.queries.take(message):  # mass status and positions answers
            return
        mt = message.msg_type
        if mt == "8":
            self._on_execution_report(message)
        elif mt == "9":
            self._on_cancel_reject(message)
        elif mt in ("W", "X"):
            for quote in mapping.market_data_quotes(message, self._books, self.clock.now_ns()):
                sink = self.sinks.get(venue_of(quote.instrument_id))
                if sink is not None:
                    sink(quote)
        elif mt == "Y":
            log.warning("%s: market data request refused: %s", self.config, message.get(codec.TEXT))
        elif mt == "j":
            self._on_business_reject(message)
        else:
            raise UnsupportedMessage(mt)

    # ------------------------------------------------------------------ incoming application messages

    def _on_execution_report(self, msg: FixMessage) -> None:
        cl = msg.require(mapping.CL_ORD_ID)
        exec_type = msg.require(mapping.EXEC_TYPE)
        if exec_type == "I":
            entry = self._status.pop(msg.get(mapping.ORD_STATUS_REQ_ID) or "", None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(mapping.status_report(msg, entry[1], entry[2]))
            return
        root = self._root.get(cl) or self._root.get(msg.get(mapping.ORIG_CL_ORD_ID) or "")
        sent = self._orders.get(root) if root else None
        if exec_type == "5":
            self._on_replaced(msg, cl)
            return
        if sent is None:
            instrument = mapping.instrument_id(
                msg.require(mapping.SYMBOL), msg.get(mapping.SECURITY_EXCHANGE) or ""
            )
            venue, client_order_id = venue_of(instrument), cl
        else:
            instrument, venue, client_order_id = (
                sent.command.instrument_id,
                sent.venue,
                sent.command.client_order_id,
            )
            sent.order_id = msg.get(mapping.ORDER_ID) or sent.order_id
        event = mapping.execution_report_event(msg, client_order_id, instrument, self.clock.now_ns())
        sink = self._order_sink(venue)
        crash_point("fill_before_journal", exec_type == "F")
        if event is not None and sink is not None:
            sink(event)

    def _order_sink(self, venue: str) -> EventSink | None:
        """The venue's sink, else another venue's of this session (all belong to the engine that opened it).

        An order report must reach the engine before its MsgSeqNum is stored as processed: a resend
        right after Logon can arrive before the other venues have attached, or after one detached.
        """
        return self.sinks.get(venue) or next(iter(self.sinks.values()), None)

    def _on_replaced(self, msg: FixMessage, cl: str) -> None:
        future = self._replaces.pop(cl, None)
        root = self._root.get(cl)
        sent = self._orders.get(root) if root else None
        if sent is None:
            return
        qty, price = mapping.lots(msg, mapping.ORDER_QTY), msg.decimal(mapping.PRICE)
        sent.current = cl
        sent.order_id = msg.get(mapping.ORDER_ID) or sent.order_id
        sent.command = dataclasses.replace(sent.command, qty=qty, price=price)
        cmd = sent.command
        sink = self._order_sink(sent.venue)
        if sink is not None:  # in order with the fills of the replaced order that follow
            ts = mapping.event_time(msg)
            sink(OrderReplaced(ts, self.clock.now_ns(), cmd.client_order_id, cmd.instrument_id, qty, price,
                               sent.order_id or ""))  # fmt: skip
        if future is not None and not future.done():
            future.set_result(
                ReplaceResult(sent.command.client_order_id, cl, sent.order_id or "", qty, price)
            )

    def _on_cancel_reject(self, msg: FixMessage) -> None:
        cl = msg.require(mapping.CL_ORD_ID)
        text = msg.get(codec.TEXT) or "rejected"
        if msg.get(mapping.CXL_REJ_RESPONSE_TO) == "2":
            self._fail("G", cl, f"replace refused by {self.config.target}: {text}")
            return
        root = self._root.get(cl) or self._root.get(msg.get(mapping.ORIG_CL_ORD_ID) or "")
        sent = self._orders.get(root) if root else None
        if sent is None:  # a late answer (resent after a restart) for an order this process never sent:
            # the engine still journals it (as a report of an order it does not work), never dropped
            orig = (msg.get(mapping.ORIG_CL_ORD_ID) or cl).partition(".")[0]
            event = mapping.cancel_reject_event(msg, orig, "", self.clock.now_ns())
            venue = ""
        else:
            event = mapping.cancel_reject_event(
                msg, sent.command.client_order_id, sent.command.instrument_id, self.clock.now_ns()
            )
            venue = sent.venue
        sink = self._order_sink(venue)
        if sink is not None:
            sink(event)

    def _on_business_reject(self, msg: FixMessage) -> None:
        ref = msg.get(codec.REF_SEQ_NUM)
        entry = self._by_seq.get(int(ref)) if ref and codec.is_uint(ref) else None
        text = f"business reject: {msg.get(codec.TEXT) or 'no reason given'}"
        if entry is not None:
            self._fail(entry[0], entry[1], text)
        else:
            log.warning("%s: %s", self.config, text)

    def _fail(self, msg_type: str, key: str, why: str) -> None:
        """An order message the venue never acted on: tell whoever waits for its answer."""
        if msg_type == "H":
            entry = self._status.pop(key, None)
            if entry is not None and not entry[0].done():
                entry[0].set_exception(VenueNotConnected(f"order status of {entry[1]} not answered: {why}"))
            return
        if msg_type in ("AF", "AN"):
            self.queries.refuse(key, why)
            return
        if msg_type == "G":
            future = self._replaces.pop(key, None)
            if future is not None and not future.done():
                future.set_exception(ReplaceRejected(why))
            root = self._root.get(key)
            replaced = self._orders.get(root) if root else None
            sink = self._order_sink(replaced.venue) if replaced is not None else None
            if replaced is not None and sink is not None:
                ts, cmd = self.clock.now_ns(), replaced.command
                sink(OrderReplaceRejected(ts, ts, cmd.client_order_id, cmd.instrument_id, why))
            return
        sent = self._orders.get(key)
        if sent is None:
            return
        sink = self._order_sink(sent.venue)
        now = self.clock.now_ns()
        cmd = sent.command
        if sink is None:
            return
        if msg_type == "D":
            sink(OrderRejected(now, now, cmd.client_order_id, cmd.instrument_id, why))
        elif msg_type == "F":
            sink(OrderCancelRejected(now, now, cmd.client_order_id, cmd.instrument_id, why))

    # ------------------------------------------------------------------ outgoing

    def _send(self, msg_type: str, body: list[tuple[int, object]], key: str) -> int:
        seq = self.session.send(msg_type, body)
        self._by_seq[seq] = (msg_type, key)
        if len(self._by_seq) > _KEEP_SEQ:
            del self._by_seq[next(iter(self._by_seq))]
        return seq

    def _subscribe(self, venues: list[str]) -> None:
        for venue in venues:
            instruments = [i.id for i in self.specs.instruments.values() if i.venue == venue]
            if instruments:
                self._requests += 1
                self._send(
                    "V", mapping.market_data_request(f"md-{venue}-{self._requests}", instruments), venue
                )

    def require_up(self, venue: str) -> None:
        if not self.session.logged_on or venue not in self.sinks:
            why = self.session.last_disconnect or "not connected yet"
            raise VenueNotConnected(
                f"venue {venue!r} is not connected ({self.config.sender}->{self.config.target}: {why}); "
                "wait for VenueConnected (it reconnects by itself), then reconcile with order_status()"
            )

    def submit(self, venue: str, cmd: SubmitOrder) -> None:
        self.require_up(venue)
        currency = (
            self.specs.instruments[cmd.instrument_id].currency
            if cmd.instrument_id in self.specs.instruments
            else ""
        )
        maturity = self._maturities.get(cmd.instrument_id)
        if maturity is None:  # worked out once an instrument: it parses the contract id against every rule
            maturity = self._maturities[cmd.instrument_id] = maturity_month_year(
                self.specs, cmd.instrument_id
            )
        body = mapping.new_order_single(
            cmd, self.config.account or cmd.account, currency, _now_text(), maturity
        )
        self._send("D", body, cmd.client_order_id)
        self._orders[cmd.client_order_id] = _Sent(cmd, venue, cmd.client_order_id)
        self._root[cmd.client_order_id] = cmd.client_order_id

    def adopt(self, venue: str, cmd: SubmitOrder, amendments: int) -> None:
        """Know an order an earlier process sent (restart recovery): its reports, cancels, status map to it."""
        self._orders.setdefault(
            cmd.client_order_id, _Sent(cmd, venue, cmd.client_order_id, amendments=amendments)
        )
        self._root[cmd.client_order_id] = cmd.client_order_id

    def cancel(self, venue: str, cmd: CancelOrder) -> None:
        self.require_up(venue)
        sent = self._known(cmd.client_order_id)
        sent.amendments += 1
        cl = f"{cmd.client_order_id}.C{sent.amendments}"
        self._root[cl] = cmd.client_order_id
        order = sent.command
        body = mapping.cancel_request(
            cl,
            sent.current,
            order.instrument_id,
            order.side,
            order.qty,
            sent.order_id or cmd.venue_order_id,
            _now_text(),
        )
        self._send("F", body, cmd.client_order_id)

    def amend(self, venue: str, cmd: ReplaceOrder) -> str:
        """Send an OrderCancelReplaceRequest; OrderReplaced or OrderReplaceRejected comes to the sink. Its ClOrdID."""
        self.require_up(venue)
        sent = self._known(cmd.client_order_id)
        sent.amendments += 1
        cl = f"{cmd.client_order_id}.R{sent.amendments}"
        self._root[cl] = cmd.client_order_id
        order = sent.command
        currency = self.specs.instruments[order.instrument_id].currency
        account = self.config.account or order.account
        body = mapping.replace_request(
            cl, sent.current, order, cmd.qty, cmd.price, account, currency, _now_text()
        )
        self._send("G", body, cl)
        return cl

    async def replace(
        self, venue: str, client_order_id: str, qty: int | None, price: Decimal | None
    ) -> ReplaceResult:
        order = self._known(client_order_id).command
        cmd = ReplaceOrder(
            client_order_id,
            order.instrument_id,
            order.qty if qty is None else qty,
            order.price if price is None else price,
            self.clock.now_ns(),
        )
        cl = self.amend(venue, cmd)
        future: asyncio.Future[ReplaceResult] = asyncio.get_running_loop().create_future()
        self._replaces[cl] = future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.config.timeout)
        except TimeoutError:
            raise VenueNotConnected(
                f"no answer to the replace of {client_order_id} within {self.config.timeout:g} s"
            ) from None
        finally:
            self._replaces.pop(cl, None)

    async def order_status(self, venue: str, client_order_ids: Iterable[str]) -> list[OrderStatusReport]:
        self.require_up(venue)
        loop = asyncio.get_running_loop()
        futures = []
        for cid in client_order_ids:
            sent = self._orders.get(cid)
            self._requests += 1
            req_id = f"st-{self._requests}"
            future: asyncio.Future[OrderStatusReport | None] = loop.create_future()
            instrument = sent.command.instrument_id if sent is not None else ""
            self._status[req_id] = (future, cid, instrument)
            side = sent.command.side if sent is not None else None
            self._send(
                "H", mapping.status_request(sent.current if sent else cid, req_id, instrument, side), req_id
            )
            futures.append(future)
        if not futures:
            return []
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), self.config.timeout)
        except TimeoutError:
            raise VenueNotConnected(
                f"venue {venue!r}: no answer to OrderStatusRequest within {self.config.timeout:g} s"
            ) from None
        return [r for r in results if r is not None]

    def _known(self, client_order_id: str) -> _Sent:
        sent = self._orders.get(client_order_id)
        if sent is None:
            raise KeyError(
                f"order {client_order_id!r} was not sent through this FIX session; "
                "reconcile it with order_status() first"
            )
        return sent


def _now_text() -> str:
    return codec.format_timestamp(time.time_ns())


__all__ = ["FixGateway", "FixLogonRefused", "ReplaceRejected", "ReplaceResult"]
