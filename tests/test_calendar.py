"""Exchange calendars (issue 14): holidays close venues, night sessions follow the Chinese rule, and
every daily count (sessions, cancel caps, audit ratios) uses the exchange trading day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import cmc_lab as cmc
from cmc_lab.core.hours import TradingHours
from cmc_lab.core.specs import SpecError, Specs, load_specs
from cmc_lab.data.history import synthetic_quotes
from cmc_lab.execution.spread import SpreadNotQuotable
from cmc_lab.journal.ratios import ratios
from cmc_lab.journal.store import Journal
from cmc_lab.research import replay_engine

SHANGHAI, CHICAGO, LONDON = "Asia/Shanghai", "America/Chicago", "Europe/London"


def ns(year: int, month: int, day: int, hour: int, minute: int = 0, *, zone: str) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()) * 10**9


@pytest.fixture(scope="module")
def specs() -> Specs:
    return load_specs()


def hours_of(specs: Specs, instrument_id: str) -> TradingHours:
    return specs.instrument(instrument_id).hours


# --------------------------------------------------------------------------- the calendars as data


def test_every_shipped_calendar_names_its_source_and_date(specs: Specs) -> None:
    assert set(specs.calendars) == {"SHFE", "CME", "LME", "CFETS"}
    for cal in specs.calendars.values():
        assert cal.source and cal.as_of.year >= 2025
        assert cal.closures, f"{cal.name} lists no closure"
    assert "not published" in specs.calendars["SHFE"].source  # 2027: the State Council has not said yet
    assert {c.first.year for c in specs.calendars["SHFE"].closures} == {2025, 2026}
    assert {c.first.year for c in specs.calendars["CME"].closures} == {2025, 2026, 2027}


def test_national_day_closes_shfe_and_says_so(specs: Specs) -> None:
    au = hours_of(specs, "SHFE.au")
    when = ns(2025, 10, 3, 10, zone=SHANGHAI)  # Friday morning, National Day week
    assert not au.is_open(when)
    assert "closed for National Day and Mid-Autumn Festival" in au.closed_reason(when)
    assert au.trading_day(when) == date(2025, 10, 9)  # the next day SHFE trades
    assert au.next_open(when) == datetime(2025, 10, 9, 9, 0, tzinfo=ZoneInfo(SHANGHAI))
    assert hours_of(specs, "COMEX.GC").is_open(when)  # 21:00 Thursday in Chicago: Globex trades
    assert hours_of(specs, "INE.sc").closed_reason(when) == au.closed_reason(when)  # INE: SHFE's calendar


def test_spring_festival_closes_shfe_and_the_friday_night_before_it(specs: Specs) -> None:
    au = hours_of(specs, "SHFE.au")
    assert not au.is_open(ns(2026, 2, 18, 10, zone=SHANGHAI))
    friday_night = ns(2026, 2, 13, 21, 30, zone=SHANGHAI)
    assert not au.is_open(friday_night)
    assert "no night session on the evening of Fri 2026-02-13, before Spring Festival" in au.closed_reason(
        friday_night
    )
    assert au.is_open(ns(2026, 2, 13, 14, zone=SHANGHAI))  # Friday's day session trades
    assert au.is_open(ns(2026, 2, 24, 9, 30, zone=SHANGHAI))
    assert au.is_open(ns(2026, 2, 24, 21, 30, zone=SHANGHAI))  # the night session resumes that evening


def test_no_night_session_on_the_evening_before_a_chinese_holiday(specs: Specs) -> None:
    au = hours_of(specs, "SHFE.au")
    assert au.is_open(ns(2025, 9, 29, 21, 30, zone=SHANGHAI))  # Monday night: a normal evening
    eve = ns(2025, 9, 30, 21, 30, zone=SHANGHAI)  # Tuesday, the evening before National Day
    assert not au.is_open(eve) and not au.is_open(ns(2025, 10, 1, 1, 0, zone=SHANGHAI))
    assert "no night session on the evening of Tue 2025-09-30" in au.closed_reason(eve)
    assert au.is_open(ns(2025, 9, 30, 14, zone=SHANGHAI))  # that day's day session trades
    assert not au.is_open(ns(2025, 10, 8, 21, 30, zone=SHANGHAI))  # last holiday evening: no night
    assert au.is_open(ns(2025, 10, 9, 21, 30, zone=SHANGHAI))
    # The Friday night before a holiday Monday (Dragon Boat Festival, 2025-05-31 to 06-02).
    assert not au.is_open(ns(2025, 5, 30, 21, 30, zone=SHANGHAI))


def test_friday_night_counts_toward_monday(specs: Specs) -> None:
    au = hours_of(specs, "SHFE.au")
    assert au.trading_day(ns(2026, 11, 27, 21, 30, zone=SHANGHAI)) == date(2026, 11, 30)
    assert au.trading_day(ns(2026, 11, 28, 1, 0, zone=SHANGHAI)) == date(2026, 11, 30)  # after midnight
    assert au.trading_day(ns(2026, 11, 30, 10, zone=SHANGHAI)) == date(2026, 11, 30)
    assert au.trading_day(ns(2026, 11, 30, 21, 30, zone=SHANGHAI)) == date(2026, 12, 1)
    gc = hours_of(specs, "COMEX.GC")
    assert gc.trading_day(ns(2026, 11, 29, 18, zone=CHICAGO)) == date(2026, 11, 30)  # Sunday evening
    assert gc.trading_day(ns(2026, 12, 1, 16, 30, zone=CHICAGO)) == date(2026, 12, 1)
    assert gc.trading_day(ns(2026, 12, 1, 17, 0, zone=CHICAGO)) == date(2026, 12, 2)  # 17:00: the next day


def test_thanksgiving_halts_globex_early_and_has_no_trade_date(specs: Specs) -> None:
    gc = hours_of(specs, "COMEX.GC")
    morning = ns(2025, 11, 27, 10, zone=CHICAGO)
    assert gc.is_open(morning) and gc.trading_day(morning) == date(2025, 11, 28)
    afternoon = ns(2025, 11, 27, 13, zone=CHICAGO)
    assert not gc.is_open(afternoon)
    assert "closed early at 12:00 for Thanksgiving" in gc.closed_reason(afternoon)
    assert gc.is_open(ns(2025, 11, 27, 17, 30, zone=CHICAGO))  # reopens for Friday
    assert not gc.is_open(ns(2025, 11, 28, 13, zone=CHICAGO))  # Friday closes 12:45


def test_christmas_closes_cme_and_lme(specs: Specs) -> None:
    gc, ca = hours_of(specs, "COMEX.GC"), hours_of(specs, "LME.CA")
    assert not gc.is_open(ns(2025, 12, 24, 13, zone=CHICAGO))  # Christmas Eve: 12:45 close
    assert not gc.is_open(ns(2025, 12, 24, 18, zone=CHICAGO))  # no session for Christmas Day
    christmas = ns(2025, 12, 25, 10, zone=CHICAGO)
    assert "closed for Christmas Day" in gc.closed_reason(christmas)
    assert gc.is_open(ns(2025, 12, 25, 17, 30, zone=CHICAGO))  # for Friday's trade date
    assert gc.next_open(christmas) == datetime(2025, 12, 25, 17, 0, tzinfo=ZoneInfo(CHICAGO))
    boxing_day = ns(2025, 12, 26, 10, zone=LONDON)
    assert not ca.is_open(boxing_day) and "Boxing Day" in ca.closed_reason(boxing_day)


def test_a_uk_bank_holiday_closes_lme_only(specs: Specs) -> None:
    when = ns(2025, 8, 25, 10, zone=LONDON)  # summer bank holiday, 17:00 in Shanghai, 04:00 in Chicago
    assert "Summer bank holiday" in hours_of(specs, "LME.CA").closed_reason(when)
    assert hours_of(specs, "COMEX.GC").is_open(when)
    assert hours_of(specs, "LME.CA").trading_day(when) == date(2025, 8, 26)


def test_a_user_file_adds_a_closure_and_bad_entries_say_what_to_fix(tmp_path: Path) -> None:
    extra = tmp_path / "desk.toml"
    extra.write_text(
        '[[calendars.SHFE.closed]]\nname = "Spring Festival"\nfrom = 2027-02-06\nto = 2027-02-14\n'
    )
    specs = load_specs(extra)
    au = specs.instrument("SHFE.au").hours
    assert "closed for Spring Festival (Sat 2027-02-06" in au.closed_reason(
        ns(2027, 2, 10, 10, zone=SHANGHAI)
    )
    assert not au.is_open(ns(2025, 10, 3, 10, zone=SHANGHAI)), "the shipped closures stay"

    extra.write_text('[[calendars.SHFE.closed]]\nname = "x"\nfrom = 2027-02-06\nto = 2027-02-01\n')
    with pytest.raises(SpecError, match="to = 2027-02-01 is before from = 2027-02-06"):
        load_specs(extra)
    extra.write_text('[sessions.mine]\ntimezone = "UTC"\ncalendar = "NOPE"\nwindows = []\n')
    with pytest.raises(SpecError, match=r"calendar = 'NOPE' is not defined; known: CFETS, CME, LME, SHFE"):
        load_specs(extra)
    extra.write_text(
        '[sessions.shfe_precious]\ntimezone = "UTC"\ncalendar = "SHFE"\n'
        'windows = [{ open = "00:00", close = "00:00", days = "mon-sun" }]\n'
    )
    with pytest.raises(SpecError, match="differs from calendar SHFE's"):
        load_specs(extra)
    extra.write_text('[calendars.NEW]\ntimezone = "UTC"\nas_of = 2026-01-01\n')
    with pytest.raises(SpecError, match="calendar NEW has no 'source'"):
        load_specs(extra)


# --------------------------------------------------------------------------- through the engine


@pytest.fixture
def national_day() -> Iterator[cmc.Engine]:
    """A replay engine at 14:00 UTC on Friday 2025-10-03: SHFE is shut for National Day, Globex trades."""
    ds = synthetic_quotes(rate_hz=1, start="2025-10-03 14:00", day_length="10min")
    engine = replay_engine(ds, instruments=["SHFE.au", "COMEX.GC", "FX.USDCNH"], latency_ms=1)
    yield engine
    engine.close()


def test_national_day_makes_the_gold_spread_unquotable_while_comex_trades(national_day: cmc.Engine) -> None:
    eng = national_day
    eng.sleep(5)
    sp = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    with pytest.raises(SpreadNotQuotable) as info:
        sp.quote()
    assert info.value.leg == "SHFE.au" and "closed for National Day" in info.value.why

    denied = eng.submit("SHFE.au", "buy", 1, price=str(eng.instrument("SHFE.au").reference_price))
    denied.wait(5)
    assert denied.state is cmc.OrderState.DENIED
    assert "SHFE is closed for National Day and Mid-Autumn Festival" in denied.reason
    assert "next opens Thu 2025-10-09 09:00" in denied.reason

    quote = eng.quote("COMEX.GC")
    gc = eng.instrument("COMEX.GC")
    bought = eng.submit("COMEX.GC", "buy", 1, price=str(gc.round_to_tick(quote.ask) + 5 * gc.tick))
    assert bought.wait(5) is cmc.OrderState.FILLED


def test_a_trigger_does_not_fire_while_a_leg_is_on_holiday(national_day: cmc.Engine) -> None:
    eng = national_day
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    ticket = eng.hedge("au_gc", side="buy", qty=3, when="ask <= 1e9")  # would fire on any quote
    eng.sleep(30)
    assert ticket.state.value == "ARMED", "still waiting: an unquotable spread fires nothing"
    assert ticket.legs[0].orders == [] and ticket.legs[1].orders == [], "no leg sent with SHFE shut"


def test_cancel_cap_counts_friday_night_and_monday_as_one_trading_day(tmp_path: Path) -> None:
    # Friday 2026-11-27 and Monday 2026-11-30, each 00:00-24:00 UTC: SHFE's Friday day session
    # (Friday's trading day), Friday night to 02:30 Saturday (Monday's), Monday's day session (Monday's).
    ds = synthetic_quotes(days=2, rate_hz=0.1, start="2026-11-27 00:00", day_length="24h", lazy=False)
    journal = tmp_path / "cap.sqlite"
    eng = replay_engine(ds, instruments=["SHFE.au"], latency_ms=1, journal=journal)
    try:
        eng.limits.cancel_warn_per_day = 1
        eng.limits.max_cancels_per_day = 2
        au = eng.instrument("SHFE.au")

        def rest_and_cancel() -> cmc.Order:
            low = au.round_to_tick(eng.quote("SHFE.au").bid * 0.99)
            order = eng.submit("SHFE.au", "buy", 1, price=str(low))
            assert order.wait(5) is cmc.OrderState.ACCEPTED, order.reason
            order.cancel()
            order.wait(5)
            return order

        start = eng.clock.now_ns()
        eng.sleep((ns(2026, 11, 27, 21, 30, zone=SHANGHAI) - start) / 1e9)  # Friday night
        rest_and_cancel()
        rest_and_cancel()
        eng.sleep((ns(2026, 11, 30, 9, 30, zone=SHANGHAI) - eng.clock.now_ns()) / 1e9)  # Monday morning
        monday = eng.submit("SHFE.au", "buy", 1, price=str(au.round_to_tick(eng.quote("SHFE.au").bid * 0.99)))
        monday.wait(5)
        assert monday.state is cmc.OrderState.DENIED
        assert "cancel_count: 2 cancels on SHFE.au this trading day reached the limit of 2" in monday.reason
        eng.sleep((ns(2026, 11, 30, 21, 30, zone=SHANGHAI) - eng.clock.now_ns()) / 1e9)  # Tuesday's day
        assert rest_and_cancel().state is cmc.OrderState.CANCELED
    finally:
        eng.close()
    with Journal(journal) as reread:
        frame = ratios(reread).set_index(["day", "instrument"])
    assert frame.loc[("2026-11-30", "SHFE.au"), "cancel_requests"] == 2  # Friday night's, on Monday
    assert frame.loc[("2026-11-30", "SHFE.au"), "denied"] == 1
    assert frame.loc[("2026-12-01", "SHFE.au"), "cancel_requests"] == 1
