"""How (entity, section, tuple key) becomes one LMDB key, and back.

Layout: len(entity) as one byte, the entity bytes, len(section) as one byte, the section
symbol's UTF-8 text, then the key tuple's canonical CBOR. Length prefixes make the
encoding unambiguous, and every key of one entity's section shares a byte prefix, so a
section is one contiguous range for a cursor scan. Entities are opaque bytes (the
cluster-local part of an EID; the cluster ID is stored once per node, not per key).
"""

from __future__ import annotations

from functools import lru_cache

from carbon.symbols import Symbol, SymbolError
from carbon.tuples import CarbonTuple, TupleError, decode_tuple, encode_tuple
from tungsten.errors import CorruptStateError, KeyTooLargeError

MAX_KEY_BYTES = 511
"""LMDB's compiled-in default key limit."""
MAX_ENTITY_BYTES = 255
MAX_VALUE_BYTES = 1 << 20
"""A section value is a record, not a blob store; keep each under 1 MiB."""


_IMMUTABLE = frozenset({int, bytes, str, bool, type(None)})
_SMALL = 96
"""Tuples at most this many bytes, made of immutable scalars only, are encoded and decoded
once and then served from a bounded cache. Why: dispatch reads the same few binding
tuples on every call, and the canonical CBOR round trip costs more than the read."""


def entity_prefix(entity: bytes) -> bytes:
    """The byte prefix shared by every key of `entity`."""
    if not isinstance(entity, bytes) or not 0 < len(entity) <= MAX_ENTITY_BYTES:
        raise KeyTooLargeError(f"entity must be 1-{MAX_ENTITY_BYTES} bytes")
    return bytes((len(entity),)) + entity


def section_prefix(entity: bytes, section: Symbol) -> bytes:
    """The byte prefix shared by every key of `section` in `entity`."""
    text = section.text.encode()
    return entity_prefix(entity) + bytes((len(text),)) + text


@lru_cache(maxsize=8192)
def _encode_scalars(key: CarbonTuple, _types: tuple[type, ...]) -> bytes:
    """encode_tuple for a scalar-only tuple; `_types` keeps 1 and True apart."""
    return encode_tuple(key)


def _encode_tuple_cached(key: CarbonTuple) -> bytes:
    if isinstance(key, tuple) and len(key) <= 8:
        types = tuple(type(item) for item in key)
        if _IMMUTABLE.issuperset(types):
            return _encode_scalars(key, types)
    return encode_tuple(key)


def encode_key(entity: bytes, section: Symbol, key: CarbonTuple) -> bytes:
    """The LMDB key; raises KeyTooLargeError past LMDB's 511-byte limit."""
    raw = section_prefix(entity, section) + _encode_tuple_cached(key)
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLargeError(f"key for {section} is {len(raw)} bytes; the limit for entity, "
                               f"section and key together is {MAX_KEY_BYTES}")
    return raw


def decode_key(raw: bytes) -> tuple[bytes, Symbol, CarbonTuple]:
    """Inverse of encode_key: (entity, section, key tuple). CorruptStateError for bytes
    that are not such a key (written by something else, or sent by a peer)."""
    if len(raw) > MAX_KEY_BYTES:
        raise CorruptStateError(f"key of {len(raw)} bytes exceeds {MAX_KEY_BYTES}")
    if not raw or raw[0] == 0 or len(raw) <= 1 + raw[0]:
        raise CorruptStateError("key has no entity, or is shorter than its entity length")
    entity_end = 1 + raw[0]
    section_end = entity_end + 1 + raw[entity_end]
    if section_end > len(raw):
        raise CorruptStateError("key is shorter than its section length")
    try:
        section = Symbol(raw[entity_end + 1:section_end].decode())
    except (UnicodeDecodeError, SymbolError) as exc:
        raise CorruptStateError(f"key section is not a symbol: {exc}") from None
    return raw[1:entity_end], section, decode_stored(raw[section_end:])


def encode_value(value: CarbonTuple) -> bytes:
    """The stored bytes of a value tuple; bounded so one record cannot fill the map."""
    raw = encode_tuple(value)
    if len(raw) > MAX_VALUE_BYTES:
        raise KeyTooLargeError(f"value of {len(raw)} bytes exceeds {MAX_VALUE_BYTES}")
    return raw


def decode_stored(raw: bytes) -> CarbonTuple:
    """Decode stored bytes; anything that is not a tuple means foreign or damaged state."""
    if len(raw) <= _SMALL:
        cached = _decode_scalars(raw)
        if cached is not None:
            return cached
    return _decode(raw)


@lru_cache(maxsize=8192)
def _decode_scalars(raw: bytes) -> CarbonTuple | None:
    """A small stored tuple if it holds only immutable scalars (safe to share), else None."""
    value = _decode(raw)
    return value if all(type(item) in _IMMUTABLE for item in value) else None


def _decode(raw: bytes) -> CarbonTuple:
    try:
        return decode_tuple(raw)
    except TupleError as exc:
        raise CorruptStateError(f"stored record is not a CARBON tuple: {exc.message}") from None
