"""The contract months the embedded exchange trades from its default start (2026-11-24), by product.

Tests run on that clock, so ``SHFE.au`` stands for :data:`AU` there; a test that names what the
engine shows (positions, fills, journal rows) names the month.
"""

from __future__ import annotations

from cmc_lab.core.clock import SIM_START_NS
from cmc_lab.core.listing import list_months
from cmc_lab.core.specs import load_specs

SIM_SPECS = list_months(load_specs(), SIM_START_NS)
MAIN = dict(SIM_SPECS.aliases)  # product id -> its main month's id
AU, AG, CU, SC = MAIN["SHFE.au"], MAIN["SHFE.ag"], MAIN["SHFE.cu"], MAIN["INE.sc"]
GC, SI, CL = MAIN["COMEX.GC"], MAIN["COMEX.SI"], MAIN["NYMEX.CL"]
#: the second quoted month of each, the one a position rolls into
NEXT = {
    p: next(i for i, inst in SIM_SPECS.instruments.items() if inst.product == p and i != m)
    for p, m in MAIN.items()
}
AU_NEXT, GC_NEXT = NEXT["SHFE.au"], NEXT["COMEX.GC"]
