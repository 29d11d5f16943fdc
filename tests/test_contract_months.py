"""Contract months: ids in each exchange's code, listed months, last trading days from the rules, main month."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cmc_lab.core.months import (
    ContractError,
    ContractMonth,
    contract_id,
    load_contract_rules,
    parse_contract_id,
)
from cmc_lab.core.specs import load_specs

RULES = load_contract_rules()
CALENDARS = load_specs().calendars
M = ContractMonth


def last_day(product: str, month: ContractMonth) -> date:
    rule = RULES[product]
    return rule.last_trading_day(month, CALENDARS[rule.calendar])


def test_ids_are_written_in_each_exchanges_own_code() -> None:
    assert contract_id("SHFE.au", M(2026, 6), RULES) == "SHFE.au2606"
    assert contract_id("COMEX.GC", M(2026, 6), RULES) == "COMEX.GCM26"
    assert contract_id("NYMEX.CL", M(2027, 1), RULES) == "NYMEX.CLF27"
    assert parse_contract_id("SHFE.au2606", RULES) == ("SHFE.au", M(2026, 6))
    assert parse_contract_id("COMEX.GCZ26", RULES) == ("COMEX.GC", M(2026, 12))
    assert parse_contract_id("INE.sc2701", RULES) == ("INE.sc", M(2027, 1))


def test_a_product_id_or_an_instrument_without_months_is_not_a_contract() -> None:
    assert parse_contract_id("SHFE.au", RULES) is None
    assert parse_contract_id("LME.CA", RULES) is None  # LME 3M: a rolling prompt date, no month
    assert parse_contract_id("FX.USDCNH", RULES) is None


@pytest.mark.parametrize(
    ("iid", "fix"),
    [("COMEX.GC2606", "COMEX.GCM26"), ("SHFE.auM26", "SHFE.au2606"), ("SHFE.au2613", "SHFE.au2606")],
)
def test_a_month_written_in_the_wrong_code_says_how_to_write_it(iid: str, fix: str) -> None:
    with pytest.raises(ContractError, match=fix):
        parse_contract_id(iid, RULES)


def test_shfe_gold_expires_on_the_15th_or_the_next_trading_day() -> None:
    assert last_day("SHFE.au", M(2026, 6)) == date(2026, 6, 15)  # a Monday
    # 2026-02-15 is a Sunday inside the Spring Festival closure (02-14 to 02-23)
    assert last_day("SHFE.au", M(2026, 2)) == date(2026, 2, 24)


def test_comex_gold_expires_on_the_third_last_business_day() -> None:
    assert last_day("COMEX.GC", M(2026, 12)) == date(2026, 12, 29)
    assert last_day("COMEX.GC", M(2027, 2)) == date(2027, 2, 24)


def test_nymex_crude_expires_three_or_four_business_days_before_the_25th_of_the_prior_month() -> None:
    # published expiries: CLF26 on 2025-12-19 (the 25th is Christmas: four days), CLG26 on 2026-01-20
    # (the 25th a Sunday: four days)
    assert last_day("NYMEX.CL", M(2026, 1)) == date(2025, 12, 19)
    assert last_day("NYMEX.CL", M(2026, 2)) == date(2026, 1, 20)
    assert last_day("NYMEX.CL", M(2026, 4)) == date(2026, 3, 20)  # the 25th a Wednesday: three days


def test_ine_crude_expires_on_the_last_trading_day_of_the_prior_month() -> None:
    assert last_day("INE.sc", M(2026, 1)) == date(2025, 12, 31)


def test_the_first_and_last_months_an_id_can_name_have_a_last_trading_day() -> None:
    """COMEX.GCZ99 ended in 'contract month 2100-1 is not a month of 2000-2099' (an order for it too):
    the rule's month arithmetic left the range the two-digit year can name."""
    assert last_day("COMEX.GC", M(2099, 12)) == date(2099, 12, 29)
    assert last_day("NYMEX.CL", M(2000, 1)) == date(1999, 12, 21)
    assert last_day("INE.sc", M(2000, 1)) == date(1999, 12, 31)


def test_listed_months_follow_each_exchanges_listing_rule() -> None:
    today = date(2026, 12, 5)
    au = RULES["SHFE.au"].listed_months(today, CALENDARS["SHFE"])
    assert [m.month for m in au] == [12, 1, 2, 4, 6, 8, 10, 12]  # three in a row, then even months
    gc = RULES["COMEX.GC"].listed_months(today, CALENDARS["CME"])
    assert gc[:4] == [M(2026, 12), M(2027, 1), M(2027, 2), M(2027, 4)]
    assert M(2031, 12) in gc and M(2031, 10) not in gc  # Dec within 72 months, Oct only within 23


def test_an_expired_month_is_no_longer_listed() -> None:
    after = date(2026, 12, 16)  # au2612 expired on the 15th
    assert M(2026, 12) not in RULES["SHFE.au"].listed_months(after, CALENDARS["SHFE"])
    assert M(2026, 12) in RULES["COMEX.GC"].listed_months(after, CALENDARS["CME"])  # until the 29th


def test_the_main_month_rolls_before_expiry_by_rule_or_by_activity() -> None:
    today = date(2026, 12, 5)
    assert RULES["SHFE.au"].main_month(today, CALENDARS["SHFE"]) == M(2027, 2)
    assert RULES["COMEX.GC"].main_month(today, CALENDARS["CME"]) == M(2027, 2)
    assert RULES["NYMEX.CL"].main_month(today, CALENDARS["CME"]) == M(2027, 1)
    by_oi = {M(2027, 2): 120_000.0, M(2027, 6): 180_000.0}
    assert RULES["SHFE.au"].main_month(today, CALENDARS["SHFE"], by_oi) == M(2027, 6)


def test_a_desk_file_corrects_a_rule_and_bad_keys_say_what_to_write(tmp_path: Path) -> None:
    desk = tmp_path / "desk.toml"
    desk.write_text('[contracts."SHFE.au"]\nmain = [6, 12]\n')
    assert load_contract_rules(desk)["SHFE.au"].main == frozenset({6, 12})
    desk.write_text('[contracts."SHFE.au"]\nlast_trading = "third_friday"\n')
    with pytest.raises(ContractError, match="last_trading must be one of day_of_month"):
        load_contract_rules(desk)
    desk.write_text('[contracts."SHFE.au"]\ncode = "yyyymm"\n')
    with pytest.raises(ContractError, match='code must be "yymm"'):
        load_contract_rules(desk)
