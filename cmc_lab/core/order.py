"""The live Order: one order's state, fills and log, updated in place by the engine thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from html import escape
from typing import Any

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import (
    IllegalTransition,
    OrderEvent,
    OrderFilled,
    OrderInitialized,
    OrderReplaced,
    OrderState,
    Side,
    TimeInForce,
    next_state,
)
from cmc_lab.core.runner import Runner

FillCallback = Callable[["Order", OrderFilled], None]
#: Hands ``order.replace(price=, qty=)`` to the engine; returns the outcome event (None if unanswered in time).
ReplaceCall = Callable[["Order", Any, Any, float], "OrderEvent | None"]
StateCallback = Callable[["Order", OrderState], None]


class OrderNotWorking(RuntimeError):
    """A cancel for an order that has already reached a final state."""


class Order:
    """A submitted limit order that keeps itself up to date.

    Attributes are updated on the engine thread as the venue answers; read them any time.
    Events (callbacks run on the engine thread, keep them short):

    - ``on_fill(callback(order, fill))``: each fill, after it is journaled.
    - ``on_state(callback(order, state))``: each change of state.

    ``replace(price=..., qty=...)`` amends a working order: the engine journals
    ``OrderReplaceRequested``, then the venue's ``OrderReplaced`` (``qty`` and ``price`` change) or
    ``OrderReplaceRejected`` (the order works on as it was).

    Examples
    --------
    >>> o = eng.submit("COMEX.GC", "buy", 1, price=2650.0)   # doctest: +SKIP
    >>> o.wait(timeout=5); o.state, o.filled_qty, o.avg_px   # doctest: +SKIP
    """

    def __init__(
        self,
        runner: Runner,
        cancel: Callable[[Order], None],
        client_order_id: str,
        instrument: Instrument,
        side: Side,
        qty: int,
        price: Decimal,
        tif: TimeInForce,
        account: str,
        ticket_id: str | None,
        *,
        replace: ReplaceCall | None = None,
    ) -> None:
        self._runner = runner
        self._cancel = cancel
        self._replace = replace
        self.client_order_id = client_order_id
        self.venue_order_id: str | None = None
        self.instrument = instrument
        self.side = side
        self.qty = qty
        self.price = price
        self.tif = tif
        self.account = account
        self.ticket_id = ticket_id
        self.offset = (
            ""  # from its intent: open / close / close_today / close_yesterday, "" where the venue nets
        )
        self.part_of = ""  # the first part's id when one order went out as several, one offset each
        #: every order one request went out as (the first part holds them all; a single order: itself)
        self.parts: list[Order] = [self]
        self.state = OrderState.INITIALIZED
        self.reason = ""
        self.fills: list[OrderFilled] = []
        self.events: list[OrderEvent] = []
        self.anomalies: list[str] = []
        self._trade_ids: set[str] = set()
        self._done: asyncio.Future[OrderState] = runner.loop.create_future()
        self._fill_callbacks: list[FillCallback] = []
        self._state_callbacks: list[StateCallback] = []

    # ------------------------------------------------------------------ reading

    @property
    def instrument_id(self) -> str:
        return self.instrument.id

    @property
    def filled_qty(self) -> int:
        return sum(f.last_qty for f in self.fills)

    @property
    def leaves_qty(self) -> int:
        return 0 if self.state.is_terminal else self.qty - self.filled_qty

    @property
    def avg_px(self) -> Decimal | None:
        qty = self.filled_qty
        if not qty:
            return None
        return sum((f.last_px * f.last_qty for f in self.fills), Decimal(0)) / qty

    @property
    def done(self) -> bool:
        return self.state.is_terminal

    # ------------------------------------------------------------------ acting

    def wait(self, timeout: float = 10.0) -> OrderState:
        """Block until the order reaches a final state or ``timeout`` seconds pass.

        Returns the state either way; check ``order.done``. Under the virtual clock the
        timeout is in market seconds and the market runs while you wait.
        """
        return self._runner.call(self.wait_async_on_loop(timeout), advance=True, timeout=timeout)

    async def wait_async(self, timeout: float = 10.0) -> OrderState:
        """``await`` twin of :meth:`wait`, for notebook cells."""
        return await self._runner.call_async(self.wait_async_on_loop(timeout), advance=True)

    async def wait_async_on_loop(self, timeout: float) -> OrderState:
        if not self._done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._done), timeout)
        return self.state

    def cancel(self) -> None:
        """Ask the venue to cancel what is left; the answer arrives as an event."""
        if self.done:
            raise OrderNotWorking(
                f"order {self.client_order_id} is {self.state.value}; only working orders can be cancelled"
            )
        self._cancel(self)

    def replace(
        self, price: float | str | Decimal | None = None, qty: int | None = None, timeout: float = 10.0
    ) -> OrderEvent | None:
        """Change the limit price and/or the total quantity (fills included) of this working order.

        Waits for the venue's answer: ``OrderReplaced`` (``order.price`` and ``order.qty`` are the
        new ones) or ``OrderReplaceRejected`` with its reason (a pre-trade check or the venue
        refused; the order works on unchanged); None if no answer came within ``timeout``. A
        replace that only lowers the quantity reduces exposure and passes every risk control.

        Examples
        --------
        >>> o = eng.submit("COMEX.GC", "buy", 2, price=2600.0)    # doctest: +SKIP
        >>> o.replace(price=2601.0, qty=1)                          # doctest: +SKIP
        OrderReplaced(..., qty=1, price=Decimal('2601.0'), ...)
        """
        if self.done:
            raise OrderNotWorking(
                f"order {self.client_order_id} is {self.state.value}; only working orders can be replaced"
            )
        if self._replace is None:
            raise OrderNotWorking(
                f"order {self.client_order_id} was rebuilt from the journal; cancel it and submit a new one"
            )
        return self._replace(self, price, qty, timeout)

    def on_fill(self, callback: FillCallback, remove: bool = False) -> None:
        register_callback(self._fill_callbacks, callback, remove)

    def on_state(self, callback: StateCallback, remove: bool = False) -> None:
        register_callback(self._state_callbacks, callback, remove)

    # ------------------------------------------------------------------ engine side

    def apply(self, event: OrderEvent) -> list[str]:
        """Apply a journaled event (engine loop only); returns the callbacks' errors, if any."""
        self.events.append(event)
        if isinstance(event, OrderInitialized):  # the order's first log entry, not a transition
            self.offset, self.part_of = event.offset, event.part_of
            return []
        errors: list[str] = []
        if isinstance(event, OrderReplaced):
            self.qty, self.price = event.qty, event.price
        if isinstance(event, OrderFilled):
            self._trade_ids.add(event.trade_id)
            self.fills.append(event)
            self.venue_order_id = self.venue_order_id or event.venue_order_id
        venue_order_id = getattr(event, "venue_order_id", None)
        if venue_order_id:
            self.venue_order_id = venue_order_id
        reason = getattr(event, "reason", "")
        try:
            new_state = next_state(self.state, event, self.filled_qty, self.qty)
        except IllegalTransition as exc:
            self.anomalies.append(f"{exc} (kept state {self.state})")
            new_state = self.state
        if isinstance(event, OrderFilled):
            errors += fire_callbacks(self._fill_callbacks, self, event)
        if new_state is not self.state:
            self.state = new_state
            self.reason = reason  # why it is in this state: a fill after a cancel request clears it
            errors += fire_callbacks(self._state_callbacks, self, new_state)
            if new_state.is_terminal and not self._done.done():
                self._done.set_result(new_state)
        return errors

    def seen_trade(self, trade_id: str) -> bool:
        return trade_id in self._trade_ids

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        fill = f", filled {self.filled_qty} @ {self.avg_px:.6g}" if self.fills else ""
        why = f", {self.reason!r}" if self.reason and self.state.is_terminal else ""
        return (
            f"Order({self.client_order_id} {self.side.value} {self.qty} {self.instrument_id} "
            f"@ {self.price} {self.tif.value}: {self.state.value}{fill}{why})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("order", self.client_order_id),
            ("venue id", self.venue_order_id or ""),
            ("instrument", self.instrument_id),
            ("side / qty", f"{self.side.value} {self.qty}" + (f" ({self.offset})" if self.offset else "")),
            ("limit", f"{self.price} {self.instrument.quote_unit}"),
            ("state", self.state.value + (f" ({self.reason})" if self.reason else "")),
            ("filled", f"{self.filled_qty} @ {self.avg_px:.6g}" if self.fills else "0"),
        ]
        body = "".join(f"<tr><th>{k}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table class='cmc-order'>{body}</table>"


def register_callback(callbacks: list[Any], callback: Any, remove: bool) -> None:
    if remove:
        if callback in callbacks:
            callbacks.remove(callback)
    elif callback not in callbacks:
        callbacks.append(callback)


def fire_callbacks(callbacks: list[Any], *args: Any) -> list[str]:
    errors = []
    for callback in list(callbacks):
        try:
            callback(*args)
        except Exception as exc:  # a user's callback must never stop the engine
            errors.append(f"callback {getattr(callback, '__name__', callback)!r} raised {exc!r}")
    return errors
