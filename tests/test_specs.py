"""Tests for cmc_lab.core.specs: the shipped instrument file, user extensions, errors and trading hours."""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cmc_lab.core.clock import SIM_START_NS
from cmc_lab.core.instruments import Instrument, MarginKind
from cmc_lab.core.specs import ENV_VAR, SHIPPED, SpecError, Specs, load_specs

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHICAGO = ZoneInfo("America/Chicago")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def shipped() -> Specs:
    return load_specs()


def ns(year: int, month: int, day: int, hour: int, minute: int = 0, *, zone: ZoneInfo) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()) * 1_000_000_000


# ------------------------------------------------------------------------ writing spec files

ZINC: dict[str, Any] = {
    "venue": "SHFE",
    "symbol": "zn",
    "name": "SHFE zinc",
    "currency": "CNY",
    "lot_size": "5",
    "lot_unit": "t",
    "price_unit": "t",
    "tick": "5",
    "daily_limit": "0.08",
    "margin": {"kind": "percent", "rate": "0.10"},
    "sessions": "shfe_base",
    "reference_price": "24000",
}


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def instrument_block(**changes: Any) -> str:
    """An [[instrument]] table: ZINC with changes applied; a change to None drops the field."""
    fields = {**ZINC, **changes}
    lines = [f"{k} = {toml_value(v)}" for k, v in fields.items() if v is not None]
    return "[[instrument]]\n" + "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sessions_block(name: str = "custom", **changes: Any) -> str:
    fields = {
        "timezone": "Asia/Shanghai",
        "windows": [{"name": "day", "open": "09:00", "close": "15:00", "days": "mon-fri"}],
        **changes,
    }
    return f"[sessions.{name}]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in fields.items()) + "\n"


def load_one(tmp_path: Path, text: str) -> Specs:
    return load_specs(write(tmp_path, text))


# ------------------------------------------------------------------------ the shipped file


def test_shipped_file_loads_eight_contracts_and_two_fx_rates(shipped: Specs) -> None:
    assert sorted(shipped.instruments) == [
        "COMEX.GC",
        "COMEX.SI",
        "FX.USDCNH",
        "FX.USDCNY",
        "INE.sc",
        "LME.CA",
        "NYMEX.CL",
        "SHFE.ag",
        "SHFE.au",
        "SHFE.cu",
    ]
    assert SHIPPED.name == "instruments.toml"


@pytest.mark.parametrize(
    ("instrument_id", "lot_size", "lot_unit", "quote_unit", "tick"),
    [
        ("SHFE.au", "1000", "g", "CNY/g", "0.02"),
        ("COMEX.GC", "100", "oz", "USD/oz", "0.10"),
        ("SHFE.ag", "15", "kg", "CNY/kg", "1"),
        ("COMEX.SI", "5000", "oz", "USD/oz", "0.005"),
        ("SHFE.cu", "5", "t", "CNY/t", "10"),
        ("LME.CA", "25", "t", "USD/t", "0.5"),
        ("INE.sc", "1000", "bbl", "CNY/bbl", "0.1"),
        ("NYMEX.CL", "1000", "bbl", "USD/bbl", "0.01"),
    ],
)
def test_shipped_contract_facts_match_the_exchanges(
    shipped: Specs, instrument_id: str, lot_size: str, lot_unit: str, quote_unit: str, tick: str
) -> None:
    inst = shipped.instrument(instrument_id)
    assert inst.lot_size == Decimal(lot_size)
    assert inst.lot_unit == lot_unit
    assert inst.quote_unit == quote_unit
    assert inst.tick == Decimal(tick)
    assert inst.tradeable
    assert inst.is_on_tick(inst.reference_price)
    assert inst.reference_price > 0


def test_shipped_fx_rate_is_not_tradeable(shipped: Specs) -> None:
    fx = shipped.instrument("FX.USDCNH")
    assert fx.kind == "fx"
    assert not fx.tradeable
    assert fx.quote_unit == "CNH/USD"


