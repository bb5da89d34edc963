"""How (entity, section, tuple key) becomes one LMDB key, and back.

Layout: len(entity) as one byte, the entity bytes, len(section) as one byte, the section
symbol's UTF-8 text, then the key tuple's canonical CBOR. Length prefixes make the
encoding unambiguous, and every key of one entity's section shares a byte prefix, so a
section is one contiguous range for a cursor scan. Entities are opaque bytes (the
cluster-local part of an EID; the cluster ID is stored once per node, not per key).
Keys starting with a zero byte are the store's own records (the dispatch version), which
no entity key can be.
"""

from __future__ import annotations

from functools import lru_cache

from carbon.cbor import MAX_INT, MIN_INT
from carbon.cbor_heads import BYTE, head
from carbon.symbols import Symbol, SymbolError
from carbon.tuples import CarbonTuple, TupleError, decode_tuple, encode_tuple
from tungsten.errors import CorruptStateError, KeyTooLargeError

MAX_KEY_BYTES = 511
"""LMDB's compiled-in default key limit."""
MAX_ENTITY_BYTES = 255
MAX_VALUE_BYTES = 1 << 20
"""A section value is a record, not a blob store; keep each under 1 MiB."""


META_PREFIX = b"\x00"
"""Keys that start with a zero byte are the store's own records, never an entity's (an
entity is 1-255 bytes, so its keys start with a non-zero length byte)."""
DISPATCH_VERSION_KEY = META_PREFIX + b"dispatch-version"
"""Holds `(n,)`: bumped in the same write transaction as any change to a dispatch section,
so a reader's snapshot says which dispatch state it shows (see dispatch_version)."""
DISPATCH_SECTIONS = frozenset({"/argon/mercury/entity", "/argon/carbon/endpoints",
                               "/argon/mercury/personas", "/argon/mercury/entity-handlers"})
"""The sections a call's route is read from (lithium.bindings names them; a test keeps
the two lists equal, since tungsten cannot import lithium)."""


def version_of(raw: bytes | None) -> int:
    """The counter stored under a version key (absent: 0, a store written before them)."""
    if raw is None:
        return 0
    value = decode_stored(raw)
    if len(value) != 1 or type(value[0]) is not int or value[0] < 0:
        raise CorruptStateError(f"version record {value!r} is not (n,)")
    return value[0]


_IMMUTABLE = frozenset({int, bytes, str, bool, type(None)})
_SMALL = 96
"""Tuples at most this many bytes, made of immutable scalars only, are encoded and decoded
once and then served from a bounded cache. Why: dispatch reads the same few binding
tuples on every call, and the canonical CBOR round trip costs more than the read."""


_SECTION_PARTS: dict[str, bytes] = {}
_MAX_SECTION_PARTS = 4096
"""Sections whose length byte and text are kept encoded (why: every key of a read or
write carries its section, and a few sections serve almost every call)."""


def entity_prefix(entity: bytes) -> bytes:
    """The byte prefix shared by every key of `entity`."""
    if type(entity) is not bytes:
        if not isinstance(entity, bytes):
            raise KeyTooLargeError(f"entity must be 1-{MAX_ENTITY_BYTES} bytes")
        entity = bytes(entity)
    size = len(entity)
    if not 0 < size <= MAX_ENTITY_BYTES:
        raise KeyTooLargeError(f"entity must be 1-{MAX_ENTITY_BYTES} bytes")
    return BYTE[size] + entity


def _section_part(section: Symbol) -> bytes:
    """The length byte and UTF-8 text of a section, as every key of it carries them."""
    text = section.text
    part = _SECTION_PARTS.get(text)
    if part is None:
        raw = text.encode()
        part = BYTE[len(raw)] + raw
        if len(_SECTION_PARTS) >= _MAX_SECTION_PARTS:
            _SECTION_PARTS.clear()
        _SECTION_PARTS[text] = part
    return part


def section_prefix(entity: bytes, section: Symbol) -> bytes:
    """The byte prefix shared by every key of `section` in `entity`."""
    return entity_prefix(entity) + _section_part(section)


def encode_flat(key: CarbonTuple) -> bytes | None:
    """encode_tuple's exact bytes for a tuple of ints, byte strings and text, built by
    concatenation; None for any other shape (then encode_tuple decides, and raises).

    Why: handler and endpoint keys are such tuples, and building their canonical CBOR
    directly costs a fraction of the generic encoder's kind walk. Equality with
    encode_tuple is a property test (tests/property/tungsten/test_key_encoding_props.py).
    """
    size = len(key)
    if size >= 24:
        return None
    parts = [BYTE[0x80 | size]]
    for item in key:
        if type(item) is int:
            if 0 <= item < 24:
                parts.append(BYTE[item])
            elif not MIN_INT <= item <= MAX_INT:
                return None
            else:
                parts.append(head(0, item) if item >= 0 else head(1, -1 - item))
        elif type(item) is str:
            try:
                raw = item.encode()
            except UnicodeEncodeError:
                return None
            parts.append(head(3, len(raw)))
            parts.append(raw)
        elif type(item) is bytes:
            parts.append(head(2, len(item)))
            parts.append(item)
        else:
            return None
    return b"".join(parts)


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
    size = len(entity) if type(entity) is bytes else 0
    prefix = BYTE[size] + entity if 0 < size <= MAX_ENTITY_BYTES \
        else entity_prefix(entity)
    part = _SECTION_PARTS.get(section.text)
    if part is None:
        part = _section_part(section)
    tail = encode_flat(key) if type(key) is tuple else None
    raw = prefix + part + (_encode_tuple_cached(key) if tail is None else tail)
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
