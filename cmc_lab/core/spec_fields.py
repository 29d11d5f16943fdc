"""Reading specification files: TOML tables and fields, each error naming the file, entry and fix."""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


class SpecError(ValueError):
    """A specification file has a missing or malformed entry; the message names it."""


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError(f"instrument file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"instrument file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"instrument file {path} cannot be read: {exc.strerror or exc}") from None


def table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table of key = value pairs, got {value!r}")
    return value


def tables(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    return table(data.get(key, {}), f"{where}: [{key}]")


def require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise SpecError(f"{where}: missing field {key!r}")
    return raw[key]


def decimal_field(raw: dict[str, Any], key: str, where: str) -> Decimal:
    value = require(raw, key, where)
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise SpecError(f"{where}: {key} = {value!r} is not a number") from None
    if not out.is_finite() or out < 0:
        raise SpecError(f"{where}: {key} = {value!r} must be a finite, non-negative number")
    return out


__all__ = ["SpecError", "decimal_field", "read_toml", "require", "table", "tables"]
