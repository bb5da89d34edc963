"""Strict canonical CBOR: the one encoding used on the wire and for anything signed.

Encoding is deterministic (RFC 8949 section 4.2: shortest forms, definite lengths, map
keys sorted by their encoded bytes). Decoding accepts a byte string only if it is exactly
the canonical encoding of one value of the permitted kinds, so trailing bytes, duplicate
map keys, indefinite lengths and non-shortest forms are all rejected, and signatures can
cover exact bytes. Permitted kinds: int, bytes, str, bool, None, list, dict. No tags,
floats or other simple values.

cbor2.loads ignores trailing bytes and accepts duplicate keys by default; we pass
allow_duplicate_keys=False / allow_indefinite=False and then compare the canonical
re-encoding with the input, which catches everything else. Every failure is a
CodecError with a stable code; no other exception escapes for any input.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cbor2

from carbon.error_codes import ErrorCode, MercuryError

Value = int | bytes | str | bool | None | list["Value"] | dict["Value", "Value"]

MIN_INT = -(2**64)
MAX_INT = 2**64 - 1
"""The integers CBOR major types 0 and 1 carry. Beyond them cbor2 uses bignum tags (2, 3),
which CARBON forbids like every tag, so both `dumps` and `loads` refuse such integers."""


class CodecError(MercuryError):
    """Bytes that are not one canonical CBOR value within limits, or a value of a wrong shape."""

    code = ErrorCode.MALFORMED


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a decoder will accept from a peer."""

    max_bytes: int = 2 * 1024 * 1024 + 4096
    max_depth: int = 16
    max_items: int = 65_536


DEFAULT_LIMITS = Limits()


def dumps(value: Any) -> bytes:
    """Encode canonically. Raises CodecError for values outside the permitted kinds."""
    try:
        _check_kinds(value, 0, DEFAULT_LIMITS.max_depth * 4)
        return cbor2.dumps(value, canonical=True)
    except CodecError:
        raise
    except (cbor2.CBOREncodeError, TypeError, ValueError, RecursionError) as exc:
        raise CodecError(f"cannot encode value: {exc}", ErrorCode.WRONG_TYPE) from None


def dumps_built(value: Any) -> bytes:
    """Encode canonically a value our own code built from checked fields (ints, bytes,
    text, and lists/maps of them), skipping the kind walk `dumps` does. Why: node
    messages are encoded several times per call; the walk costs as much as the encode."""
    return cbor2.dumps(value, canonical=True)


def dumps_flat(value: list[int | bytes | str]) -> bytes:
    """Hot-path encoder for a flat array of ints (incl. IntEnum), bytes and text.

    The caller guarantees the element kinds (the transport's fixed envelopes), so the
    generic kind walk of `dumps` is skipped; the bytes are identical to `dumps(value)`.
    """
    return cbor2.dumps(value)


def loads_flat(data: bytes, max_bytes: int) -> list[int | bytes | str]:
    """Hot-path decoder for one flat array of ints, byte strings and text strings.

    Same acceptance rule as `loads` (exactly the canonical encoding, nothing after it):
    the items' kinds and ranges checked in one loop, then the array re-encoded (in C)
    and compared with the input. Why not trust an arithmetic canonical length instead:
    cbor2 decodes some tags by default, and a reference (shared values 28/29, string
    references 256/25) or a bignum (2/3, whose tag head may itself be padded) can make an
    input *shorter* than its value's canonical bytes, so padded heads elsewhere bring a
    tagged input back to exactly the canonical length; and that Python loop costs more
    than the C re-encoding. A tagged input never re-encodes to itself (cbor2 emits no tag
    for these kinds within range), so every tag is refused. Raises only CodecError.
    """
    if len(data) > max_bytes:
        raise CodecError(f"{len(data)} bytes exceeds the {max_bytes}-byte limit",
                         ErrorCode.TOO_LARGE)
    value = _decode(data, _FLAT_LIMITS)
    if type(value) is not list:
        raise CodecError("expected an array", ErrorCode.WRONG_TYPE)
    for item in value:
        kind = type(item)
        if kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise CodecError(f"an integer outside {MIN_INT}..{MAX_INT} (a bignum tag)",
                                 ErrorCode.FORBIDDEN_VALUE)
        elif kind is not bytes and kind is not str:
            raise CodecError(f"forbidden item of type {kind.__name__} in a flat array",
                             ErrorCode.WRONG_TYPE)
    if cbor2.dumps(value) != data:
        raise _non_canonical_error(data)
    return value


_FLAT_LIMITS = Limits(max_depth=2)


