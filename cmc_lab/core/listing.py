"""Listed months: the specs of a market that trades contract months, as of one moment.

A desk trades ``SHFE.au2702`` against ``COMEX.GCG27``, not "gold". :func:`list_months` turns specs
of products into specs of the contract months a session trades: for every product with rules in
``contracts.toml``, its main month on the product's trading day and the next main months
(``months`` in all), each an :class:`~cmc_lab.core.instruments.Instrument` of its own with its last
trading day; the product id (``SHFE.au``) stays readable as an alias of the main month. Fees,
margin rates, hedge rates and import terms given for the product apply to each of its months.
Products without month rules (LME's rolling 3-month copper, FX rates) stay as they are.
Pure: no IO.

>>> from cmc_lab.core.specs import load_specs
>>> from cmc_lab.core.clock import SIM_START_NS
>>> specs = list_months(load_specs(), SIM_START_NS)
>>> specs.aliases["SHFE.au"], specs.aliases["COMEX.GC"]
('SHFE.au2702', 'COMEX.GCG27')
>>> specs.instrument("SHFE.au").last_trading_day
datetime.date(2027, 2, 15)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from cmc_lab.core.fees import FeeSchedule
from cmc_lab.core.instruments import Instrument
from cmc_lab.core.months import (
    ContractMonth,
    ContractRule,
    contract_id,
    contract_instrument,
    parse_contract_id,
)
from cmc_lab.core.specs import SpecError, Specs


def list_months(
    specs: Specs, now_ns: int, months: int = 2, open_interest: Mapping[str, float] | None = None
) -> Specs:
    """``specs`` with each product that has month rules replaced by ``months`` of its contract months.

    The main month (``ContractRule.main_month`` on the product's trading day at ``now_ns``) comes
    first and is what the product id stands for; the others are the next main months, the ones a
    position rolls into. ``open_interest`` (contract id -> open interest or volume, e.g. from the
    exchange's daily report) makes the main month of a product the most active of its listed months,
    as the exchange names its main contract. Already listed specs come back unchanged.
    """
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise SpecError(f"months = {months!r} must be a whole number of contract months >= 1, e.g. months=2")
    if specs.aliases:
        return specs
    instruments: dict[str, Instrument] = {}
    aliases: dict[str, str] = {}
    of_product: dict[str, list[str]] = {}
    for iid, inst in specs.instruments.items():
        rule = specs.contracts.get(iid)
        if rule is None:
            instruments[iid] = inst
            continue
        activity = _activity(open_interest or {}, iid, specs)
        contracts = contract_instruments(inst, rule, specs, now_ns, months, activity)
        instruments.update((c.id, c) for c in contracts)
        aliases[iid] = contracts[0].id
        of_product[iid] = [c.id for c in contracts]

    def per_contract(table: dict[str, Decimal]) -> dict[str, Decimal]:
        out = dict(table)
        for product, ids in of_product.items():
            if product in table:
                out.update(dict.fromkeys(ids, table[product]))
        return out

    fees = dict(specs.fees.entries)
    for product, ids in of_product.items():
        if product in fees:
            fees.update(dict.fromkeys(ids, fees[product]))
    terms = dict(specs.import_terms)
    for (domestic, overseas), entry in specs.import_terms.items():
        for d in of_product.get(domestic, [domestic]):
            for o in of_product.get(overseas, [overseas]):
                terms[(d, o)] = entry
    return dataclasses.replace(
        specs,
        instruments=instruments,
        maintenance=per_contract(specs.maintenance),
        hedge_margin=per_contract(specs.hedge_margin),
        fees=FeeSchedule(fees),
        import_terms=terms,
        aliases=aliases,
        products=dict(specs.instruments),
    )


def list_recorded(specs: Specs, recorded: Iterable[str]) -> Specs:
    """``specs`` with the contract months a recording holds (``SHFE.au2702`` in a session recorded
    from the embedded exchange) as instruments, each product an alias of its nearest recorded month;
    products recorded as products (a synthetic or older store) stay as they are."""
    months: dict[str, Instrument] = {}
    for iid in dict.fromkeys(recorded):
        if iid in specs.instruments:
            continue
        try:
            inst = specs.instrument(iid)
        except KeyError:
            continue  # not ours: the replay says which instruments it skips
        if inst.product:
            months[inst.id] = inst
    if not months:
        return specs
    aliases = dict(specs.aliases)
    for product in {inst.product for inst in months.values()}:
        held = [i for i in months.values() if i.product == product and i.last_trading_day is not None]
        aliases[product] = min(held, key=lambda i: i.last_trading_day or date.max).id  # the nearest month
    return dataclasses.replace(specs, instruments={**specs.instruments, **months}, aliases=aliases)


def contract_instruments(
    product: Instrument,
    rule: ContractRule,
    specs: Specs,
    now_ns: int,
    months: int,
    activity: dict[ContractMonth, float] | None = None,
) -> list[Instrument]:
    """The product's main month and the next ``months - 1`` main months as instruments."""
    calendar = specs.calendars.get(rule.calendar)
    if calendar is None:
        raise SpecError(
            f'[contracts."{rule.product}"]: calendar {rule.calendar!r} has no [calendars.{rule.calendar}] table'
        )
    chosen = rule.main_months(product.hours.trading_day(now_ns), calendar, months, activity)
    return [
        contract_instrument(product, rule, m, calendar, (1 + rule.carry) ** (m.months_after(chosen[0]) / 12))
        for m in chosen
    ]


def _activity(open_interest: Mapping[str, float], product: str, specs: Specs) -> dict[ContractMonth, float]:
    """The open interest of ``product``'s months, by month; a contract id that is no month of any
    product with rules is a mistake the caller hears of."""
    out = {}
    for iid, value in open_interest.items():
        parsed = parse_contract_id(iid, specs.contracts)
        if parsed is None:
            raise SpecError(f"open_interest: {iid!r} is not a contract month; name months, e.g. SHFE.au2606")
        if parsed[0] == product:
            out[parsed[1]] = float(value)
    return out


def listed_month(specs: Specs, instrument_id: str, now_ns: int) -> Instrument:
    """A month the session does not quote but its exchange lists today (``SHFE.au2706``), worked out
    from its product's rules; KeyError saying why for anything else (an expired or unlisted month)."""
    inst = specs.instrument(instrument_id)
    parsed = parse_contract_id(inst.id, specs.contracts)
    if parsed is None:
        return inst
    rule, calendar = specs.contracts[parsed[0]], specs.calendars[specs.contracts[parsed[0]].calendar]
    today = inst.hours.trading_day(now_ns)
    listed = rule.listed_months(today, calendar)
    if parsed[1] not in listed:
        names = ", ".join(contract_id(parsed[0], m, specs.contracts) for m in listed)
        raise KeyError(
            f"{inst.id} is not listed on {today} (its last trading day is {inst.last_trading_day}); "
            f"{parsed[0]} lists {names}"
        )
    return inst


def maturity_month_year(specs: Specs, instrument_id: str) -> str:
    """A contract month as FIX's MaturityMonthYear (200) writes it, ``"202702"``; "" for anything else.

    >>> from cmc_lab.core.specs import load_specs
    >>> maturity_month_year(load_specs(), "COMEX.GCG27"), maturity_month_year(load_specs(), "FX.USDCNH")
    ('202702', '')
    """
    try:
        parsed = parse_contract_id(instrument_id, specs.contracts)
    except ValueError:
        return ""
    return "" if parsed is None else f"{parsed[1].year}{parsed[1].month:02d}"


def products_of(specs: Specs) -> Specs:
    """The specs as they were before months were listed: for models that price a product's path
    (the capital pool's hourly marks), not its contract months."""
    if not specs.aliases:
        return specs
    return dataclasses.replace(specs, instruments=dict(specs.products), aliases={}, products={})


__all__ = [
    "contract_instruments",
    "list_months",
    "list_recorded",
    "listed_month",
    "maturity_month_year",
    "products_of",
]
