"""The broker's start-of-day statement: the CSV a desk exports, read and checked line by line (no engine).

Format (UTF-8, a BOM allowed; comma-separated; a header row naming the columns in any order,
case-insensitive; other columns are ignored)::

    account,instrument,long,short,cash,currency
    CN-FUT,SHFE.au,3,0,,
    CN-FUT,,,,49871234.50,CNY
    US-FUT,COMEX.GC,0,1,4987650.00,USD

- ``account``: an account name (``CN-FUT``) or a venue that trades in one (``SHFE``).
- ``instrument``, ``long``, ``short``: a position: ``VENUE.SYMBOL`` and the long and short lots
  the broker holds (whole numbers >= 0; a blank one is 0). Leave all three blank on a cash row.
- ``cash``, ``currency``: the account's cash balance in its own currency (exact decimal, a
  leading minus allowed, no thousands separators). Leave both blank on a position-only row.

Each account a statement names is compared whole: an instrument it does not list for that account
is flat at the broker. An account it does not name is not compared. A position or cash given
twice for the same account is refused, naming both lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path

from cmc_lab.core.ids import split_instrument_id
from cmc_lab.core.instruments import Instrument

#: The columns a statement's header must name.
COLUMNS = ("account", "instrument", "long", "short", "cash", "currency")


class StatementError(ValueError):
    """A broker statement that cannot be read: the message names the file, line and column, and the fix."""


@dataclass
class Statement:
    """A broker statement as read: positions ``{(account, instrument_id): (long, short)}``, cash
    ``{account: (amount, currency)}``, the accounts it names, its path and SHA-256."""

    path: Path
    sha256: str
    accounts: list[str] = field(default_factory=list)
    positions: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    cash: dict[str, tuple[Decimal, str]] = field(default_factory=dict)


def read_statement(
    path: str | Path,
    instruments: Iterable[Instrument],
    account_of: Callable[[str], str],
    currency_of: Callable[[str], str],
) -> Statement:
    """Read a statement; a bad row raises :class:`StatementError` naming its line and column.

    ``account_of`` turns an account or venue name into an account name (ValueError if neither);
    ``currency_of`` gives an account's currency.

    Examples
    --------
    >>> st = read_statement("sod.csv", specs.instruments.values(), capital.account_name,
    ...                     lambda a: capital.accounts[a].currency)   # doctest: +SKIP
    >>> st.positions                                                  # doctest: +SKIP
    {('CN-FUT', 'SHFE.au'): (3, 0)}
    """
    file = Path(path).expanduser()
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise StatementError(
            f"no statement at {str(file)!r}; give the path of the CSV your broker exported"
        ) from None
    except OSError as exc:
        raise StatementError(f"cannot read the statement {str(file)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatementError(
            f"{file.name} is not UTF-8 text (byte {exc.start}); export the CSV as UTF-8"
        ) from None
    statement = Statement(file, hashlib.sha256(raw).hexdigest())
    tradeable = {i.id: i for i in instruments if i.tradeable}
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise StatementError(
            f"{file.name} is empty; its first line must name the columns {', '.join(COLUMNS)}"
        )
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise StatementError(
            f"{file.name} line 1 (the header) lacks column(s) {', '.join(missing)}; it must name "
            f"{', '.join(COLUMNS)} (in any order)"
        )
    at = {c: names.index(c) for c in COLUMNS}
    seen: dict[tuple[str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        cells = {c: (row[i].strip() if i < len(row) else "") for c, i in at.items()}
        bad = partial(_error, file.name, line)
        try:
            account = account_of(cells["account"]) if cells["account"] else ""
        except ValueError as exc:
            raise bad("account", str(exc)) from None
        if not account:
            raise bad("account", "is blank; name the account (CN-FUT) or its venue (SHFE)")
        if account not in statement.accounts:
            statement.accounts.append(account)
        if cells["instrument"]:
            iid = _instrument(cells["instrument"], tradeable, bad)
            lots = tuple(_lots(cells[c], c, bad) for c in ("long", "short"))
            _once(seen, ("position", f"{account} {iid}"), line, bad, "instrument", f"{iid} of {account}")
            statement.positions[(account, iid)] = (lots[0], lots[1])
        elif cells["long"] or cells["short"]:
            raise bad("instrument", "is blank on a row with lots; name the contract, e.g. SHFE.au")
        if cells["cash"] or cells["currency"]:
            amount = _money(cells["cash"], bad)
            currency = cells["currency"].upper()
            keeps = currency_of(account)
            if not currency:
                raise bad("currency", f"is blank but cash is given; write {account}'s currency, {keeps}")
            if currency != keeps:
                raise bad(
                    "currency",
                    f"{cells['currency']!r}, but {account} keeps {keeps}; state its cash in {keeps}",
                )
            _once(seen, ("cash", account), line, bad, "cash", f"the cash of {account}")
            statement.cash[account] = (amount, currency)
        elif not cells["instrument"]:
            raise bad(
                "instrument", "and cash are both blank; give a position (instrument, long, short) or cash"
            )
    return statement


def _error(name: str, line: int, column: str, what: str) -> StatementError:
    return StatementError(f"{name} line {line}, column {column!r}: {what}")


def _instrument(
    text: str, tradeable: dict[str, Instrument], bad: Callable[[str, str], StatementError]
) -> str:
    try:
        split_instrument_id(text)
    except ValueError as exc:
        raise bad("instrument", str(exc)) from None
    if text not in tradeable:
        raise bad(
            "instrument", f"{text!r} is not a contract the engine trades; known: {', '.join(tradeable)}"
        )
    return text


def _lots(text: str, column: str, bad: Callable[[str, str], StatementError]) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise bad(
            column, f"{text!r} is not a whole number of lots >= 0; write e.g. 3 (short lots go in 'short')"
        )
    return int(text)


def _money(text: str, bad: Callable[[str, str], StatementError]) -> Decimal:
    if not text:
        raise bad("cash", "is blank but a currency is given; give the cash balance, e.g. 1000000.00")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise bad("cash", f"{text!r} is not an amount; write digits with a decimal point, e.g. 4987650.00")
    return amount


def _once(
    seen: dict[tuple[str, str], int],
    key: tuple[str, str],
    line: int,
    bad: Callable[[str, str], StatementError],
    column: str,
    what: str,
) -> None:
    first = seen.setdefault(key, line)
    if first != line:
        raise bad(column, f"gives {what} again (first on line {first}); give each once")


__all__ = ["COLUMNS", "Statement", "StatementError", "read_statement"]
