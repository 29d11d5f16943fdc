"""An automatic transfer's two decisions: how much the account in trouble needs, and which account
can give it (the most room above its minimum buffer, compared in the base currency)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from cmc_lab.risk.account_figures import CENT, AccountFigures
from cmc_lab.risk.capital import Capital
from cmc_lab.risk.rules import Rule


def amount_needed(rule: Rule, figures: AccountFigures, incoming: Decimal) -> Decimal:
    """What brings the account back: to the rule's target utilisation, or above its warn (else act)
    level plus hysteresis of available funds; money already in transit to it counts."""
    if rule.metric == "margin_utilisation":
        return figures.initial_margin / Decimal(str(rule.target)) - figures.equity - incoming
    level = rule.warn if rule.warn is not None else rule.act
    return Decimal(str(level)) + Decimal(str(rule.hysteresis)) - figures.available - incoming


def best_source(cap: Capital, rule: Rule, target: str) -> tuple[str, Decimal] | None:
    """The account to fund ``target`` from (``rule.source`` only, when set) and its room: cash it
    holds that is also available above ``rule.min_buffer``; None when no account has any."""
    best: tuple[Decimal, str, Decimal] | None = None  # (room in base, account, room in its currency)
    for name, acct in cap.accounts.items():
        if name == target or (rule.source is not None and name != rule.source):
            continue
        src = cap.figures(name)
        buffer = cap.convert(rule.min_buffer, cap.base, acct.currency)
        room = min(src.cash, src.available - buffer).quantize(CENT, rounding=ROUND_DOWN)
        if room > 0 and (best is None or cap.to_base(room, acct.currency) > best[0]):
            best = (cap.to_base(room, acct.currency), name, room)
    return None if best is None else (best[1], best[2])


__all__ = ["amount_needed", "best_source"]