def test_shipped_margin_kinds_follow_each_exchange(shipped: Specs) -> None:
    """SHFE/INE and, since 2026-01-13, CME's precious metals charge a share of notional; CL and LME per lot."""
    for inst in shipped.instruments.values():
        if inst.kind == "fx":
            continue
        percent = inst.venue in ("SHFE", "INE") or inst.id in ("COMEX.GC", "COMEX.SI")
        assert inst.margin_kind is (MarginKind.PERCENT if percent else MarginKind.PER_LOT), inst.id


def test_shipped_margins_carry_hedge_rates_and_the_shfe_notice_of_2026_01_22(shipped: Specs) -> None:
    au, cu = shipped.instrument("SHFE.au"), shipped.instrument("SHFE.cu")
    assert (au.margin_rate, shipped.hedge_margin["SHFE.au"], au.daily_limit) == (
        Decimal("0.17"),
        Decimal("0.16"),
        Decimal("0.15"),
    )
    assert (cu.margin_rate, shipped.hedge_margin["SHFE.cu"], cu.daily_limit) == (
        Decimal("0.10"),
        Decimal("0.09"),
        Decimal("0.08"),
    )
    assert "2026-01-22" in au.limits_source
    assert shipped.accounts["CN-FUT"].margin_call == "risk_degree"
    assert shipped.accounts["US-FUT"].margin_call == "maintenance"


def test_an_account_with_an_unknown_margin_rule_is_refused_naming_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text('[accounts.HK-FUT]\ncurrency = "USD"\ncash = "1"\nmargin_call = "equity"\n')
    with pytest.raises(SpecError, match="margin_call = 'equity' must be one of risk_degree, maintenance"):
        load_specs(path)


def test_shipped_venues_and_accounts(shipped: Specs) -> None:
    assert set(shipped.venues) == {"SHFE", "INE", "COMEX", "NYMEX", "LME", "FX"}
    assert shipped.venues["SHFE"].region == "domestic"
    assert shipped.venues["COMEX"].region == "overseas"
    assert shipped.venues["SHFE"].account == shipped.venues["INE"].account == "CN-FUT"
    for venue in shipped.venues.values():
        low, high = venue.latency_ms
        assert 0 <= low <= high


def test_instrument_values_are_exact_decimals(shipped: Specs) -> None:
    au = shipped.instrument("SHFE.au")
    assert isinstance(au.tick, Decimal) and str(au.tick) == "0.02"
    assert isinstance(au.margin_rate, Decimal) and au.margin_rate == Decimal("0.17")
    assert isinstance(au, Instrument)


def test_unknown_instrument_suggests_close_name(shipped: Specs) -> None:
    with pytest.raises(
        KeyError, match=r"unknown instrument 'COMEX\.au'; did you mean 'SHFE\.au'\?.*known: COMEX\.GC"
    ):
        shipped.instrument("COMEX.au")


def test_unknown_instrument_without_close_name_lists_known(shipped: Specs) -> None:
    with pytest.raises(KeyError, match=r"unknown instrument 'XYZ'; instruments are named VENUE\.SYMBOL"):
        shipped.instrument("XYZ")


# ------------------------------------------------------------------------ extension files


def test_user_file_adds_an_instrument(tmp_path: Path) -> None:
    specs = load_one(tmp_path, instrument_block())
    assert len(specs.instruments) == 11
    zn = specs.instrument("SHFE.zn")
    assert zn.tick == Decimal(5)
    assert zn.hours.timezone == "Asia/Shanghai"
    assert zn.name == "SHFE zinc"


def test_user_file_overrides_shipped_instrument_by_venue_and_symbol(tmp_path: Path) -> None:
    specs = load_one(tmp_path, instrument_block(symbol="au", tick="0.05", lot_unit="g", price_unit="g"))
    assert len(specs.instruments) == 10
    assert specs.instrument("SHFE.au").tick == Decimal("0.05")
    assert specs.instrument("SHFE.ag").tick == Decimal(1)


