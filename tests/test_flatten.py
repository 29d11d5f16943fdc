"""``eng.flatten``: reduce-only orders that close what is held, through the kill switch and the caps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_months import AU, GC

import cmc_lab as cmc
from cmc_lab.core.model import PriceLimitsPublished, Side, TimeInForce
from cmc_lab.core.specs import load_specs
from cmc_lab.core.trading import OrderRequest
from cmc_lab.risk.capital import Capital
from cmc_lab.risk.flatten import CannotFlatten, closing_requests, describe, marketable_price
from cmc_lab.risk.pretrade import OrderActivity


def take(eng: cmc.Engine, iid: str, side: str, qty: int, **kwargs: Any) -> cmc.Order:
    quote, inst = eng.quote(iid), eng.instrument(iid)
    touch = quote.ask if side == "buy" else quote.bid
    price = inst.round_to_tick(touch) + (1 if side == "buy" else -1) * 5 * inst.tick
    order = eng.submit(iid, side, qty, price=price, **kwargs)
    assert order.wait(5) is cmc.OrderState.FILLED, order.reason
    return order


def flatten_rows(eng: cmc.Engine) -> list[dict[str, Any]]:
    return [r["payload"] for r in eng.journal.rows(kinds=["Flatten"])]


def test_flatten_with_nothing_held_returns_no_orders_and_says_so(eng: cmc.Engine) -> None:
    assert eng.flatten("SHFE.au") == []
    assert flatten_rows(eng) == [
        {
            "instrument": AU,
            "account": None,
            "held": {},
            "orders": [],
            "note": f"nothing held in {AU}",
        }
    ]
    assert list(eng.journal.rows(kinds=["OrderInitialized"])) == []


def test_flatten_closes_a_long_with_an_ioc_sell(eng: cmc.Engine) -> None:
    take(eng, "SHFE.au", "buy", 3)
    orders = eng.flatten("SHFE.au")
    assert [(o.side, o.qty, o.tif, o.account) for o in orders] == [(Side.SELL, 3, TimeInForce.IOC, "CN-FUT")]
    assert orders[0].wait(5) is cmc.OrderState.FILLED
    assert eng.risk.capital.position("CN-FUT", AU) == 0
    row = flatten_rows(eng)[0]
    assert row["held"] == {"CN-FUT": 3} and row["note"] == f"long 3 {AU} in CN-FUT (sell 3)"
    intent = [
        r for r in eng.journal.rows(kinds=["OrderInitialized"]) if r["order_id"] == orders[0].client_order_id
    ]
    assert intent[0]["payload"]["reason"] == f"flatten: long 3 {AU} in CN-FUT (sell 3)"


def test_flatten_passes_the_kill_switch_and_the_cancel_cap(eng: cmc.Engine) -> None:
    take(eng, "COMEX.GC", "sell", 2)
    eng.limits.cancel_warn_per_day = 1
    eng.limits.max_cancels_per_day = 2
    ask = Decimal(str(eng.quote("COMEX.GC").ask))
    for i in range(2):
        eng.submit("COMEX.GC", "sell", 1, price=ask + 30 + i).cancel()
    eng.kill("desk is flattening")
    eng.sleep(0.5)
    (order,) = eng.flatten("COMEX.GC")
    assert order.wait(5) is cmc.OrderState.FILLED
    checks = next(
        r["payload"]["checks"].split(",")
        for r in eng.journal.rows(kinds=["OrderSubmitted"])
        if r["order_id"] == order.client_order_id
    )
    assert checks[0] == f"trading_state: exempt (reduces short 2 {GC} in US-FUT)"
    assert f"cancel_count: exempt (reduces short 2 {GC} in US-FUT)" in checks
    assert eng.risk.capital.position("US-FUT", GC) == 0


def test_flatten_every_account_or_the_one_named(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(accounts={"CN-2": {"currency": "CNY", "cash": "20000000"}})
    take(eng, "SHFE.au", "buy", 2)
    take(eng, "SHFE.au", "sell", 1, account="CN-2")
    (only,) = eng.flatten("SHFE.au", account="CN-2")
    assert (only.side, only.qty, only.account) == (Side.BUY, 1, "CN-2")
    only.wait(5)
    take(eng, "SHFE.au", "sell", 4, account="CN-2")
    orders = eng.flatten("SHFE.au")
    assert sorted((o.account, o.side.value, o.qty) for o in orders) == [
        ("CN-2", "buy", 4),
        ("CN-FUT", "sell", 2),
    ]
    assert all(o.wait(5) is cmc.OrderState.FILLED for o in orders)
    assert eng.risk.capital.position("CN-FUT", AU) == 0
    assert eng.risk.capital.position("CN-2", AU) == 0


def test_flatten_takes_a_venue_name_for_its_account(eng: cmc.Engine) -> None:
    take(eng, "COMEX.GC", "buy", 1)
    (order,) = eng.flatten("COMEX.GC", account="COMEX")
    assert order.account == "US-FUT"


def test_flatten_counts_orders_already_working_on_the_closing_side(eng: cmc.Engine) -> None:
    take(eng, "COMEX.GC", "buy", 3)
    ask = Decimal(str(eng.quote("COMEX.GC").ask))
    eng.submit("COMEX.GC", "sell", 1, price=ask + 40)  # rests above the market
    (order,) = eng.flatten("COMEX.GC")
    assert order.qty == 2 and order.wait(5) is cmc.OrderState.FILLED
    eng.submit("COMEX.GC", "sell", 1, price=ask + 41)
    assert eng.flatten("COMEX.GC") == []
    assert flatten_rows(eng)[-1]["note"].endswith("orders already working on the closing side cover it")


def test_flatten_async_is_the_same_coroutine(eng: cmc.Engine) -> None:
    take(eng, "COMEX.GC", "buy", 1)
    (order,) = asyncio.run(eng.flatten_async("COMEX.GC"))
    assert order.wait(5) is cmc.OrderState.FILLED


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("COMEX.XX",), cmc.InvalidOrder, r"unknown instrument 'COMEX\.XX'"),
        (("FX.USDCNH",), CannotFlatten, r"FX\.USDCNH is a fx rate, not a contract: nothing is held in it"),
        (("COMEX.GC", "HK-FUT"), ValueError, r"no account or venue 'HK-FUT'; accounts: CN-FUT, US-FUT"),
    ],
)
def test_flatten_refuses_what_it_cannot_close_before_anything_is_journaled(
    eng: cmc.Engine, args: tuple[str, ...], error: type[Exception], message: str
) -> None:
    rows = eng.journal.head[0]
    with pytest.raises(error, match=message):
        eng.flatten(*args)
    assert eng.journal.head[0] == rows


# ---------------------------------------------------------------------------- pure pieces


def test_closing_requests_split_at_the_exchange_maximum_and_need_a_quote(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(
        "[[instrument]]\n"
        'venue = "COMEX"\nsymbol = "GC"\ncurrency = "USD"\nlot_size = "100"\nlot_unit = "oz"\n'
        'price_unit = "oz"\ntick = "0.10"\ndaily_limit = "0.10"\nsessions = "cme_globex"\n'
        'reference_price = "2650.0"\nmax_order_qty = 4\nmargin = { kind = "per_lot", rate = "16500" }\n'
    )
    specs = load_specs(path)
    cap = Capital(specs, specs.instruments.values())
    gc = specs.instrument("COMEX.GC")
    cap.apply_fill("US-FUT", gc, Side.BUY, Decimal("2650.0"), 10)
    quote = cmc.Quote("COMEX.GC", 2650.0, 2650.1, 5, 5, 0, 0)
    requests = closing_requests(gc, cap, OrderActivity(), quote)
    assert [(r.side, r.qty, r.price) for r in requests] == [
        (Side.SELL, n, Decimal("2649.5")) for n in (4, 4, 2)
    ]
    assert all(isinstance(r, OrderRequest) for r in requests)
    with pytest.raises(CannotFlatten, match=r"no bid for COMEX\.GC to price the order that closes long 10"):
        closing_requests(gc, cap, OrderActivity(), None)


def test_marketable_price_stays_inside_the_published_limits_of_the_day() -> None:
    au = load_specs().instrument("SHFE.au")
    day = PriceLimitsPublished(
        0,
        0,
        "SHFE",
        "SHFE.au",
        "2026-11-25",
        Decimal("950.00"),
        Decimal("874.00"),
        Decimal("1026.00"),
        "test",
    )
    crashed = cmc.Quote("SHFE.au", 874.0, 874.02, 5, 5, 0, 0)
    assert marketable_price(au, Side.SELL, crashed, day) == Decimal("874.00")
    assert marketable_price(au, Side.BUY, cmc.Quote("SHFE.au", 1025.98, 1026.0, 5, 5, 0, 0), day) == Decimal(
        "1026.00"
    )
    assert marketable_price(au, Side.SELL, crashed) == Decimal("873.90")  # no limits published: none assumed
    assert describe(-3, "SHFE.au", "CN-FUT") == "short 3 SHFE.au in CN-FUT (buy 3)"
