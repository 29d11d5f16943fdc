"""The journal's canonical payload JSON: the fast encoder writes exactly the reference bytes."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmc_lab.journal.chain import _ENCODE, encode_payload


def reference(payload: dict[str, Any]) -> str:
    """The canonical text as the journal has always defined it."""
    return json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=lambda v: str(v) if isinstance(v, Decimal) else _refuse(v),
    )


def _refuse(value: object) -> str:
    raise TypeError(f"a {type(value).__name__} value cannot be journaled")


def outcome(fn: Any, payload: dict[str, Any]) -> str | type[BaseException]:
    try:
        return fn(payload)
    except (TypeError, ValueError) as exc:
        return type(exc)


scalars = (
    st.text()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.sampled_from([0.0, -0.0, 1e-4, 9.9999e-5, 1e15, 1e16, 9.999999999999998e15, 2650.1, 1e-7])
    | st.booleans()
    | st.none()
    | st.decimals(allow_nan=True, allow_infinity=True)
)
payloads = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), payloads, max_size=8))
def test_fast_encoding_is_byte_for_byte_the_reference(payload: dict[str, Any]) -> None:
    assert outcome(encode_payload, payload) == outcome(reference, payload)


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, 1e-5, 1e-9, 1e16, 1e300, 5e-324, 2**64, {1: "int key"}, ("a", 1)],
)
def test_values_orjson_writes_differently_take_the_reference_path(value: object) -> None:
    payload = {"v": value, "none": None}
    assert outcome(encode_payload, payload) == outcome(reference, payload)


def test_reference_encoder_is_the_json_module_with_the_canonical_options() -> None:
    payload = {"b": [1.5, "é\x1f"], "a": Decimal("2650.10"), "c": None}
    assert "".join(_ENCODE(payload, 0)) == reference(payload) == encode_payload(payload)
