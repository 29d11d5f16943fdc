"""An independent FIX engine (QuickFIX, the C++ engine's Python binding) against ``cmc-lab venue serve``.

Run it with a Python that has ``quickfix`` installed (``scripts/quickfix/setup.sh`` makes one);
``--cmc-python`` is a Python with cmc_lab installed, which runs the served exchange:

    /tmp/qf/bin/python scripts/quickfix/interop.py --cmc-python .venv/bin/python

QuickFIX validates every message it receives against its FIX 4.4 data dictionary. Steps, each
checked: log on; buy 2 of COMEX.GC's main month with a crossing IOC (filled); rest a sell and replace it
(35=G, one tick lower); log out; reconnect with
a gap both ways (our next MsgSeqNum 5 too high, the acceptor's 3 too low, so each side sends a
ResendRequest and is answered by resend or gap fill); reset the sequence numbers in session (a
Logon with 141=Y while logged on, answered with 141=Y); reconcile (OrderMassStatusRequest lists
the resting order, RequestForPositions reports long 2); log out. Prints one line per step and
exits 0 only if every step passed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import quickfix as fix

CLIENT, ACCEPTOR, ACCOUNT = "QFCLIENT", "EXECUTOR", "US-FUT"


class Client(fix.Application):  # type: ignore[misc]
    """Keeps every message received, in order, and the session's logon state."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict[int, str]]] = []
        self.logged_on = False
        self.logons = 0
        self.session_id: fix.SessionID | None = None
        self.lock = threading.Lock()

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: fix.SessionID) -> None:
        self.logged_on = True
        self.logons += 1

    def onLogout(self, session_id: fix.SessionID) -> None:
        self.logged_on = False

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._keep(message)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._keep(message)

    def _keep(self, message: fix.Message) -> None:
        text = message.toString().replace("\x01", "|")
        fields = dict(re.findall(r"(?:^|\|)(\d+)=([^|]*)", text))
        msg_type = fields.get("35", "")
        with self.lock:
            self.received.append((msg_type, {int(k): v for k, v in fields.items()}))

    def find(
        self, msg_type: str, match: Callable[[dict[int, str]], bool] = lambda m: True
    ) -> list[dict[int, str]]:
        with self.lock:
            return [m for t, m in self.received if t == msg_type and match(m)]

    def send(self, message: fix.Message) -> None:
        assert self.session_id is not None
        if not fix.Session.sendToTarget(message, self.session_id):
            raise RuntimeError("QuickFIX refused to send the message")


def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def message(msg_type: str, *fields: tuple[int, object]) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString("FIX.4.4"))
    msg.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields:
        msg.setField(tag, str(value))
    return msg


def order(cl_ord_id: str, symbol: str, side: str, qty: int, price: str, tif: str) -> fix.Message:
    stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
    return message(
        "D", (11, cl_ord_id), (1, ACCOUNT), (55, symbol), (207, "COMEX"), (54, side), (60, stamp),
        (38, qty), (40, "2"), (44, price), (59, tif),
    )  # fmt: skip


def serve(cmc_python: str) -> tuple[subprocess.Popen[str], int]:
    command = [cmc_python, "-m", "cmc_lab.cli", "venue", "serve", "--fix", "127.0.0.1:0", "--target", CLIENT]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not found:
        proc.terminate()
        raise RuntimeError(f"cmc-lab venue serve did not start: {line!r}")
    return proc, int(found.group(1))


def gold_month(cmc_python: str) -> tuple[str, str]:
    """The symbol of the gold month the served exchange lists now (GCG27 ...) and a price crossing any ask."""
    code = (
        "import time; from cmc_lab.core.listing import list_months; from cmc_lab.core.specs import load_specs; "
        "gc = list_months(load_specs(), time.time_ns()).instrument('COMEX.GC'); "
        "print(gc.symbol, gc.round_to_tick(gc.reference_price * (1 + gc.price_band / 2)))"
    )
    run = subprocess.run([cmc_python, "-c", code], capture_output=True, text=True, check=True)
    symbol, price = run.stdout.split()
    return symbol, price


def settings(work: Path, port: int) -> fix.SessionSettings:
    dictionary = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
    if not dictionary.is_file():
        raise FileNotFoundError(
            f"QuickFIX's FIX44.xml is not at {dictionary}; reinstall quickfix in this Python"
        )
    text = f"""[DEFAULT]
ConnectionType=initiator
HeartBtInt=30
ReconnectInterval=1
FileStorePath={work / "store"}
FileLogPath={work / "log"}
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=Y
DataDictionary={dictionary}
ValidateUserDefinedFields=Y
[SESSION]
BeginString=FIX.4.4
SenderCompID={CLIENT}
TargetCompID={ACCEPTOR}
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
"""
    path = work / "client.cfg"
    path.write_text(text)
    return fix.SessionSettings(str(path))