def test_user_file_adds_venue_and_sessions(tmp_path: Path) -> None:
    text = (
        '[venues.DCE]\nregion = "domestic"\naccount = "CN-FUT"\nlatency_ms = [1, 2]\n'
        + sessions_block("dce_day")
        + instrument_block(venue="DCE", symbol="i", sessions="dce_day")
    )
    specs = load_one(tmp_path, text)
    assert specs.venues["DCE"].latency_ms == (1.0, 2.0)
    assert specs.instrument("DCE.i").hours.windows[0].name == "day"


def test_user_sessions_override_applies_to_shipped_instruments(tmp_path: Path) -> None:
    specs = load_one(tmp_path, sessions_block("cme_globex", timezone="America/Chicago"))
    gc = specs.instrument("COMEX.GC")
    assert gc.hours.timezone == "America/Chicago"
    assert [w.name for w in gc.hours.windows] == ["day"]


def test_later_file_wins(tmp_path: Path) -> None:
    first = write(tmp_path, instrument_block(tick="5"), "a.toml")
    second = write(tmp_path, instrument_block(tick="10"), "b.toml")
    assert load_specs([first, second]).instrument("SHFE.zn").tick == Decimal(10)
    assert load_specs([second, first]).instrument("SHFE.zn").tick == Decimal(5)


def test_extra_may_be_a_string_path(tmp_path: Path) -> None:
    path = write(tmp_path, instrument_block())
    assert "SHFE.zn" in load_specs(str(path)).instruments


def test_env_var_adds_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zinc = write(tmp_path, instrument_block(), "zinc.toml")
    lead = write(tmp_path, instrument_block(symbol="pb", name="SHFE lead"), "lead.toml")
    monkeypatch.setenv(ENV_VAR, f"{zinc}{os.pathsep}{lead}")
    specs = load_specs()
    assert {"SHFE.zn", "SHFE.pb"} <= set(specs.instruments)
    assert specs.instrument("SHFE.pb").name == "SHFE lead"


def test_extra_file_overrides_env_var_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path, instrument_block(tick="5"), "env.toml")))
    extra = write(tmp_path, instrument_block(tick="10"), "extra.toml")
    assert load_specs(extra).instrument("SHFE.zn").tick == Decimal(10)


def test_env_var_naming_missing_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.toml"))
    with pytest.raises(SpecError, match=r"gone\.toml does not exist"):
        load_specs()


def test_toml_native_times_are_accepted(tmp_path: Path) -> None:
    text = (
        '[sessions.native]\ntimezone = "UTC"\n'
        'windows = [{ open = 09:00:00, close = 17:30:00, days = "mon-fri" }]\n'
    )
    specs = load_one(tmp_path, text + instrument_block(sessions="native"))
    window = specs.instrument("SHFE.zn").hours.windows[0]
    assert (window.open.hour, window.close.minute, window.name) == (9, 30, "session-1")


def test_days_may_wrap_and_list(tmp_path: Path) -> None:
    text = sessions_block(windows=[{"open": "09:00", "close": "10:00", "days": "fri-mon, wed"}])
    specs = load_one(tmp_path, text + instrument_block(sessions="custom"))
    assert specs.instrument("SHFE.zn").hours.windows[0].days == (0, 2, 4, 5, 6)


# ------------------------------------------------------------------------ errors


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"instrument file .*nope\.toml does not exist"):
        load_specs(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"mine\.toml is not valid TOML"):
        load_one(tmp_path, "[[instrument]\nvenue = ")


def test_non_utf8_file_is_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "\xe9"\n')
    with pytest.raises(SpecError, match="is not valid TOML"):
        load_specs(path)


def test_directory_instead_of_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot be read"):
        load_specs(tmp_path)


def test_missing_field_names_file_instrument_number_and_field(tmp_path: Path) -> None:
    text = instrument_block() + instrument_block(symbol="pb", tick=None)
    with pytest.raises(
        SpecError, match=r"mine\.toml: \[\[instrument\]\] #2 \(SHFE\.pb\): missing field 'tick'"
    ):
        load_one(tmp_path, text)


