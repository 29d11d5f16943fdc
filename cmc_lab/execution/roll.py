"""Rolling a position to a later contract month: one hedged ticket that closes the near month and
opens the far one.

Before a month's last trading day a desk moves what it holds there to the next month. Sending the
two orders by hand leaves the position naked or doubled between them; a roll is instead the
calendar spread ``near - far`` of one product traded as any hedge ticket (both legs sent together,
chase or unwind when one does not fill, every order journaled): sold to roll a long position
forward, bought to roll a short one. A hedged cross-market spread rolls leg by leg, each leg with
its own roll ticket, so each product's exposure is unchanged while it rolls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cmc_lab.core.instruments import Instrument
from cmc_lab.core.model import Side


class Holdings(Protocol):
    """What a roll needs of the book: an account's name from an account or venue, and its position."""

    def account_name(self, name: str) -> str: ...

    def position(self, account: str, instrument_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class RollPlan:
    """What a roll trades: ``qty`` lots of the spread ``near - far`` on ``side`` in ``account``."""

    near: Instrument
    far: Instrument
    side: Side
    qty: int
    account: str

    @property
    def spread_name(self) -> str:
        return f"roll_{self.near.symbol}_{self.far.symbol}"

    @property
    def legs(self) -> dict[str, float]:
        return {self.near.id: 1.0, self.far.id: -1.0}


def next_month(near: Instrument, instruments: Iterable[Instrument]) -> Instrument | None:
    """The first month of ``near``'s product that expires after it, among ``instruments``."""
    if near.last_trading_day is None:
        return None
    later = [
        (i.last_trading_day, i.id, i)
        for i in instruments
        if i.product == near.product and i.last_trading_day and i.last_trading_day > near.last_trading_day
    ]
    return min(later)[2] if later else None


def plan_roll(
    near: Instrument,
    far: Instrument | None,
    held: int,
    account: str,
    qty: int | None,
    listed: Iterable[Instrument],
) -> RollPlan:
    """Check a roll request (ValueError naming the fix) and size it: by default all that is held."""
    if not near.product:
        raise ValueError(
            f"{near.id} has no contract months to roll; name a month, e.g. eng.roll('SHFE.au2702')"
        )
    if far is None:
        far = next_month(near, listed)
        if far is None:
            raise ValueError(
                f"no later month of {near.product} than {near.id} is quoted; name one with to=, or "
                "connect with more months (cmc.connect('sim', months=3))"
            )
    if far.product != near.product or far.id == near.id:
        raise ValueError(f"a roll moves {near.id} to a later month of {near.product}; {far.id} is not one")
    if far.last_trading_day and near.last_trading_day and far.last_trading_day <= near.last_trading_day:
        raise ValueError(f"{far.id} expires before {near.id} ({far.last_trading_day}); roll to a later month")
    if held == 0:
        raise ValueError(f"{account} holds no {near.id}: nothing to roll")
    if qty is None:
        qty = abs(held)
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
        raise ValueError(f"qty must be a whole number of lots >= 1, got {qty!r}")
    if qty > abs(held):
        raise ValueError(
            f"qty {qty} rolls more than {account} holds: {held:+d} {near.id}; roll at most {abs(held)}"
        )
    return RollPlan(near, far, Side.SELL if held > 0 else Side.BUY, qty, account)


__all__ = ["Holdings", "RollPlan", "next_month", "plan_roll"]
