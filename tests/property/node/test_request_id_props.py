"""The request id (body key 11): round trips with exact body bytes, is refused outside
1-32 bytes, and its cluster-wide record id is scoped by the admitted principal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import MercuryError
from carbon.principal import Principal
from mercury_rt.core.node import (
    DecodedOperation,
    NodeRequest,
    decode_node_request,
    encode_operation,
)
from mercury_rt.core.node.request_ids import scoped_request_id

IDS = st.binary(min_size=1, max_size=32)
PRINCIPALS = st.builds(Principal, st.binary(max_size=40), st.binary(max_size=40))


@given(IDS, st.none() | IDS, PRINCIPALS)
def test_request_ids_round_trip(request_id: bytes, message_id: bytes | None,
                                caller: Principal) -> None:
    request = NodeRequest(b"t", 1, 2, b"p", 3, vouched=caller, message_id=message_id,
                          request_id=request_id)
    decoded = decode_node_request(encode_operation(request.body()))
    assert isinstance(decoded, DecodedOperation)
    assert decoded.request == request and decoded.body == request.body()


@given(st.binary(max_size=0) | st.binary(min_size=33, max_size=80)
       | st.integers(-2**63, 2**63 - 1) | st.text(max_size=5))
def test_request_ids_outside_bounds_are_refused(bad: object) -> None:
    body = cbor.dumps({0: b"t", 1: 1, 2: 2, 3: b"p", 4: 3, 5: b"eid", 11: bad})
    with pytest.raises(MercuryError):
        decode_node_request(encode_operation(body))


@given(IDS, PRINCIPALS, PRINCIPALS)
def test_record_ids_are_per_caller_and_stable(request_id: bytes, one: Principal,
                                             other: Principal) -> None:
    request = NodeRequest(b"t", 1, 2, b"p", source=b"e", request_id=request_id)
    first = scoped_request_id(one, request, b"t")
    assert first is not None and first == scoped_request_id(one, request, b"t")
    assert (first == scoped_request_id(other, request, b"t")) == (one == other)
    as_message = NodeRequest(b"t", 1, 2, b"p", source=b"e", message_id=request_id)
    assert scoped_request_id(one, as_message, b"t") != first
    assert scoped_request_id(one, NodeRequest(b"t", 1, 2, b"p", source=b"e"), b"t") is None


@given(IDS, PRINCIPALS)
def test_an_id_reused_for_another_entity_or_operation_is_another_record(
        request_id: bytes, one: Principal) -> None:
    request = NodeRequest(b"t", 1, 2, b"p", source=b"e", request_id=request_id)
    first = scoped_request_id(one, request, b"alice")
    assert first != scoped_request_id(one, request, b"bob")
    other_op = NodeRequest(b"t", 1, 3, b"p", source=b"e", request_id=request_id)
    assert first != scoped_request_id(one, other_op, b"alice")
