"""Node message codecs: round trips, exact body bytes, hostile input only raises typed
errors; the intra-cluster seal rejects anything not sealed with the cluster's key."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import MercuryError
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.gate import hashcash_payment
from mercury_rt.core.identity import Endpoint
from mercury_rt.core.node import (
    ClusterIdQuery,
    DecodedOperation,
    IntraSeal,
    NodeReply,
    NodeRequest,
    SealError,
    decode_node_request,
    decode_reply,
    derive_intra_key,
    encode_cluster_id_query,
    encode_operation,
)

U32 = st.integers(0, 2**32 - 1)
SMALL = st.binary(max_size=40)
PRINCIPALS = st.builds(Principal, SMALL, SMALL, st.none() | st.builds(
    Persona, st.sampled_from([Symbol("/a/b"), Symbol("/persona/vip")]),
    st.none() | st.integers(-5, 5) | st.text(max_size=5)))
REQUESTS = st.builds(
    NodeRequest, SMALL, U32, U32, st.binary(max_size=200), U32,
    source=st.none(), vouched=PRINCIPALS,
    delegation=st.lists(SMALL, max_size=8).map(tuple), transit=U32,
    message_id=st.none() | st.binary(min_size=1, max_size=32),
) | st.builds(NodeRequest, SMALL, U32, U32, st.binary(max_size=200), U32, source=SMALL)


@given(REQUESTS, st.lists(st.text("0123456789abcdef:.", max_size=30), max_size=3), U32)
def test_operations_round_trip_with_exact_body_bytes(request: NodeRequest,
                                                     stamps: list[str], hops: int) -> None:
    payments = tuple(hashcash_payment(s) for s in stamps)
    body = request.body()
    decoded = decode_node_request(encode_operation(body, payments, hops))
    assert isinstance(decoded, DecodedOperation)
    assert decoded.request == request and decoded.body == body
    assert decoded.payments == payments and decoded.hops == hops


@given(st.binary(min_size=1, max_size=64))
def test_cluster_id_queries_round_trip(master_hash: bytes) -> None:
    assert decode_node_request(encode_cluster_id_query(master_hash)) == \
        ClusterIdQuery(master_hash)


@pytest.mark.parametrize("request_value", [[True, b"\x01cluster"], [False, b"", [], 0]])
def test_a_boolean_is_not_a_request_kind(request_value: list[object]) -> None:
    with pytest.raises(MercuryError, match="a node request is"):
        decode_node_request(cbor.dumps(request_value))


@given(st.binary(max_size=120))
def test_hostile_request_bytes_raise_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MercuryError):
        decode_node_request(data)


@given(st.sampled_from([0, 203, 511, 601, 650]), st.none() | SMALL, st.text(max_size=50),
       st.none() | SMALL, st.none() | U32)
def test_replies_round_trip(code: int, payload: bytes | None, message: str,
                            cluster_id: bytes | None, bits: int | None) -> None:
    reply = NodeReply(code, payload, message, cluster_id, required_bits=bits)
    assert decode_reply(reply.encode()) == reply


def test_redirect_replies_keep_their_target() -> None:
    from ipaddress import ip_address  # noqa: PLC0415

    reply = NodeReply(515, target=Endpoint(ip_address("127.0.0.2"), 7402))
    assert decode_reply(reply.encode()).target == reply.target


@given(st.binary(max_size=120))
def test_hostile_reply_bytes_raise_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MercuryError):
        decode_reply(data)


@given(st.binary(max_size=300), st.integers(0, 400))
def test_the_seal_opens_only_what_it_sealed_unaltered(payload: bytes, flip: int) -> None:
    key = derive_intra_key(Ed25519PrivateKey.generate())
    ours, peer = IntraSeal(key, b"\x00\x00\x00\x01"), IntraSeal(key, b"\x00\x00\x00\x02")
    sealed = ours.seal(payload)
    assert peer.open(sealed) == payload
    altered = bytearray(sealed)
    altered[flip % len(altered)] ^= 0x01
    with pytest.raises(SealError):
        peer.open(bytes(altered))
    outsider = IntraSeal(derive_intra_key(Ed25519PrivateKey.generate()), b"\x00\x00\x00\x03")
    with pytest.raises(SealError):
        outsider.open(sealed)
