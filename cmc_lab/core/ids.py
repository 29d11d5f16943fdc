"""Instrument ids: ``VENUE.SYMBOL`` (``SHFE.au``, ``COMEX.GC``, ``FX.USDCNH``), parsed in one place.

:func:`split_instrument_id` checks an id and names the form when it is wrong: use it where an
id comes from outside (a user, a FIX message, a file). :func:`venue_of` and :func:`symbol_of`
only cut at the first dot, for hot paths over ids the specs already know.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The venue that quotes FX rates (a rate, not a tradeable contract).
FX_VENUE = "FX"
#: Offshore USDCNH, CNH per USD: the rate a spread converts at unless it names another.
USDCNH_ID = "FX.USDCNH"
#: Onshore USDCNY, CNY per USD: the rate money held in CNY converts at.
USDCNY_ID = "FX.USDCNY"
#: The FX rates a spread may convert at, by the name a user writes (``fx="USDCNY"``).
FX_RATE_IDS = {"USDCNH": USDCNH_ID, "USDCNY": USDCNY_ID}


def split_instrument_id(instrument_id: str) -> tuple[str, str]:
    """``"SHFE.au"`` -> ``("SHFE", "au")``; anything else raises a ValueError that says the form.

    The venue is the text before the first dot, the symbol the rest; both must be non-empty.

    Examples
    --------
    >>> split_instrument_id("COMEX.GC")
    ('COMEX', 'GC')
    >>> split_instrument_id("GC")
    Traceback (most recent call last):
    ...
    ValueError: instrument id 'GC' is not VENUE.SYMBOL; write it like 'SHFE.au' or 'COMEX.GC'
    """
    venue, dot, symbol = instrument_id.partition(".") if isinstance(instrument_id, str) else ("", "", "")
    if not dot or not venue or not symbol:
        raise ValueError(
            f"instrument id {instrument_id!r} is not VENUE.SYMBOL; write it like 'SHFE.au' or 'COMEX.GC'"
        )
    return venue, symbol


def venue_of(instrument_id: str) -> str:
    """The venue part of an instrument id (the text before its first dot), unchecked.

    >>> venue_of("SHFE.au")
    'SHFE'
    """
    return instrument_id.partition(".")[0]


def symbol_of(instrument_id: str) -> str:
    """The symbol part of an instrument id (the text after its first dot), unchecked.

    A text without a dot is taken as a bare symbol and returned whole.

    >>> symbol_of("COMEX.GC"), symbol_of("GC")
    ('GC', 'GC')
    """
    return instrument_id.partition(".")[2] or instrument_id


def unknown_instrument_message(instrument_id: str, known: Iterable[str]) -> str:
    known = sorted(known)
    wanted = symbol_of(instrument_id).lower() if isinstance(instrument_id, str) else None
    close = [k for k in known if symbol_of(k).lower() == wanted]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown instrument {instrument_id!r}; {hint}instruments are named VENUE.SYMBOL, "
        f"known: {', '.join(known)}"
    )
