"""FIX 4.4 venues: a gateway to any FIX counterparty, and the embedded exchange served over FIX.

Layers, one per file, imports pointing down: ``codec`` (bytes), ``interface`` (states, errors,
callbacks), ``recovery`` (resend plans, gaps), ``store`` (sequence numbers), ``outbox`` (numbering,
framing, writing, resending), ``session`` (the asyncio session), ``mapping`` and ``venue_mapping``
(FIX <-> our commands and events), ``config``, then ``initiator`` (FixGateway, our end of a
session), ``gateway`` (FixVenue), ``server`` (the exchange as an acceptor) and ``serve`` (the
``cmc-lab venue serve`` process).
"""

from cmc_lab.venues.fix.config import FixConfig, FixConfigError
from cmc_lab.venues.fix.gateway import FixVenue, fix_venues
from cmc_lab.venues.fix.initiator import FixLogonRefused, ReplaceRejected, ReplaceResult

__all__ = [
    "FixConfig",
    "FixConfigError",
    "FixLogonRefused",
    "FixVenue",
    "ReplaceRejected",
    "ReplaceResult",
    "fix_venues",
]