@pytest.mark.parametrize(
    "field", ["venue", "symbol", "currency", "lot_size", "margin", "sessions", "reference_price"]
)
def test_each_required_field_is_named_when_missing(tmp_path: Path, field: str) -> None:
    with pytest.raises(SpecError, match=rf"#1.*missing field '{field}'"):
        load_one(tmp_path, instrument_block(**{field: None}))


def test_missing_margin_rate_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"#1 \(SHFE\.zn\) margin: missing field 'rate'"):
        load_one(tmp_path, instrument_block(margin={"kind": "percent"}))


def test_non_numeric_tick(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"#1 \(SHFE\.zn\): tick = 'abc' is not a number"):
        load_one(tmp_path, instrument_block(tick="abc"))


def test_zero_tick(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="tick must be above zero"):
        load_one(tmp_path, instrument_block(tick="0"))


@pytest.mark.parametrize("tick", ["-0.5", "inf", "NaN"])
def test_negative_or_non_finite_tick(tmp_path: Path, tick: str) -> None:
    with pytest.raises(SpecError, match="must be a finite, non-negative number"):
        load_one(tmp_path, instrument_block(tick=tick))


def test_zero_lot_size(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="lot_size must be above zero"):
        load_one(tmp_path, instrument_block(lot_size="0"))


def test_unknown_session_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError,
        match=r"sessions = 'shfe_nite' is not defined; "
        r"known: cfets_spot, cme_globex, fx_24x5, lme_select, shfe_base, shfe_precious",
    ):
        load_one(tmp_path, instrument_block(sessions="shfe_nite"))


@pytest.mark.parametrize("days", ["mon-fry", "weekdays", "", "mon-", "mon--fri"])
def test_bad_days_string(tmp_path: Path, days: str) -> None:
    text = sessions_block(windows=[{"open": "09:00", "close": "15:00", "days": days}])
    with pytest.raises(SpecError, match=r"\[sessions\.custom\] window #1: days .* must look like 'mon-fri'"):
        load_one(tmp_path, text)


@pytest.mark.parametrize("when", ["25:00", "9h", "noon", "09:00+08:00", 900])
def test_bad_time(tmp_path: Path, when: Any) -> None:
    text = sessions_block(windows=[{"open": when, "close": "15:00", "days": "mon-fri"}])
    with pytest.raises(
        SpecError, match=r"\[sessions\.custom\] window #1: time .*(is not HH:MM|must not carry an offset)"
    ):
        load_one(tmp_path, text)


def test_missing_window_field_is_named(tmp_path: Path) -> None:
    text = sessions_block(windows=[{"open": "09:00", "days": "mon-fri"}])
    with pytest.raises(SpecError, match=r"window #1: missing field 'close'"):
        load_one(tmp_path, text)


@pytest.mark.parametrize("windows", [[], "09:00-15:00", ["09:00"]])
def test_windows_must_be_a_list_of_tables(tmp_path: Path, windows: Any) -> None:
    with pytest.raises(SpecError, match=r"\[sessions\.custom\]"):
        load_one(tmp_path, sessions_block(windows=windows))


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", 8])
def test_unknown_time_zone(tmp_path: Path, zone: Any) -> None:
    with pytest.raises(SpecError, match=r"unknown time zone .*; use an IANA name"):
        load_one(tmp_path, sessions_block(timezone=zone))


def test_bad_margin_kind(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="margin kind must be 'percent' or 'per_lot'"):
        load_one(tmp_path, instrument_block(margin={"kind": "fixed", "rate": "0.1"}))


def test_margin_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\(SHFE\.zn\) margin: expected a table"):
        load_one(tmp_path, instrument_block(margin="0.10"))


@pytest.mark.parametrize("latency", ["[3.0]", "[1, 2, 3]", "[-1, 2]", '"fast"', "5", "[true, 2]", '["1", 2]'])
def test_bad_latency(tmp_path: Path, latency: str) -> None:
    text = f'[venues.SHFE]\nregion = "domestic"\naccount = "CN-FUT"\nlatency_ms = {latency}\n'
    with pytest.raises(
        SpecError, match=r"\[venues\.SHFE\]: latency_ms must be \[low, high\] in milliseconds"
    ):
        load_one(tmp_path, text)


