"""Fee entries as ``fees.toml`` writes them (``[[fee]]``), read and checked against the instruments."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal
from typing import Any

from cmc_lab.core.fees import FeeBasis, FeeEntry
from cmc_lab.core.ids import split_instrument_id, unknown_instrument_message
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.spec_fields import SpecError
from cmc_lab.core.spec_fields import decimal_field as _decimal
from cmc_lab.core.spec_fields import require as _require
from cmc_lab.core.spec_fields import table as _table

_FEE_KEYS = {"instrument", "currency", "as_of", "source", "per_lot", "notional", "per_contract"}
_FEE_RATES = ("open", "close_today", "close_yesterday")


def fee_entry(raw: dict[str, Any], where: str) -> FeeEntry:
    unknown = sorted(set(raw) - _FEE_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_FEE_KEYS))}")
    instrument = _require(raw, "instrument", where)
    try:
        split_instrument_id(instrument)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None
    where = f"{where} ({instrument})"
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise SpecError(f'{where}: give the source of the numbers, e.g. source = "SHFE notice of 2021-05-14"')
    as_of = _require(raw, "as_of", where)
    if isinstance(as_of, str):
        with contextlib.suppress(ValueError):
            as_of = date.fromisoformat(as_of)
    if not isinstance(as_of, date) or hasattr(as_of, "hour"):
        raise SpecError(f"{where}: as_of = {as_of!r} must be a date, written as_of = 2026-01-31")
    bases = [b for b in FeeBasis if b.value in raw]
    if len(bases) != 1:
        raise SpecError(
            f"{where}: give exactly one of per_lot, notional or per_contract (found "
            f"{', '.join(b.value for b in bases) or 'none'})"
        )
    basis = bases[0]
    table = _table(raw[basis.value], f"{where} {basis.value}")
    here = f"{where} {basis.value}"
    components: tuple[tuple[str, Decimal], ...] = ()
    if basis is FeeBasis.PER_CONTRACT:
        if not table:
            raise SpecError(
                f'{here}: name the parts of the fee, e.g. {{ exchange = "1.60", broker = "0.85" }}'
            )
        components = tuple((name, _decimal(table, name, here)) for name in table)
        total = sum((value for _, value in components), Decimal(0))
        rates = (total, total, total)
    else:
        unknown = sorted(set(table) - set(_FEE_RATES))
        if unknown:
            raise SpecError(f"{here}: unknown key {unknown[0]!r}; give open, close_today and close_yesterday")
        rates = (_decimal(table, "open", here), _decimal(table, "close_today", here),
                 _decimal(table, "close_yesterday", here))  # fmt: skip
        if basis is FeeBasis.NOTIONAL and any(r >= 1 for r in rates):
            raise SpecError(f'{here}: a share of notional must be below 1: write 0.05 per mille as "0.00005"')
    return FeeEntry(
        instrument_id=instrument,
        currency=str(_require(raw, "currency", where)).upper(),
        basis=basis,
        open=rates[0],
        close_today=rates[1],
        close_yesterday=rates[2],
        as_of=as_of,
        source=source.strip(),
        components=components,
    )


def check_fees(fees: list[tuple[FeeEntry, str]], instruments: dict[str, Instrument]) -> None:
    for entry, where in fees:
        inst = instruments.get(entry.instrument_id)
        if inst is None:
            raise SpecError(
                f"{where}: {unknown_instrument_message(entry.instrument_id, instruments)}; a fee needs its "
                "[[instrument]]"
            )
        if entry.currency != inst.currency.upper():
            raise SpecError(
                f"{where} ({entry.instrument_id}): currency {entry.currency!r} is not the instrument's "
                f"({inst.currency}); fees are charged in the currency the contract trades in"
            )


__all__ = ["check_fees", "fee_entry"]
