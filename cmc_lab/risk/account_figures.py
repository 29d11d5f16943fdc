"""One account's figures at one moment, and the broker's margin-call rule they are judged by.

Pure: :class:`~cmc_lab.risk.capital.Capital` computes the figures; the margin-call check, the
capital view and the transfer action read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from cmc_lab.core.specs import AccountSpec

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One account's numbers at one moment, in the account's currency."""

    name: str
    currency: str
    cash: Decimal
    unrealized: Decimal
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    reserved: Decimal
    available: Decimal
    withdrawable: Decimal
    utilisation: float
    rule: str = "maintenance"  # the broker's margin-call rule (core.specs.MARGIN_CALL_RULES)
    call_level: Decimal = Decimal(1)

    @property
    def margin_call(self) -> bool:
        """Whether the broker's rule calls: risk degree at its level, or equity under maintenance."""
        return broker_calls(
            self.rule,
            self.call_level,
            self.initial_margin,
            self.equity,
            self.maintenance_margin,
            self.utilisation,
        )

    def call_text(self) -> str:
        """The rule and where the account stands against it, e.g. ``risk degree 104.2 % (calls at 100 %)``."""
        if self.rule == "risk_degree":
            return f"risk degree {self.utilisation:.1%} (calls at {self.call_level:.0%})"
        return f"equity {self.equity:,.2f} against maintenance {self.maintenance_margin:,.2f} {self.currency}"

    def shortfall(self) -> Decimal:
        """Cash that would end the call (0 when not called), in the account's currency."""
        if not self.margin_call:
            return ZERO
        if self.rule == "risk_degree":
            return max(ZERO, self.initial_margin / self.call_level - self.equity).quantize(CENT)
        return (self.maintenance_margin - self.equity).quantize(CENT)


def call_rule(terms: AccountSpec | None) -> tuple[str, Decimal]:
    """The account's margin-call rule and its level (an account without terms: maintenance)."""
    return (terms.margin_call, terms.call_level) if terms is not None else ("maintenance", ONE)


def broker_calls(
    rule: str, level: Decimal, initial: Decimal, equity: Decimal, maintenance: Decimal, used: float
) -> bool:
    """The broker's margin-call rule: risk degree (``used``, margin over equity) at its level, or
    equity under maintenance margin."""
    if rule == "risk_degree":
        return initial > 0 and used >= level
    return equity < maintenance


def utilisation(margin: Decimal, equity: Decimal) -> float:
    """Margin over equity; infinite when margin is held against no equity."""
    if equity <= 0:
        return math.inf if margin > 0 else 0.0
    return float(margin / equity)


__all__ = ["CENT", "ONE", "ZERO", "AccountFigures", "broker_calls", "call_rule", "utilisation"]
