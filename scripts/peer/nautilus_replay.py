"""The gold-spread replay of ``cmc-lab bench --peer``, run through nautilus_trader.

Runs with the Python of a separate virtual environment that has nautilus_trader installed (it is
not a dependency of cmc_lab; ``scripts/peer/setup.sh`` makes that environment). It reads the
quotes cmc_lab exported (``cmc_lab.bench.peer.export_quotes``: SHFE au, COMEX GC, USD/CNH, integer
nanosecond timestamps) and plays them through a ``BacktestEngine`` with a strategy that does what
cmc_lab's armed trigger does: on every quote, recompute the spread (SHFE au in CNY/g minus COMEX
GC converted from USD/oz at USD/CNH), push its mid into a rolling z-score of 300 updates (30 before
the first value), and when z <= -2 with no ticket working, buy 3 au and sell 1 GC at the touch
(both legs in the same call), up to 100 tickets. Prints one JSON line: quotes, tickets, wall
seconds of ``engine.run()`` and quotes per second. With ``--quotes-only`` no strategy is added:
the same quotes through the engine and its simulated venues alone.

Logging is bypassed and nothing is persisted: nautilus_trader's best case. cmc_lab's figure
journals every order to SQLite.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from decimal import Decimal

import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import CNY, USD
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import AccountType, AssetClass, OmsType, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
from nautilus_trader.model.instruments import CurrencyPair, FuturesContract
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy

GRAMS_PER_TROY_OUNCE = 31.1034768
CNH = CNY  # nautilus_trader's currency list has no CNH; the pair only carries a rate here


def future(venue: str, symbol: str, currency, precision: int, tick: str, multiplier: int) -> FuturesContract:
    iid = InstrumentId(Symbol(symbol), Venue(venue))
    return FuturesContract(
        instrument_id=iid,
        raw_symbol=Symbol(symbol),
        asset_class=AssetClass.COMMODITY,
        exchange=venue,
        currency=currency,
        price_precision=precision,
        price_increment=Price.from_str(tick),
        multiplier=Quantity.from_int(multiplier),
        lot_size=Quantity.from_int(1),
        underlying=symbol,
        activation_ns=0,
        expiration_ns=4_102_444_800_000_000_000,  # 2100-01-01
        ts_event=0,
        ts_init=0,
    )


def fx_pair() -> CurrencyPair:
    iid = InstrumentId(Symbol("USDCNH"), Venue("FX"))
    return CurrencyPair(
        instrument_id=iid,
        raw_symbol=Symbol("USDCNH"),
        base_currency=USD,
        quote_currency=CNH,
        price_precision=5,
        size_precision=0,
        price_increment=Price.from_str("0.00001"),
        size_increment=Quantity.from_int(1),
        lot_size=None,
        max_quantity=None,
        min_quantity=None,
        max_notional=None,
        min_notional=None,
        max_price=None,
        min_price=None,
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
        ts_event=0,
        ts_init=0,
    )


class SpreadConfig(StrategyConfig, frozen=True):
    au: str
    gc: str
    fx: str
    level: float = 2.0
    window: int = 300
    min_samples: int = 30
    tickets: int = 100


class GoldSpread(Strategy):
    """z-score of the au/GC spread; both legs at the touch when z <= -level, one ticket at a time."""

    def __init__(self, config: SpreadConfig) -> None:
        super().__init__(config)
        self.au = InstrumentId.from_str(config.au)
        self.gc = InstrumentId.from_str(config.gc)
        self.fx = InstrumentId.from_str(config.fx)
        self.last: dict[InstrumentId, QuoteTick] = {}
        self.values: deque[float] = deque()
        self.total = self.squares = 0.0
        self.fired = 0
        self.working = 0

    def on_start(self) -> None:
        for iid in (self.au, self.gc, self.fx):
            self.subscribe_quote_ticks(iid)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.last[tick.instrument_id] = tick
        au, gc, fx = self.last.get(self.au), self.last.get(self.gc), self.last.get(self.fx)
        if au is None or gc is None or fx is None:
            return
        rate = (fx.bid_price.as_double() + fx.ask_price.as_double()) / 2
        per_gram = rate / GRAMS_PER_TROY_OUNCE
        bid = au.bid_price.as_double() - gc.ask_price.as_double() * per_gram
        ask = au.ask_price.as_double() - gc.bid_price.as_double() * per_gram
        z = self.push((bid + ask) / 2)
        if z is None or z > -self.config.level or self.working or self.fired >= self.config.tickets:
            return
        self.fired += 1
        self.working = 2
        buy = self.order_factory.limit(
            self.au, OrderSide.BUY, Quantity.from_int(3), au.ask_price, TimeInForce.IOC
        )
        sell = self.order_factory.limit(
            self.gc, OrderSide.SELL, Quantity.from_int(1), gc.bid_price, TimeInForce.IOC
        )
        self.submit_order(buy)
        self.submit_order(sell)

    def push(self, value: float) -> float | None:
        self.values.append(value)
        self.total += value
        self.squares += value * value
        if len(self.values) > self.config.window:
            old = self.values.popleft()
            self.total -= old
            self.squares -= old * old
        n = len(self.values)
        if n < self.config.min_samples:
            return None
        mean = self.total / n
        var = max(self.squares / n - mean * mean, 0.0)
        return None if var == 0.0 else (value - mean) / math.sqrt(var)

    def on_order_filled(self, event) -> None:
        self.working = max(0, self.working - 1)

    def on_order_canceled(self, event) -> None:
        self.working = max(0, self.working - 1)

    def on_order_rejected(self, event) -> None:
        self.working = max(0, self.working - 1)

    def on_order_expired(self, event) -> None:
        self.working = max(0, self.working - 1)


def ticks(data: np.lib.npyio.NpzFile, name: str, inst) -> list[QuoteTick]:
    ts = data[f"{name}_ts"]
    bid, ask = data[f"{name}_bid"], data[f"{name}_ask"]
    bsz, asz = data[f"{name}_bid_size"], data[f"{name}_ask_size"]
    p, iid = inst.price_precision, inst.id
    return [
        QuoteTick(
            instrument_id=iid,
            bid_price=Price(float(bid[i]), p),
            ask_price=Price(float(ask[i]), p),
            bid_size=Quantity(max(float(bsz[i]), 1.0), 0),
            ask_size=Quantity(max(float(asz[i]), 1.0), 0),
            ts_event=int(ts[i]),
            ts_init=int(ts[i]),
        )
        for i in range(len(ts))
    ]


def main(path: str, quotes_only: bool = False) -> None:
    data = np.load(path)
    au = future("SHFE", "au", CNY, 2, "0.02", 1000)
    gc = future("COMEX", "GC", USD, 1, "0.1", 100)
    fx = fx_pair()
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id=TraderId("PEER-001"), logging=LoggingConfig(bypass_logging=True)
        )
    )
    for venue, money in (
        ("SHFE", Money(1_000_000_000, CNY)),
        ("COMEX", Money(100_000_000, USD)),
        ("FX", Money(100_000_000, USD)),
    ):
        engine.add_venue(
            Venue(venue), OmsType.NETTING, AccountType.MARGIN, starting_balances=[money], base_currency=None
        )
    stream: list[QuoteTick] = []
    for name, inst in (("au", au), ("gc", gc), ("fx", fx)):
        engine.add_instrument(inst)
        stream += ticks(data, name, inst)
    engine.add_data(stream)
    strategy = GoldSpread(SpreadConfig(au=str(au.id), gc=str(gc.id), fx=str(fx.id)))
    if not quotes_only:  # quotes only: the same stream through the engine with no strategy
        engine.add_strategy(strategy)
    wall = time.perf_counter()
    engine.run()
    wall = time.perf_counter() - wall
    engine.dispose()
    print(
        json.dumps(
            {
                "engine": "nautilus_trader",
                "strategy": not quotes_only,
                "quotes": len(stream),
                "tickets": strategy.fired,
                "wall_s": wall,
                "quotes_per_s": len(stream) / wall,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], quotes_only="--quotes-only" in sys.argv[2:])
