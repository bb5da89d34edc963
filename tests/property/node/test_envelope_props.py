"""The unpaid operation envelope read without a decoder accepts exactly what the strict
decoder accepts as `[0, body, [], hops]`, and is written as the general encoder writes it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import MercuryError
from mercury_rt.core.node import decode_node_request, encode_operation
from mercury_rt.core.node.envelope import MAX_HOPS, join_unpaid, split_unpaid
from mercury_rt.core.node.messages import _LIMITS

HOPS = st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, MAX_HOPS]) | st.integers(0, MAX_HOPS)
BODIES = st.binary(max_size=300) | st.sampled_from([b"", b"x" * 23, b"x" * 24, b"x" * 255,
                                                     b"x" * 256, b"x" * 65536])


def _strict(data: bytes) -> object:
    try:
        return cbor.loads(data, _LIMITS)
    except MercuryError:
        return None


@settings(max_examples=500, deadline=None)
@given(BODIES, HOPS)
def test_written_as_the_general_encoder_and_read_back(body: bytes, hops: int) -> None:
    data = join_unpaid(body, hops)
    assert data == encode_operation(body, (), hops)
    assert split_unpaid(data) == (body, hops)


def _mutations(data: bytes, at: int, byte: int) -> list[bytes]:
    at %= len(data) + 1
    return [data[:at] + bytes((byte,)) + data[at + 1:], data[:at] + bytes((byte,)) + data[at:],
            data[:at], data + bytes((byte,)), data[:at] + data[at + 1:]]


@settings(max_examples=1500, deadline=None)
@given(BODIES, HOPS, st.integers(0, 400), st.integers(0, 255))
def test_accepts_only_what_the_strict_decoder_reads_as_that_shape(
        body: bytes, hops: int, at: int, byte: int) -> None:
    """Near misses of valid envelopes (a byte changed, inserted, dropped; truncated;
    trailing bytes): accepted only with the values the strict decoder gives, and never
    missed when the strict decoder reads the shape."""
    for data in _mutations(join_unpaid(body, hops), at, byte):
        split = split_unpaid(data)
        strict = _strict(data)
        if split is not None:
            assert strict == [0, split[0], [], split[1]]
        elif (isinstance(strict, list) and len(strict) == 4 and strict[0] == 0
              and type(strict[0]) is int and type(strict[1]) is bytes and strict[2] == []
              and type(strict[3]) is int and 0 <= strict[3] <= MAX_HOPS):
            raise AssertionError(f"canonical envelope {data.hex()} not split")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes(data: bytes) -> None:
    split = split_unpaid(b"\x84\x00" + data)
    if split is not None:
        assert _strict(b"\x84\x00" + data) == [0, split[0], [], split[1]]


def test_padded_and_tagged_forms_go_to_the_strict_decoder() -> None:
    for data in (b"\x84\x00\x58\x05hello\x80\x00",      # a long head for a short string
                 b"\x84\x00\x45hello\x80\x18\x05",       # a long head for a small hops
                 b"\x84\x00\x5f\x45hello\xff\x80\x00",   # an indefinite string
                 b"\x84\x00\xd9\x01\x00\x45hello\x80\x00",  # a string-reference tag
                 b"\x84\x00\x45hello\x80\x00\x00",       # a trailing byte
                 b"\x84\x00\x45hello\x80\x1b\x00\x00\x00\x01\x00\x00\x00\x00"):  # hops > u32
        assert split_unpaid(data) is None, data.hex()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_decoding_a_request_through_either_path_agrees(junk: bytes) -> None:
    """The same outcome whether the envelope was split (unpaid) or decoded (paid): a body
    of junk raises the same typed error, a real body gives the same request."""
    from mercury_rt.core.node import NodeRequest  # noqa: PLC0415

    real = NodeRequest(b"t", 1, 2, junk, 3, source=b"s").body()
    for body in (junk, real):
        fast = join_unpaid(body)
        slow = cbor.dumps([0, body, [], 0])
        assert fast == slow
        outcomes = []
        for data in (fast, cbor.dumps([0, body, [[0, b"x"]], 0])):
            try:
                decoded = decode_node_request(data)
                outcomes.append(("ok", decoded.request, decoded.body))  # type: ignore[union-attr]
            except MercuryError as exc:
                outcomes.append(("err", type(exc), exc.code))
        assert outcomes[0] == outcomes[1]
