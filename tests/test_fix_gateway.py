"""FIX gateway against the served exchange in another process: orders, market data, faults, the engine.

Faults are made by a loopback proxy between gateway and exchange that can drop, garble,
truncate or cut messages in either direction, refuse connections or go silent. Every fault
test ends with the order settled, the journal intact and nothing processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

import cmc_lab as cmc
from cmc_lab.bench.fix import served_exchange
from cmc_lab.core.clock import RealClock
from cmc_lab.core.listing import list_months, maturity_month_year
from cmc_lab.core.model import (
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderState,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
    VenueConnected,
    VenueDisconnected,
)
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.base import VenueNotConnected
from cmc_lab.venues.fix import codec, mapping, venue_mapping
from cmc_lab.venues.fix.codec import FixMessage, Framer, Garbled, encode, parse
from cmc_lab.venues.fix.gateway import FixVenue, fix_venues
from cmc_lab.venues.fix.initiator import FixLogonRefused, ReplaceRejected
from cmc_lab.venues.fix.venue_mapping import OrderRefused

T = TypeVar("T")
PASSWORD = "s3cret"
PASSWORD_ENV = "CMC_LAB_FIX_PASSWORD_EXECUTOR"
CLIENTS = [f"G{i:02d}" for i in range(40)]
SPECS = list_months(load_specs(), time.time_ns())  # the months the served exchange lists on its real clock
GC_ID, SI_ID = SPECS.aliases["COMEX.GC"], SPECS.aliases["COMEX.SI"]
GC = SPECS.instruments[GC_ID]
HIGH = GC.round_to_tick(GC.reference_price * (1 + GC.price_band / 2))  # crosses any ask
LOW = GC.round_to_tick(GC.reference_price * (1 - GC.price_band / 2))  # rests below any bid


# --------------------------------------------------------------------------- harness


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    log = tmp_path_factory.mktemp("fixgw") / "server.log"
    options = [f"--target={c}" for c in CLIENTS] + ["--password-env", PASSWORD_ENV, "--log", str(log)]
    with served_exchange(*options, "--quote-interval", "0.1", env={PASSWORD_ENV: PASSWORD}) as (port, _):
        yield port, log


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


_names = itertools.count()


@pytest.fixture
def comp_id() -> str:
    """A client CompID no other test uses: a fresh session on the module's served exchange."""
    return CLIENTS[next(_names)]


def address(port: int, sender: str, **settings: object) -> str:
    extra = "".join(f"&{k}={v}" for k, v in {"heartbeat": 1, "reconnect_min": 0.05, **settings}.items())
    return f"fix://127.0.0.1:{port}?sender={sender}&target=EXECUTOR{extra}"


def orders_taken(log: Path, sender: str, cl_ord_id: str) -> int:
    """How many times the served exchange took this order (its log line 'order in: SENDER ID ...')."""
    return sum(f"order in: {sender} {cl_ord_id} " in line for line in log.read_text().splitlines())


class Gateway:
    """A FixVenue ("COMEX") on a private loop run from the test thread; every sink message kept."""

    def __init__(self, fix_address: str, journal: Path | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.events: list[Event | Quote] = []
        self.venue: FixVenue = fix_venues({"COMEX": fix_address}, SPECS, RealClock(), journal)["COMEX"]

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def connect(self) -> None:
        self.run(self.venue.connect(self.events.append))

    def until(self, predicate: Callable[[], bool], timeout: float = 6.0, what: str = "condition") -> None:
        async def wait() -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}; events: {self.kinds()[-12:]}")
                await asyncio.sleep(0.01)

        self.loop.run_until_complete(wait())

    def sleep(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def submit(self, cid: str, side: Side = Side.BUY, price: Decimal = HIGH, tif: TimeInForce = TimeInForce.IOC,
               qty: int = 1) -> SubmitOrder:  # fmt: skip
        cmd = SubmitOrder(cid, GC_ID, side, qty, price, tif, "US-FUT", time.time_ns())
        self.venue.submit(cmd)
        return cmd

    def of(self, cid: str, kind: type | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if isinstance(e, Event)
            and getattr(e, "client_order_id", None) == cid
            and (kind is None or isinstance(e, kind))
        ]

    def fills(self, cid: str) -> list[OrderFilled]:
        return [e for e in self.events if isinstance(e, OrderFilled) and e.client_order_id == cid]

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events if not isinstance(e, Quote)]

    def settled(self, cid: str) -> bool:
        return any(isinstance(e, OrderFilled | OrderCanceled | OrderRejected) for e in self.of(cid))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.run(self.venue.disconnect(), timeout=5)
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(fix_address: str, journal: Path | None = None, connect: bool = True) -> Gateway:
        gateway = Gateway(fix_address, journal)
        made.append(gateway)
        if connect:
            gateway.connect()
        return gateway

    yield make
    for gateway in made:
        gateway.close()