def test_latency_low_above_high(tmp_path: Path) -> None:
    text = '[venues.SHFE]\nregion = "domestic"\nlatency_ms = [5, 1]\n'
    with pytest.raises(SpecError, match=r"latency_ms low 5\.0 is above high 1\.0"):
        load_one(tmp_path, text)


def test_bad_region(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="region 'offshore' must be 'domestic' or 'overseas'"):
        load_one(tmp_path, '[venues.X]\nregion = "offshore"\n')


def test_instrument_whose_venue_has_no_venue_table(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"instrument DCE\.i names venue 'DCE', which has no \[venues\.DCE\] table"
    ):
        load_one(tmp_path, instrument_block(venue="DCE", symbol="i"))


@pytest.mark.parametrize("kind", ["futures", "option"])
def test_unknown_instrument_kind(tmp_path: Path, kind: str) -> None:
    with pytest.raises(SpecError, match=f"kind '{kind}' must be 'future' or 'fx'"):
        load_one(tmp_path, instrument_block(kind=kind))


@pytest.mark.parametrize("max_qty", [0, -5, '"many"', 1.5, "true"])
def test_bad_max_order_qty(tmp_path: Path, max_qty: Any) -> None:
    text = instrument_block() + f"max_order_qty = {max_qty}\n"
    with pytest.raises(SpecError, match=r"max_order_qty = .* must be a whole number of lots, >= 1"):
        load_one(tmp_path, text)


def test_max_order_qty_is_read(tmp_path: Path) -> None:
    specs = load_one(tmp_path, instrument_block() + "max_order_qty = 20\n")
    assert specs.instrument("SHFE.zn").max_order_qty == 20


def test_instrument_written_as_a_single_table_is_explained(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"'instrument' must be an array of tables, written \[\[instrument\]\]"
    ):
        load_one(tmp_path, instrument_block().replace("[[instrument]]", "[instrument]"))


def test_sessions_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\[sessions\]: expected a table"):
        load_one(tmp_path, 'sessions = "shfe_base"\n')


# ------------------------------------------------------------------------ trading hours


def open_at(specs: Specs, instrument_id: str, when: int) -> bool:
    return specs.instrument(instrument_id).hours.is_open(when)


