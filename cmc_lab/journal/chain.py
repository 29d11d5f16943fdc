"""Journal hash-chain layer: canonical payload JSON and the SHA-256 link of one row (pure, no IO).

Each row's hash covers its own fields and the previous row's hash, so editing, removing or
reordering any row breaks every link after it. The byte string hashed is the row's fields
in column order joined by the unit separator ``\\x1f``; absent ids are empty strings. The
writer refuses fields holding ``\\x1f`` and stores no empty ids, which makes the encoding
unambiguous: any row whose fields do not split back into exactly eleven parts was edited.
"""

from __future__ import annotations

from _json import encode_basestring, make_encoder
from decimal import Decimal
from hashlib import sha256
from typing import Any

#: ``prev_hash`` of the first row.
GENESIS = "0" * 64

_SEPARATORS = 10  # eleven hashed fields


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(
        f"a {type(value).__name__} value cannot be journaled; "
        "convert it to str, int, float, bool, None, Decimal, list or dict"
    )


# The C encoder behind json.dumps, built once: the same output as json.dumps(payload,
# sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
# default=_json_default) without rebuilding an encoder per call, which is a third of
# the per-row cost of the hash chain. No circular-reference check: payloads are trees.
_ENCODE = make_encoder(None, _json_default, encode_basestring, None, ":", ",", True, False, False)


def encode_payload(payload: dict[str, Any]) -> str:
    """Canonical JSON of a payload: sorted keys, no spaces, UTF-8 text, Decimal as exact str.

    Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for NaN or infinity.

    Examples
    --------
    >>> encode_payload({"qty": 3, "last_px": Decimal("2650.10")})
    '{"last_px":"2650.10","qty":3}'
    """
    return "".join(_ENCODE(payload, 0))


def row_hash(
    seq: int,
    ts_event: int,
    ts_init: int,
    mono_ns: int,
    kind: str,
    order_id: str | None,
    ticket_id: str | None,
    venue: str | None,
    instrument: str | None,
    payload: str,
    prev_hash: str,
) -> str:
    """SHA-256 hex digest linking one row to the previous one; used to write and to verify.

    Raises ``ValueError`` when a field holds the separator ``\\x1f`` or is not encodable as
    UTF-8 (a writer refuses such a row; a verifier reports it as edited).

    Examples
    --------
    >>> len(row_hash(1, 10, 11, 5, "OrderSubmitted", "C-1", None, "COMEX", "COMEX.GC", "{}", GENESIS))
    64
    """
    text = (
        f"{seq}\x1f{ts_event}\x1f{ts_init}\x1f{mono_ns}\x1f{kind}\x1f{order_id or ''}\x1f"
        f"{ticket_id or ''}\x1f{venue or ''}\x1f{instrument or ''}\x1f{payload}\x1f{prev_hash}"
    )
    if text.count("\x1f") != _SEPARATORS:
        raise ValueError("the kind and the ids of a journal row must not contain the control character \\x1f")
    return sha256(text.encode()).hexdigest()
