"""The small-tuple caches in tungsten.keys never change what a key or value means."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.symbols import Symbol
from carbon.tuples import decode_tuple, encode_tuple
from tungsten.errors import CorruptStateError
from tungsten.keys import decode_key, decode_stored, encode_key, section_prefix

SECTION = Symbol("/t/cache")
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=3),
                    st.binary(max_size=3))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(scalars, max_size=3).map(tuple), min_size=1, max_size=6))
def test_cached_key_encoding_equals_direct_encoding(keys: list[tuple[Any, ...]]) -> None:
    """In any order (so the cache is warm with look-alikes such as 1 and True), every key
    encodes exactly as encode_tuple does."""
    for key in keys + keys[::-1]:
        assert encode_key(b"e", SECTION, key) == section_prefix(b"e", SECTION) + \
            encode_tuple(key)


def test_one_and_true_stay_different_keys() -> None:
    assert encode_key(b"e", SECTION, (1,)) != encode_key(b"e", SECTION, (True,))
    assert encode_key(b"e", SECTION, (True,)) == section_prefix(b"e", SECTION) + b"\x81\xf5"


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=4).map(tuple))
def test_decoded_values_are_never_shared_when_they_can_be_mutated(value: tuple[Any, ...]) -> None:
    raw = encode_tuple(value)
    first = decode_stored(raw)
    assert first == decode_tuple(raw)
    for item in first:
        if isinstance(item, list):
            item.append("mutated")
    assert decode_stored(raw) == value, "a caller's mutation leaked into a later read"


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=8), st.sampled_from([SECTION, Symbol("/a/b/c")]),
       st.lists(scalars, max_size=3).map(tuple))
def test_a_key_decodes_to_what_was_encoded(entity: bytes, section: Symbol,
                                           key: tuple[Any, ...]) -> None:
    assert decode_key(encode_key(entity, section, key)) == (entity, section, key)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_decode_as_a_key_or_fail_as_corrupt_state(raw: bytes) -> None:
    """What verify() and remote-state images rely on: one typed error, never a crash."""
    try:
        entity, section, key = decode_key(raw)
    except CorruptStateError:
        return
    assert encode_key(entity, section, key) == raw


def test_a_key_past_the_lmdb_limit_is_corrupt() -> None:
    with pytest.raises(CorruptStateError, match="exceeds 511"):
        decode_key(section_prefix(b"e", SECTION) + encode_tuple((b"x" * 600,)))
