"""The accounts a session trades with, and money read exactly: the shipped accounts with the caller's
overrides (``cmc.connect(..., accounts=...)``), every amount through :func:`to_money`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from cmc_lab.core.instruments import PLAIN_DECIMAL
from cmc_lab.core.specs import ACCOUNT_CURRENCIES, AccountSpec, Specs


def to_money(value: object, what: str) -> Decimal:
    """An exact amount of money from an int, str, Decimal or float (through its shortest repr)."""
    example = "pass e.g. 1_000_000 or '1000000.50'"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} = {value!r} is not an amount of money; {example}")
    text = str(value).replace("_", "")
    try:
        out = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} = {value!r} is not a number; {example}") from None
    if not out.is_finite():
        raise ValueError(f"{what} = {value!r} is not a finite amount; {example}")
    if isinstance(value, str) and PLAIN_DECIMAL.fullmatch(text) is None:
        raise ValueError(f"{what} = {value!r} is not written with the digits 0-9; {example}")
    return out


def account_specs(specs: Specs, override: Mapping[str, Any] | None) -> dict[str, AccountSpec]:
    """The shipped accounts with ``override`` applied: ``{"US-FUT": 2_000_000}`` sets the cash,
    ``{"HK-FUT": {"currency": "USD", "cash": 1_000_000}}`` adds an account.
    """
    accounts = dict(specs.accounts)
    for name, value in (override or {}).items():
        known = accounts.get(name)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"currency", "cash"})
            if unknown:
                raise ValueError(
                    f"accounts[{name!r}]: unknown key {unknown[0]!r}; give currency and cash (a broker's "
                    "margin terms go in an instruments file: [accounts.NAME] margin_call, broker_add_on, hedge)"
                )
            currency = str(value.get("currency", known.currency if known else "")).upper()
            cash_value = value.get("cash", known.cash if known else None)
        else:
            currency = known.currency if known else ""
            cash_value = value
        if currency not in ACCOUNT_CURRENCIES:
            hint = "" if known else "; a new account needs {'currency': ..., 'cash': ...}"
            raise ValueError(
                f"accounts[{name!r}]: currency {currency or None!r} must be one of "
                f"{', '.join(ACCOUNT_CURRENCIES)}{hint}"
            )
        if cash_value is None:
            raise ValueError(f"accounts[{name!r}]: give its cash, e.g. accounts={{{name!r}: 1_000_000}}")
        cash = to_money(cash_value, f"accounts[{name!r}] cash")
        if cash < 0:
            raise ValueError(f"accounts[{name!r}]: cash {cash} is negative; start an account at 0 or more")
        accounts[name] = (
            replace(known, currency=currency, cash=cash)
            if known is not None
            else AccountSpec(name=name, currency=currency, cash=cash)
        )
    return accounts


__all__ = ["account_specs", "to_money"]
