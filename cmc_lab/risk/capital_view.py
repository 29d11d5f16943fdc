"""CapitalView: the read side of capital, a snapshot turned into DataFrames and HTML.

Split from :mod:`cmc_lab.risk.capital` (the state, changed only on the engine loop) because this
side runs in the caller's thread and is display: exact Decimal cents, the FX rate and its age.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any

import pandas as pd

from cmc_lab.core.display import number
from cmc_lab.risk.capital import CENT

_MONEY = (
    "cash",
    "unrealized",
    "equity",
    "initial_margin",
    "maintenance_margin",
    "reserved",
    "available",
    "withdrawable",
    "in_transit",
    "in_transit_out",
    "in_transit_in",
    "total",
    "realized",
    "shortfall",
)


def _cents(frame: pd.DataFrame) -> pd.DataFrame:
    for col in _MONEY:
        if col in frame:
            cents = [v.quantize(CENT) if isinstance(v, Decimal) else v for v in frame[col]]
            frame[col] = pd.Series(cents, index=frame.index, dtype=object)
    return frame


@dataclass(frozen=True)
class CapitalView:
    """Capital at one moment: per account, unified in the base currency, positions and transfers.

    ``accounts`` (one row per account, its own currency) and ``unified`` (one row, base currency)
    are DataFrames; money columns hold exact ``Decimal`` cents, utilisation is a float ratio
    (initial margin / equity: the risk degree of a Chinese broker's account). ``margin_call``
    follows each account's broker rule (``margin_call_rule``), ``shortfall`` is the cash that ends
    a call. ``fx`` holds both rates (USDCNY onshore, USDCNH offshore) with their age; ``base_rate``
    names the one the unified view converts at. Unpacks as ``accounts, unified = eng.capital()``.

    Examples
    --------
    >>> view = eng.capital()                       # doctest: +SKIP
    >>> view.accounts.loc["US-FUT", "utilisation"]  # doctest: +SKIP
    0.33
    >>> view.base_rate                             # doctest: +SKIP
    'USDCNY 7.1102'
    """

    accounts: pd.DataFrame
    unified: pd.DataFrame
    positions: pd.DataFrame
    transfers: pd.DataFrame
    base: str
    fx: pd.DataFrame
    fx_basis: Decimal | None
    base_rate: str
    ts_ns: int

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any], transfers: list[dict[str, Any]]) -> CapitalView:
        accounts = _cents(pd.DataFrame(snap["accounts"]).set_index("account"))
        unified = _cents(pd.DataFrame([{"currency": snap["base"], **snap["unified"]}]).set_index("currency"))
        unified["converted_at"] = snap["base_rate"]
        positions = _cents(pd.DataFrame(snap["positions"]))
        return cls(
            accounts=accounts,
            unified=unified,
            positions=positions,
            transfers=pd.DataFrame(transfers),
            base=snap["base"],
            fx=pd.DataFrame(snap["fx"]).set_index("rate"),
            fx_basis=snap["fx_basis"],
            base_rate=snap["base_rate"],
            ts_ns=snap["ts"],
        )

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter((self.accounts, self.unified))

    def fx_text(self) -> str:
        """Both rates, their age (or that a reference stands in), the basis, and the rate the base uses."""
        parts = []
        for name, row in self.fx.iterrows():
            if not row["live"]:
                parts.append(f"{name} {row['value']} (reference rate: no quote yet)")
            else:
                age = f"{row['age_s']:.1f} s old" if row["age_s"] is not None else "age unknown"
                parts.append(f"{name} {row['value']} ({age})")
        if self.fx_basis is not None:
            parts.append(f"CNH-CNY basis {self.fx_basis:+.4f}")
        if self.base_rate:
            parts.append(f"{self.base} converts at {self.base_rate}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        lines = [f"CapitalView at {_when(self.ts_ns)}; {self.fx_text()}"]
        for name, row in self.accounts.iterrows():
            call = f", MARGIN CALL: short {row['shortfall']:,.2f}" if row["margin_call"] else ""
            lines.append(
                f"  {name} ({row['currency']}): equity {row['equity']:,.2f}, margin "
                f"{row['initial_margin']:,.2f}, available {row['available']:,.2f}, "
                f"utilisation {row['utilisation']:.1%} ({row['margin_call_rule'].replace('_', ' ')} rule){call}"
            )
        u = self.unified.iloc[0]
        lines.append(
            f"  unified ({self.base}): equity {u['equity']:,.2f}, in transit {u['in_transit']:,.2f}, "
            f"utilisation {u['utilisation']:.1%}"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cols = ("currency", "equity", "cash", "initial_margin", "available", "utilisation", "in_transit_out")
        head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in ("account", *cols))
        body = ""
        for name, row in self.accounts.iterrows():
            cells = "".join(f"<td>{_fmt(row[c])}</td>" for c in cols)
            warn = " style='color:#b00'" if row["margin_call"] else ""
            body += f"<tr{warn}><td>{escape(str(name))}</td>{cells}</tr>"
        u = self.unified.iloc[0]
        unified = (
            f"<tr><th>unified ({escape(self.base)})</th><td>{escape(self.base)}</td>"
            f"<td>{_fmt(u['equity'])}</td><td>{_fmt(u['cash'])}</td><td>{_fmt(u['initial_margin'])}</td>"
            f"<td>{_fmt(u['available'])}</td><td>{_fmt(u['utilisation'])}</td>"
            f"<td>{_fmt(u['in_transit'])}</td></tr>"
        )
        return (
            f"<div class='cmc-capital'><b>Capital</b> at {_when(self.ts_ns)} — {escape(self.fx_text())}"
            f"<table><tr>{head}</tr>{body}{unified}</table></div>"
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.1%}"
    if isinstance(value, Decimal):  # never "-0.00"
        return number(value.quantize(Decimal("0.01")))
    return escape(str(value))


def _when(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
