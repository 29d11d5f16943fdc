"""Simulated fair prices and liquidity regimes for the embedded exchange. Pure, no IO.

Latent overseas factors (gold, silver, LME copper, WTI) follow correlated log random walks
with Poisson jumps; USDCNH is an Ornstein-Uhlenbeck (OU) process around its reference, and onshore
USDCNY is USDCNH less an OU basis (offshore yuan a few hundredths weaker or stronger). Each
domestic contract is its overseas factor converted to CNY in its own units plus an OU
cross-market spread with occasional jumps. Any other instrument walks on its own.
"""

from __future__ import annotations

import math

import numpy as np

from cmc_lab.core.ids import USDCNH_ID, USDCNY_ID
from cmc_lab.core.instruments import TROY_OUNCE_GRAMS, Instrument
from cmc_lab.core.specs import Specs
from cmc_lab.data.month_curve import FairQuote, MonthCurve

#: Seconds in a trading year, to turn annualised volatilities into per-second ones.
SECONDS_PER_YEAR = 252 * 86_400
GRAMS_PER_OUNCE = float(TROY_OUNCE_GRAMS)

#: (instrument id, default start, annualised volatility) of each latent overseas factor.
_FACTORS: tuple[tuple[str, float, float], ...] = (
    ("COMEX.GC", 4100.0, 0.15),
    ("COMEX.SI", 48.0, 0.28),
    ("LME.CA", 10600.0, 0.22),
    ("NYMEX.CL", 60.0, 0.35),
)
_FACTOR_CORR = np.array(
    [
        [1.00, 0.80, 0.25, 0.10],
        [0.80, 1.00, 0.35, 0.15],
        [0.25, 0.35, 1.00, 0.40],
        [0.10, 0.15, 0.40, 1.00],
    ]
)
_FX_START, _FX_VOL, _FX_HALF_LIFE = 7.12, 0.04, 3600.0
#: USDCNH - USDCNY: default mean, stationary sd and half-life (the basis of 2025 moved within +-0.05).
_BASIS_START, _BASIS_SD, _BASIS_HALF_LIFE = 0.01, 0.008, 1800.0

#: domestic id -> (factor index, unit multiplier applied after FX); the VAT and bonded premium come
#: from the specs' import terms (``terms.toml``), so the simulated cross-market spread is a real one.
_DOMESTIC: dict[str, tuple[int, float]] = {
    "SHFE.au": (0, 1.0 / GRAMS_PER_OUNCE),
    "SHFE.ag": (1, 1000.0 / GRAMS_PER_OUNCE),
    "SHFE.cu": (2, 1.0),
    "INE.sc": (3, 1.0),
}

_FACTOR_JUMP_RATE = 1 / 1800  # per second
_FACTOR_JUMP_SD = 0.0015  # log size
_SPREAD_SD = 0.0003  # stationary sd of a cross-market spread, as a share of the price
_SPREAD_HALF_LIFE = 120.0  # seconds
_SPREAD_JUMP_RATE = 1 / 900
_SPREAD_JUMP_SD = 2.0  # in stationary sds
_STANDALONE_VOL = 0.20
_THIN_ENTER_RATE = 1 / 300  # normal -> thin, per second
_THIN_LEAVE_RATE = 1 / 20  # thin -> normal
_NORMAL_SIZE = (10, 60)
_THIN_SIZE = (1, 5)
_THIN_HALF_SPREAD = (2, 6)
_START_SIZE = 20


