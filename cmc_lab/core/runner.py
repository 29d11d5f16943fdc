"""The Runner port: the engine's loop thread as a part (or a live Order) sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Runner(Protocol):
    """The engine's loop thread as a part sees it: schedule on it, or block a caller until done."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def call(self, coro: Coroutine[Any, Any, T], *, advance: bool = False, timeout: float = 10.0) -> T: ...

    async def call_async(self, coro: Coroutine[Any, Any, T], *, advance: bool = False) -> T: ...

    def report(self, errors: list[str]) -> None: ...
