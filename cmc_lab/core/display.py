"""How numbers read to a trader: durations in ms/µs, money with thousands separators, signed lots.

The one place for display formatting, so every HTML view reads the same: no ``Decimal(...)``,
no ``NaN``, never ``-0.00``. ``Readable`` wraps a figures dict (``t.report()``) so a notebook
shows it as a table while code still reads the raw values.

Examples
--------
>>> duration(172067634), duration(5400), money(Decimal("-0.00"), "USD"), lots(-3)
('172.1 ms', '5.4 µs', 'USD 0.00', 'short 3')
"""

from __future__ import annotations

import datetime as dt
import html
import math
from decimal import Decimal
from typing import Any

import pandas as pd

DASH = "—"


def duration(ns: int | float | None) -> str:
    """``172067634`` -> ``'172.1 ms'``; under a millisecond in µs, over a minute in s."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return DASH
    value = float(ns)
    if abs(value) >= 60e9:
        return f"{value / 1e9:,.1f} s"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.1f} ms"
    return f"{value / 1e3:,.1f} µs"


def timestamp(ns: int | None) -> str:
    """Nanoseconds since the epoch as ``HH:MM:SS.mmm`` UTC."""
    if ns is None:
        return DASH
    moment = dt.datetime.fromtimestamp(int(ns) / 1e9, tz=dt.UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def number(value: Decimal | float | int | None) -> str:
    """Thousands separators, a Decimal's own places, floats to 4 places; never ``-0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, Decimal):
        if value.is_zero():
            value = abs(value)
        places = max(0, -int(value.as_tuple().exponent)) if value.is_finite() else 0
        return f"{value:,.{places}f}"
    if isinstance(value, float):
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "0", "") else text
    return f"{value:,}"


def money(value: Decimal | float | None, currency: str = "") -> str:
    """``money(Decimal('4726380.31'), 'CNY')`` -> ``'CNY 4,726,380.31'``."""
    text = number(value)
    return f"{currency} {text}" if currency and text != DASH else text


def lots(signed: int | None, instrument: str = "") -> str:
    """A signed position as a trader says it: ``short 3 SHFE.au``, ``long 2``, ``flat``."""
    if signed is None:
        return DASH
    if signed == 0:
        return "flat"
    text = f"{'long' if signed > 0 else 'short'} {abs(signed):,}"
    return f"{text} {instrument}" if instrument else text


def flatten_text(instrument: str, signed: int) -> str:
    """A signed position and the order that flattens it: ``short 3 SHFE.au; buy 3 to flatten``
    (alerts, ticket reports, reconciliation and the workbench all say it this way)."""
    if not signed:
        return f"flat {instrument}"
    side = "sell" if signed > 0 else "buy"
    return f"{lots(signed, instrument)}; {side} {abs(signed):,} to flatten"


def cell(key: str, value: Any, currency: str = "") -> str:
    """One value as text, by its key: ``*_ns`` durations, ``ts`` times, ``*_cny`` / money in CNY."""
    if value is None:
        return DASH
    if key.endswith("_ns") and isinstance(value, int | float):
        return duration(value)
    if key in ("ts", "ts_ns") and isinstance(value, int):
        return timestamp(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_cny") and isinstance(value, Decimal | float | int):
        return money(value, "CNY")
    if isinstance(value, Decimal):
        return money(value, currency if key.endswith(("_money", "pnl")) else "")
    if isinstance(value, int | float):
        return number(value)
    return str(value)


def frame_cell(column: str, value: Any) -> str:
    """One DataFrame cell as text: blanks for missing (never NaN), times and durations by name."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if column in ("ts", "ts_event", "ts_init") or column.endswith("_ts"):
            return timestamp(int(value))
        if column.endswith("_ns") and column != "mono_ns":
            return duration(value)
    if isinstance(value, pd.Timestamp):  # a datetime column: the clock time, as the other times read
        return timestamp(int(value.value))
    if isinstance(value, dict | list):
        return str(value)
    return cell(column, value)


def frame_html(frame: pd.DataFrame, max_rows: int = 60) -> str:
    """A DataFrame as a trader reads it; the frame itself is left as it is."""
    shown = frame.head(max_rows)
    columns = [str(c) for c in shown.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(frame_cell(c, v))}</td>" for c, v in zip(columns, row, strict=True))
        + "</tr>"
        for row in shown.itertuples(index=False, name=None)
    )
    more = f"<p>… {len(frame) - max_rows:,} more rows</p>" if len(frame) > max_rows else ""
    return f"<table class='dataframe'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


class Frame(pd.DataFrame):
    """A DataFrame that shows ms/µs, UTC times and blanks in a notebook; its columns stay raw."""

    @property
    def _constructor(self) -> type[Frame]:
        return Frame

    def _repr_html_(self) -> str:
        return frame_html(self)


def html_table(value: Any, key: str = "") -> str:
    """A dict, a dict of dicts or a list of dicts as nested HTML tables; scalars via ``cell``."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        named = [{"": name, **row} for name, row in value.items()]
        return html_table(named, key)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for row in value for k in row))
        head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html_table(row.get(c), c) if isinstance(row.get(c), dict | list) else html.escape(cell(c, row.get(c), str(row.get('currency', ''))))}</td>"
                for c in columns
            )
            + "</tr>"
            for row in value
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(value, dict | list) and not value:
        return "none"
    if isinstance(value, dict):
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k.replace('_', ' '))}</th><td>{html_table(v, k)}</td></tr>"
            for k, v in value.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        return html.escape(", ".join(cell(key, v) for v in value))
    return html.escape(cell(key, value))


class Readable(dict[str, Any]):
    """A figures dict that a notebook shows as a readable table; code reads the raw values."""

    def _repr_html_(self) -> str:
        return html_table(dict(self))
