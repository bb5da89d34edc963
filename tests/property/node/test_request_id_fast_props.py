"""The scoped request id's scope written head by head is byte-identical to the general
encoder's, for every principal, entity, operation and id (and left to it otherwise)."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.node import NodeRequest
from mercury_rt.core.node.messages import principal_to_value
from mercury_rt.core.node.request_ids import _plain_scope, scoped_request_id, uint_head

EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
UINTS = st.sampled_from(EDGES) | st.integers(0, 2**64 - 1)
SIZES = st.sampled_from([0, 23, 24, 255, 256, 300])
BLOBS = st.binary(max_size=40) | SIZES.map(lambda n: b"x" * n)
IDS = st.binary(min_size=1, max_size=32)
PERSONAS = st.none() | st.builds(Persona, st.just(Symbol("/p/reader")),
                                 st.none() | st.integers(-5, 5) | st.text(max_size=4))
PRINCIPALS = st.builds(Principal, BLOBS, BLOBS, PERSONAS)


def _general(principal: Principal, request: NodeRequest, entity: bytes) -> bytes | None:
    """What the record id is by its definition: the hash of the canonical scope."""
    chosen = request.request_id if request.request_id is not None else request.message_id
    if chosen is None:
        return None
    kind = b"r" if request.request_id is not None else b"m"
    scope = [principal_to_value(principal), entity, request.endpoint, request.operation, chosen]
    return kind + hashlib.blake2b(cbor.dumps(scope), digest_size=24).digest()


@settings(max_examples=1000, deadline=None)
@given(PRINCIPALS, BLOBS, UINTS, UINTS, st.none() | IDS, st.none() | IDS)
def test_record_id_is_the_hash_of_the_canonical_scope(
        principal: Principal, entity: bytes, endpoint: int, operation: int,
        request_id: bytes | None, message_id: bytes | None) -> None:
    request = NodeRequest(b"t", endpoint, operation, b"p", source=b"e",
                          request_id=request_id, message_id=message_id)
    assert scoped_request_id(principal, request, entity) == _general(principal, request, entity)


@settings(max_examples=1000, deadline=None)
@given(PRINCIPALS, BLOBS, UINTS, UINTS, IDS)
def test_scope_bytes_equal_the_general_encoder_or_are_left_to_it(
        principal: Principal, entity: bytes, endpoint: int, operation: int,
        chosen: bytes) -> None:
    request = NodeRequest(b"t", endpoint, operation, b"p", source=b"e", request_id=chosen)
    scope = _plain_scope(principal, request, entity, chosen)
    if principal.persona is not None:
        assert scope is None
    else:
        assert scope == cbor.dumps([principal_to_value(principal), entity, endpoint,
                                    operation, chosen])


@given(UINTS)
def test_uint_head_is_the_canonical_integer(n: int) -> None:
    assert uint_head(n) == cbor.dumps(n)
