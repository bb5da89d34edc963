"""A plain request body read byte by byte gives exactly the request the strict decoder
gives, and anything it does not take (near misses included) is left to that decoder."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import MercuryError
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.node import NodeRequest
from mercury_rt.core.node.messages import _LIMITS, _request_from, decode_body
from mercury_rt.core.node.plain_body import read_plain_body

EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1]
U32 = st.sampled_from(EDGES) | st.integers(0, 2**32 - 1)
BLOBS = st.binary(max_size=40) | st.sampled_from([23, 24, 255, 256, 300]).map(
    lambda n: b"x" * n)
IDS = st.none() | st.binary(min_size=1, max_size=32)
PRINCIPALS = st.builds(Principal, BLOBS, BLOBS, st.none() | st.builds(
    Persona, st.just(Symbol("/persona/vip")), st.none() | st.integers(-5, 5)))
REQUESTS = st.builds(
    lambda caller, delegation, message_id, request_id: NodeRequest(
        caller[2], caller[3], caller[4], caller[5], caller[6], caller[0], caller[1],
        delegation, caller[7], message_id, None, request_id),
    st.tuples(st.none(), PRINCIPALS, BLOBS, U32, U32, BLOBS, U32, U32)
    | st.tuples(BLOBS, st.none(), BLOBS, U32, U32, BLOBS, U32, U32),
    st.lists(BLOBS, max_size=8).map(tuple), IDS, IDS)


def _strict(body: bytes) -> NodeRequest | None:
    try:
        return _request_from(cbor.loads(body, _LIMITS))
    except MercuryError:
        return None


@settings(max_examples=1500, deadline=None)
@given(REQUESTS)
def test_reads_every_plain_body_as_the_strict_decoder(request: NodeRequest) -> None:
    body = request.body()
    fields = read_plain_body(body)
    persona = request.vouched is not None and request.vouched.persona is not None
    assert (fields is None) == persona, "every body without a persona or connection is read"
    assert decode_body(body) == request == _strict(body)
    if fields is not None:
        assert NodeRequest(*fields) == request


def _mutations(data: bytes, at: int, byte: int) -> list[bytes]:
    at %= len(data) + 1
    return [data[:at] + bytes((byte,)) + data[at + 1:], data[:at] + bytes((byte,)) + data[at:],
            data[:at], data + bytes((byte,)), data[:at] + data[at + 1:]]


@settings(max_examples=3000, deadline=None)
@given(REQUESTS, st.integers(0, 700), st.integers(0, 255))
def test_near_misses_are_read_only_as_the_strict_decoder_reads_them(
        request: NodeRequest, at: int, byte: int) -> None:
    """A byte changed, inserted or dropped, truncated, trailing: read only when the strict
    decoder accepts it with the same fields (never a padded head, a tag, a duplicate key,
    keys out of order or a refused value)."""
    for body in _mutations(request.body(), at, byte):
        fields = read_plain_body(body)
        if fields is not None:
            assert NodeRequest(*fields) == _strict(body), body.hex()


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.integers(0, 12), st.integers(-3, 2**32) | st.binary(max_size=30)
                       | st.lists(st.binary(max_size=4), max_size=9) | st.none()
                       | st.booleans(), max_size=12))
def test_arbitrary_maps_are_read_only_as_the_strict_decoder_reads_them(
        value: dict[int, object]) -> None:
    body = cbor.dumps(value)
    fields = read_plain_body(body)
    if fields is not None:
        assert NodeRequest(*fields) == _strict(body)
    elif set(value) <= {0, 1, 2, 3, 4, 5, 7, 8, 9, 11}:
        assert _strict(body) is None, f"a plain body not read: {value}"


@given(st.binary(max_size=200))
def test_any_bytes_are_read_only_as_the_strict_decoder_reads_them(data: bytes) -> None:
    fields = read_plain_body(data)
    if fields is not None:
        assert NodeRequest(*fields) == _strict(data)