@pytest.mark.parametrize(
    ("instrument_id", "when", "is_open"),
    [
        # SHFE gold: day sessions with a break and lunch, night session to 02:30.
        ("SHFE.au", ns(2026, 11, 24, 22, 0, zone=SHANGHAI), True),  # Tuesday night
        ("SHFE.au", ns(2026, 11, 25, 2, 0, zone=SHANGHAI), True),  # Wednesday, Tuesday's night session
        ("SHFE.au", ns(2026, 11, 25, 2, 45, zone=SHANGHAI), False),
        ("SHFE.au", ns(2026, 11, 25, 9, 30, zone=SHANGHAI), True),
        ("SHFE.au", ns(2026, 11, 25, 10, 20, zone=SHANGHAI), False),  # 10:15-10:30 break
        ("SHFE.au", ns(2026, 11, 25, 12, 0, zone=SHANGHAI), False),  # lunch
        ("SHFE.au", ns(2026, 11, 25, 14, 0, zone=SHANGHAI), True),
        ("SHFE.au", ns(2026, 11, 25, 16, 0, zone=SHANGHAI), False),
        ("SHFE.au", ns(2026, 11, 28, 1, 0, zone=SHANGHAI), True),  # Saturday, Friday's night session
        ("SHFE.au", ns(2026, 11, 28, 10, 0, zone=SHANGHAI), False),  # Saturday
        ("SHFE.au", ns(2026, 11, 29, 22, 0, zone=SHANGHAI), False),  # no Sunday night
        ("SHFE.au", ns(2026, 11, 30, 1, 0, zone=SHANGHAI), False),  # Monday 01:00: no Sunday night
        ("INE.sc", ns(2026, 11, 25, 2, 0, zone=SHANGHAI), True),
        # SHFE copper: night session closes at 01:00.
        ("SHFE.cu", ns(2026, 11, 25, 0, 59, zone=SHANGHAI), True),
        ("SHFE.cu", ns(2026, 11, 25, 1, 0, zone=SHANGHAI), False),
        ("SHFE.cu", ns(2026, 11, 25, 2, 0, zone=SHANGHAI), False),
        # CME Globex: Sunday 17:00 to Friday 16:00 Chicago, daily break 16:00-17:00.
        ("COMEX.GC", ns(2026, 11, 25, 16, 30, zone=CHICAGO), False),  # Wednesday break
        ("COMEX.GC", ns(2026, 11, 25, 17, 0, zone=CHICAGO), True),
        ("COMEX.GC", ns(2026, 11, 29, 18, 0, zone=CHICAGO), True),  # Sunday evening
        ("COMEX.GC", ns(2026, 11, 29, 12, 0, zone=CHICAGO), False),  # Sunday before the open
        ("COMEX.GC", ns(2026, 11, 28, 12, 0, zone=CHICAGO), False),  # Saturday
        ("COMEX.GC", ns(2026, 12, 4, 15, 59, zone=CHICAGO), True),  # Friday afternoon
        ("COMEX.GC", ns(2026, 11, 27, 15, 59, zone=CHICAGO), False),  # day after Thanksgiving: 12:45 close
        ("COMEX.GC", ns(2026, 11, 27, 17, 30, zone=CHICAGO), False),  # Friday evening
        ("NYMEX.CL", ns(2026, 11, 25, 16, 30, zone=CHICAGO), False),
        ("COMEX.SI", ns(2026, 11, 24, 8, 0, zone=CHICAGO), True),
        # LME select: 01:00-19:00 London, weekdays.
        ("LME.CA", ns(2026, 11, 24, 14, 0, zone=LONDON), True),
        ("LME.CA", ns(2026, 11, 24, 19, 30, zone=LONDON), False),
        ("LME.CA", ns(2026, 11, 24, 0, 30, zone=LONDON), False),
        ("LME.CA", ns(2026, 11, 28, 14, 0, zone=LONDON), False),
        # FX: Sunday 17:00 to Friday 17:00 New York.
        ("FX.USDCNH", ns(2026, 11, 25, 3, 0, zone=NEW_YORK), True),
        ("FX.USDCNH", ns(2026, 11, 27, 16, 59, zone=NEW_YORK), True),
        ("FX.USDCNH", ns(2026, 11, 27, 17, 0, zone=NEW_YORK), False),
        ("FX.USDCNH", ns(2026, 11, 28, 12, 0, zone=NEW_YORK), False),
        ("FX.USDCNH", ns(2026, 11, 29, 17, 0, zone=NEW_YORK), True),
    ],
)
def test_trading_hours(shipped: Specs, instrument_id: str, when: int, is_open: bool) -> None:
    assert open_at(shipped, instrument_id, when) is is_open


def test_session_names_the_window(shipped: Specs) -> None:
    hours = shipped.instrument("SHFE.au").hours
    night = hours.session_at(ns(2026, 11, 28, 1, 0, zone=SHANGHAI))
    lunch = hours.session_at(ns(2026, 11, 25, 12, 0, zone=SHANGHAI))
    assert night is not None and night.name == "night"
    assert lunch is None


def test_session_boundaries_to_the_nanosecond(shipped: Specs) -> None:
    hours = shipped.instrument("SHFE.au").hours
    close = ns(2026, 11, 25, 2, 30, zone=SHANGHAI)
    assert hours.is_open(close - 1)
    assert not hours.is_open(close)
    opening = ns(2026, 11, 24, 21, 0, zone=SHANGHAI)
    assert not hours.is_open(opening - 1)
    assert hours.is_open(opening)


