"""Journal hash-chain layer: canonical payload JSON and the SHA-256 link of one row (no IO).

A long write is chained a slice ahead on a helper thread (:func:`chained_slices`); the rest is pure.

Each row's hash covers its own fields and the previous row's hash, so editing, removing or
reordering any row breaks every link after it. The byte string hashed is the row's fields
in column order joined by the unit separator ``\\x1f``; absent ids are empty strings. The
writer refuses fields holding ``\\x1f`` and stores no empty ids, which makes the encoding
unambiguous: any row whose fields do not split back into exactly eleven parts was edited.
"""

from __future__ import annotations

from _json import encode_basestring, make_encoder
from collections.abc import Generator, Iterable, Iterator, Sequence
from decimal import Decimal
from hashlib import sha256
from itertools import islice
from queue import SimpleQueue
from threading import Thread
from typing import Any

import orjson

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
# default=_json_default) without rebuilding an encoder per call. No circular-reference
# check: payloads are trees. This is the definition of the canonical text.
_ENCODE = make_encoder(None, _json_default, encode_basestring, None, ":", ",", True, False, False)

# orjson writes the same bytes as _ENCODE for str keys, strings (the same escapes), ints, bools,
# None, Decimal (through the same default), lists, tuples and dicts, and for floats from 1e-4 up
# to 1e16 (written without an exponent by both). It differs for floats outside that range
# ("1e-07" against "1e-7", "1e-05" against "0.00001"), for NaN and infinity (null; the canonical
# encoder refuses them), for ints beyond 64 bits and non-str keys (it refuses them) and for
# enums and other types (its own conversions). So a payload made only of those plain values
# goes to orjson, and anything else, or anything orjson refuses, to the canonical encoder.
_PLAIN = frozenset({str, int, bool, type(None), Decimal})
_OPTIONS = orjson.OPT_SORT_KEYS