class SimMarket:
    """Correlated fair prices for every product of ``specs``, one ``step()`` per ``dt`` seconds; each
    listed contract month is priced off its product (:class:`~cmc_lab.data.month_curve.MonthCurve`).

    The path depends only on ``seed``: every step draws the same number of random numbers.
    Domestic contracts start at their reference price: the spread's long-run mean is set so.

    Examples
    --------
    >>> from cmc_lab.core.specs import load_specs
    >>> market = SimMarket(load_specs(), seed=7)
    >>> market.quotes["COMEX.GC"].mid
    4100.0
    >>> quotes = market.step()
    >>> quotes["SHFE.au"].regime in ("normal", "thin")
    True
    """

    def __init__(self, specs: Specs, seed: int, *, dt: float = 0.2) -> None:
        if not dt > 0:
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.dt = dt
        self.seed = seed
        self.steps = 0
        self._rng = np.random.Generator(np.random.PCG64(seed))
        products = specs.products or specs.instruments
        instruments = list(products.values())
        contracts = [inst for inst in specs.instruments.values() if inst.product]
        self.curve = MonthCurve(contracts, products, set(specs.aliases.values()), seed, dt)
        self._terms = specs.import_terms
        for inst in instruments:
            if inst.reference_price <= 0:
                raise ValueError(
                    f'instrument {inst.id} has no reference_price; add reference_price = "..." to its '
                    "[[instrument]] entry so the embedded exchange knows where to start its market"
                )
        self.ids = [inst.id for inst in instruments]
        self._ticks = np.array([float(inst.tick) for inst in instruments])
        by_id = {inst.id: inst for inst in instruments}
        self._setup_factors(by_id)
        self._setup_instruments(instruments)
        n = len(instruments)
        self._thin = np.zeros(n, dtype=bool)
        self._half = np.ones(n, dtype=np.int64)
        start = {
            iid: FairQuote(float(inst.reference_price), 1, _START_SIZE, "normal")
            for iid, inst in by_id.items()
        }
        self.quotes: dict[str, FairQuote] = self.curve.extend(start, step=False)

    def __repr__(self) -> str:
        return f"SimMarket({len(self.ids)} instruments, seed={self.seed}, t+{self.steps * self.dt:.1f}s)"

    def _setup_factors(self, by_id: dict[str, Instrument]) -> None:
        dt = self.dt

        def start(iid: str, default: float) -> float:
            inst = by_id.get(iid)
            return default if inst is None else float(inst.reference_price)

        self._x = np.log([start(iid, default) for iid, default, _ in _FACTORS])
        vols = np.array([vol for _, _, vol in _FACTORS])
        self._factor_step = (
            np.linalg.cholesky(_FACTOR_CORR) * (vols * math.sqrt(dt / SECONDS_PER_YEAR))[:, None]
        )
        self._fx_ref = start(USDCNH_ID, _FX_START)
        self._fx_y = 0.0  # log(USDCNH / reference)
        self._fx_decay = math.exp(-math.log(2) / _FX_HALF_LIFE * dt)
        self._fx_sd = _FX_VOL * math.sqrt(dt / SECONDS_PER_YEAR)
        onshore = by_id.get(USDCNY_ID)
        self._basis_mean = self._fx_ref - float(onshore.reference_price) if onshore else _BASIS_START
        self._basis = self._basis_mean
        self._basis_decay = math.exp(-math.log(2) / _BASIS_HALF_LIFE * dt)
        self._basis_sd = _BASIS_SD * math.sqrt(1 - self._basis_decay**2)
        self._factor_jump_p = 1 - math.exp(-_FACTOR_JUMP_RATE * dt)

    def _setup_instruments(self, instruments: list[Instrument]) -> None:
        factor_ids = [iid for iid, _, _ in _FACTORS]
        fx0 = self._fx_ref
        f0 = np.exp(self._x)
        self._idx_factor: list[int] = []
        self._of_factor: list[int] = []
        self._idx_fx: list[int] = []
        self._idx_onshore: list[int] = []
        self._idx_dom: list[int] = []
        dom_factor: list[int] = []
        dom_premium: list[float] = []
        dom_mult: list[float] = []
        dom_ref: list[float] = []
        self._idx_alone: list[int] = []
        alone_ref: list[float] = []
        for i, inst in enumerate(instruments):
            ref = float(inst.reference_price)
            if inst.id in factor_ids:
                self._idx_factor.append(i)
                self._of_factor.append(factor_ids.index(inst.id))
            elif inst.id == USDCNH_ID:
                self._idx_fx.append(i)
            elif inst.id == USDCNY_ID:
                self._idx_onshore.append(i)
            elif inst.id in _DOMESTIC:
                k, mult = _DOMESTIC[inst.id]
                terms = self._terms.get((inst.id, factor_ids[k]))
                self._idx_dom.append(i)
                dom_factor.append(k)
                dom_premium.append(float(terms.premium) if terms is not None else 0.0)
                dom_mult.append(mult * (1 + float(terms.vat)) if terms is not None else mult)
                dom_ref.append(ref)
            else:
                self._idx_alone.append(i)
                alone_ref.append(ref)
        self._dom_factor = np.array(dom_factor, dtype=np.int64)
        self._dom_premium = np.array(dom_premium)
        self._dom_mult = np.array(dom_mult)
        converted = (f0[self._dom_factor] + self._dom_premium) * fx0 * self._dom_mult
        self._spread_mean = np.array(dom_ref) - converted
        self._spread = self._spread_mean.copy()
        stationary = _SPREAD_SD * np.array(dom_ref)
        kappa = math.log(2) / _SPREAD_HALF_LIFE
        self._spread_decay = math.exp(-kappa * self.dt)
        self._spread_sd = stationary * math.sqrt(1 - self._spread_decay**2)
        self._spread_jump_sd = _SPREAD_JUMP_SD * stationary
        self._spread_jump_p = 1 - math.exp(-_SPREAD_JUMP_RATE * self.dt)
        self._alone_x = np.log(np.array(alone_ref)) if alone_ref else np.zeros(0)
        self._alone_sd = _STANDALONE_VOL * math.sqrt(self.dt / SECONDS_PER_YEAR)
        self._thin_enter_p = 1 - math.exp(-_THIN_ENTER_RATE * self.dt)
        self._thin_leave_p = 1 - math.exp(-_THIN_LEAVE_RATE * self.dt)

    def step(self) -> dict[str, FairQuote]:
        """Advance ``dt`` seconds; the new fair quote of every instrument (also kept in ``quotes``)."""
        n_f, n_d, n_a, n = len(_FACTORS), len(self._idx_dom), len(self._idx_alone), len(self.ids)
        z = self._rng.standard_normal(n_f + 1 + n_d + n_a + n_f + n_d + 1)
        u = self._rng.random(n_f + n_d + 4 * n)
        z_f, z_fx, z_s = z[:n_f], z[n_f], z[n_f + 1 : n_f + 1 + n_d]
        z_a, rest = z[n_f + 1 + n_d : n_f + 1 + n_d + n_a], z[n_f + 1 + n_d + n_a :]
        z_fj, z_sj, z_basis = rest[:n_f], rest[n_f:-1], rest[-1]
        u_fj, u_sj = u[:n_f], u[n_f : n_f + n_d]
        u_regime = u[n_f + n_d :].reshape(4, n)

        self._x += self._factor_step @ z_f + (u_fj < self._factor_jump_p) * z_fj * _FACTOR_JUMP_SD
        self._fx_y = self._fx_y * self._fx_decay + self._fx_sd * z_fx
        mean_b = self._basis_mean
        self._basis = mean_b + (self._basis - mean_b) * self._basis_decay + self._basis_sd * z_basis
        mean = self._spread_mean
        jumps = (u_sj < self._spread_jump_p) * z_sj * self._spread_jump_sd
        self._spread = mean + (self._spread - mean) * self._spread_decay + self._spread_sd * z_s + jumps
        self._alone_x += self._alone_sd * z_a

        factors = np.exp(self._x)
        fx = self._fx_ref * math.exp(self._fx_y)
        mids = np.empty(n)
        mids[self._idx_factor] = factors[self._of_factor]
        mids[self._idx_fx] = fx
        mids[self._idx_onshore] = fx - self._basis
        dom = (factors[self._dom_factor] + self._dom_premium) * fx * self._dom_mult + self._spread
        mids[self._idx_dom] = dom
        mids[self._idx_alone] = np.exp(self._alone_x)

        thin = np.where(self._thin, u_regime[0] >= self._thin_leave_p, u_regime[0] < self._thin_enter_p)
        lo, hi = _THIN_HALF_SPREAD
        fresh = lo + (u_regime[1] * (hi - lo + 1)).astype(np.int64)
        self._half = np.where(thin & ~self._thin, fresh, np.where(thin, self._half, 1))
        self._thin = thin
        normal_size = _NORMAL_SIZE[0] + (u_regime[2] * (_NORMAL_SIZE[1] - _NORMAL_SIZE[0] + 1)).astype(
            np.int64
        )
        thin_size = _THIN_SIZE[0] + (u_regime[3] * (_THIN_SIZE[1] - _THIN_SIZE[0] + 1)).astype(np.int64)
        sizes = np.where(thin, thin_size, normal_size)
        floor = (self._half + 1) * self._ticks
        mids = np.maximum(mids, floor)

        self.steps += 1
        quotes = {
            iid: FairQuote(mid, half, size, "thin" if is_thin else "normal")
            for iid, mid, half, size, is_thin in zip(
                self.ids, mids.tolist(), self._half.tolist(), sizes.tolist(), thin.tolist(), strict=True
            )
        }
        self.quotes = self.curve.extend(quotes, step=True)
        return self.quotes