def test_sim_start_is_inside_every_venues_session(shipped: Specs) -> None:
    for instrument_id in ("SHFE.au", "SHFE.cu", "INE.sc", "COMEX.GC", "NYMEX.CL", "LME.CA", "FX.USDCNH"):
        assert open_at(shipped, instrument_id, SIM_START_NS), instrument_id


def test_globex_open_across_us_daylight_saving_start(shipped: Specs) -> None:
    hours = shipped.instrument("COMEX.GC").hours
    # 2026-03-08 is the Sunday US clocks go forward: the open is still 17:00 Chicago, now CDT.
    assert not hours.is_open(ns(2026, 3, 8, 16, 59, zone=CHICAGO))
    assert hours.is_open(ns(2026, 3, 8, 17, 0, zone=CHICAGO))
    assert hours.next_open(ns(2026, 3, 7, 12, 0, zone=CHICAGO)) == datetime(2026, 3, 8, 17, 0, tzinfo=CHICAGO)


@pytest.mark.parametrize(
    ("instrument_id", "when", "expected"),
    [
        ("SHFE.au", ns(2026, 11, 28, 10, 0, zone=SHANGHAI), datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)),
        ("SHFE.au", ns(2026, 11, 25, 2, 45, zone=SHANGHAI), datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)),
        ("SHFE.au", ns(2026, 11, 25, 10, 20, zone=SHANGHAI), datetime(2026, 11, 25, 10, 30, tzinfo=SHANGHAI)),
        ("SHFE.au", ns(2026, 11, 25, 12, 0, zone=SHANGHAI), datetime(2026, 11, 25, 13, 30, tzinfo=SHANGHAI)),
        ("SHFE.au", ns(2026, 11, 25, 16, 0, zone=SHANGHAI), datetime(2026, 11, 25, 21, 0, tzinfo=SHANGHAI)),
        ("SHFE.au", ns(2026, 11, 27, 16, 0, zone=SHANGHAI), datetime(2026, 11, 27, 21, 0, tzinfo=SHANGHAI)),
        ("SHFE.cu", ns(2026, 11, 25, 1, 30, zone=SHANGHAI), datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)),
        ("COMEX.GC", ns(2026, 11, 25, 16, 30, zone=CHICAGO), datetime(2026, 11, 25, 17, 0, tzinfo=CHICAGO)),
        ("COMEX.GC", ns(2026, 11, 28, 12, 0, zone=CHICAGO), datetime(2026, 11, 29, 17, 0, tzinfo=CHICAGO)),
        ("COMEX.GC", ns(2026, 11, 27, 17, 30, zone=CHICAGO), datetime(2026, 11, 29, 17, 0, tzinfo=CHICAGO)),
        ("LME.CA", ns(2026, 11, 28, 14, 0, zone=LONDON), datetime(2026, 11, 30, 1, 0, tzinfo=LONDON)),
        ("LME.CA", ns(2026, 11, 24, 20, 0, zone=LONDON), datetime(2026, 11, 25, 1, 0, tzinfo=LONDON)),
    ],
)
def test_next_open(shipped: Specs, instrument_id: str, when: int, expected: datetime) -> None:
    got = shipped.instrument(instrument_id).hours.next_open(when)
    assert got == expected
    assert got is not None and got.tzinfo == expected.tzinfo
    assert shipped.instrument(instrument_id).hours.is_open(int(got.timestamp()) * 1_000_000_000)


def test_describe_is_readable(shipped: Specs) -> None:
    assert shipped.instrument("SHFE.au").hours.describe() == (
        "day-1 Mon-Fri 09:00-10:15; day-2 Mon-Fri 10:30-11:30; day-3 Mon-Fri 13:30-15:00; "
        "night Mon-Fri 21:00-02:30+1 (Asia/Shanghai)"
    )
    assert shipped.instrument("COMEX.GC").hours.describe() == "globex Sun-Thu 17:00-16:00+1 (America/Chicago)"
    assert shipped.instrument("LME.CA").hours.describe() == "lmeselect Mon-Fri 01:00-19:00 (Europe/London)"
