"""Instrument ids: one parser for VENUE.SYMBOL, one constant for the FX rate's id."""

from __future__ import annotations

import doctest

import pytest

from cmc_lab.core import ids
from cmc_lab.core.ids import USDCNH_ID, split_instrument_id, symbol_of, venue_of
from cmc_lab.core.specs import load_specs


def test_split_instrument_id_gives_venue_and_symbol() -> None:
    assert split_instrument_id("SHFE.au") == ("SHFE", "au")
    assert split_instrument_id("COMEX.GC") == ("COMEX", "GC")
    assert split_instrument_id(USDCNH_ID) == ("FX", "USDCNH")


def test_split_instrument_id_cuts_at_the_first_dot() -> None:
    assert split_instrument_id("LME.CA.3M") == ("LME", "CA.3M")


@pytest.mark.parametrize("bad", ["GC", "", ".GC", "COMEX.", ".", None, 42])
def test_split_instrument_id_refuses_what_is_not_venue_dot_symbol_and_shows_the_form(bad: object) -> None:
    with pytest.raises(ValueError, match=r"is not VENUE\.SYMBOL; write it like 'SHFE\.au' or 'COMEX\.GC'"):
        split_instrument_id(bad)  # type: ignore[arg-type]


def test_venue_of_and_symbol_of_agree_with_the_parser_on_every_shipped_instrument() -> None:
    for instrument_id, inst in load_specs().instruments.items():
        assert (venue_of(instrument_id), symbol_of(instrument_id)) == split_instrument_id(instrument_id)
        assert (inst.venue, inst.symbol) == split_instrument_id(instrument_id)


def test_symbol_of_a_bare_symbol_is_the_symbol() -> None:
    assert symbol_of("GC") == "GC"


def test_the_fx_rate_id_names_a_shipped_fx_instrument() -> None:
    fx = load_specs().instrument(USDCNH_ID)
    assert not fx.tradeable
    assert split_instrument_id(USDCNH_ID)[0] == fx.venue


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ids)
    assert result.attempted > 0
    assert result.failed == 0
