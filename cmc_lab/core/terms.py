"""Import terms: the VAT and bonded premium that land an overseas price in China (data, ``terms.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

#: The shipped import terms (``[[import_terms]]`` entries), read after the calendars.
SHIPPED_TERMS = Path(__file__).with_name("terms.toml")


@dataclass(frozen=True, slots=True)
class ImportTerms:
    """How ``overseas`` lands against ``domestic``: ``(price + premium) * USDCNH * (1 + vat)``.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> load_specs().import_terms[("SHFE.ag", "COMEX.SI")].vat
    Decimal('0.13')
    """

    domestic: str
    overseas: str
    vat: Decimal
    premium: Decimal
    source: str
    as_of: str


def terms_from_table(raw: dict[str, Any], where: str) -> ImportTerms:
    """One ``[[import_terms]]`` entry; ValueError naming the key and what to write."""
    missing = [k for k in ("domestic", "overseas", "vat", "source", "as_of") if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")

    def fraction(key: str, default: str) -> Decimal:
        try:
            value = Decimal(str(raw.get(key, default)))
        except InvalidOperation:
            raise ValueError(f'{where}: {key} must be a number as a string, e.g. {key} = "0.13"') from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{where}: {key} must be a finite number >= 0, got {raw.get(key)!r}")
        return value

    vat = fraction("vat", "0")
    if vat >= 1:
        raise ValueError(f'{where}: vat must be a fraction ("0.13" is 13 %), got {raw["vat"]!r}')
    return ImportTerms(
        str(raw["domestic"]),
        str(raw["overseas"]),
        vat,
        fraction("premium", "0"),
        str(raw["source"]),
        str(raw["as_of"]),
    )


__all__ = ["SHIPPED_TERMS", "ImportTerms", "terms_from_table"]
