"""The caller's cached request bodies give exactly the bytes of the general encoder
(`NodeRequest.body()`, `encode_operation`), for any request, in any order of calls."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.connections import ConnectionField, ConnectionForm
from mercury_rt.core.gate import hashcash_payment
from mercury_rt.core.node import NodeRequest, decode_node_request, encode_operation
from mercury_rt.core.node.request_body import RequestBodies, bytes_head, operation_payload

U32 = st.integers(0, 2**32 - 1)
# Look-alikes a dict-keyed cache could confuse: True == 1, and a few shared values so
# that shapes repeat and the cache is hit.
NUMBERS = st.sampled_from([0, 1, True, False, 23, 24, 255, 256, 65536, 2**32 - 1]) | U32
SMALL = st.sampled_from([b"", b"t", b"target-eid"]) | st.binary(max_size=300)
IDS = st.none() | st.sampled_from([b"", b"m"]) | st.binary(min_size=1, max_size=40)
PRINCIPALS = st.builds(Principal, SMALL, SMALL, st.none() | st.builds(
    Persona, st.sampled_from([Symbol("/a/b"), Symbol("/persona/vip")]),
    st.none() | st.integers(-5, 5) | st.text(max_size=5)))
CONNECTIONS = st.none() | st.builds(ConnectionField, st.sampled_from(list(ConnectionForm)),
                                    st.binary(min_size=1, max_size=16))
REQUESTS = st.builds(
    NodeRequest, SMALL, NUMBERS, NUMBERS, st.binary(max_size=70000), NUMBERS,
    source=st.none() | SMALL, vouched=st.none() | PRINCIPALS,
    delegation=st.lists(SMALL, max_size=3).map(tuple), transit=NUMBERS,
    message_id=IDS, connection=CONNECTIONS, request_id=IDS)
SHARED = RequestBodies(max_shapes=8)


def _general(request: NodeRequest) -> bytes | type[Exception]:
    try:
        return request.body()
    except Exception as exc:
        return type(exc)


def _cached(bodies: RequestBodies, request: NodeRequest) -> bytes | type[Exception]:
    try:
        return bodies.body(request)
    except Exception as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(st.lists(REQUESTS, min_size=1, max_size=6))
def test_cached_bodies_are_the_general_encoders_bytes(requests: list[NodeRequest]) -> None:
    """A fresh cache, then one warm with other shapes (and evicting): the same bytes, or
    the same refusal, each time."""
    fresh = RequestBodies()
    for request in requests + requests[::-1]:
        expected = _general(request)
        assert _cached(fresh, request) == expected
        assert _cached(SHARED, request) == expected
    assert len(SHARED) <= SHARED.max_shapes


@settings(max_examples=300, deadline=None)
@given(st.builds(NodeRequest, SMALL, U32, U32, st.binary(max_size=300), U32,
                 vouched=st.builds(Principal, SMALL, SMALL),
                 request_id=st.none() | st.binary(min_size=1, max_size=32)),
       st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_only_the_payload_changes_between_calls_of_one_shape(
        request: NodeRequest, payloads: list[bytes]) -> None:
    """The hot case: one target, endpoint and op, new payloads; each body decodes back."""
    bodies = RequestBodies()
    for payload in payloads:
        call = NodeRequest(request.target, request.endpoint, request.operation, payload,
                           request.version, vouched=request.vouched,
                           request_id=request.request_id)
        body = bodies.body(call)
        assert body == call.body()
        decoded: Any = decode_node_request(operation_payload(body))
        assert decoded.request == call and decoded.body == body
    assert len(bodies) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=70000),
       st.lists(st.text("0123456789abcdef:.", max_size=30), max_size=2))
def test_the_operation_envelope_is_the_general_encoders(body: bytes, stamps: list[str]) -> None:
    payments = tuple(hashcash_payment(s) for s in stamps)
    assert operation_payload(body, payments) == encode_operation(body, payments)


@given(st.sampled_from([0, 23, 24, 255, 256, 65535, 65536]) | st.integers(0, 70000))
def test_byte_string_heads_are_canonical(n: int) -> None:
    assert bytes_head(n) + b"\x00" * n == cbor.dumps(b"\x00" * n)


def test_long_byte_string_heads() -> None:
    assert bytes_head(2**32 - 1) == b"\x5a\xff\xff\xff\xff"
    assert bytes_head(2**32) == b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00"
