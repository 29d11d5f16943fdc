"""FIX 4.4 venues: a gateway to any FIX counterparty, and the embedded exchange served over FIX.

Layers, one per file, imports pointing down: ``codec`` (bytes), ``store`` (sequence numbers),
``interface`` and ``recovery`` (session rules), ``session`` (asyncio TCP), ``mapping`` and
``venue_mapping`` (FIX <-> our commands and events), ``config``, then ``gateway`` (FixVenue) and
``server`` (``cmc-lab venue serve``).
"""

from cmc_lab.venues.fix.config import FixConfig, FixConfigError
from cmc_lab.venues.fix.gateway import FixLogonRefused, FixVenue, ReplaceRejected, ReplaceResult, fix_venues

__all__ = [
    "FixConfig",
    "FixConfigError",
    "FixLogonRefused",
    "FixVenue",
    "ReplaceRejected",
    "ReplaceResult",
    "fix_venues",
]
