"""Scripted faults of the embedded exchange: the kinds, their validation and which order they hit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side

#: Every kind ``SimVenue.inject`` knows, with the extra keyword parameters it takes.
FAULT_KINDS: dict[str, dict[str, str]] = {
    "reject": {"reason": "text of the OrderRejected"},
    "partial": {"ratio": "share of the quantity that fills, 0 < ratio < 1 (default 0.5)"},
    "no_ack": {"lost": "True: the order itself is lost, not only its OrderAccepted"},
    "disconnect": {},
    "stale": {},
    "halt": {},
    "close": {},
    "duplicate_fill": {},
    "late_fill": {},
    "resume": {},
    "open": {},
}
#: Faults that hit the next matching orders, counted by ``times`` and drawn with ``probability``.
ORDER_FAULTS = frozenset({"reject", "partial", "no_ack", "duplicate_fill", "late_fill"})
#: Faults that hold a state (for ``duration`` seconds, or until cleared).
STATE_FAULTS = frozenset({"stale", "halt", "close"})
_LIFTS = {"resume": "halt", "open": "close"}
_DEFAULT_REASON = "rejected by venue (injected)"


@dataclass(eq=False)
class FaultHandle:
    """One injected fault; ``used`` counts the orders or reports it hit so far.

    Examples
    --------
    >>> handle = venue.inject("reject", times=2)   # doctest: +SKIP
    >>> handle.active, handle.used                 # doctest: +SKIP
    (True, 0)
    >>> handle.remove()                            # doctest: +SKIP
    """

    kind: str
    venue: str
    times: int | None = 1
    probability: float | None = None
    instrument: str | None = None
    side: Side | None = None
    until_ns: int | None = None  # monotonic ns (the exchange clock's mono_ns) when it ends
    params: dict[str, Any] = field(default_factory=dict)
    used: int = 0
    removed: bool = False
    _mono_ns: Callable[[], int] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Still in force: not removed, uses left and not expired."""
        if self.removed or (self.times is not None and self.kind in ORDER_FAULTS and self.used >= self.times):
            return False
        return self.until_ns is None or self._mono_ns is None or self._mono_ns() < self.until_ns

    def remove(self) -> None:
        """Take this fault out of force (a disconnect still reconnects at its end)."""
        self.removed = True

    def hits(self, instrument_id: str | None, side: Side | None) -> bool:
        if self.instrument is not None and instrument_id != self.instrument:
            return False
        return self.side is None or side is None or side is self.side

    def __repr__(self) -> str:
        scope = " ".join(str(x) for x in (self.instrument, self.side) if x is not None)
        state = "active" if self.active else "spent"
        times = "" if self.kind not in ORDER_FAULTS else f", times={self.times}, used={self.used}"
        return f"FaultHandle({self.kind} on {self.venue}{' ' + scope if scope else ''}{times}, {state})"


