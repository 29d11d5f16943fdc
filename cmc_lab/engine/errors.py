"""The engine's own errors, each saying what to do instead."""

from __future__ import annotations


class EngineError(RuntimeError):
    """Base of the engine's own errors."""


class EngineClosed(EngineError):
    """A call on an engine after ``close()``."""


class NoQuote(LookupError):
    """No quote has arrived yet for an instrument."""


class InvalidOrder(ValueError):
    """An order whose arguments cannot be sent at all (unknown symbol, bad price or size)."""


class OpenExposureWarning(UserWarning):
    """``eng.close()`` left positions, working orders or a naked ticket leg open (they are journaled)."""


class TradingRefused(EngineError):
    """``eng.rearm()`` on an engine that may not trade in this session (its journal is damaged)."""
