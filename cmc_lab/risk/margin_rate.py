"""An instrument's margin rate as the book applies it: exchange rate, maintenance share, hedge rate."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cmc_lab.core.instruments import Instrument, MarginKind
from cmc_lab.core.specs import AccountSpec


@dataclass(frozen=True, slots=True)
class MarginRate:
    """An instrument's margin: a share of notional (percent) or money per lot, and maintenance share."""

    kind: MarginKind
    rate: Decimal
    maintenance: Decimal
    hedge: Decimal | None = None  # the rate of an account trading under a hedge code

    def initial(
        self, inst: Instrument, qty: int, price: Decimal, terms: AccountSpec | None = None
    ) -> Decimal:
        """Initial margin of ``qty`` lots (absolute) at ``price``, in the instrument's currency.

        With an account's ``terms``: its hedge rate when it trades as a hedger, plus its broker's add-on.
        """
        rate = self.rate
        if terms is not None:
            if terms.hedge and self.hedge is not None:
                rate = self.hedge
            if terms.broker_add_on:
                add_on = terms.broker_add_on
                rate = rate + add_on if self.kind is MarginKind.PERCENT else rate * (1 + add_on)
        lots = abs(qty)
        if self.kind is MarginKind.PERCENT:
            return rate * price * inst.lot_size * lots
        return rate * lots


__all__ = ["MarginRate"]