def run(cmc_python: str) -> list[str]:
    passed: list[str] = []
    symbol, price = gold_month(cmc_python)
    proc, port = serve(cmc_python)
    with tempfile.TemporaryDirectory(prefix="cmc-quickfix-") as tmp:
        work = Path(tmp)
        app = Client()
        config = settings(work, port)
        initiator = fix.SocketInitiator(app, fix.FileStoreFactory(config), config, fix.FileLogFactory(config))
        try:
            initiator.start()
            until(lambda: app.logged_on, "the Logon")
            passed.append("logon")

            app.send(order("qf-buy-1", symbol, "1", 2, price, "3"))
            until(lambda: app.find("8", lambda m: m.get(11) == "qf-buy-1" and m.get(39) == "2"), "the fill")
            app.send(order("qf-rest-1", symbol, "2", 1, price, "0"))
            until(
                lambda: app.find("8", lambda m: m.get(11) == "qf-rest-1" and m.get(150) == "0"),
                "the rest ack",
            )
            lower = f"{float(price) - 0.1:.2f}"  # one tick lower: still above any bid, so it rests
            app.send(
                message(
                    "G",
                    (41, "qf-rest-1"),
                    (11, "qf-rest-1.R1"),
                    (1, ACCOUNT),
                    (55, symbol),
                    (207, "COMEX"),
                    (54, "2"),
                    (60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())),
                    (38, 1),
                    (40, "2"),
                    (44, lower),
                )
            )
            until(
                lambda: app.find("8", lambda m: m.get(11) == "qf-rest-1.R1" and m.get(150) == "5"),
                "the replace",
            )
            passed.append("trade: a crossing IOC filled, a resting order acknowledged, then replaced (35=G)")

            initiator.stop()
            until(lambda: not app.logged_on, "the Logout")
            session = fix.Session.lookupSession(app.session_id)
            session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + 5)
            session.setNextTargetMsgSeqNum(max(1, session.getExpectedTargetNum() - 3))
            before = len(app.received)
            initiator.start()
            until(lambda: app.logged_on and app.logons == 2, "the second Logon")
            until(
                lambda: any(t == "4" or m.get(43) == "Y" for t, m in app.received[before:]),
                "the acceptor's resend or gap fill of the 3 messages we asked again",
            )
            until(lambda: any(t == "2" for t, _ in app.received[before:]), "the acceptor's ResendRequest")
            app.send(message("1", (112, "after-gap")))
            until(lambda: app.find("0", lambda m: m.get(112) == "after-gap"), "the heartbeat after the gap")
            passed.append("reconnect with a gap both ways: ResendRequests answered, session goes on")

            app.send(message("A", (98, 0), (108, 30), (141, "Y")))
            until(lambda: app.find("A", lambda m: m.get(141) == "Y" and m.get(34) == "1"), "the reset Logon")
            app.send(message("1", (112, "after-reset")))
            until(
                lambda: app.find("0", lambda m: m.get(112) == "after-reset"), "the heartbeat after the reset"
            )
            passed.append("in-session reset: Logon 141=Y answered with 141=Y at MsgSeqNum 1")

            app.send(message("AF", (584, "qf-ms-1"), (585, "7")))
            until(
                lambda: app.find("8", lambda m: m.get(584) == "qf-ms-1" and m.get(912) == "Y"), "mass status"
            )
            listed = app.find("8", lambda m: m.get(584) == "qf-ms-1")
            if [(m.get(11), m.get(150), m.get(911), m.get(44)) for m in listed] != [
                ("qf-rest-1.R1", "I", "1", lower)
            ]:
                raise AssertionError(f"mass status listed {listed}")
            stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())
            ask = message(
                "AN", (710, "qf-pos-1"), (724, "0"), (1, ACCOUNT), (581, "1"), (715, stamp[:8]), (60, stamp)
            )
            party = fix.Group(453, 448)  # Parties: a repeating group, built as one so QuickFIX orders it
            for tag, value in ((448, ACCOUNT), (447, "D"), (452, "24")):
                party.setField(tag, value)
            ask.addGroup(party)
            app.send(ask)
            until(lambda: app.find("AP", lambda m: m.get(710) == "qf-pos-1"), "the PositionReport")
            (ack,) = app.find("AO", lambda m: m.get(710) == "qf-pos-1")
            (held,) = app.find("AP", lambda m: m.get(710) == "qf-pos-1")
            if (ack.get(727), held.get(55), held.get(704), held.get(705)) != ("1", symbol, "2", "0"):
                raise AssertionError(f"positions answered {ack} then {held}")
            passed.append(
                f"reconcile: mass status lists the replaced resting order, positions say long 2 {symbol}"
            )

            rejects = app.find("3") + app.find("j")
            if rejects:
                raise AssertionError(f"the acceptor rejected our messages: {rejects}")
            ours = "".join(p.read_text(errors="replace") for p in (work / "log").glob("*messages*"))
            refused = [
                line
                for line in ours.splitlines()
                if f"49={CLIENT}" in line and re.search("\x0135=[3j]\x01", line)
            ]
            if refused:
                raise AssertionError(f"QuickFIX rejected messages of the acceptor: {refused}")
            passed.append(
                "QuickFIX validated every message against its FIX 4.4 dictionary: no Reject either way"
            )
        finally:
            initiator.stop()
            proc.terminate()
            proc.wait(10)
            if len(passed) < 6:
                logs = sorted((work / "log").glob("*"))
                for log in logs:
                    print(f"--- {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cmc-python", default=os.environ.get("CMC_LAB_PYTHON", sys.executable))
    args = parser.parse_args()
    try:
        steps = run(args.cmc_python)
    except AssertionError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for step in steps:
        print(f"ok  {step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
