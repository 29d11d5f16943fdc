"""Tests for cmc_lab.core.model: order state machine, input parsing, event serialisation, instruments."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmc_lab.core.hours import SessionWindow, TradingHours
from cmc_lab.core.instruments import Instrument, MarginKind, parse_price, parse_qty
from cmc_lab.core.model import (
    EVENT_TYPES,
    ORDER_TRANSITIONS,
    Event,
    IllegalTransition,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderState,
    Side,
    TimeInForce,
    event_from_payload,
    event_payload,
    next_state,
)

S = OrderState
SHANGHAI = ZoneInfo("Asia/Shanghai")

SHFE_NIGHT = TradingHours(
    timezone="Asia/Shanghai",
    windows=(
        SessionWindow("day", time(9, 0), time(15, 0), (0, 1, 2, 3, 4)),
        SessionWindow("night", time(21, 0), time(2, 30), (0, 1, 2, 3, 4)),
    ),
)


def make_instrument(tick: str = "0.02", **changes: Any) -> Instrument:
    fields: dict[str, Any] = {
        "venue": "SHFE",
        "symbol": "au",
        "name": "SHFE gold",
        "currency": "CNY",
        "lot_size": Decimal(1000),
        "lot_unit": "g",
        "price_unit": "g",
        "tick": Decimal(tick),
        "daily_limit": Decimal("0.08"),
        "margin_kind": MarginKind.PERCENT,
        "margin_rate": Decimal("0.10"),
        "hours": SHFE_NIGHT,
        "reference_price": Decimal("620.00"),
        "max_order_qty": 500,
    }
    fields.update(changes)
    return Instrument(**fields)


AU = make_instrument()

# ------------------------------------------------------------------------ building events

SAMPLES: dict[str, Any] = {
    "int": 1_764_000_000_123_456_789,
    "str": "text",
    "str | None": "T-1",
    "Decimal": Decimal("620.02"),
    "Decimal | None": Decimal("682.02"),
    "Side": Side.SELL,
    "TimeInForce": TimeInForce.IOC,
    "bool": True,
}


def build_event(cls: type[Event], **overrides: Any) -> Event:
    """An instance of any event class, every field filled with a sample of its type."""
    kwargs = {f.name: SAMPLES[str(f.type)] for f in dataclasses.fields(cls)}
    kwargs.update(overrides)
    return cls(**kwargs)


ORDER_EVENT_KINDS = sorted(
    name for name, cls in EVENT_TYPES.items() if issubclass(cls, OrderEvent) and cls is not OrderEvent
)


def order_event(kind: str) -> OrderEvent:
    event = build_event(EVENT_TYPES[kind])
    assert isinstance(event, OrderEvent)
    return event


# ------------------------------------------------------------------------ state machine


@pytest.mark.parametrize(
    ("state", "kind", "target"),
    [(state, kind, target) for (state, kind), target in ORDER_TRANSITIONS.items()],
    ids=[f"{state}+{kind}" for state, kind in ORDER_TRANSITIONS],
)
def test_every_legal_pair_goes_where_the_table_says(state: OrderState, kind: str, target: OrderState) -> None:
    # filled=0 of 10: no fill completes the order, no cancel-reject finds a partial fill.
    assert next_state(state, order_event(kind), filled=0, qty=10) is target


ILLEGAL_PAIRS = [
    (state, kind)
    for state in OrderState
    for kind in ORDER_EVENT_KINDS
    if (state, kind) not in ORDER_TRANSITIONS
]


@pytest.mark.parametrize(("state", "kind"), ILLEGAL_PAIRS, ids=[f"{s}+{k}" for s, k in ILLEGAL_PAIRS])
def test_every_pair_missing_from_the_table_raises_illegal_transition(state: OrderState, kind: str) -> None:
    with pytest.raises(IllegalTransition, match=f"order in state {state} cannot take {kind}"):
        next_state(state, order_event(kind), filled=0, qty=10)


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (S.FILLED, "OrderFilled"),
        (S.DENIED, "OrderAccepted"),
        (S.CANCELED, "OrderAccepted"),
        (S.CANCELED, "OrderFilled"),
        (S.REJECTED, "OrderAccepted"),
        (S.EXPIRED, "OrderCanceled"),
        (S.FILLED, "OrderCancelRejected"),
        (S.INITIALIZED, "OrderAccepted"),
        (S.INITIALIZED, "OrderFilled"),
        (S.PENDING_CANCEL, "OrderCancelRequested"),
    ],
)
def test_named_illegal_pairs_raise_illegal_transition(state: OrderState, kind: str) -> None:
    with pytest.raises(IllegalTransition):
        next_state(state, order_event(kind), filled=10, qty=10)


def test_illegal_transition_is_a_value_error() -> None:
    assert issubclass(IllegalTransition, ValueError)


@pytest.mark.parametrize("state", [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL])
def test_fill_completing_quantity_moves_working_state_to_filled(state: OrderState) -> None:
    assert next_state(state, order_event("OrderFilled"), filled=3, qty=3) is S.FILLED


def test_fill_completing_quantity_moves_partially_filled_to_filled() -> None:
    assert next_state(S.PARTIALLY_FILLED, order_event("OrderFilled"), filled=5, qty=5) is S.FILLED


def test_overfill_also_moves_to_filled() -> None:
    assert next_state(S.ACCEPTED, order_event("OrderFilled"), filled=4, qty=3) is S.FILLED


@pytest.mark.parametrize("state", [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED])
def test_partial_fill_moves_to_partially_filled(state: OrderState) -> None:
    assert next_state(state, order_event("OrderFilled"), filled=1, qty=3) is S.PARTIALLY_FILLED


def test_partial_fill_while_pending_cancel_stays_pending_cancel() -> None:
    assert next_state(S.PENDING_CANCEL, order_event("OrderFilled"), filled=1, qty=3) is S.PENDING_CANCEL


def test_cancel_rejected_after_partial_fill_returns_to_partially_filled() -> None:
    event = order_event("OrderCancelRejected")
    assert next_state(S.PENDING_CANCEL, event, filled=1, qty=3) is S.PARTIALLY_FILLED


def test_cancel_rejected_without_fills_returns_to_accepted() -> None:
    event = order_event("OrderCancelRejected")
    assert next_state(S.PENDING_CANCEL, event, filled=0, qty=3) is S.ACCEPTED


def test_late_ack_after_partial_fill_keeps_partially_filled() -> None:
    assert next_state(S.PARTIALLY_FILLED, order_event("OrderAccepted"), filled=1, qty=3) is S.PARTIALLY_FILLED


TERMINAL = [S.DENIED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED]


@pytest.mark.parametrize("state", TERMINAL)
def test_terminal_state_has_no_outgoing_transition_in_the_table(state: OrderState) -> None:
    assert state.is_terminal
    assert not state.is_working
    assert [kind for (src, kind) in ORDER_TRANSITIONS if src is state] == []


@pytest.mark.parametrize("state", TERMINAL)
@pytest.mark.parametrize("kind", ORDER_EVENT_KINDS)
def test_terminal_state_refuses_every_event(state: OrderState, kind: str) -> None:
    with pytest.raises(IllegalTransition):
        next_state(state, order_event(kind), filled=0, qty=1)


def test_working_and_terminal_states_partition_all_but_initialized() -> None:
    working = {s for s in OrderState if s.is_working}
    terminal = {s for s in OrderState if s.is_terminal}
    assert working == {S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL}
    assert working | terminal | {S.INITIALIZED} == set(OrderState)
    assert not working & terminal


def test_every_table_entry_uses_a_known_order_event_kind() -> None:
    assert {kind for _, kind in ORDER_TRANSITIONS} <= set(ORDER_EVENT_KINDS)


@settings(max_examples=300, deadline=None)
@given(
    qty=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(st.sampled_from(ORDER_EVENT_KINDS), st.integers(min_value=1, max_value=3)), max_size=12
    ),
)
def test_random_event_sequences_follow_the_table_or_raise(qty: int, steps: list[tuple[str, int]]) -> None:
    state, filled = S.INITIALIZED, 0
    for kind, fill_qty in steps:
        table_target = ORDER_TRANSITIONS.get((state, kind))
        after = filled + fill_qty if kind == "OrderFilled" else filled
        if table_target is None:
            with pytest.raises(IllegalTransition):
                next_state(state, order_event(kind), filled=after, qty=qty)
            continue  # the order keeps its state after a refused report
        new = next_state(state, order_event(kind), filled=after, qty=qty)
        if kind == "OrderFilled" and after >= qty:
            assert new is S.FILLED
        elif kind == "OrderCancelRejected" and state is S.PENDING_CANCEL and after:
            assert new is S.PARTIALLY_FILLED
        else:
            assert new is table_target
        assert new is not S.FILLED or after >= qty
        state, filled = new, after
    if state.is_terminal:
        for kind in ORDER_EVENT_KINDS:
            with pytest.raises(IllegalTransition):
                next_state(state, order_event(kind), filled=filled, qty=qty)


# ------------------------------------------------------------------------ parse_price


def test_parse_price_accepts_float_on_tick_exactly() -> None:
    # In binary floating point neither check works: the remainder is not zero, and some
    # quotients miss the integer. The Decimal check on the float's shortest repr is exact.
    assert math.fmod(620.02, 0.02) != 0
    assert not (620.06 / 0.02).is_integer()
    assert parse_price(620.02, AU) == Decimal("620.02")
    assert parse_price(620.06, AU) == Decimal("620.06")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (620.02, Decimal("620.02")),
        (620, Decimal("620")),
        (Decimal("620.04"), Decimal("620.04")),
        ("620.06", Decimal("620.06")),
        ("  620.08 ", Decimal("620.08")),
        (np.float64(620.1), Decimal("620.1")),
        (0.02, Decimal("0.02")),
        (Decimal("620.0200000"), Decimal("620.02")),
    ],
)
def test_parse_price_accepts_values_on_the_tick_grid(value: object, expected: Decimal) -> None:
    price = parse_price(value, AU)
    assert isinstance(price, Decimal)
    assert price == expected


def test_parse_price_keeps_decimal_input_exact() -> None:
    assert str(parse_price(Decimal("620.020"), AU)) == "620.020"


def test_parse_price_off_tick_names_the_two_nearest_valid_prices() -> None:
    with pytest.raises(
        ValueError, match=r"off the tick grid of SHFE\.au \(tick 0\.02\); use 620\.02 or 620\.04"
    ):
        parse_price(620.03, AU)


def test_parse_price_off_tick_on_coarse_tick() -> None:
    cu = make_instrument(tick="10", symbol="cu")
    with pytest.raises(ValueError, match=r"use 76200 or 76210"):
        parse_price(76205, cu)


def test_parse_price_off_tick_beyond_28_digits_is_refused() -> None:
    # Decimal division rounds to 28 digits, which used to put this price on the grid.
    with pytest.raises(ValueError, match=r"use 620\.02 or 620\.04"):
        parse_price("620.0200000000000000000000001", AU)


def test_parse_price_off_tick_just_below_a_tick_suggests_the_ticks_around_it() -> None:
    with pytest.raises(ValueError, match=r"use 620\.02 or 620\.04"):
        parse_price("620.0399999999999999999999999999", AU)


def test_parse_price_below_the_first_tick_suggests_only_positive_price() -> None:
    with pytest.raises(ValueError, match=r"use 0\.02, the lowest valid price") as info:
        parse_price(0.01, AU)
    assert "0.00" not in str(info.value)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "nan", "NaN", "inf", "sNaN", Decimal("NaN")]
)
def test_parse_price_refuses_non_finite(value: object) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        parse_price(value, AU)


@pytest.mark.parametrize("value", [-620.02, Decimal("-0.02"), 0, 0.0, "-0", Decimal(0)])
def test_parse_price_refuses_zero_and_negative(value: object) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        parse_price(value, AU)


@pytest.mark.parametrize("value", [True, False, None, "abc", "", "620,02", [620.02], object()])
def test_parse_price_refuses_non_numbers(value: object) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        parse_price(value, AU)


@pytest.mark.parametrize("value", ["1e999999", "1e30", Decimal("1E+999999999999")])
def test_parse_price_refuses_absurdly_large_price_with_value_error(value: object) -> None:
    with pytest.raises(ValueError, match=r"out of range for SHFE\.au"):
        parse_price(value, AU)


# ------------------------------------------------------------------------ parse_qty


@pytest.mark.parametrize(
    "value", [1, 3, 500, 2.0, Decimal("4"), Decimal("4.0"), np.int64(3), np.int32(2), np.float64(5.0)]
)
def test_parse_qty_accepts_whole_lots(value: object) -> None:
    qty = parse_qty(value, AU)
    assert type(qty) is int
    assert qty == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [0, -1, -3.0, Decimal(0)])
def test_parse_qty_refuses_zero_and_negative(value: object) -> None:
    with pytest.raises(ValueError, match="at least 1 lot"):
        parse_qty(value, AU)


@pytest.mark.parametrize(
    "value",
    [1.5, Decimal("1.5"), True, False, None, math.nan, math.inf, Decimal("NaN"), Decimal("sNaN"), [3]],
)
def test_parse_qty_refuses_non_whole_numbers(value: object) -> None:
    with pytest.raises(ValueError, match="is not a whole number of lots"):
        parse_qty(value, AU)


@pytest.mark.parametrize("value", ["3", "abc"])
def test_parse_qty_refuses_text_and_says_to_pass_a_number(value: str) -> None:
    with pytest.raises(ValueError, match=r"is text; pass a whole number of lots, e\.g\. qty=3"):
        parse_qty(value, AU)


def test_parse_qty_above_max_order_qty_says_split_the_order() -> None:
    assert parse_qty(500, AU) == 500
    with pytest.raises(ValueError, match=r"above the maximum order size of SHFE\.au \(500 lots\); split"):
        parse_qty(501, AU)


def test_parse_qty_honours_instrument_max_order_qty() -> None:
    small = make_instrument(max_order_qty=10)
    assert parse_qty(10, small) == 10
    with pytest.raises(ValueError, match=r"\(10 lots\)"):
        parse_qty(11, small)


# ------------------------------------------------------------------------ Side and TimeInForce


@pytest.mark.parametrize(
    ("value", "expected"),
    [("buy", Side.BUY), ("BUY", Side.BUY), (" Sell ", Side.SELL), (Side.SELL, Side.SELL)],
)
def test_side_parse_accepts_any_case(value: str, expected: Side) -> None:
    assert Side.parse(value) is expected


@pytest.mark.parametrize("value", ["b", "long", "", None, 1])
def test_side_parse_refuses_other_values_naming_the_choices(value: Any) -> None:
    with pytest.raises(ValueError, match=r"is not valid; use 'buy' or 'sell'"):
        Side.parse(value)


def test_side_sign_and_opposite() -> None:
    assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GFD", TimeInForce.GFD),
        ("ioc", TimeInForce.IOC),
        (" gfd", TimeInForce.GFD),
        (TimeInForce.IOC, TimeInForce.IOC),
    ],
)
def test_time_in_force_parse_accepts_any_case(value: str, expected: TimeInForce) -> None:
    assert TimeInForce.parse(value) is expected


@pytest.mark.parametrize("value", ["GTC", "day", "", None])
def test_time_in_force_parse_refuses_other_values_naming_the_choices(value: Any) -> None:
    with pytest.raises(ValueError, match=r"is not valid; use 'GFD' or 'IOC'"):
        TimeInForce.parse(value)


# ------------------------------------------------------------------------ serialisation


def test_every_event_class_knows_its_kind() -> None:
    assert EVENT_TYPES  # registered at import
    for name, cls in EVENT_TYPES.items():
        assert cls.kind == name
        assert build_event(cls).kind == name


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_event_payload_round_trips_every_event_class(kind: str) -> None:
    event = build_event(EVENT_TYPES[kind])
    payload = event_payload(event)
    assert set(payload) == {f.name for f in dataclasses.fields(event)}
    through_json = json.loads(json.dumps(payload))
    assert through_json == payload
    rebuilt = event_from_payload(kind, through_json)
    assert rebuilt == event
    assert type(rebuilt) is type(event)


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_event_payload_round_trips_with_optional_fields_empty(kind: str) -> None:
    cls = EVENT_TYPES[kind]
    optional = {f.name: None for f in dataclasses.fields(cls) if f.type == "str | None"}
    event = build_event(cls, **optional)
    assert event_from_payload(kind, json.loads(json.dumps(event_payload(event)))) == event


def test_event_payload_keeps_decimal_exact_as_string() -> None:
    fill = build_event(OrderFilled, last_px=Decimal("2650.10"))
    payload = event_payload(fill)
    assert payload["last_px"] == "2650.10"
    assert payload["side"] == "sell"
    rebuilt = event_from_payload("OrderFilled", payload)
    assert isinstance(rebuilt, OrderFilled)
    assert str(rebuilt.last_px) == "2650.10"
    assert rebuilt.side is Side.SELL


def test_event_payload_enums_become_plain_strings() -> None:
    payload = event_payload(build_event(EVENT_TYPES["OrderInitialized"]))
    assert type(payload["side"]) is str
    assert type(payload["tif"]) is str
    assert type(payload["price"]) is str


def test_event_from_payload_fills_omitted_defaults() -> None:
    payload = event_payload(build_event(OrderCanceled))
    del payload["reason"]
    rebuilt = event_from_payload("OrderCanceled", payload)
    assert isinstance(rebuilt, OrderCanceled)
    assert rebuilt.reason == ""


def test_event_from_payload_refuses_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"unknown event kind 'OrderExploded'; known: .*OrderFilled"):
        event_from_payload("OrderExploded", {})


def test_event_from_payload_names_missing_required_fields() -> None:
    payload = event_payload(build_event(OrderAccepted))
    del payload["venue_order_id"]
    del payload["ts_init"]
    with pytest.raises(ValueError, match=r"OrderAccepted payload lacks field\(s\) ts_init, venue_order_id"):
        event_from_payload("OrderAccepted", payload)


@pytest.mark.parametrize(("field", "bad"), [("last_px", "abc"), ("last_px", "NaN"), ("side", "long")])
def test_event_from_payload_names_a_corrupt_field(field: str, bad: str) -> None:
    payload = event_payload(build_event(OrderFilled))
    payload[field] = bad
    with pytest.raises(ValueError, match=f"OrderFilled payload field {field} = '{bad}' is not a valid"):
        event_from_payload("OrderFilled", payload)


def test_events_are_frozen() -> None:
    event = build_event(OrderCancelRejected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.ts_init = 0  # type: ignore[misc]


# ------------------------------------------------------------------------ Instrument


def test_instrument_id_and_quote_unit() -> None:
    assert AU.id == "SHFE.au"
    assert AU.quote_unit == "CNY/g"
    assert AU.tradeable
    assert not make_instrument(kind="fx").tradeable


def test_notional_is_price_times_lot_size_times_qty() -> None:
    assert AU.notional(Decimal("620.02"), 3) == Decimal("1860060.00")
    gc = make_instrument(venue="COMEX", symbol="GC", lot_size=Decimal(100), tick="0.10")
    assert gc.notional(Decimal("2650.0"), 1) == Decimal("265000")


@pytest.mark.parametrize(
    ("tick", "price", "expected"),
    [
        ("0.02", 620.02, "620.02"),
        ("0.02", 620.029, "620.02"),
        ("0.02", 620.031, "620.04"),
        ("0.02", 620.01, "620.02"),  # halfway: away from zero, whatever the tick's parity
        ("0.02", 620.03, "620.04"),
        ("0.02", Decimal("620"), "620.00"),
        ("0.005", 31.0026, "31.005"),
        ("0.5", 9200.25, "9200.5"),
        ("10", 76204.9, "76200"),
        ("10", 76205, "76210"),
        ("1", 7300.4, "7300"),
        ("0.02", -0.01, "-0.02"),
    ],
)
def test_round_to_tick_gives_nearest_price_on_the_grid(tick: str, price: Any, expected: str) -> None:
    inst = make_instrument(tick=tick)
    rounded = inst.round_to_tick(price)
    assert str(rounded) == expected
    assert inst.is_on_tick(rounded)


@pytest.mark.parametrize("price", [math.nan, math.inf, Decimal("NaN")])
def test_round_to_tick_refuses_non_finite(price: Any) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        AU.round_to_tick(price)


@pytest.mark.parametrize(
    ("tick", "price", "on"),
    [
        ("0.02", "620.02", True),
        ("0.02", "620.03", False),
        ("0.02", "620.0200000000000000000000001", False),
        ("0.02", "1E+10", True),
        ("10", "76200", True),
        ("10", "7.62E+4", True),
        ("10", "76205", False),
        ("0.005", "31.005", True),
        ("0.005", "31.0051", False),
        ("0.02", "1E-40", False),
        ("0.02", "0", True),
        ("0.02", "NaN", False),
    ],
)
def test_is_on_tick_is_exact(tick: str, price: str, on: bool) -> None:
    assert make_instrument(tick=tick).is_on_tick(Decimal(price)) is on


@given(
    ticks=st.integers(min_value=1, max_value=10**12), tick=st.sampled_from(["0.02", "0.005", "10", "0.0001"])
)
def test_whole_number_of_ticks_is_always_on_tick(ticks: int, tick: str) -> None:
    inst = make_instrument(tick=tick)
    price = Decimal(ticks) * inst.tick
    assert inst.is_on_tick(price)
    assert parse_price(str(price), inst) == price
    assert not inst.is_on_tick(price + inst.tick / 2)


# ------------------------------------------------------------------------ trading hours


def ns(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).timestamp()) * 1_000_000_000


def test_session_window_overnight_only_when_close_not_after_open() -> None:
    assert SHFE_NIGHT.windows[1].overnight
    assert not SHFE_NIGHT.windows[0].overnight
    assert SessionWindow("24h", time(17), time(17), (0,)).overnight


def test_session_at_names_the_window() -> None:
    night = SHFE_NIGHT.session_at(ns(2026, 11, 24, 22, 0))
    assert night is not None and night.name == "night"
    assert SHFE_NIGHT.session_at(ns(2026, 11, 24, 18, 0)) is None


def test_one_nanosecond_before_close_is_still_open() -> None:
    # A float ts_ns / 1e9 rounds to the microsecond, which used to land on the close itself.
    close = ns(2026, 11, 25, 2, 30)
    assert SHFE_NIGHT.is_open(close - 1)
    assert SHFE_NIGHT.is_open(close - 500)
    assert not SHFE_NIGHT.is_open(close)


def test_exact_open_is_open() -> None:
    assert SHFE_NIGHT.is_open(ns(2026, 11, 24, 21, 0))
    assert not SHFE_NIGHT.is_open(ns(2026, 11, 24, 21, 0) - 1)


def test_next_open_while_closed_and_while_open() -> None:
    assert SHFE_NIGHT.next_open(ns(2026, 11, 24, 16, 0)) == datetime(2026, 11, 24, 21, 0, tzinfo=SHANGHAI)
    assert SHFE_NIGHT.next_open(ns(2026, 11, 24, 21, 0)) == datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    assert SHFE_NIGHT.next_open(ns(2026, 11, 28, 10, 0)) == datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)


def test_next_open_of_hours_without_windows_is_none() -> None:
    assert TradingHours("UTC", ()).next_open(ns(2026, 11, 24, 9, 0)) is None


def test_describe_lists_windows_days_and_zone() -> None:
    assert SHFE_NIGHT.describe() == "day Mon-Fri 09:00-15:00; night Mon-Fri 21:00-02:30+1 (Asia/Shanghai)"
    globex = TradingHours("America/Chicago", (SessionWindow("globex", time(17), time(16), (6, 0, 1, 2, 3)),))
    assert globex.describe() == "globex Sun-Thu 17:00-16:00+1 (America/Chicago)"
    odd = TradingHours(
        "UTC",
        (
            SessionWindow("odd", time(1), time(2), (0, 2, 3, 5)),
            SessionWindow("all", time(0), time(23), tuple(range(7))),
        ),
    )
    assert odd.describe() == "odd Mon,Wed-Thu,Sat 01:00-02:00; all daily 00:00-23:00 (UTC)"
