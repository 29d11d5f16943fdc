"""``cmc.connect``: build an engine from a venue map, with the embedded exchange as default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from cmc_lab.clock import SIM_START_NS, make_clock
from cmc_lab.engine import Engine
from cmc_lab.journal import Journal
from cmc_lab.specs import load_specs
from cmc_lab.venues.base import Venue
from cmc_lab.venues.sim import SimExchange


class UnsupportedVenue(ValueError):
    """A venue address this version cannot open."""


def connect(
    target: str = "sim",
    *,
    venues: Mapping[str, str] | None = None,
    seed: int = 7,
    journal: str | Path | None = None,
    clock: str = "real",
    latency: float | Mapping[str, tuple[float, float]] | None = None,
    quote_interval: float = 0.2,
    instruments: str | Path | Iterable[str | Path] | None = None,
) -> Engine:
    """Start an engine connected to its venues.

    Parameters
    ----------
    target
        ``"sim"``: every venue in the instrument specs on the embedded exchange.
    venues
        Instead of ``target``, a map of venue name to address: ``"sim"`` for now
        (``"fix://..."`` and ``"replay:PATH"`` arrive with the FIX and replay venues). The
        FX venue is added on the embedded exchange when not given, for currency conversion.
    seed
        Seed of the embedded exchange: same seed, same market.
    journal
        Path of the SQLite journal (created, or reopened and continued). None keeps it in memory.
    clock
        ``"real"`` (notebooks) or ``"virtual"`` (tests, replay, benchmarks: the market runs
        only while you wait on it, as fast as the CPU allows).
    latency
        One-way venue latency override in ms: 0 for none, or ``{"COMEX": (60, 120)}``.
    quote_interval
        Seconds between quote updates of the embedded exchange.
    instruments
        Extra instrument files over the shipped specs.

    Examples
    --------
    >>> import cmc_lab as cmc
    >>> eng = cmc.connect("sim", seed=7, clock="virtual")
    >>> eng.quote("COMEX.GC").bid > 0
    True
    >>> eng.close()
    """
    specs = load_specs(instruments)
    if venues is None:
        if target != "sim":
            raise UnsupportedVenue(_unsupported(target))
        addresses = dict.fromkeys(specs.venues, "sim")
    else:
        addresses = dict(venues)
        unknown = sorted(set(addresses) - set(specs.venues))
        if unknown:
            raise ValueError(
                f"unknown venue {', '.join(unknown)}; known venues: {', '.join(specs.venues)} "
                "(add others in an instrument file)"
            )
        if "FX" in specs.venues:
            addresses.setdefault("FX", "sim")
    for name, address in addresses.items():
        if address != "sim":
            raise UnsupportedVenue(f"venue {name}: {_unsupported(address)}")

    clk = make_clock(clock, SIM_START_NS)
    exchange = SimExchange(specs, clk, seed=seed, quote_interval=quote_interval, latency=latency)
    venue_objects: dict[str, Venue] = {name: exchange.venue(name) for name in addresses}
    store = Journal(journal if journal is not None else ":memory:")
    try:
        return Engine(
            venue_objects, specs=specs, journal=store, clock=clk, label=target if venues is None else "mixed"
        )
    except BaseException:
        store.close()
        raise


def _unsupported(address: str) -> str:
    return (
        f"address {address!r} is not supported in this version; use 'sim' "
        "(FIX 4.4 and replay venues are not built yet)"
    )
