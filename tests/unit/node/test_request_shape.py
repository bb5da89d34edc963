"""Node request bodies and envelopes a peer can get wrong are refused with the codes
docs/protocol.md 6.9 and 7.2 name, never accepted with a guessed default (issue 16,
items 3 and 4)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from carbon.protocol_spec import OperationKind
from mercury_rt.core.identity import ServerAddress, issue_cluster_id, mint_eid
from mercury_rt.core.node import (
    Invoke,
    NodeCore,
    NodeRequest,
    Respond,
    decode_node_request,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.routing import NodeInfo, RoutingConfig, SecurityOrder
from mercury_rt.core.routing import Path as RoutePath
from tests.membership_node_support import make_core
from tests.unit.node.test_forward_failover import _front

BODY = NodeRequest(b"eid", 1, 2, b"p", version=3, source=b"src").body()


def _code(payload: bytes) -> int:
    with pytest.raises(MercuryError) as info:
        decode_node_request(payload)
    return int(info.value.code)


@pytest.mark.parametrize("key", [0, 1, 2, 3, 4])
def test_a_body_without_a_required_key_is_refused_with_105(key: int) -> None:
    body = cbor.loads(BODY)
    assert isinstance(body, dict)
    del body[key]
    assert _code(cbor.dumps([0, cbor.dumps(body), [], 0])) == ErrorCode.WRONG_TYPE


def test_bad_envelopes_and_body_fields_are_105() -> None:
    assert _code(cbor.dumps([0, BODY, [], "x"])) == ErrorCode.WRONG_TYPE
    assert _code(cbor.dumps([7, BODY])) == ErrorCode.WRONG_TYPE
    body = cbor.loads(BODY)
    assert isinstance(body, dict)
    assert _code(cbor.dumps([0, cbor.dumps({**body, 4: -1}), [], 0])) == ErrorCode.WRONG_TYPE
    assert _code(cbor.dumps([0, cbor.dumps({**body, 10: 0}), [], 0])) == ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("slot", [None, {}, b"", 0, [[1]]])
def test_a_payments_slot_that_is_not_an_array_of_pairs_is_608(slot: object) -> None:
    assert _code(cbor.dumps([0, BODY, slot, 0])) == ErrorCode.PAYMENT_MALFORMED


def test_the_node_answers_a_body_without_key_4_with_105() -> None:
    core, dave = _front()
    body = cbor.loads(NodeRequest(dave, 1, 2, b"", version=1, source=dave).body())
    assert isinstance(body, dict)
    del body[4]
    action = core.handle_local(cbor.dumps([0, cbor.dumps(body), [], 0]), b"k", 10.0, 0.0)
    assert decode_reply(action.reply).code == ErrorCode.WRONG_TYPE  # type: ignore[union-attr]


def _home_core() -> tuple[NodeCore, bytes]:
    """A node that mirrors dave itself, so an admitted request becomes an Invoke."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
    core = make_core(b"n0", cid, key, {b"n0": NodeInfo(b"n0", True)},
                     {b"n0": ("10.0.0.1", 7100)}, {b"dave": frozenset({b"n0"})})
    return core, mint_eid(key, cid, b"dave").encode()


@pytest.mark.parametrize(("message_id", "kind"), [(None, OperationKind.REQUEST),
                                                  (b"m" * 16, OperationKind.MESSAGE)])
def test_the_call_kind_is_stated_by_key_9_alone(message_id: bytes | None,
                                                kind: OperationKind) -> None:
    """protocol.md 5.3: no kind field; without key 10, key 9 present = MESSAGE, absent =
    REQUEST (so a CONNECTION operation called without key 10 is 423)."""
    core, dave = _home_core()
    vouched = Principal(core.master_hash, b"alice")
    body = NodeRequest(dave, 1, 2, b"", version=1, vouched=vouched,
                       message_id=message_id).body()
    action = core.handle_local(encode_operation(body), b"k", 10.0, 0.0)
    assert isinstance(action, Invoke)
    assert action.call.kind is kind


