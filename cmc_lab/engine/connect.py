"""``cmc.connect``: build an engine from a venue map, with the embedded exchange as default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cmc_lab.core.clock import SIM_START_NS, make_clock
from cmc_lab.core.ids import FX_VENUE
from cmc_lab.core.listing import list_months, list_recorded
from cmc_lab.core.specs import load_specs
from cmc_lab.engine.facade import Engine
from cmc_lab.engine.routing import trader_id
from cmc_lab.journal import Journal, JournalError
from cmc_lab.risk.account_terms import account_specs
from cmc_lab.venues.base import Venue
from cmc_lab.venues.fix.gateway import fix_venues
from cmc_lab.venues.replay import first_time_ns, open_replay, replay_venues
from cmc_lab.venues.sim.exchange import SimExchange
from cmc_lab.venues.sim.positions import trade_log_path


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
    accounts: Mapping[str, Any] | None = None,
    accept_damaged_journal: str | None = None,
    trader: str | None = None,
    months: int = 2,
    open_interest: Mapping[str, float] | None = None,
) -> Engine:
    """Start an engine connected to its venues.

    Parameters
    ----------
    target
        ``"sim"``: every venue in the instrument specs on the embedded exchange;
        ``"fix://HOST:PORT?sender=ID&target=ID"``: every venue over that one FIX 4.4 session;
        ``"replay:PATH"``: every venue plays its quotes from a recorded store (``.zarr``/``.nc``),
        its clock starting at the recording's first quote.
    venues
        Instead of ``target``, a map of venue name to address: ``"sim"`` or
        ``"fix://HOST:PORT?sender=ID&target=ID[&heartbeat=30&tls=0]"`` or ``"replay:PATH"``. The FX
        venue is added when not given, for currency conversion: from the first replay store if
        any, else on the embedded exchange. With any FIX venue the engine runs on real UTC time
        (the embedded exchange's anchored start time is for all-sim engines only). The FIX
        password comes from ``CMC_LAB_FIX_PASSWORD_<TARGET>`` or the keyring, never the address.
    seed
        Seed of the embedded exchange: same seed, same market.
    journal
        Path of the SQLite journal (created, or reopened and continued). None keeps it in memory.
        The embedded exchange keeps its own trades beside it (``<journal>.sim-book.jsonl``), so its
        positions outlive the engine as a real venue's do, for ``eng.reconcile()`` after a reopen.
    clock
        ``"real"`` (notebooks) or ``"virtual"`` (tests, replay, benchmarks: the market runs
        only while you wait on it, as fast as the CPU allows).
    latency
        One-way venue latency override in ms: 0 for none, or ``{"COMEX": (60, 120)}``.
    quote_interval
        Seconds between quote updates of the embedded exchange.
    instruments
        Extra instrument files over the shipped specs.
    accounts
        Starting cash per account over the specs' ``[accounts]``: ``{"US-FUT": 2_000_000}``, or
        ``{"HK-FUT": {"currency": "USD", "cash": 1_000_000}}`` for a new account.
    accept_damaged_journal
        A journal whose hash chain does not verify opens with trading HALTED and a critical alert
        naming the first bad row. To trade on it anyway, say why here; the acceptance is journaled.
    trader
        The id of the trader responsible, named with every order in the journal and the audit pack
        (default ``$CMC_LAB_TRADER``, else the OS user name).
    months
        Contract months traded per product (core/listing.py): the main month, which the product id
        (``"SHFE.au"``) stands for, and the next main months (``SHFE.au2704``), the ones a
        position rolls into. A replay trades the ids it recorded.
    open_interest
        Open interest (or volume) by contract month, e.g. ``{"SHFE.au2606": 210_000}`` from the
        exchange's daily report: a product's main month is then its most active listed month, as
        the exchange names its main contract; without it, the rule of ``contracts.toml``.

    Examples
    --------
    >>> import cmc_lab as cmc
    >>> eng = cmc.connect("sim", seed=7, clock="virtual")
    >>> eng.quote("COMEX.GC").bid > 0
    True
    >>> eng.close()
    """
    specs = load_specs(instruments)
    trader = trader_id(trader)  # a bad id fails here, before a journal is opened
    account_specs(specs, accounts)  # bad accounts fail here, before a journal is opened
    if venues is None:
        if target != "sim" and not _is_fix(target) and not _is_replay(target):
            raise UnsupportedVenue(_unsupported(target))
        addresses = dict.fromkeys(specs.venues, target)
    else:
        addresses = dict(venues)
        unknown = sorted(set(addresses) - set(specs.venues))
        if unknown:
            raise ValueError(
                f"unknown venue {', '.join(unknown)}; known venues: {', '.join(specs.venues)} "
                "(add others in an instrument file)"
            )
        if FX_VENUE in specs.venues:
            addresses.setdefault(FX_VENUE, next((a for a in addresses.values() if _is_replay(a)), "sim"))
    fix_addresses = {name: address for name, address in addresses.items() if _is_fix(address)}
    replay_addresses = {name: address for name, address in addresses.items() if _is_replay(address)}
    for name, address in addresses.items():
        if address != "sim" and name not in fix_addresses and name not in replay_addresses:
            raise UnsupportedVenue(f"venue {name}: {_unsupported(address)}")
    if fix_addresses and clock != "real":
        raise ValueError(f"a FIX venue runs on real time; use clock='real' (the default), not {clock!r}")
    if fix_addresses and replay_addresses:
        raise ValueError("replay venues run on a recording's time, FIX venues on real time; use one kind")
    replay_data = {a: open_replay(a) for a in dict.fromkeys(replay_addresses.values())}  # before the journal

    # All-sim engines run on the anchored exchange time (sessions open whenever a notebook runs);
    # a FIX counterparty stamps real UTC, so an engine with any FIX venue runs on real time.
    start = min((first_time_ns(ds) for ds in replay_data.values()), default=SIM_START_NS)
    if not replay_data:  # time moves forward: a reopened journal continues after its last row
        start = max(start, _last_ts_ns(journal) + 1_000_000_000)
    clk = make_clock(clock, None if fix_addresses else start)
    if replay_data:  # a replay trades what it recorded: contract months from a live session
        specs = list_recorded(
            specs, (i for ds in replay_data.values() for i in ds.instrument.values.tolist())
        )
    else:
        specs = list_months(specs, clk.now_ns(), months, open_interest)
    fix_objects = fix_venues(fix_addresses, specs, clk, journal)  # bad addresses fail before the journal
    replay_objects = replay_venues(replay_addresses, replay_data, specs, clk, latency=latency, seed=seed)
    trades = trade_log_path(journal) if journal is not None and str(journal) != ":memory:" else None
    exchange = SimExchange(
        specs, clk, seed=seed, quote_interval=quote_interval, latency=latency, trade_log=trades
    )
    venue_objects: dict[str, Venue] = {
        name: fix_objects[name]
        if name in fix_objects
        else replay_objects[name]
        if name in replay_objects
        else exchange.venue(name)
        for name in addresses
    }
    store = Journal(journal if journal is not None else ":memory:")
    try:
        eng = Engine(
            venue_objects,
            specs=specs,
            journal=store,
            clock=clk,
            label=target if venues is None else "mixed",
            accounts=accounts,
            accept_damaged_journal=accept_damaged_journal,
        )
        eng.router.trader = trader
        return eng
    except BaseException:
        store.close()
        raise


def _last_ts_ns(journal: str | Path | None) -> int:
    """The last row's ``ts_event`` of an existing journal file (0 for a new or unreadable one).

    An unreadable file is reported by the writer's own open, with its fix, right after this.
    """
    if journal is None or str(journal) == ":memory:" or not Path(journal).is_file():
        return 0
    try:
        with Journal(journal, readonly=True) as existing:
            last = existing.tail(1)
    except JournalError:
        return 0
    return int(last["ts_event"].iloc[-1]) if len(last) else 0


def _is_fix(address: object) -> bool:
    return isinstance(address, str) and address.startswith("fix://")


def _is_replay(address: object) -> bool:
    return isinstance(address, str) and address.startswith("replay:")


def _unsupported(address: str) -> str:
    return (
        f"address {address!r} is not supported in this version; use 'sim', "
        "'fix://HOST:PORT?sender=ID&target=ID' or 'replay:PATH' (a recorded quote store)"
    )
