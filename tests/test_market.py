"""The simulated market: deterministic by seed, correlated across markets, spreads that mean-revert."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pytest

from cmc_lab.core.specs import Specs, load_specs
from cmc_lab.data.market import GRAMS_PER_OUNCE, SimMarket


@pytest.fixture(scope="module")
def specs() -> Specs:
    return load_specs()


@pytest.fixture(scope="module")
def path(specs: Specs) -> dict[str, np.ndarray]:
    """Mid prices of 20,000 steps (about 67 minutes) of seed 7, per instrument."""
    market = SimMarket(specs, seed=7)
    rows = [[q.mid for q in market.step().values()] for _ in range(20_000)]
    return dict(zip(market.ids, np.array(rows).T, strict=True))


def mids(market: SimMarket, steps: int) -> list[list[float]]:
    return [[q.mid for q in market.step().values()] for _ in range(steps)]


def test_same_seed_gives_an_identical_path(specs: Specs) -> None:
    a, b = SimMarket(specs, seed=11), SimMarket(specs, seed=11)
    for _ in range(1000):
        assert a.step() == b.step()


def test_different_seeds_give_different_paths(specs: Specs) -> None:
    assert mids(SimMarket(specs, seed=1), 50) != mids(SimMarket(specs, seed=2), 50)


def test_every_step_draws_the_same_amount_of_randomness(specs: Specs) -> None:
    market = SimMarket(specs, seed=3)
    reference = np.random.Generator(np.random.PCG64(3))
    n = len(specs.instruments)  # 4 overseas factors, 2 FX rates, 4 domestic spreads, nothing standalone
    for _ in range(500):
        market.step()
        reference.standard_normal(4 + 1 + 4 + 4 + 4 + 1)  # ... and the CNH/CNY basis
        reference.random(4 + 4 + 4 * n)
    assert reference.bit_generator.state == market._rng.bit_generator.state


def test_market_starts_at_the_reference_prices(specs: Specs) -> None:
    market = SimMarket(specs, seed=7)
    for iid, quote in market.quotes.items():
        assert quote.mid == float(specs.instruments[iid].reference_price)
        assert quote.regime == "normal" and quote.half_spread_ticks == 1


def test_domestic_gold_moves_with_comex_gold(path: dict[str, np.ndarray]) -> None:
    au, gc = np.diff(path["SHFE.au"]), np.diff(path["COMEX.GC"])
    assert np.corrcoef(au, gc)[0, 1] > 0.5
    ag, si = np.diff(np.log(path["SHFE.ag"])), np.diff(np.log(path["COMEX.SI"]))
    assert np.corrcoef(ag, si)[0, 1] > 0.5
    assert np.corrcoef(gc, si)[0, 1] > 0.6  # gold and silver factors are correlated ~0.8


def test_gold_cross_market_spread_mean_reverts_within_a_band(path: dict[str, np.ndarray]) -> None:
    spread = path["SHFE.au"] - path["COMEX.GC"] * path["FX.USDCNH"] / GRAMS_PER_OUNCE
    mean = 945.0 - 4100.0 * 7.12 / GRAMS_PER_OUNCE
    sampled = spread[::50] - mean  # every 10 s
    slope = np.polyfit(sampled[:-1], sampled[1:], 1)[0]
    assert 0.5 < slope < 0.99  # AR(1) below 1: pulled back to its mean (half-life 120 s -> ~0.94)
    assert np.abs(spread - mean).max() < 2.3  # CNY/g, about 8 stationary sds (0.03 % of 945)
    assert abs(spread.mean() - mean) < 0.45


def test_gold_moves_at_most_a_few_ticks_per_second(path: dict[str, np.ndarray]) -> None:
    per_second = np.diff(path["COMEX.GC"][::5])
    assert np.median(np.abs(per_second)) < 0.3  # tick 0.10
    assert np.abs(per_second).max() < 15.0  # jumps included


def test_prices_stay_positive_and_round_onto_their_tick(specs: Specs, path: dict[str, np.ndarray]) -> None:
    for iid, series in path.items():
        tick = specs.instruments[iid].tick
        assert series.min() > 0, iid
        rounded = specs.instruments[iid].round_to_tick(float(series[-1]))
        assert rounded > 0 and specs.instruments[iid].is_on_tick(rounded)
        assert (rounded / tick) == (rounded / tick).to_integral_value()


def test_thin_regimes_widen_the_spread_and_shrink_the_size(specs: Specs) -> None:
    market = SimMarket(specs, seed=5)
    seen = {"normal": 0, "thin": 0}
    for _ in range(5000):
        for quote in market.step().values():
            seen[quote.regime] += 1
            if quote.regime == "thin":
                assert 2 <= quote.half_spread_ticks <= 6 and 1 <= quote.top_size <= 5
            else:
                assert quote.half_spread_ticks == 1 and 10 <= quote.top_size <= 60
    assert seen["thin"] > 0
    assert seen["normal"] > 5 * seen["thin"]


def test_an_instrument_without_link_walks_on_its_own(specs: Specs) -> None:
    gold = specs.instruments["COMEX.GC"]
    extra = dataclasses.replace(
        gold, venue="DCE", symbol="i", reference_price=Decimal("800"), tick=Decimal("0.5")
    )
    market = SimMarket(Specs({**specs.instruments, extra.id: extra}, specs.venues), seed=7)
    series = [market.step()["DCE.i"].mid for _ in range(500)]
    assert series[0] != series[-1]
    assert min(series) > 700 and max(series) < 900


def test_instrument_without_reference_price_is_refused(specs: Specs) -> None:
    gold = dataclasses.replace(specs.instruments["COMEX.GC"], reference_price=Decimal(0))
    with pytest.raises(ValueError, match=r"COMEX\.GC has no reference_price"):
        SimMarket(Specs({**specs.instruments, gold.id: gold}, specs.venues), seed=7)
