"""SpreadSnapshot: one executable quote of a spread, built on every leg quote (the hot path's record).

Split from :mod:`cmc_lab.execution.spread` so the live spread's module keeps to its job; the
builder sets the frozen dataclass's slots directly, half the cost of its ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from html import escape

from cmc_lab.core.model import Quote


@dataclass(frozen=True, slots=True)
class SpreadSnapshot:
    """An executable quote of a spread at one moment, with the leg quotes and FX it came from."""

    name: str
    unit: str
    bid: float
    ask: float
    mid: float
    bid_size: int
    ask_size: int
    z: float | None
    fx: float | None
    ts_ns: int
    legs: tuple[Quote, ...]
    ratio: float | None = None  # first leg's mid / second leg's landed mid (two-leg spreads)
    fx_rate: str = "USDCNH"  # the rate ``fx`` is: the one the spread converts at

    def value(self, field: str) -> float | None:
        """The value a trigger reads: bid, ask (executable), mid, ratio or z."""
        return getattr(self, field)

    def _repr_html_(self) -> str:
        legs = "".join(
            f"<tr><td>{escape(q.instrument_id)}</td><td>{q.bid_size} @ {q.bid:g}</td>"
            f"<td>{q.ask:g} x {q.ask_size}</td></tr>"
            for q in self.legs
        )
        z = "" if self.z is None else f", z {self.z:+.2f}"
        fx = "" if self.fx is None else f", at {self.fx_rate} {self.fx:.4f}"
        return (
            f"<div><b>{escape(self.name)}</b> ({escape(self.unit)}): "
            f"<b>{self.bid_size} @ {self.bid:.4f} / {self.ask:.4f} x {self.ask_size}</b> "
            f"mid {self.mid:.4f}{z}{fx}<table><tr><th>leg</th><th>bid</th><th>ask</th></tr>{legs}"
            "</table></div>"
        )


def _snapshot_builder() -> Callable[..., SpreadSnapshot]:
    # A frozen dataclass's __init__ sets each field through object.__setattr__; the slots' own
    # setters do the same in half the time, and a spread is recomputed on every leg quote.
    names = (
        "name",
        "unit",
        "bid",
        "ask",
        "mid",
        "bid_size",
        "ask_size",
        "z",
        "fx",
        "ts_ns",
        "legs",
        "ratio",
        "fx_rate",
    )
    if names != tuple(f.name for f in fields(SpreadSnapshot)):
        raise AssertionError("SpreadSnapshot's fields changed: update _snapshot_builder")
    (
        s_name,
        s_unit,
        s_bid,
        s_ask,
        s_mid,
        s_bid_size,
        s_ask_size,
        s_z,
        s_fx,
        s_ts,
        s_legs,
        s_ratio,
        s_rate,
    ) = (getattr(SpreadSnapshot, name).__set__ for name in names)
    new = object.__new__

    def build(
        name: str,
        unit: str,
        bid: float,
        ask: float,
        mid: float,
        bid_size: int,
        ask_size: int,
        z: float | None,
        fx: float | None,
        ts_ns: int,
        legs: tuple[Quote, ...],
        ratio: float | None,
        fx_rate: str,
    ) -> SpreadSnapshot:
        snap = new(SpreadSnapshot)
        s_name(snap, name)
        s_unit(snap, unit)
        s_bid(snap, bid)
        s_ask(snap, ask)
        s_mid(snap, mid)
        s_bid_size(snap, bid_size)
        s_ask_size(snap, ask_size)
        s_z(snap, z)
        s_fx(snap, fx)
        s_ts(snap, ts_ns)
        s_legs(snap, legs)
        s_ratio(snap, ratio)
        s_rate(snap, fx_rate)
        return snap

    return build


new_snapshot = _snapshot_builder()


__all__ = ["SpreadSnapshot", "new_snapshot"]
