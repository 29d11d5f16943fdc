"""Trigger conditions on a spread: parsing, dwell, hysteresis, counts, rolling z-score (pure)."""

from __future__ import annotations

import math
import operator
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

FIELDS = ("bid", "ask", "mid", "ratio", "z")
_sqrt = math.sqrt
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_PATTERN = re.compile(
    r"^\s*(bid|ask|mid|ratio|z)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$",
    re.ASCII,  # the digits 0-9: float() would also read other scripts' digits
)


class BadCondition(ValueError):
    """A trigger condition that cannot be read; the message shows the form to use."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``FIELD OP LEVEL`` on a spread quote: bid / ask (executable), mid, ratio or z.

    ``ratio`` is the first leg's mid over the second leg's landed mid (1.002 = 0.2 % rich);
    ``z`` the rolling z-score of the mid.

    Examples
    --------
    >>> Condition.parse("ask <= 2.5").holds(2.4)
    True
    """

    field: str
    op: str
    level: float

    @classmethod
    def parse(cls, text: str) -> Condition | Combined:
        """One ``FIELD OP NUMBER``, or several joined by ``and`` / ``or`` (one kind per condition:
        ``"z <= -1.5 and ask <= 3"``); read by pattern, never evaluated as code."""
        words = re.split(r"\s+(and|or)\s+", str(text).strip())
        if len(words) == 1:
            return cls._one(words[0], str(text))
        joiners = set(words[1::2])
        if len(joiners) > 1:
            raise BadCondition(
                f"condition {text!r} mixes 'and' with 'or'; use one of them (e.g. 'z <= -1.5 and ask <= 3'), "
                "or one ticket per alternative"
            )
        return Combined(joiners.pop(), tuple(cls._one(w, str(text)) for w in words[0::2]))

    @classmethod
    def _one(cls, part: str, text: str) -> Condition:
        match = _PATTERN.match(part)
        if not match:
            raise BadCondition(
                f"condition {text!r} is not understood; write FIELD OP NUMBER, e.g. 'ask <= 2.5', "
                f"with FIELD one of {', '.join(FIELDS)} and OP one of <, <=, >, >=, and join several "
                "with 'and' or 'or'"
            )
        level = float(match.group(3))
        if not math.isfinite(level):
            raise BadCondition(f"condition {text!r} needs a finite level")
        return cls(match.group(1), match.group(2), level)

    def read(self, value_of: Callable[[str], float | None]) -> float | None:
        """The value this condition is judged on, from a spread's ``value(field)``."""
        return value_of(self.field)

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.level))

    def released(self, value: float, hysteresis: float) -> bool:
        """True once ``value`` has moved back past the level by ``hysteresis`` (re-arms a repeat)."""
        if self.op.startswith("<"):
            return value > self.level + hysteresis
        return value < self.level - hysteresis

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.level:g}"


@dataclass(frozen=True, slots=True)
class Combined:
    """Conditions joined by ``and`` (all hold) or ``or`` (any holds), judged on one quote.

    Its value is 1.0 while it holds and 0.0 while not (None while a field it needs is missing),
    so dwell works as for one condition; a repeat re-arms once the whole stops holding
    (``hysteresis`` applies to single conditions only).

    Examples
    --------
    >>> cond = Condition.parse("z <= -1.5 and ask <= 3")
    >>> cond.read({"z": -2.0, "ask": 2.5}.get), cond.read({"z": -2.0, "ask": 3.5}.get)
    (1.0, 0.0)
    """

    joiner: str
    parts: tuple[Condition, ...]
    field = ""  # no single field: panels that draw a level skip it
    level = math.nan

    def read(self, value_of: Callable[[str], float | None]) -> float | None:
        values = [value_of(c.field) for c in self.parts]
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        met = [c.holds(v) for c, v in zip(self.parts, values, strict=True)]  # type: ignore[arg-type]
        return 1.0 if (all(met) if self.joiner == "and" else any(met)) else 0.0

    def holds(self, value: float) -> bool:
        return value >= 1.0

    def released(self, value: float, hysteresis: float) -> bool:
        return value < 1.0

    def __str__(self) -> str:
        return f" {self.joiner} ".join(str(c) for c in self.parts)


