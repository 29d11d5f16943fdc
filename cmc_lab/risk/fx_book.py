"""The two USD rates capital converts at, onshore USDCNY and offshore USDCNH, each named where used.

Money in CNY (SHFE and INE prices, a Chinese broker's account) converts to and from USD at USDCNY;
money in CNH at USDCNH; CNY and CNH are then the same money only when the two rates agree. Before a
rate's first quote the specs' reference rate stands in and says so; a feed with no USDCNY at all (a
recording of USDCNH only) converts onshore money at the live USDCNH and says that instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cmc_lab.core.ids import USDCNH_ID, USDCNY_ID
from cmc_lab.core.model import Quote
from cmc_lab.core.specs import Specs
from cmc_lab.pricing.units import needs_fx
from cmc_lab.risk.positions import MidCache, lazy_mid, priced

#: The rate each money converts to USD at, by its instrument id.
RATE_OF = {"CNY": USDCNY_ID, "CNH": USDCNH_ID}
_FALLBACK = {USDCNY_ID: Decimal("7.11"), USDCNH_ID: Decimal("7.12")}


def convert(
    amount: Decimal, from_ccy: str, to_ccy: str, usdcnh: Decimal, usdcny: Decimal | None = None
) -> Decimal:
    """``amount`` of ``from_ccy`` in ``to_ccy``: CNY at ``usdcny`` (default: ``usdcnh``), CNH at ``usdcnh``.

    Examples
    --------
    >>> convert(Decimal("100"), "USD", "CNY", Decimal("7.25"))
    Decimal('725.00')
    >>> convert(Decimal("100"), "USD", "CNY", Decimal("7.12"), Decimal("7.11"))
    Decimal('711.00')
    """
    if from_ccy == to_ccy:  # the common case, before any case folding
        return amount
    f, t = from_ccy.upper(), to_ccy.upper()
    onshore = usdcnh if usdcny is None else usdcny
    if not needs_fx(f, t) and (f == t or onshore == usdcnh):
        return amount
    per_usd = {"CNH": usdcnh, "CNY": onshore}
    to_usd = amount if f == "USD" else amount / per_usd[f]
    return to_usd if t == "USD" else to_usd * per_usd[t]


@dataclass(frozen=True, slots=True)
class RateUsed:
    """The rate a conversion used: its name, value, and whether a live quote gave it."""

    name: str  # "USDCNY" or "USDCNH"
    rate: Decimal
    source: str  # "live", "reference" or "USDCNH, no USDCNY quote"

    def __str__(self) -> str:
        return f"{self.name} {self.rate}" + ("" if self.source == "live" else f" ({self.source})")


class FxBook:
    """The live USDCNY and USDCNH quotes of one engine (engine loop), their mids read lazily."""

    def __init__(self, specs: Specs) -> None:
        self.reference = {
            iid: specs.instruments[iid].reference_price if iid in specs.instruments else fallback
            for iid, fallback in _FALLBACK.items()
        }
        self._held: dict[str, Quote] = {}
        self._mids: dict[str, MidCache] = {USDCNY_ID: (None, None), USDCNH_ID: (None, None)}
        self.ts: dict[str, int] = {}

    def on_quote(self, quote: Quote) -> bool:
        """Keep an FX quote; False for any other instrument or a quote with no price."""
        iid = quote.instrument_id
        if iid not in self._mids or not priced(quote):
            return False
        self._held[iid] = quote
        self.ts[iid] = quote.ts_event
        return True

    def live(self, iid: str) -> Decimal | None:
        """The live mid of ``iid`` (FX.USDCNY or FX.USDCNH), None before its first quote."""
        mid, self._mids[iid] = lazy_mid(self._held.get(iid), self._mids[iid])
        return mid

    def used(self, currency: str) -> RateUsed:
        """The rate money in ``currency`` (CNY or CNH) converts to USD at, named."""
        iid = RATE_OF.get(currency.upper(), USDCNH_ID)
        name = iid.split(".", 1)[1]
        mid = self.live(iid)
        if mid is not None:
            return RateUsed(name, mid, "live")
        if iid == USDCNY_ID:
            offshore = self.live(USDCNH_ID)
            if offshore is not None:
                return RateUsed("USDCNH", offshore, "USDCNH, no USDCNY quote")
        return RateUsed(name, self.reference[iid], "reference")

    def rate(self, iid: str) -> Decimal:
        """``used(...).rate`` of the rate ``iid`` (FX.USDCNH or FX.USDCNY) alone: the value, without
        naming where it came from (every conversion reads it, so it builds nothing it does not return)."""
        mid = self.live(iid)
        if mid is None and iid == USDCNY_ID:
            mid = self.live(USDCNH_ID)
        return self.reference[iid] if mid is None else mid

    def live_rate(self, currency: str) -> RateUsed | None:
        """:meth:`used` when a live quote gives it, else None (a wire waits for a live rate)."""
        used = self.used(currency)
        return used if used.source != "reference" else None

    def convert(self, amount: Decimal, from_ccy: str, to_ccy: str) -> Decimal:
        if from_ccy == to_ccy:  # no rate to read (a CNY margin in a CNY account: most conversions)
            return amount
        return convert(amount, from_ccy, to_ccy, self.rate(USDCNH_ID), self.rate(USDCNY_ID))

    def basis(self) -> Decimal | None:
        """USDCNH less USDCNY while both are live (positive: offshore yuan is the weaker)."""
        cnh, cny = self.live(USDCNH_ID), self.live(USDCNY_ID)
        return None if cnh is None or cny is None else cnh - cny

    def snapshot(self, now_ns: int) -> list[dict[str, Any]]:
        """One row per rate for the capital view: name, rate, live or reference, age in seconds."""
        rows = []
        for iid in (USDCNY_ID, USDCNH_ID):
            mid = self.live(iid)
            ts = self.ts.get(iid)
            rows.append(
                {
                    "rate": iid.split(".", 1)[1],
                    "value": mid if mid is not None else self.reference[iid],
                    "live": mid is not None,
                    "age_s": (now_ns - ts) / 1e9 if ts is not None else None,
                }
            )
        return rows


__all__ = ["RATE_OF", "FxBook", "RateUsed", "convert"]
