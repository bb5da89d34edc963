"""The concatenated key encoding gives the bytes the generic CBOR encoder gives, so keys on
disk, their order and their meaning are unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.cbor import MAX_INT, MIN_INT
from carbon.symbols import Symbol
from carbon.tuples import TupleError, encode_tuple
from tungsten.errors import KeyTooLargeError
from tungsten.keys import encode_flat, encode_key

edges = st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, MAX_INT,
                         MAX_INT + 1, -1, -24, -25, -256, -257, -(2**32), MIN_INT,
                         MIN_INT - 1])
ints = st.one_of(st.integers(-300, 300), st.integers(MIN_INT - 5, MAX_INT + 5), edges)
texts = st.text(max_size=30)  # includes lone surrogates, which CBOR cannot carry
flat_items = st.one_of(ints, texts, st.binary(max_size=300))
other_items = st.one_of(st.booleans(), st.none(), st.lists(st.integers(0, 3), max_size=2))
SECTIONS = st.sampled_from([Symbol("/argon/mercury/entity-handlers"), Symbol("/a/b"),
                            Symbol("/argon/carbon/endpoints")])


def _reference_key(entity: bytes, section: Symbol, key: tuple[Any, ...]) -> bytes:
    """The layout tungsten.keys documents, built the slow way."""
    text = section.text.encode()
    return bytes((len(entity),)) + entity + bytes((len(text),)) + text + encode_tuple(key)


def _generic(key: tuple[Any, ...]) -> bytes | type[Exception]:
    try:
        return encode_tuple(key)
    except TupleError:
        return TupleError


@settings(max_examples=1000, deadline=None)
@given(st.lists(flat_items, max_size=30).map(tuple))
def test_flat_encoding_is_the_canonical_encoding_or_declines(key: tuple[Any, ...]) -> None:
    """Never different bytes: either encode_tuple's exact bytes, or None (then the generic
    encoder decides, and it refuses what CBOR cannot carry)."""
    flat = encode_flat(key)
    if flat is not None:
        assert flat == encode_tuple(key)
    else:
        assert (len(key) >= 24 or _generic(key) is TupleError
                or any(type(i) is int and not MIN_INT <= i <= MAX_INT for i in key))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(flat_items, other_items), min_size=1, max_size=4).map(tuple))
def test_other_shapes_are_left_to_the_generic_encoder(key: tuple[Any, ...]) -> None:
    if any(type(item) not in (int, str, bytes) for item in key):
        assert encode_flat(key) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=40), SECTIONS,
       st.lists(st.one_of(st.integers(-70000, 70000), st.text(max_size=5),
                          st.binary(max_size=5), st.booleans(), st.none()),
                max_size=4).map(tuple))
def test_keys_are_byte_identical_to_the_documented_layout(entity: bytes, section: Symbol,
                                                          key: tuple[Any, ...]) -> None:
    """Same bytes as before, so existing stores read as they did and key order (a
    section's scan order) is unchanged; equal bytes make injectivity the old one too."""
    assert encode_key(entity, section, key) == _reference_key(entity, section, key)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=3),
                          st.lists(st.integers(0, 300), max_size=3).map(tuple)),
                min_size=2, max_size=8, unique=True))
def test_distinct_keys_stay_distinct_and_in_the_same_order(
        pairs: list[tuple[bytes, tuple[int, ...]]]) -> None:
    section = Symbol("/argon/mercury/entity-handlers")
    new = [encode_key(entity, section, key) for entity, key in pairs]
    old = [_reference_key(entity, section, key) for entity, key in pairs]
    assert len(set(new)) == len(pairs)
    assert sorted(range(len(pairs)), key=new.__getitem__) == \
        sorted(range(len(pairs)), key=old.__getitem__)


@pytest.mark.parametrize("entity", [b"", b"x" * 256, bytearray(b"e")])
def test_entities_are_checked_as_before(entity: Any) -> None:
    with pytest.raises(KeyTooLargeError):
        encode_key(entity, Symbol("/a/b"), (1,))


def test_a_one_and_true_are_different_keys_on_the_fast_path_too() -> None:
    assert encode_flat((1,)) == b"\x81\x01"
    assert encode_flat((True,)) is None
    assert encode_key(b"e", Symbol("/a/b"), (True,)).endswith(b"\x81\xf5")