class TriggerRule:
    """When a condition fires: it must hold for ``dwell_ns``; after firing it re-arms only once the
    value has moved back by ``hysteresis``; it fires at most ``max_count`` times (None: no limit).

    Examples
    --------
    >>> rule = TriggerRule(Condition.parse("mid > 3"), dwell_ns=0)
    >>> rule.update(3.5, ts_ns=1)
    True
    """

    def __init__(
        self,
        condition: Condition | Combined,
        *,
        dwell_ns: int = 0,
        hysteresis: float = 0.0,
        max_count: int | None = 1,
    ) -> None:
        if dwell_ns < 0:
            raise ValueError(f"dwell must be >= 0, got {dwell_ns} ns")
        if hysteresis < 0 or not math.isfinite(hysteresis):
            raise ValueError(f"hysteresis must be a finite number >= 0, got {hysteresis}")
        if max_count is not None and max_count < 1:
            raise ValueError(f"max_count must be at least 1 (or None for no limit), got {max_count}")
        self.condition = condition
        self.dwell_ns = dwell_ns
        self.hysteresis = hysteresis
        self.max_count = max_count
        self.count = 0
        self.armed = True
        self._pending_since: int | None = None
        self._needs_release = False
        # What the desk looks at on each quote: while the rule waits (nothing pending, no release
        # owed) the condition resolved as (place in FIELDS, field, comparison, level), else None.
        # A combined condition has no probe: the desk asks it on every recomputation.
        self._probe = (
            (FIELDS.index(condition.field), condition.field, _OPS[condition.op], condition.level)
            if isinstance(condition, Condition)
            else None
        )
        self._waiting: tuple[int, str, Callable[[float, float], bool], float] | None = self._probe

    @property
    def exhausted(self) -> bool:
        return self.max_count is not None and self.count >= self.max_count

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False
        self._pending_since = None
        self._settle()

    def update(self, value: float | None, ts_ns: int) -> bool:
        """Feed the condition's field value at ``ts_ns``; True when the trigger fires now."""
        fired = self._step(value, ts_ns)
        self._settle()
        return fired

    def _settle(self) -> None:
        waiting = self._pending_since is None and not self._needs_release
        self._waiting = self._probe if waiting else None

    def _step(self, value: float | None, ts_ns: int) -> bool:
        if not self.armed or self.exhausted:
            return False
        if value is None or not math.isfinite(value):
            self._pending_since = None
            return False
        if self._needs_release:
            if not self.condition.released(value, self.hysteresis):
                return False
            self._needs_release = False
        if not self.condition.holds(value):
            self._pending_since = None
            return False
        if self._pending_since is None:
            self._pending_since = ts_ns
        if ts_ns - self._pending_since < self.dwell_ns:
            return False
        self.count += 1
        self._pending_since = None
        self._needs_release = True
        return True


class RollingZ:
    """Rolling z-score of the last ``window`` values; None until ``min_samples`` are in.

    ``push(value)`` adds a value and ``current()`` gives the newest one's z-score; ``update`` does
    both. A live spread pushes every recomputation and looks at few, so the z-score is worked
    out only when asked for, and the two are closures over the window's running sums (a cell is
    the cheapest read Python has).
    """

    def __init__(self, window: int = 300, min_samples: int = 30) -> None:
        if window < 2 or min_samples < 2 or min_samples > window:
            raise ValueError("window and min_samples must be >= 2 with min_samples <= window")
        self.window = window
        self.min_samples = min_samples
        self.push, self.current = _rolling_z(window, min_samples)

    def update(self, value: float) -> float | None:
        """Add ``value`` and return its z-score."""
        self.push(value)
        return self.current()


def _rolling_z(window: int, min_samples: int) -> tuple[Callable[[float], None], Callable[[], float | None]]:
    values: deque[float] = deque()
    total = squares = 0.0  # running sums: the newest added, then the oldest dropped
    n = 0

    def push(value: float) -> None:
        nonlocal total, squares, n
        total += value
        squares += value * value
        values.append(value)
        if n == window:
            old = values.popleft()
            total -= old
            squares -= old * old
        else:
            n += 1

    def current() -> float | None:
        if n < min_samples:
            return None
        mean = total / n
        square = mean * mean
        var = squares / n - square
        if var < 0.0:  # max(var, 0.0): rounding can take a flat window's variance below zero
            var = 0.0
        if var <= 1e-18 * (square if square > 1.0 else 1.0):
            return 0.0
        return (values[-1] - mean) / _sqrt(var)

    return push, current
