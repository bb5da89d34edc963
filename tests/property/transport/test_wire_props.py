"""Codec properties: round-trips, byte-stable encoding, and only typed errors on any input."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon import cbor
from carbon.cbor import CodecError, Limits
from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import wire as m

U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)
KIND = st.sampled_from(list(m.Kind))
PAYLOAD = st.binary(max_size=300)
LIMITS = Limits(max_bytes=65_535, max_depth=4, max_items=64)

MESSAGES = st.one_of(
    st.builds(m.Request, U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD),
    st.builds(m.Reply, U64, U32, PAYLOAD),
    st.builds(m.Message, U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD),
    st.builds(m.Ack, KIND, U64, U32),
    st.builds(m.Error, KIND, U64, U32, st.text(max_size=200)),
    st.builds(m.Poll, U64),
    st.builds(m.Fragment, KIND, U64, U32, U32, U32, U32, st.integers(0, 255), PAYLOAD),
    st.builds(m.FragAck, KIND, U64, U32, U32, st.binary(max_size=128)),
)

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64) + 1, 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.text(max_size=8) | st.integers(-100, 100), inner, max_size=5),
    max_leaves=30,
)


@given(MESSAGES)
def test_every_message_round_trips_and_encodes_stably(message: m.AnyMessage) -> None:
    data = m.encode(message)
    decoded = m.decode_datagram(data, LIMITS)
    assert decoded == message and type(decoded) is type(message)
    assert m.encode(decoded) == data


@given(st.binary(max_size=64))
def test_decoding_random_bytes_raises_only_the_typed_error(data: bytes) -> None:
    try:
        m.decode_datagram(data, LIMITS)
    except m.MessageError as exc:
        assert isinstance(exc.code, ErrorCode)


@given(MESSAGES, st.data())
def test_mutated_datagrams_raise_only_the_typed_error(message: m.AnyMessage,
                                                      data: st.DataObject) -> None:
    raw = bytearray(m.encode(message))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut]), bytes(raw) + b"\x00"):
        with contextlib.suppress(m.MessageError):
            m.decode_datagram(candidate, LIMITS)


@given(VALUES)
def test_canonical_values_round_trip_byte_for_byte(value: cbor.Value) -> None:
    data = cbor.dumps(value)
    assert cbor.loads(data, Limits(max_depth=64)) == value
    assert cbor.dumps(cbor.loads(data, Limits(max_depth=64))) == data


@given(VALUES, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(value: cbor.Value, extra: bytes) -> None:
    with pytest.raises(CodecError) as info:
        cbor.loads(cbor.dumps(value) + extra, Limits(max_depth=64))
    assert info.value.code in (ErrorCode.TRAILING_BYTES, ErrorCode.MALFORMED,
                               ErrorCode.NON_CANONICAL)


@pytest.mark.parametrize(("hex_bytes", "code"), [
    ("a2616101616102", ErrorCode.DUPLICATE_KEY),
    ("5f42010243030405ff", ErrorCode.INDEFINITE_LENGTH),
    ("9f01ff", ErrorCode.INDEFINITE_LENGTH),
    ("1817", ErrorCode.NON_CANONICAL),
    ("a2616201616101", ErrorCode.NON_CANONICAL),
    ("c11a514b67b0", ErrorCode.FORBIDDEN_VALUE),
    ("f93c00", ErrorCode.FORBIDDEN_VALUE),
    ("0102", ErrorCode.TRAILING_BYTES),
    ("", ErrorCode.MALFORMED),
    ("5a00000010", ErrorCode.MALFORMED),
    ("81" * 20 + "00", ErrorCode.TOO_DEEP),
])
def test_each_bad_form_has_its_own_code(hex_bytes: str, code: ErrorCode) -> None:
    with pytest.raises(CodecError) as info:
        cbor.loads(bytes.fromhex(hex_bytes))
    assert info.value.code == code


def test_size_and_item_limits_are_enforced() -> None:
    with pytest.raises(CodecError) as info:
        cbor.loads(cbor2.dumps(b"x" * 100), Limits(max_bytes=50))
    assert info.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(CodecError) as info:
        cbor.loads(cbor2.dumps(list(range(100))), Limits(max_items=50))
    assert info.value.code == ErrorCode.TOO_MANY_ITEMS


@pytest.mark.parametrize(("value", "code"), [
    ([2, 1, 1, 1, 1, b""], ErrorCode.UNSUPPORTED_VERSION),
    ([1, 99], ErrorCode.UNKNOWN_MESSAGE_TYPE),
    ([1, 2, 1], ErrorCode.WRONG_TYPE),
    ([1, 2, -1, 1, b""], ErrorCode.WRONG_TYPE),
    ([1, 2, 1, 1, "text"], ErrorCode.WRONG_TYPE),
    ([1, 4, 9, 1, 1], ErrorCode.WRONG_TYPE),
    ({"v": 1}, ErrorCode.WRONG_TYPE),
])
def test_envelope_shape_errors_are_typed(value: cbor.Value, code: ErrorCode) -> None:
    with pytest.raises(m.MessageError) as info:
        m.decode_datagram(cbor.dumps(value), LIMITS)
    assert info.value.code == code


def test_unencodable_values_raise_codec_error() -> None:
    with pytest.raises(CodecError):
        cbor.dumps(1.5)
    with pytest.raises(CodecError):
        cbor.dumps({"a": object()})


@given(st.builds(m.Request, U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD),
       st.builds(m.Reply, U64, U32, PAYLOAD))
def test_hot_path_encoders_give_the_same_bytes_as_encode(request: m.Request,
                                                         reply: m.Reply) -> None:
    assert m.encode_request(request.id, request.ttl_ms, request.done_below, request.attempt,
                            request.origin, request.age_ms, request.payload) == m.encode(request)
    assert m.encode_reply(reply.id, reply.incarnation, reply.payload) == m.encode(reply)


WIDE = st.integers(-(2**64), 2**64 - 1)  # every integer CBOR encodes without a tag


@given(WIDE, WIDE, WIDE, WIDE, WIDE, WIDE)
def test_request_fields_out_of_range_are_refused_like_the_table_says(
        id_: int, ttl: int, done: int, attempt: int, origin: int, age: int) -> None:
    data = cbor.dumps_flat([1, m.MessageType.REQUEST, id_, ttl, done, attempt, origin, age, b""])
    in_range = (0 <= id_ <= m.MAX_ID and 0 <= ttl <= m.MAX_U32 and 0 <= done <= m.MAX_ID
                and 0 <= attempt <= 255 and 0 <= origin <= m.MAX_U32 and 0 <= age <= m.MAX_U32)
    try:
        decoded = m.decode_datagram(data, LIMITS)
    except m.MessageError as exc:
        assert not in_range and exc.code == ErrorCode.WRONG_TYPE
    else:
        assert in_range and decoded == m.Request(id_, ttl, done, attempt, origin, age, b"")


@pytest.mark.parametrize("big", [2**64, -(2**64) - 1, 2**(8 * 2000)],
                         ids=["2**64", "-2**64-1", "2**16000"])
def test_integers_beyond_64_bits_are_refused_both_ways(big: int) -> None:
    """A bignum needs a tag, which CARBON forbids: loads and dumps both refuse it, so no
    huge int reaches code that formats or computes with it."""
    with pytest.raises(CodecError) as info:
        cbor.loads(cbor2.dumps([1, {"k": big}], canonical=True))
    assert info.value.code == ErrorCode.FORBIDDEN_VALUE
    with pytest.raises(CodecError) as info:
        cbor.dumps({"k": [big]})
    assert info.value.code == ErrorCode.WRONG_TYPE
    edge = [-(2**64), 2**64 - 1]
    assert cbor.loads(cbor.dumps(edge)) == edge
