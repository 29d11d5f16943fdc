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
