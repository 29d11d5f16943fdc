"""The threshold transfer action names its source account (issue 17)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import cmc_lab as cmc


def test_a_transfer_rule_takes_money_from_the_account_it_names(
    make_engine: Callable[..., cmc.Engine],
) -> None:
    eng = make_engine(accounts={"US-FUT": 100_000, "CN-FUT": 1_000_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    rule = eng.thresholds.add(
        "margin_utilisation", act=0.5, action="transfer", scope="US-FUT", source="CN-FUT"
    )
    assert rule.source == "CN-FUT"
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    t = next(iter(eng.risk.transfers.transfers.values()))
    assert (t.source, t.dest) == ("CN-FUT", "US-FUT")


def test_a_named_source_without_headroom_fails_naming_it(make_engine: Callable[..., cmc.Engine]) -> None:
    eng = make_engine(accounts={"US-FUT": 100_000, "CN-FUT": 1_000_000})
    assert eng.submit("COMEX.GC", "buy", 2, price="4177.4").wait(5) is cmc.OrderState.FILLED
    eng.thresholds.add(
        "margin_utilisation",
        act=0.5,
        action="transfer",
        scope="US-FUT",
        source="CN-FUT",
        min_buffer=5_000_000,
    )
    eng.set_margin_rate("COMEX.GC", 30_000, kind="per_lot")
    last = eng.thresholds.actions().iloc[-1]
    assert (last["action"], last["ok"]) == ("transfer", False)
    assert last["detail"] == "source CN-FUT has no funds above its minimum buffer (5,000,000 CNY)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "NOPE"}, r"source='NOPE' is not an account; use one of CN-FUT"),
        ({"source": "US-FUT"}, r"source 'US-FUT' is the account the rule watches"),
        ({"source": "CN-FUT", "action": "alert"}, r"add action='transfer'"),
    ],
)
def test_a_bad_source_is_refused_with_what_to_fix(
    eng: cmc.Engine, options: dict[str, str], message: str
) -> None:
    kw = {"act": 0.5, "action": "transfer", "scope": "US-FUT", **options}
    with pytest.raises(ValueError, match=message):
        eng.thresholds.add("margin_utilisation", **kw)  # type: ignore[arg-type]