def loads(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Value:
    """Decode exactly one canonical value that fills `data`. Raises only CodecError."""
    if len(data) > limits.max_bytes:
        raise CodecError(f"{len(data)} bytes exceeds the {limits.max_bytes}-byte limit",
                         ErrorCode.TOO_LARGE)
    value = _decode(data, limits)
    _check_value(value, limits)
    if (b"\xc2" in data or b"\xc3" in data) and _holds_bignum(value):
        raise CodecError(f"an integer outside {MIN_INT}..{MAX_INT} (a bignum tag)",
                         ErrorCode.FORBIDDEN_VALUE)
    if cbor2.dumps(value, canonical=True) != data:
        raise _non_canonical_error(data)
    checked: Value = value
    return checked


def _decode(data: bytes, limits: Limits) -> Any:
    try:
        return cbor2.loads(
            data,
            max_depth=limits.max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            str_errors="strict",
        )
    except RecursionError:
        raise CodecError("nesting too deep", ErrorCode.TOO_DEEP) from None
    except cbor2.CBORDecodeEOF:
        raise CodecError("truncated CBOR", ErrorCode.MALFORMED) from None
    except cbor2.CBORDecodeError as exc:
        raise CodecError(*_classify(str(exc))) from None
    except Exception as exc:  # cbor2 raises assorted types from tag decoders
        raise CodecError(f"undecodable CBOR: {type(exc).__name__}",
                         ErrorCode.MALFORMED) from None


def _classify(text: str) -> tuple[str, ErrorCode]:
    low = text.lower()
    if "duplicate" in low:
        return "duplicate map key", ErrorCode.DUPLICATE_KEY
    if "indefinite" in low:
        return "indefinite-length item", ErrorCode.INDEFINITE_LENGTH
    if "depth" in low:
        return "nesting too deep", ErrorCode.TOO_DEEP
    return f"malformed CBOR: {text}", ErrorCode.MALFORMED


def _non_canonical_error(data: bytes) -> CodecError:
    try:
        consumed = _consumed_length(data)
    except Exception:
        consumed = len(data)
    if consumed < len(data):
        return CodecError(f"{len(data) - consumed} trailing bytes after the value",
                          ErrorCode.TRAILING_BYTES)
    return CodecError("not the canonical encoding (RFC 8949 4.2)", ErrorCode.NON_CANONICAL)


def _consumed_length(data: bytes) -> int:
    fp = io.BytesIO(data)
    cbor2.CBORDecoder(fp, allow_indefinite=False).decode()
    return fp.tell()


_SCALARS = frozenset({int, bytes, str, bool, type(None)})


def _check_value(value: Any, limits: Limits) -> None:
    """Every item is a permitted kind; item count and nesting within `limits`.

    Iterative (an explicit stack of containers) rather than recursive: the common case is
    a handful of scalars per container, checked by one set lookup each.
    """
    if type(value) in _SCALARS:
        return
    count, stack = 1, [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > limits.max_depth:
            raise CodecError("nesting too deep", ErrorCode.TOO_DEEP)
        kind = type(container)
        if kind is list:
            items: Any = container
        elif kind is dict:
            items = [x for pair in container.items() for x in pair]
        else:
            raise CodecError(f"forbidden CBOR item of type {kind.__name__}",
                             ErrorCode.FORBIDDEN_VALUE)
        count += len(items)
        if count > limits.max_items:
            raise CodecError(f"more than {limits.max_items} items", ErrorCode.TOO_MANY_ITEMS)
        for item in items:
            if type(item) not in _SCALARS:
                stack.append((item, depth + 1))


def _holds_bignum(value: Any) -> bool:
    """Whether a decoded value holds an int only a bignum tag can carry.

    cbor2 turns tags 2 and 3 into plain ints, and a large one re-encodes to the same bytes,
    so the canonical comparison cannot see it. `loads` calls this only when the input holds
    a 0xc2 or 0xc3 byte (the heads of those tags), keeping the common path free of it.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is int:
            if not MIN_INT <= item <= MAX_INT:
                return True
        elif kind is list:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
    return False


def _check_kinds(value: Any, depth: int, max_depth: int) -> None:
    """Only permitted kinds (IntEnum counts as int; tuples as arrays), nesting bounded."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        kind = type(item)
        if kind is int or (kind not in _SCALARS and isinstance(item, int)):
            if not MIN_INT <= item <= MAX_INT:
                raise CodecError(f"cannot encode an integer outside {MIN_INT}..{MAX_INT}: "
                                 "CARBON has no bignums", ErrorCode.WRONG_TYPE)
            continue
        if kind in _SCALARS:
            continue
        if level >= max_depth:
            raise CodecError("value nested too deeply to encode", ErrorCode.TOO_DEEP)
        if kind is list or kind is tuple:
            stack.extend((x, level + 1) for x in item)
        elif kind is dict:
            stack.extend((x, level + 1) for pair in item.items() for x in pair)
        else:
            raise CodecError(f"cannot encode {kind.__name__}: only int, bytes, str, bool, "
                             "None, list and dict are permitted", ErrorCode.WRONG_TYPE)