def make_fault(
    kind: str,
    venue: str,
    instruments: Sequence[Instrument],
    mono_ns: Callable[[], int],
    *,
    times: int | None,
    probability: float | None,
    instrument: str | None,
    side: str | Side | None,
    duration: float | None,
    params: dict[str, Any],
) -> FaultHandle:
    """A validated :class:`FaultHandle`, or a ValueError that lists what is allowed."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; valid kinds: {', '.join(FAULT_KINDS)}")
    allowed = FAULT_KINDS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k} ({v})" for k, v in allowed.items()) or "none"
        raise ValueError(f"fault {kind!r} takes no parameter {', '.join(unknown)}; its parameters: {valid}")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a whole number >= 1 or None (unlimited), got {times!r}")
    if probability is not None:
        if kind not in ORDER_FAULTS:
            raise ValueError(f"probability applies to {', '.join(sorted(ORDER_FAULTS))}, not to {kind!r}")
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0 < probability <= 1
        ):
            raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    if side is not None and kind not in ORDER_FAULTS:
        raise ValueError(f"side applies to {', '.join(sorted(ORDER_FAULTS))}, not to {kind!r}")
    if instrument is not None and kind == "disconnect":
        raise ValueError("a disconnect takes the whole venue down; it has no instrument")
    if duration is not None:
        if kind in ORDER_FAULTS or kind in _LIFTS:
            raise ValueError(
                f"duration applies to disconnect, {', '.join(sorted(STATE_FAULTS))}; not to {kind!r}"
            )
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not duration > 0:
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if kind == "disconnect" and duration is None:
        duration = 1.0
    return FaultHandle(
        kind=kind,
        venue=venue,
        times=times,
        probability=None if probability is None else float(probability),
        instrument=_instrument_id(instrument, venue, instruments),
        side=None if side is None else Side.parse(side),
        until_ns=None if duration is None else mono_ns() + round(duration * 1e9),
        params=_params(kind, params),
        _mono_ns=mono_ns,
    )


def _instrument_id(instrument: str | None, venue: str, instruments: Sequence[Instrument]) -> str | None:
    if instrument is None:
        return None
    for inst in instruments:  # a product ("GC", "COMEX.GC") names its main month, listed first
        if instrument in (inst.id, inst.symbol, inst.product_id, inst.product_id.partition(".")[2]):
            return inst.id
    known = ", ".join(inst.id for inst in instruments) or "none"
    raise ValueError(f"instrument {instrument!r} is not traded on {venue}; its instruments: {known}")


def _params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind == "reject":
        reason = params.get("reason", _DEFAULT_REASON)
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"reason must be a non-empty text, got {reason!r}")
        return {"reason": reason}
    if kind == "partial":
        ratio = params.get("ratio", 0.5)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
            raise ValueError(f"ratio must be a number between 0 and 1 (exclusive), got {ratio!r}")
        return {"ratio": float(ratio)}
    if kind == "no_ack":
        lost = params.get("lost", False)
        if not isinstance(lost, bool):
            raise ValueError(f"lost must be True or False, got {lost!r}")
        return {"lost": lost}
    return {}


class Faults:
    """The faults in force on one venue; order faults are drawn with the venue's own rng."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self.handles: list[FaultHandle] = []

    def add(self, handle: FaultHandle) -> None:
        if handle.kind in _LIFTS:
            self.lift(_LIFTS[handle.kind], handle.instrument)
            handle.removed = True  # done at once
        else:
            self.handles.append(handle)

    def lift(self, kind: str, instrument: str | None) -> None:
        """End every ``kind`` fault on ``instrument`` (all of them when None)."""
        for handle in self.handles:
            if handle.kind == kind and (instrument is None or handle.instrument in (None, instrument)):
                handle.removed = True
        self._prune()

    def clear(self) -> None:
        for handle in self.handles:
            handle.removed = True
        self.handles = []

    def take(self, kind: str, instrument_id: str, side: Side | None, **match: Any) -> FaultHandle | None:
        """Spend one use of the first active ``kind`` fault that hits this order, if any."""
        if not self.handles:
            return None
        for handle in self.handles:
            if handle.kind != kind or not handle.active or not handle.hits(instrument_id, side):
                continue
            if any(handle.params.get(k) != v for k, v in match.items()):
                continue
            if handle.probability is not None and self._rng.random() >= handle.probability:
                continue
            handle.used += 1
            if not handle.active:
                self._prune()
            return handle
        return None

    def active(self, kind: str, instrument_id: str | None) -> FaultHandle | None:
        """The first ``kind`` state fault in force on ``instrument_id`` (venue-wide ones included)."""
        if not self.handles:
            return None
        for handle in self.handles:
            if handle.kind == kind and handle.hits(instrument_id, None):
                if handle.active:
                    return handle
                self._prune()
                return self.active(kind, instrument_id)
        return None

    def _prune(self) -> None:
        self.handles = [h for h in self.handles if h.active]