def _target_code(core: NodeCore, target: bytes) -> int:
    vouched = Principal(core.master_hash, b"alice")
    body = NodeRequest(target, 1, 2, b"", version=1, vouched=vouched).body()
    action = core.handle_local(encode_operation(body), b"k", 10.0, 0.0)
    return decode_reply(action.reply).code  # type: ignore[union-attr]


def test_target_eid_failures_have_the_codes_protocol_6_9_names() -> None:
    """Not an EID: the decoder's code; altered: 306; another cluster's: 511 (item 14)."""
    core, dave = _front()
    altered = bytearray(dave)
    altered[-5] ^= 1
    assert _target_code(core, b"\xff") == ErrorCode.MALFORMED
    assert _target_code(core, b"\x00\x00") == ErrorCode.TRAILING_BYTES
    assert _target_code(core, cbor.dumps(5)) == ErrorCode.IDENTITY_MALFORMED
    assert _target_code(core, bytes(altered)) == ErrorCode.BAD_EID_SIGNATURE
    assert _target_code(core, _front()[1]) == ErrorCode.UNKNOWN_ENTITY


def test_a_vouched_caller_on_the_public_path_is_620() -> None:
    """Key 6 is accepted only over the intra-cluster path (issue 16 item 21)."""
    core, dave = _home_core()
    body = NodeRequest(dave, 1, 2, b"", version=1,
                       vouched=Principal(core.master_hash, b"alice")).body()
    action = core.handle(RoutePath.INTER_CLUSTER, encode_operation(body), b"k", 10.0, 0.0)
    assert decode_reply(action.reply).code == ErrorCode.SOURCE_UNVERIFIED  # type: ignore[union-attr]


def test_a_cluster_id_version_above_the_nodes_own_runs_without_key_2() -> None:
    """Key 4 above the node's version is not an error; key 2 is bundled only when key 4
    is lower (issue 16 item 21)."""
    core, dave = _home_core()
    vouched = Principal(core.master_hash, b"alice")
    for version, bundled in ((99, False), (0, True)):
        body = NodeRequest(dave, 1, 2, b"", version=version, vouched=vouched).body()
        action = core.handle_local(encode_operation(body), b"k", 10.0, 0.0)
        assert isinstance(action, Invoke)
        assert (action.bundle is not None) is bundled


def test_a_payload_that_is_not_a_node_request_gets_a_node_reply_with_the_codec_code() -> None:
    core, _ = _home_core()
    action = core.handle(RoutePath.INTER_CLUSTER, b"\xff\x00", b"k", 10.0, 0.0)
    reply = decode_reply(action.reply)  # type: ignore[union-attr]
    assert reply.code == ErrorCode.MALFORMED and reply.message


def test_a_vouched_caller_from_outside_is_not_forwarded_under_redirect_first() -> None:
    """Found in review: with `redirect-first` a front node forwarded a key-6 request from
    the public port, and the mirror, receiving it from its own cluster, ran it as that
    principal. The front node refuses it itself (620) and forwards nothing."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
    core = make_core(b"n0", cid, key, {b"n0": NodeInfo(b"n0", True), b"n1": NodeInfo(b"n1", True)},
                     {b"n0": ("10.0.0.1", 7100), b"n1": ("10.0.0.2", 7100)},
                     {b"dave": frozenset({b"n1"})})
    core.routing = RoutingConfig(security=SecurityOrder.REDIRECT_FIRST)
    body = NodeRequest(mint_eid(key, cid, b"dave").encode(), 1, 2, b"", version=1,
                       vouched=Principal(core.master_hash, b"admin")).body()
    action = core.handle(RoutePath.INTER_CLUSTER, encode_operation(body), b"k", 10.0, 0.0)
    assert isinstance(action, Respond), action
    assert decode_reply(action.reply).code == ErrorCode.SOURCE_UNVERIFIED
