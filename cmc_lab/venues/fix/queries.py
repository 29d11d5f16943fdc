"""FIX gateway layer, reconciliation queries: the venue's own working orders and positions, asked over the session.

:class:`VenueQueries` sends OrderMassStatusRequest (35=AF) and RequestForPositions (35=AN, one
per account), gathers the numbered answers (ExecutionReports with MassStatusReqID up to
LastRptRequested=Y; RequestForPositionsAck then TotalNumPosReports PositionReports) and hands
each asker the whole list. A refused request raises
:class:`~cmc_lab.venues.base.VenueCannotReport` (never read as "flat" or "none working").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cmc_lab.venues.base import OrderStatusReport, PositionReport, VenueCannotReport
from cmc_lab.venues.fix import codec
from cmc_lab.venues.fix import report_mapping as reports
from cmc_lab.venues.fix.codec import FixMessage
from cmc_lab.venues.fix.mapping import CL_ORD_ID

#: How a query goes out: ``send(msg_type, body, request_id)`` (the gateway's sender, which remembers the seq).
Send = Callable[[str, list[tuple[int, object]], str], int]


@dataclass(slots=True)
class _Answer:
    future: asyncio.Future[list[Any]]
    what: str
    reports: list[Any] = field(default_factory=list)
    expected: int | None = None

    def finish(self) -> None:
        if not self.future.done():
            self.future.set_result(self.reports)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class VenueQueries:
    """The reconciliation queries of one initiator session (engine loop).

    Parameters
    ----------
    send
        Sends one application message and remembers its MsgSeqNum under the request id.
    root
        Our client order id of any ClOrdID we sent (a replaced order reports under its last one).
    timeout
        Seconds to wait for a whole answer.
    """

    def __init__(self, send: Send, root: Callable[[str], str], timeout: float) -> None:
        self._send = send
        self._root = root
        self.timeout = timeout
        self._waiting: dict[str, _Answer] = {}
        self._requests = 0

    def __repr__(self) -> str:
        return f"VenueQueries({len(self._waiting)} waiting)"

    async def working_orders(self) -> list[OrderStatusReport]:
        """Every order of this session still working at the venue (one OrderMassStatusRequest)."""
        req_id = self._next("ms")
        return await self._ask(req_id, "AF", reports.mass_status_request(req_id), "OrderMassStatusRequest")

    async def positions(self, accounts: Iterable[str]) -> list[PositionReport]:
        """Every non-flat position the venue books for these accounts (one RequestForPositions each)."""
        stamp = time.time_ns()
        asks = []
        for account in sorted(set(accounts)):
            req_id = self._next("pos")
            body = reports.request_for_positions(
                req_id, account, reports.business_date(stamp), codec.format_timestamp(stamp)
            )
            asks.append(self._ask(req_id, "AN", body, f"RequestForPositions of {account}"))
        answers = await asyncio.gather(*asks)
        return [report for answer in answers for report in answer]

    def take(self, msg: FixMessage) -> bool:
        """Handle ``msg`` if it answers one of our queries (True), else leave it to the gateway (False)."""
        mt = msg.msg_type
        if mt == "8" and reports.MASS_STATUS_REQ_ID in msg:
            answer = self._waiting.get(msg.get(reports.MASS_STATUS_REQ_ID) or "")
            if answer is None:
                return True  # an answer to a query we gave up on
            report = reports.order_working(msg, self._root(msg.get(CL_ORD_ID) or ""))
            if report is not None:
                answer.reports.append(report)
            total = msg.integer(reports.TOT_NUM_REPORTS, 0)
            if (
                report is None
                or msg.get(reports.LAST_RPT_REQUESTED) == "Y"
                or len(answer.reports) >= total > 0
            ):
                answer.finish()
            return True
        if mt not in ("AO", "AP"):
            return False
        answer = self._waiting.get(msg.get(reports.POS_REQ_ID) or "")
        if answer is None:
            return True
        if mt == "AO":
            result = msg.get(reports.POS_REQ_RESULT)
            if msg.get(reports.POS_REQ_STATUS) == "2" or result not in (
                reports.VALID,
                reports.NO_POSITIONS_FOUND,
            ):
                why = msg.get(codec.TEXT) or f"PosReqResult {result}"
                answer.fail(VenueCannotReport(f"the venue refused {answer.what}: {why}"))
                return True
            answer.expected = msg.integer(reports.TOTAL_NUM_POS_REPORTS, 0)
        else:
            answer.reports.append(reports.position_held(msg))
        if answer.expected is not None and len(answer.reports) >= answer.expected:
            answer.finish()
        return True

    def refuse(self, req_id: str, why: str) -> None:
        """The venue rejected or never processed query ``req_id`` (session or business reject, sequence gap)."""
        answer = self._waiting.get(req_id)
        if answer is not None:
            answer.fail(VenueCannotReport(f"{answer.what} was not answered: {why}"))

    def fail_all(self, exc: BaseException) -> None:
        """The session went down: every query waiting fails with ``exc``."""
        for answer in self._waiting.values():
            answer.fail(exc)

    def _next(self, prefix: str) -> str:
        self._requests += 1
        return f"{prefix}-{time.time_ns():x}-{self._requests}"

    async def _ask(self, req_id: str, msg_type: str, body: list[tuple[int, object]], what: str) -> list[Any]:
        answer = _Answer(asyncio.get_running_loop().create_future(), what)
        self._waiting[req_id] = answer
        try:
            self._send(msg_type, body, req_id)
            return await asyncio.wait_for(asyncio.shield(answer.future), self.timeout)
        except TimeoutError:
            raise TimeoutError(f"no whole answer to {what} within {self.timeout:g} s") from None
        finally:
            self._waiting.pop(req_id, None)


__all__ = ["VenueQueries"]
