"""Property tests for CARBON tuples, declared types, protocol specs and names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import ErrorCode
from carbon.names import InvalidNameError, parse_name
from carbon.protocol_spec import (
    Interface,
    OperationKind,
    SpecError,
    connection,
    message,
    request,
    spec_from_value,
    spec_to_value,
)
from carbon.tuples import TupleError, decode_tuple, encode_tuple
from carbon.types import (
    INT,
    NULL,
    CarbonType,
    ListOf,
    MapOf,
    PayloadTypeError,
    Record,
    TypeDeclarationError,
    decode_value,
    dumps_typed,
    encode_value,
    list_of,
    loads_typed,
    map_of,
    optional,
    record,
    type_from_value,
    type_to_value,
)
from tests.property.carbon import type_strategies

scalars = st.one_of(st.integers(-(2**63), 2**64 - 1), st.binary(max_size=20),
                    st.text(max_size=20), st.booleans(), st.none())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.integers(-99, 99), st.text(max_size=5)), inner, max_size=4)),
    max_leaves=12)

_SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-(2**63), 2**64 - 1), "bytes": st.binary(max_size=16),
    "str": st.text(max_size=16), "bool": st.booleans(), "null": st.none(), "any": values}
typed_values = type_strategies.typed_values(_SCALAR_VALUES)


@given(st.lists(values, max_size=8).map(tuple))
def test_tuple_round_trip(items: tuple[Any, ...]) -> None:
    """Any tuple of CARBON values decodes to itself from its canonical bytes."""
    assert decode_tuple(encode_tuple(items)) == items


@given(st.binary(max_size=40))
def test_tuple_decoder_rejects_garbage_with_typed_error(data: bytes) -> None:
    """Arbitrary bytes either decode as a tuple or raise TupleError, nothing else."""
    try:
        decoded = decode_tuple(data)
    except TupleError as exc:
        assert exc.code is ErrorCode.INVALID_TUPLE
    else:
        assert encode_tuple(decoded) == data


def test_tuple_rejects_non_carbon_values() -> None:
    """Floats and non-tuples are refused where the tuple is made."""
    with pytest.raises(TupleError):
        encode_tuple((1.5,))
    with pytest.raises(TupleError):
        encode_tuple([1, 2])  # type: ignore[arg-type]


@given(typed_values)
def test_typed_value_round_trips_through_positional_wire_form(pair: tuple[Any, Any]) -> None:
    """encode -> bytes -> decode gives the value back; records travel as arrays."""
    kind, value = pair
    data = dumps_typed(kind, value)
    assert loads_typed(kind, data) == value
    if isinstance(kind, Record):
        assert isinstance(cbor.loads(data), list)


@given(type_strategies.carbon_types())
def test_type_declarations_round_trip(kind: CarbonType) -> None:
    """A published declaration parses back to the same type."""
    assert type_from_value(cbor.loads(cbor.dumps(type_to_value(kind)))) == kind


@given(typed_values, values)
def test_wrong_values_are_rejected_with_payload_type_error(pair: tuple[Any, Any],
                                                           other: Any) -> None:
    """A wire value either decodes as the type (and re-encodes identically) or is refused."""
    kind, _ = pair
    try:
        decoded = decode_value(kind, other)
    except PayloadTypeError as exc:
        assert exc.code is ErrorCode.PAYLOAD_TYPE_MISMATCH
    else:
        assert encode_value(kind, decoded) == other


def test_type_mismatches_name_the_path() -> None:
    """Errors say where: field, index, expected and actual type."""
    kind = record(items=list_of(record(n=int)), note=optional(str))
    with pytest.raises(PayloadTypeError, match=r"\$\.items\[1\]\.n: expected int, got bool"):
        encode_value(kind, {"items": [{"n": 1}, {"n": True}]})
    with pytest.raises(PayloadTypeError, match="missing field 'items'"):
        encode_value(kind, {})
    with pytest.raises(PayloadTypeError, match="unexpected field 'x'"):
        encode_value(kind, {"items": [], "x": 1})
    with pytest.raises(PayloadTypeError, match="needs 2 positional values"):
        decode_value(kind, [[]])
    assert encode_value(kind, {"items": []}) == [[], None]


def test_ambiguous_or_bad_declarations_are_refused() -> None:
    """optional[null], non-scalar map keys and bad field names are declaration errors."""
    for bad in (lambda: optional(None), lambda: optional(optional(int)),
                lambda: map_of(list_of(int), int), lambda: record(**{"Bad": int}),
                lambda: list_of(float)):
        with pytest.raises(TypeDeclarationError):
            bad()
    with pytest.raises(TypeDeclarationError):
        type_from_value(["list", "int", "int"])
    unchecked = MapOf(ListOf(INT), INT)  # built directly, bypassing map_of
    with pytest.raises(TypeDeclarationError):
        encode_value(unchecked, {1: 2})
    with pytest.raises(TypeDeclarationError):
        decode_value(unchecked, {1: 2})
    deep: Any = "int"
    for _ in range(12):
        deep = ["list", deep]
    with pytest.raises(TypeDeclarationError):
        type_from_value(deep)


def test_protocol_spec_round_trip_and_validation() -> None:
    """Specs publish and parse back; duplicate numbers or names are refused."""
    spec = Interface("/example/counter/v1", ops=[
        request(1, "add", record(n=int), int), message(2, "reset", None),
        connection(3, "watch", NULL, map_of(str, int))])
    assert spec_from_value(cbor.loads(cbor.dumps(spec_to_value(spec)))) == spec
    assert spec.operation(2) is not None and spec.operation(2).kind is OperationKind.MESSAGE
    assert spec.operation(9) is None
    with pytest.raises(SpecError):
        Interface("/x/y", ops=[request(1, "a", int, int), request(1, "b", int, int)])
    with pytest.raises(SpecError):
        Interface("/x/y", ops=[request(1, "a", int, int), request(2, "a", int, int)])
    with pytest.raises(SpecError):
        Interface("not a symbol", ops=[])
    with pytest.raises(SpecError):
        spec_from_value(["/x/y", [[1, "a", 7, "int", "int"]]])
    for kind in ([], {}, True):  # a peer's get-spec reply: unhashable kinds too
        with pytest.raises(SpecError):
            spec_from_value(["/x/y", [[1, "a", kind, "int", "int"]]])


@given(st.text(max_size=40))
def test_name_parser_accepts_only_well_formed_names(text: str) -> None:
    """Any text either parses to a name that prints back identically or is refused."""
    try:
        name = parse_name(text)
    except InvalidNameError as exc:
        assert exc.code is ErrorCode.INVALID_NAME
    else:
        assert name.text == text


def test_example_names() -> None:
    """The documented example parses; typical mistakes do not."""
    assert parse_name("alice@example-cluster").cluster == "example-cluster"
    for bad in ("alice", "alice@", "@c", "a@b@c", "Alice@c", "a@-c", "a@c..d"):
        with pytest.raises(InvalidNameError):
            parse_name(bad)


def test_ints_beyond_64_bits_are_a_payload_type_error() -> None:
    """A handler answering an int CBOR cannot carry untagged gets a path-naming type error."""
    with pytest.raises(PayloadTypeError, match=r"\$\.n: int outside"):
        encode_value(record(n=int), {"n": 2**64})
    assert decode_value(INT, -(2**64)) == -(2**64)


def test_a_long_map_key_is_cut_short_in_mismatch_paths() -> None:
    """Items under a map entry copy its path, so the key's text there is bounded: a peer's
    megabyte key cannot make checking its payload quadratic."""
    kind = map_of(bytes, list_of(int))
    with pytest.raises(PayloadTypeError) as info:
        decode_value(kind, {b"k" * 1_000_000: [1, "two"]})
    assert info.value.message.startswith("$[b'kkkk") and "...][1]: expected int" in \
        info.value.message
    assert len(info.value.message) < 100
