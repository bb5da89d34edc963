"""CARBON tuples: the keys and values stored in TUNGSTEN sections.

A tuple is a short, ordered sequence of CARBON values, such as `(endpoint, operation)` or
`("/example/persona", 1, 2)`. At rest it is the canonical CBOR encoding of an array, so
equal tuples always have equal bytes (LMDB compares keys bytewise) and decoding checks
the exact bytes. Elements are plain CARBON values: int, bytes, str, bool, None, list, dict.
"""

from __future__ import annotations

from typing import Any

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError

CarbonTuple = tuple[Value, ...]

MAX_TUPLE_ITEMS = 64
"""Tuples are keys and small records, not collections; put collections inside an element."""


class TupleError(MercuryError):
    """A value that is not a valid CARBON tuple, or bytes that do not encode one."""

    code = ErrorCode.INVALID_TUPLE


def make_tuple(items: Any) -> CarbonTuple:
    """Validate a Python tuple as a CARBON tuple (why: catch bad keys where they are made)."""
    if not isinstance(items, tuple):
        raise TupleError(f"a CARBON tuple must be a Python tuple, not {type(items).__name__}")
    if len(items) > MAX_TUPLE_ITEMS:
        raise TupleError(f"tuple of {len(items)} items exceeds the {MAX_TUPLE_ITEMS}-item limit")
    return items


def encode_tuple(items: CarbonTuple) -> bytes:
    """Canonical bytes of a tuple; raises TupleError for values CARBON cannot hold."""
    make_tuple(items)
    try:
        return cbor.dumps(list(items))
    except cbor.CodecError as exc:
        raise TupleError(f"tuple {items!r} holds a value CARBON cannot encode: "
                         f"{exc.message}") from None


def decode_tuple(data: bytes) -> CarbonTuple:
    """Decode canonical bytes back to a tuple; raises TupleError on anything else."""
    try:
        value = cbor.loads(data)
    except cbor.CodecError as exc:
        raise TupleError(f"stored bytes are not a CARBON tuple: {exc.message}") from None
    if not isinstance(value, list):
        raise TupleError(f"stored value is a {type(value).__name__}, not a tuple")
    if len(value) > MAX_TUPLE_ITEMS:
        raise TupleError(f"stored tuple has {len(value)} items, over {MAX_TUPLE_ITEMS}")
    return tuple(value)
