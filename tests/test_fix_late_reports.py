"""A late answer for an order the journal already closed (resent after a restart) is still journaled,
never dropped: the crash test found a CancelReject resent after a kill acknowledged and lost."""

from __future__ import annotations

from cmc_lab.core.clock import RealClock
from cmc_lab.core.model import Event, OrderCancelRejected
from cmc_lab.core.specs import load_specs
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix.config import FixConfig
from cmc_lab.venues.fix.initiator import FixGateway
from cmc_lab.venues.fix.store import SeqStore


def test_a_cancel_reject_for_an_order_this_process_never_sent_reaches_the_engine() -> None:
    gateway = FixGateway(
        FixConfig.parse("fix://127.0.0.1:9878?sender=CLIENT1&target=EXECUTOR"),
        SeqStore(None),
        RealClock(),
        load_specs(),
    )
    seen: list[Event] = []
    gateway.sinks["COMEX"] = seen.append
    raw = codec.encode(
        [
            (35, "9"), (49, "EXECUTOR"), (56, "CLIENT1"), (34, 459), (43, "Y"),
            (52, "20261205-13:13:11.490"), (122, "20261205-13:13:11.455"), (37, "COMEX-00000003"),
            (11, "r11-000001.C2"), (41, "r11-000001"), (39, "4"), (434, "1"), (102, "0"),
            (60, "20261205-13:13:11.455"), (58, "too late to cancel: canceled"),
        ]
    )  # fmt: skip
    gateway.on_message(None, codec.parse(raw))  # type: ignore[arg-type]
    (event,) = seen
    assert isinstance(event, OrderCancelRejected)
    assert event.client_order_id == "r11-000001" and "too late to cancel" in event.reason
