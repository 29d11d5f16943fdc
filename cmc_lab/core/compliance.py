"""Compliance numbers as data (``compliance.toml``): the programmatic-trading high-frequency thresholds,
the exchanges' abnormal-trading standards per contract and day, and the desk's caps derived from them."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The shipped numbers, with their sources and how sure each is.
SHIPPED_COMPLIANCE = Path(__file__).with_name("compliance.toml")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Messages per second and per trading day at which an account counts as high-frequency."""

    per_second: int
    per_day: int
    source: str


@dataclass(frozen=True, slots=True)
class AbnormalTrading:
    """The abnormal-trading standard per client, contract and exchange trading day on ``venues``:
    self-trades, cancels and large cancels (of orders of ``large_cancel_lots`` or more) at or over
    which a day is flagged. Cancels of IOC (FAK/FOK) orders do not count toward the cancel numbers."""

    venues: tuple[str, ...]
    self_trades: int
    cancels: int
    large_cancels: int
    large_cancel_lots: int
    source: str
    as_of: str

    def covers(self, venue: str) -> bool:
        return venue in self.venues

    def text(self) -> str:
        """The standard in a few words, for a table cell."""
        return (
            f"{'/'.join(self.venues)}: self-trades {self.self_trades}, cancels {self.cancels}, "
            f"large cancels {self.large_cancels} (>= {self.large_cancel_lots} lots), per contract per day"
        )


@dataclass(frozen=True, slots=True)
class DeskCaps:
    """The default caps of ``eng.limits`` that keep the desk below the thresholds, each with its warning."""

    messages_per_s: int
    messages_per_day: int
    message_warn_per_day: int
    cancels_per_day: int
    cancel_warn_per_day: int


@dataclass(frozen=True, slots=True)
class Compliance:
    """Everything ``compliance.toml`` holds.

    Examples
    --------
    >>> rules = load_compliance()
    >>> rules.thresholds.per_second, rules.caps.messages_per_s, rules.caps.messages_per_day
    (300, 240, 18000)
    >>> rules.abnormal.cancels, rules.caps.cancels_per_day, rules.abnormal.covers("COMEX")
    (500, 480, False)
    """

    thresholds: Thresholds
    abnormal: AbnormalTrading
    caps: DeskCaps


def load_compliance(path: Path = SHIPPED_COMPLIANCE) -> Compliance:
    """Read ``path``; a ValueError naming the file, the key and what to write."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
        hft, abn, caps = raw["programmatic_trading"], raw["abnormal_trading"], raw["desk_caps"]
        thresholds = Thresholds(
            _whole(hft, "messages_per_second"), _whole(hft, "messages_per_day"), str(hft["source"])
        )
        abnormal = AbnormalTrading(
            tuple(str(v) for v in abn["venues"]),
            _whole(abn, "self_trades"),
            _whole(abn, "cancels"),
            _whole(abn, "large_cancels"),
            _whole(abn, "large_cancel_lots"),
            str(abn["source"]),
            str(abn["as_of"]),
        )
        warn = _below(caps, "message_warn_share", thresholds.per_day)
        most = _below(caps, "messages_per_day_share", thresholds.per_day)
        cancel_warn = _below(caps, "cancel_warn_share", abnormal.cancels)
        cancel_most = _below(caps, "cancels_per_day_share", abnormal.cancels)
    except KeyError as exc:
        raise ValueError(
            f"{path}: missing {exc.args[0]!r}; see the shipped {SHIPPED_COMPLIANCE.name}"
        ) from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not (warn < most and cancel_warn < cancel_most):
        raise ValueError(f"{path}: [desk_caps] each warning share must be below its cap's share")
    desk = DeskCaps(
        _below(caps, "messages_per_second_share", thresholds.per_second), most, warn, cancel_most, cancel_warn
    )
    return Compliance(thresholds, abnormal, desk)


def _whole(table: dict[str, Any], key: str) -> int:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} = {value!r} must be a whole number >= 1")
    return value


def _below(table: dict[str, Any], key: str, threshold: int) -> int:
    """``threshold`` times the share at ``key``, rounded down: a cap below the threshold it guards."""
    share = table[key]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise ValueError(f"[desk_caps] {key} = {share!r} must be a fraction above 0 and below 1")
    return max(1, math.floor(threshold * share))


__all__ = ["AbnormalTrading", "Compliance", "DeskCaps", "Thresholds", "load_compliance"]