def _plain(value: Any) -> bool:
    """Whether orjson writes ``value`` exactly as the canonical encoder does."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is float:
        return value == 0.0 or 1e-4 <= abs(value) < 1e16  # NaN and infinity fail both
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return False
    for item in value:  # noqa: SIM110 (a loop, not all(genexpr): this runs for every nested payload written)
        if type(item) not in _PLAIN and not _plain(item):
            return False
    return True


def encode_payload(payload: dict[str, Any]) -> str:
    """Canonical JSON of a payload: sorted keys, no spaces, UTF-8 text, Decimal as exact str.

    Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for NaN or infinity.

    Examples
    --------
    >>> encode_payload({"qty": 3, "last_px": Decimal("2650.10")})
    '{"last_px":"2650.10","qty":3}'
    """
    if type(payload) is dict and (_PLAIN.issuperset(map(type, payload.values())) or _plain(payload)):
        try:
            return orjson.dumps(payload, default=_json_default, option=_OPTIONS).decode()
        except orjson.JSONEncodeError:
            pass  # a big int, a non-str key: the canonical encoder decides
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


#: Stored values a row takes in :func:`chain_slice`'s flat list (the twelve columns).
WIDTH = 12


def chain_slice(
    rows: Iterator[Sequence[Any]], tip: list[tuple[int, str]], limit: int, first: int
) -> list[Any]:
    """The stored values of up to ``limit`` more ``rows`` (each ``kind, ts_event, ts_init, mono_ns,
    payload, order_id, ticket_id, venue, instrument``) chained on from ``tip[0]``, a (seq, hash); the
    hot path of writes. Empty when ``rows`` is exhausted.

    Flat, :data:`WIDTH` values a row in column order, as one multi-row INSERT binds them (no tuple a
    row). ``tip[0]`` becomes the new head. Empty ids are stored as absent. The hash is
    :func:`row_hash`'s, computed inline (this loop runs once per row of every write). A row that
    cannot be journaled raises TypeError or ValueError naming its place after ``first``, the seq
    before the write's first row.
    """
    seq, prev = tip[0]
    out: list[Any] = []
    add = out.extend
    encode, plain, dumps, fails = encode_payload, _PLAIN.issuperset, orjson.dumps, orjson.JSONEncodeError
    for row in islice(rows, limit):
        seq += 1
        try:
            kind, ts_event, ts_init, mono_ns, payload, order_id, ticket_id, venue, instrument = row
            if not (
                type(ts_event) is int
                and type(ts_init) is int
                and type(mono_ns) is int
                and type(kind) is str
                and kind
                and isinstance(payload, dict)
            ):
                raise TypeError(
                    "kind must be a non-empty str, ts_event, ts_init and mono_ns ints (ns) and payload a "
                    f"dict; got {row!r}"
                )
            if type(payload) is dict and plain(map(type, payload.values())):  # encode_payload, inlined
                try:
                    text = dumps(payload, default=_json_default, option=_OPTIONS).decode()
                except fails:
                    text = encode(payload)
            else:
                text = encode(payload)
            ids = f"{kind}\x1f{order_id or ''}\x1f{ticket_id or ''}\x1f{venue or ''}\x1f{instrument or ''}"
            if ids.count("\x1f") != 4:  # the payload is JSON: its control characters are escaped
                raise ValueError(
                    "the kind and the ids of a journal row must not contain the control character \\x1f"
                )
            digest = sha256(
                f"{seq}\x1f{ts_event}\x1f{ts_init}\x1f{mono_ns}\x1f{ids}\x1f{text}\x1f{prev}".encode()
            ).hexdigest()
        except (TypeError, ValueError) as exc:
            refused = f"journal row {seq - first} of this write was refused (nothing was written): "
            raise (TypeError if isinstance(exc, TypeError) else ValueError)(f"{refused}{exc}") from exc
        add(
            (
                seq,
                ts_event,
                ts_init,
                mono_ns,
                kind,
                order_id or None,
                ticket_id or None,
                venue or None,
                instrument or None,
                text,
                prev,
                digest,
            )
        )
        prev = digest
    tip[0] = (seq, prev)
    return out


def chained_slices(
    rows: Iterable[Sequence[Any]], tip: list[tuple[int, str]], limit: int
) -> Generator[list[Any], None, None]:
    """:func:`chain_slice` of all ``rows``, ``limit`` rows at a time; once exhausted, ``tip[0]`` is
    the new head. Close it (``contextlib.closing``) if the consumer stops early.

    A write of more than one slice chains the next slice on a helper thread while the consumer
    inserts the one it was given: a multi-row INSERT runs in SQLite without the GIL for as long as
    chaining a slice takes, so on a machine with a core to spare the two overlap (docs/benchmarks.md,
    figure (c)). The rows are taken from ``rows`` on the caller's thread, in order; the helper only
    chains lists of them. An exception raised chaining a row is raised here, the same object.
    """
    first, remaining = tip[0][0], iter(rows)
    chunk = list(islice(remaining, limit))
    after = list(islice(remaining, limit)) if len(chunk) == limit else []
    if not after:  # one slice at most: nothing to overlap
        if chunk:
            yield chain_slice(iter(chunk), tip, limit, first)
        return
    todo: SimpleQueue[list[Sequence[Any]] | None] = SimpleQueue()
    done: SimpleQueue[list[Any] | BaseException] = SimpleQueue()

    def chain_ahead() -> None:
        while (job := todo.get()) is not None:
            try:
                done.put(chain_slice(iter(job), tip, limit, first))
            except BaseException as exc:  # handed to the consumer, raised there
                done.put(exc)
                return

    helper = Thread(target=chain_ahead, name="journal-chain", daemon=True)
    helper.start()
    try:
        todo.put(chunk)
        while True:
            if after:  # queued only now: the helper stops after one slice ahead and frees the GIL
                todo.put(after)
            flat = done.get()
            if isinstance(flat, BaseException):
                raise flat
            yield flat
            if not after:
                return
            after = list(islice(remaining, limit))
    finally:
        todo.put(None)
        helper.join()
