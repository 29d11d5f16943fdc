"""Instrument ids: ``VENUE.SYMBOL`` (``SHFE.au``, ``COMEX.GC``, ``FX.USDCNH``), parsed in one place."""

from __future__ import annotations


def split_instrument_id(instrument_id: str) -> tuple[str, str]:
    """``"SHFE.au"`` -> ``("SHFE", "au")``; anything else raises a ValueError that says the form."""
    venue, dot, symbol = instrument_id.partition(".") if isinstance(instrument_id, str) else ("", "", "")
    if not dot or not venue or not symbol:
        raise ValueError(
            f"instrument id {instrument_id!r} is not VENUE.SYMBOL; write it like 'SHFE.au' or 'COMEX.GC'"
        )
    return venue, symbol


def venue_of(instrument_id: str) -> str:
    """The venue part of an instrument id (the text before its first dot)."""
    return instrument_id.partition(".")[0]