class FaultProxy:
    """A loopback TCP proxy that forwards FIX frames and, on cue, drops, damages, cuts or silences them."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.rules: list[list[Any]] = []  # [direction, msg_type, match, action, times left]
        self.seen: dict[str, list[FixMessage]] = {"c2s": [], "s2c": []}
        self.connections = 0
        self.refuse = 0
        self.accepted_at: list[float] = []
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fix-proxy", daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    def on(self, direction: str, msg_type: str, action: str, times: int = 1,
           match: Callable[[FixMessage], bool] | None = None) -> None:  # fmt: skip
        """``action`` on the next ``times`` frames of ``msg_type`` going ``direction`` (c2s / s2c)."""
        self.rules.append([direction, msg_type, match, action, times])

    def sent(self, direction: str, msg_type: str) -> list[FixMessage]:
        return [m for m in list(self.seen[direction]) if m.msg_type == msg_type]

    async def _start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.accepted_at.append(time.monotonic())
        if self.refuse > 0:
            self.refuse -= 1
            c_writer.transport.abort()
            return
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            c_writer.transport.abort()
            return
        link = (c_writer, s_writer)
        self._links.append(link)
        silent: set[str] = set()
        await asyncio.gather(
            self._pump(c_reader, s_writer, "c2s", link, silent),
            self._pump(s_reader, c_writer, "s2c", link, silent),
            return_exceptions=True,
        )

    def _action(self, direction: str, msg: FixMessage) -> str | None:
        for rule in self.rules:
            d, mt, match, action, left = rule
            if d == direction and mt == msg.msg_type and left > 0 and (match is None or match(msg)):
                rule[4] -= 1
                return str(action)
        return None

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str,
                    link: tuple[asyncio.StreamWriter, asyncio.StreamWriter], silent: set[str]) -> None:  # fmt: skip
        framer = Framer()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                framer.feed(data)
                for item in framer.frames():
                    if isinstance(item, Garbled):
                        writer.write(item.raw)
                        continue
                    msg = parse(item)
                    if writer.is_closing():  # read after a cut: it never reaches the other side
                        continue
                    self.seen[direction].append(msg)
                    action = self._action(direction, msg)
                    if action == "silence":
                        silent.add(direction)
                    if direction in silent or action == "drop":
                        continue
                    if action == "checksum":
                        writer.write(item[:-4] + b"%03d\x01" % ((int(item[-4:-1]) + 1) % 256))
                    elif action == "truncate":
                        writer.write(item[: len(item) // 2])
                    elif action == "garble":
                        writer.write(item[:30] + b"\xff\xfe" + item[32:])
                    elif action == "cut":  # pass it on, then cut both sides before any answer can pass
                        writer.write(item)
                        for w in link:
                            w.transport.abort()
                        return
                    else:
                        writer.write(item)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for link in self._links:
                for w in link:
                    w.transport.abort()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def proxy(server: tuple[int, Path]) -> Iterator[FaultProxy]:
    p = FaultProxy(server[0])
    yield p
    p.close()


# --------------------------------------------------------------------------- mapping (pure)


def report(**fields: object) -> FixMessage:
    base: dict[int, object] = {35: "8", 52: "20261124-14:00:00.000", 60: "20261124-14:00:00.250", 37: "COMEX-1",
                               11: "c1", 17: "E1", 54: "1", 55: "GC", 207: "COMEX", 14: 0, 151: 1, 6: 0}  # fmt: skip
    base.update({int(k[1:]): v for k, v in fields.items()})
    return parse(encode(list(base.items())))


def test_execution_reports_map_to_our_events_with_exact_prices() -> None:
    ts = codec.parse_timestamp("20261124-14:00:00.250")
    accepted = mapping.execution_report_event(report(t150="0", t39="0"), "c1", "COMEX.GC", ts + 9)
    assert accepted == OrderAccepted(ts, ts + 9, "c1", "COMEX.GC", "COMEX-1")
    filled = mapping.execution_report_event(
        report(t150="F", t39="2", t31="2650.10", t32=1, t851="1"), "c1", "COMEX.GC", 0
    )
    assert isinstance(filled, OrderFilled)
    assert (filled.last_px, filled.last_qty, filled.trade_id, filled.side, filled.liquidity) == (
        Decimal("2650.10"), 1, "E1", Side.BUY, "maker")  # fmt: skip
    canceled = mapping.execution_report_event(
        report(t150="4", t39="4", t58="IOC remainder"), "c1", "COMEX.GC", 0
    )
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "IOC remainder"
    rejected = mapping.execution_report_event(
        report(t150="8", t39="8", t58="price outside band"), "c1", "COMEX.GC", 0
    )
    assert isinstance(rejected, OrderRejected) and rejected.reason == "price outside band"
    assert isinstance(
        mapping.execution_report_event(report(t150="C", t39="C"), "c1", "COMEX.GC", 0), OrderExpired
    )
    assert mapping.execution_report_event(report(t150="I", t39="0"), "c1", "COMEX.GC", 0) is None


def test_status_reports_map_and_an_unknown_order_is_no_report() -> None:
    known = mapping.status_report(report(t150="I", t39="1", t14=1, t151=2, t6="2650.1"), "c1", "COMEX.GC")
    assert known is not None and (known.state, known.filled_qty, known.leaves_qty, known.avg_px) == (
        OrderState.PARTIALLY_FILLED, 1, 2, Decimal("2650.1"))  # fmt: skip
    unknown = report(t150="I", t39="8", t103="5", t58="unknown order", t37="NONE")
    assert mapping.status_report(unknown, "c1", "COMEX.GC") is None


def test_orders_the_venue_cannot_take_are_refused_with_a_reason() -> None:
    currencies = {"COMEX.GC": "USD"}

    def nos(**fields: object) -> FixMessage:
        base: dict[int, object] = {
            35: "D",
            11: "n1",
            55: "GC",
            207: "COMEX",
            54: "1",
            38: 1,
            40: "2",
            44: "2650",
            59: "0",
        }
        base.update({int(k[1:]): v for k, v in fields.items()})
        return parse(encode(list(base.items())))

    assert venue_mapping.parse_new_order(nos(), currencies).tif is TimeInForce.GFD
    assert venue_mapping.parse_new_order(nos(t59="3", t1="US-FUT", t15="USD"), currencies).account == "US-FUT"
    for fields, text in [({"t40": "1"}, "OrdType '1'"), ({"t59": "6"}, "TimeInForce '6'"),
                         ({"t15": "EUR"}, "Currency EUR"), ({"t55": "ZZ"}, "unknown instrument ZZ"),
                         ({"t38": "1.5"}, "whole number")]:  # fmt: skip
        with pytest.raises(OrderRefused, match=text):
            venue_mapping.parse_new_order(nos(**fields), currencies)


# --------------------------------------------------------------------------- logon, market data, orders


def test_logon_then_market_data_streams_top_of_book_quotes(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    before = time.time_ns()
    gw = make_gateway(address(server[0], comp_id))
    assert gw.venue.connected and isinstance(gw.events[0], VenueConnected)
    assert "FIX 4.4 session" in gw.events[0].detail and comp_id in gw.events[0].detail
    gw.until(
        lambda: {q.instrument_id for q in gw.events if isinstance(q, Quote)} >= {GC_ID, SI_ID},
        what="quotes",
    )
    gw.sleep(0.35)
    quotes = [q for q in gw.events if isinstance(q, Quote) and q.instrument_id == GC_ID]
    assert len(quotes) >= 3  # a snapshot then incremental refreshes
    after = time.time_ns()
    for q in quotes:
        assert 0 < q.bid < q.ask and q.ts_event <= q.ts_init
        assert before <= q.ts_init <= after, "stamped on arrival by the gateway's real UTC clock"
    assert any(q.bid != quotes[0].bid or q.ask != quotes[0].ask for q in quotes) or len(quotes) >= 3


def test_crossing_ioc_order_is_accepted_then_filled_with_account_currency_and_tif_on_the_wire(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(server[0], comp_id))
    gw.submit("buy-1")
    gw.until(lambda: gw.settled("buy-1"), what="fill")
    accepted, filled = gw.of("buy-1")[:2]
    assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id.startswith("COMEX-")
    assert isinstance(filled, OrderFilled) and filled.last_qty == 1 and GC.is_on_tick(filled.last_px)
    assert filled.venue_order_id == accepted.venue_order_id and filled.trade_id.startswith("COMEX-T")
    line = next(x for x in server[1].read_text().splitlines() if "|35=D|" in x and "|11=buy-1|" in x)
    assert (
        "|1=US-FUT|" in line
        and "|15=USD|" in line
        and "|59=3|" in line
        and f"|55={GC.symbol}|207=COMEX|167=FUT|200={maturity_month_year(SPECS, GC.id)}|" in line
    )  # a futures month as venues read it: SecurityType FUT and MaturityMonthYear YYYYMM
    assert orders_taken(server[1], comp_id, "buy-1") == 1


def test_a_large_order_fills_in_parts_each_reported_as_it_happens(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(server[0], comp_id))
    gw.submit("big-1", qty=200)

    def done() -> bool:
        return bool(gw.of("big-1", OrderCanceled)) or sum(f.last_qty for f in gw.fills("big-1")) == 200

    gw.until(done, what="every part")
    fills = gw.fills("big-1")
    assert len(fills) > 1 and len({f.trade_id for f in fills}) == len(fills)
    lines = [x for x in server[1].read_text().splitlines() if "|11=big-1|" in x and "|150=F|" in x]
    assert any("|39=1|" in x for x in lines)  # PartiallyFilled before the last part


def test_resting_order_is_cancelled_and_a_second_cancel_is_rejected(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    from cmc_lab.core.model import CancelOrder

    gw = make_gateway(address(server[0], comp_id))
    gw.submit("rest-1", price=LOW, tif=TimeInForce.GFD)
    gw.until(lambda: bool(gw.of("rest-1", OrderAccepted)), what="accept")
    gw.venue.cancel(CancelOrder("rest-1", GC_ID, time.time_ns()))
    gw.until(lambda: bool(gw.of("rest-1", OrderCanceled)), what="cancel")
    gw.venue.cancel(CancelOrder("rest-1", GC_ID, time.time_ns()))
    gw.until(lambda: bool(gw.of("rest-1", OrderCancelRejected)), what="cancel reject")
    (rejected,) = gw.of("rest-1", OrderCancelRejected)
    assert isinstance(rejected, OrderCancelRejected) and "too late to cancel" in rejected.reason


def test_order_outside_the_price_band_is_rejected_with_the_venue_reason(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(server[0], comp_id))
    gw.submit("wild-1", price=GC.round_to_tick(GC.reference_price * 3))
    gw.until(lambda: gw.settled("wild-1"), what="reject")
    (rejected,) = gw.of("wild-1")
    assert isinstance(rejected, OrderRejected) and f"outside the price band of {GC_ID}" in rejected.reason


def test_replace_moves_a_resting_order_and_its_fill_comes_under_our_id(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(server[0], comp_id))
    gw.submit("amend-1", price=LOW, tif=TimeInForce.GFD, qty=2)
    gw.until(lambda: bool(gw.of("amend-1", OrderAccepted)), what="accept")
    result = gw.run(gw.venue.replace("amend-1", price=HIGH, qty=1))
    assert (result.client_order_id, result.cl_ord_id, result.qty, result.price) == (
        "amend-1",
        "amend-1.R1",
        1,
        HIGH,
    )
    gw.until(lambda: bool(gw.of("amend-1", OrderFilled)), what="fill after replace")
    with pytest.raises(ReplaceRejected, match="too late to replace: filled"):
        gw.run(gw.venue.replace("amend-1", price=LOW))
    assert orders_taken(server[1], comp_id, "amend-1") == 1


def test_order_status_reports_known_orders_and_leaves_unknown_ones_out(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(server[0], comp_id))
    gw.submit("st-fill")
    gw.submit("st-rest", price=LOW, tif=TimeInForce.GFD)
    gw.until(lambda: gw.settled("st-fill") and bool(gw.of("st-rest", OrderAccepted)), what="orders")
    reports = gw.run(gw.venue.order_status(["st-fill", "st-rest", "never-sent"]))
    by_id = {r.client_order_id: r for r in reports}
    assert set(by_id) == {"st-fill", "st-rest"}
    assert (by_id["st-fill"].state, by_id["st-fill"].filled_qty, by_id["st-fill"].leaves_qty) == (
        OrderState.FILLED,
        1,
        0,
    )
    assert by_id["st-fill"].avg_px is not None and GC.is_on_tick(by_id["st-fill"].avg_px)
    assert (by_id["st-rest"].state, by_id["st-rest"].leaves_qty) == (OrderState.ACCEPTED, 1)


# --------------------------------------------------------------------------- logon refused, unreachable, TLS


def test_logon_with_a_wrong_password_is_refused_with_the_venue_reason(
    server: tuple[int, Path], comp_id: str, make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    monkeypatch.setenv(PASSWORD_ENV, "not-it")
    gw = make_gateway(address(server[0], comp_id), connect=False)
    with caplog.at_level(logging.DEBUG, logger="cmc_lab.fix"), pytest.raises(FixLogonRefused) as err:
        gw.connect()
    assert "wrong or missing Password (554)" in str(err.value) and "venue 'COMEX'" in str(err.value)
    assert "not-it" not in str(err.value) and "not-it" not in caplog.text and "554=***" in caplog.text
    assert not gw.venue.connected and not any(isinstance(e, VenueDisconnected) for e in gw.events)


def test_logon_with_a_wrong_target_comp_id_is_refused(
    server: tuple[int, Path], make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(
        f"fix://127.0.0.1:{server[0]}?sender=STRANGER&target=EXECUTOR&heartbeat=1", connect=False
    )
    with pytest.raises(FixLogonRefused, match="unknown CompIDs STRANGER->EXECUTOR"):
        gw.connect()


def test_an_unreachable_acceptor_says_how_to_start_one(make_gateway: Callable[..., Gateway]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = make_gateway(f"fix://127.0.0.1:{port}?sender=C&target=EXECUTOR", connect=False)
    with pytest.raises(
        VenueNotConnected, match=f"cannot reach the FIX acceptor at 127.0.0.1:{port}.*cmc-lab venue serve"
    ):
        gw.connect()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_session_with_a_private_ca(
    tmp_path: Path, make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("CMC_LAB_FIX_CAFILE_EXECUTOR", str(cert))
    with served_exchange("--tls-cert", str(cert), "--tls-key", str(key)) as (port, _):
        gw = make_gateway(address(port, "CLIENT1", tls=1))
        assert isinstance(gw.events[0], VenueConnected) and "TLS" in gw.events[0].detail
        gw.submit("tls-1")
        gw.until(lambda: gw.settled("tls-1"), what="fill over TLS")
        gw.close()


def test_sequence_numbers_carry_over_a_gateway_restart(server: tuple[int, Path], comp_id: str, tmp_path: Path,
                                                       make_gateway: Callable[..., Gateway]) -> None:  # fmt: skip
    journal = tmp_path / "run.sqlite"
    first = make_gateway(address(server[0], comp_id), journal=journal)
    first.submit("seq-1")
    first.until(lambda: first.settled("seq-1"), what="fill")
    first.close()
    store = tmp_path / f"run.sqlite.fix-{comp_id}-EXECUTOR.json"
    saved = store.read_text()
    assert '"next_out": ' in saved and PASSWORD not in saved
    second = make_gateway(
        address(server[0], comp_id), journal=journal
    )  # no reset: the acceptor checks our numbers
    assert second.venue.connected and second.venue.session.store.next_out > 4
    second.submit("seq-2")
    second.until(lambda: second.settled("seq-2"), what="fill after restart")


def test_reset_on_logon_acceptor_starts_every_logon_at_one(
    tmp_path: Path, make_gateway: Callable[..., Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    with (
        served_exchange("--reset-on-logon") as (port, _),
        caplog.at_level(logging.INFO, logger="cmc_lab.fix"),
    ):
        # A reset-on-logon acceptor resets silently (no 141=Y unless asked), so the client that
        # works with it asks for the reset itself, every logon, past what its store says.
        for _ in range(2):
            gw = make_gateway(address(port, "CLIENT1", reset=1), journal=tmp_path / "run.sqlite")
            gw.close()
    logons = [r.getMessage() for r in caplog.records if "logged on (" in r.getMessage()]
    assert len(logons) == 2 and all(m.endswith("in=2)") for m in logons)  # the acceptor's Logon was seq 1


# --------------------------------------------------------------------------- faults through the proxy


def test_connection_dropped_mid_order_reconnects_and_gets_the_missed_reports(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.on("c2s", "D", "cut")
    gw.submit("drop-1")
    gw.until(lambda: isinstance(gw.events[-1], VenueDisconnected) or gw.settled("drop-1"), what="drop")
    gw.until(lambda: gw.settled("drop-1") and gw.venue.connected, what="fill after reconnect")
    assert gw.kinds().count("VenueConnected") == 2 and "VenueDisconnected" in gw.kinds()
    assert [type(e).__name__ for e in gw.of("drop-1")] == ["OrderAccepted", "OrderFilled"]
    assert orders_taken(server[1], comp_id, "drop-1") == 1
    # Either the order got through before the cut (its reports come back resent, PossDupFlag=Y),
    # or it was lost with the connection (the venue asked for it again and we resent it once).
    reports = [m for m in proxy.sent("s2c", "8") if m.get(11) == "drop-1"]
    resent = [m for m in proxy.sent("c2s", "D") if m.get(11) == "drop-1" and m.get(43) == "Y"]
    assert all(m.get(43) == "Y" for m in reports) or len(resent) == 1


def test_sequence_gap_from_the_venue_is_filled_by_resend(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.on("s2c", "8", "drop", match=lambda m: m.get(150) == "F")
    gw.submit("gap-in")
    gw.until(lambda: gw.settled("gap-in"), what="fill after resend")
    assert len(gw.of("gap-in", OrderFilled)) == 1
    assert any(m.msg_type == "2" for m in proxy.seen["c2s"])
    assert gw.venue.connected and gw.venue.session.stats["rejects_sent"] == 0


def test_sequence_gap_towards_the_venue_resends_the_young_order_once(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.on("c2s", "D", "drop")
    gw.submit("gap-out-1")
    gw.submit("gap-out-2")  # its MsgSeqNum shows the acceptor the gap
    gw.until(lambda: gw.settled("gap-out-1") and gw.settled("gap-out-2"), what="both orders")
    assert (
        orders_taken(server[1], comp_id, "gap-out-1") == 1
        and orders_taken(server[1], comp_id, "gap-out-2") == 1
    )
    resent = [m for m in proxy.sent("c2s", "D") if m.get(43) == "Y"]
    assert {m.get(11) for m in resent} == {"gap-out-1", "gap-out-2"}
    assert all(m.get(122) for m in resent)


def test_sequence_gap_towards_the_venue_never_resends_a_stale_order(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id, resend_age=0.05))
    proxy.on("c2s", "D", "drop")
    gw.submit("stale-1")
    gw.sleep(0.2)
    gw.submit("fresh-2")
    gw.until(lambda: gw.settled("stale-1") and gw.settled("fresh-2"), what="both orders")
    (rejected,) = gw.of("stale-1")
    assert isinstance(rejected, OrderRejected) and "never processed it" in rejected.reason
    assert (
        orders_taken(server[1], comp_id, "stale-1") == 0 and orders_taken(server[1], comp_id, "fresh-2") == 1
    )


@pytest.mark.parametrize("damage", ["checksum", "truncate", "garble"])
def test_damaged_report_is_ignored_then_recovered_by_resend(
    server: tuple[int, Path],
    proxy: FaultProxy,
    comp_id: str,
    make_gateway: Callable[..., Gateway],
    damage: str,
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.on("s2c", "8", damage, match=lambda m: m.get(11) == "bad-1" and m.get(150) == "0")
    gw.submit("bad-1")
    gw.until(lambda: gw.settled("bad-1"), what="recovery")
    assert [type(e).__name__ for e in gw.of("bad-1")] == ["OrderAccepted", "OrderFilled"]
    assert gw.venue.session.stats["garbled"] >= 1 and gw.venue.session.internal_errors == 0
    assert orders_taken(server[1], comp_id, "bad-1") == 1


def test_heartbeat_silence_brings_test_request_then_disconnect_then_reconnect(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.on("s2c", "X", "silence")  # from the next market data on, the venue seems to go quiet
    gw.until(lambda: any(isinstance(e, VenueDisconnected) for e in gw.events), timeout=6, what="timeout")
    down = next(e for e in gw.events if isinstance(e, VenueDisconnected))
    assert "heartbeat timeout: no answer to TestRequest" in down.detail
    assert proxy.sent("c2s", "1"), "the gateway should have sent a TestRequest first"
    gw.until(lambda: gw.venue.connected, timeout=6, what="reconnect")
    assert proxy.connections == 2 and gw.kinds().count("VenueConnected") == 2


def test_reconnect_backs_off_while_the_acceptor_refuses(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(address(proxy.port, comp_id))
    proxy.refuse = 3
    proxy.on("c2s", "0", "cut")
    gw.until(
        lambda: gw.venue.connected and gw.kinds().count("VenueConnected") == 2, timeout=8, what="reconnect"
    )
    gaps = [b - a for a, b in itertools.pairwise(proxy.accepted_at[1:])]
    assert len(gaps) == 3 and gaps[0] < gaps[1] < gaps[2]  # 0.05, 0.1, 0.2 s ...
    gw.until(lambda: gw.venue.gateway.reconnects == 1, what="the reconnect to be counted")


# --------------------------------------------------------------------------- through the engine


def test_hedge_ticket_overseas_leg_over_fix_fills_and_its_timeline_shows_the_fix_hops(
    server: tuple[int, Path], comp_id: str, tmp_path: Path, open_hours: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "j.sqlite"
    with caplog.at_level(logging.DEBUG, logger="cmc_lab.fix"):
        eng = cmc.connect(
            venues={
                "SHFE": "sim",
                "COMEX": f"fix://127.0.0.1:{server[0]}?sender={comp_id}&target=EXECUTOR&heartbeat=1",
            },
            journal=journal,
            instruments=open_hours,
        )
        try:
            assert eng.venues["COMEX"].kind == "fix" and eng.venues["SHFE"].kind == "sim"
            assert repr(eng.clock) == "RealClock()"  # real UTC: FIX SendingTimes and quotes agree
            deadline = time.monotonic() + 5
            while eng.instrument("COMEX.GC").id not in eng.quotes().index and time.monotonic() < deadline:
                time.sleep(0.05)
            eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
            t = eng.hedge("au_gc", "buy", 3)
            assert t.wait(20) == "FILLED", t
            frame = eng.journal.timeline(t.ticket_id)
            comex = frame[frame["venue"] == "COMEX"]
            filled_id = comex[comex["kind"] == "OrderFilled"]["order_id"].iloc[0]  # a chase may add orders
            leg = comex[comex["order_id"] == filled_id].set_index("kind")
            lifecycle = ["OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled"]
            assert list(leg.index[:4]) == lifecycle
            assert leg.loc["OrderAccepted", "hop_ns"] > 0 and leg.loc["OrderFilled", "hop_ns"] >= 0
            round_trip = leg.loc["OrderAccepted", "mono_ns"] - leg.loc["OrderSubmitted", "mono_ns"]
            assert round_trip > 0  # NewOrderSingle out -> ExecutionReport New in, over TCP
            assert leg.loc["OrderAccepted", "ts_init"] >= leg.loc["OrderAccepted", "ts_event"] > 0
            assert eng.journal.verify().ok
        finally:
            eng.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite*"))
    assert PASSWORD.encode() not in data
    assert PASSWORD not in caplog.text and "554=***" in caplog.text
    assert PASSWORD not in server[1].read_text()


def test_engine_reconciles_an_order_whose_connection_dropped_mid_flight(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, tmp_path: Path, open_hours: Path
) -> None:
    eng = cmc.connect(
        venues={"COMEX": address(proxy.port, comp_id)}, journal=tmp_path / "j.sqlite", instruments=open_hours
    )
    try:
        proxy.on("c2s", "D", "cut")
        order = eng.submit("COMEX.GC", "buy", 1, price=HIGH, tif="IOC")
        assert order.wait(10) is OrderState.FILLED, order
        deadline = time.monotonic() + 5
        rows = eng.journal.tail(200)
        while time.monotonic() < deadline:
            rows = eng.journal.tail(200)
            if ((rows["kind"] == "VenueConnected") & (rows["venue"] == "COMEX")).sum() == 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # let a reconcile started by the reconnect finish
        rows = eng.journal.tail(200)
        comex = list(rows[rows["venue"] == "COMEX"]["kind"])
        assert comex.count("VenueConnected") == 2 and "VenueDisconnected" in comex
        # The missed reports come back by resend; the reconcile (if the order was still working
        # when it ran) finds nothing the venue does not know.
        for _, row in rows[rows["kind"] == "Reconciled"].iterrows():
            assert row["unknown"] == []
        assert (
            order.anomalies == []
            and len(order.fills) == 1
            and "DuplicateFillIgnored" not in list(rows["kind"])
        )
        assert orders_taken(server[1], comp_id, order.client_order_id) == 1
        assert eng.journal.verify().ok
    finally:
        eng.close()


def test_engine_denies_orders_while_the_fix_venue_is_down(
    server: tuple[int, Path], proxy: FaultProxy, comp_id: str, tmp_path: Path, open_hours: Path
) -> None:
    eng = cmc.connect(venues={"COMEX": address(proxy.port, comp_id, reconnect_min=2)}, instruments=open_hours)
    try:
        proxy.on("c2s", "0", "cut")
        deadline = time.monotonic() + 5
        while eng.venue_connected("COMEX") and time.monotonic() < deadline:
            time.sleep(0.02)
        order = eng.submit("COMEX.GC", "buy", 1, price=HIGH, tif="IOC")
        assert order.state is OrderState.DENIED and "venue 'COMEX' is not connected" in order.reason
        eng.disconnect("COMEX")  # stops its reconnect loop; close() leaves a venue that is down alone
    finally:
        eng.close()


def test_connect_refuses_a_virtual_clock_with_a_fix_venue() -> None:
    with pytest.raises(ValueError, match="a FIX venue runs on real time"):
        cmc.connect(venues={"COMEX": "fix://127.0.0.1:9?sender=C&target=E"}, clock="virtual")


def test_connect_fix_target_puts_every_venue_on_one_fix_session(
    server: tuple[int, Path], comp_id: str, open_hours: Path
) -> None:
    eng = cmc.connect(address(server[0], comp_id), instruments=open_hours)
    try:
        assert {v.kind for v in eng.venues.values()} == {"fix"}
        gateways = {id(v.gateway) for v in eng.venues.values() if isinstance(v, FixVenue)}
        assert len(gateways) == 1 and all(eng.venue_connected(name) for name in eng.venues)
        deadline = time.monotonic() + 5
        au = eng.instrument("SHFE.au")
        while not {au.id, "FX.USDCNH"} <= set(eng.quotes().index) and time.monotonic() < deadline:
            time.sleep(0.05)
        order = eng.submit(
            "SHFE.au", "buy", 1, price=au.round_to_tick(au.reference_price * Decimal("1.04")), tif="IOC"
        )
        assert order.wait(5) is OrderState.FILLED
    finally:
        eng.close()
