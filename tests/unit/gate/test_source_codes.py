"""A source EID that is itself bad is refused with its identity code (300-399), so a caller
can tell a rotated-out key from a bad signature; 620 SOURCE_UNVERIFIED is kept for an EID
whose keys are not available yet, which the caller should simply retry (issue 17 item 9)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import (
    Deny,
    EidSourceVerifier,
    GateRequest,
    GateState,
    MemorySpentStore,
    RemoteSource,
    evaluate,
    request_digest,
)
from mercury_rt.core.identity import (
    EidVerifier,
    ServerAddress,
    change_addresses,
    issue_cluster_id,
    mint_eid,
    rotate_cluster_key,
)
from mercury_rt.core.node import NodeRequest, Respond, decode_reply, encode_operation
from mercury_rt.core.routing import NodeInfo, NotMirroredChoice, Path, RoutingConfig, SecurityOrder
from policy.access import Target
from tests.gate_support import LOCAL, NOW, POLICY
from tests.identity_support import (
    ADDRESSES,
    CLUSTER_KEY_1,
    CLUSTER_KEY_2,
    MASTER,
    cluster_v1,
    full_eid,
    hashes_only_eid,
)
from tests.membership_node_support import make_core

FREE = Target(b"free", 0, 0)


def _informed() -> EidVerifier:
    """A verifier that has learnt the cluster's rotation to CLUSTER_KEY_2 (version 2)."""
    verifier = EidVerifier()
    verifier.add_cluster_id(rotate_cluster_key(cluster_v1(), MASTER, CLUSTER_KEY_2))
    return verifier


def _rotated_out() -> bytes:
    forged = change_addresses(change_addresses(cluster_v1(), CLUSTER_KEY_1, ADDRESSES[:1]),
                              CLUSTER_KEY_1, ADDRESSES[:2])  # version 3, still key 1
    return mint_eid(CLUSTER_KEY_1, forged, b"mallory").encode()


def _version_conflict() -> bytes:
    other = issue_cluster_id(MASTER, CLUSTER_KEY_1, ADDRESSES, version=3, key_version=2)
    return mint_eid(CLUSTER_KEY_1, other, b"mallory").encode()


def _bad_cert() -> bytes:
    return mint_eid(CLUSTER_KEY_1, replace(cluster_v1(), cert=bytes(64)), b"m").encode()


def _bad_signature() -> bytes:
    data = bytearray(full_eid().encode())
    data[-5] ^= 1
    return bytes(data)


def _unknown_hash_algorithm() -> bytes:
    data = hashes_only_eid().encode()
    master_hash = cluster_v1().master_hash
    assert data.count(master_hash) == 1
    return data.replace(master_hash, b"\x7f" + master_hash[1:])


CASES = {
    "rotated-out key": (_rotated_out, ErrorCode.ROTATED_OUT_KEY),
    "key-version conflict": (_version_conflict, ErrorCode.KEY_VERSION_CONFLICT),
    "bad certificate": (_bad_cert, ErrorCode.BAD_CLUSTER_KEY_CERT),
    "bad signature": (_bad_signature, ErrorCode.BAD_EID_SIGNATURE),
    "unknown hash algorithm": (_unknown_hash_algorithm, ErrorCode.UNKNOWN_HASH_ALGORITHM),
    "not an EID at all": (lambda: b"\xff", ErrorCode.IDENTITY_MALFORMED),
    "CBOR but not an EID": (lambda: b"\x05", ErrorCode.IDENTITY_MALFORMED),
}


def _decide(source: bytes, verifier: EidVerifier) -> Deny:
    request = GateRequest(FREE, RemoteSource(source), request_digest(b"b"))
    state = GateState(LOCAL, EidSourceVerifier(verifier), MemorySpentStore(10))
    decision = evaluate(request, POLICY, state, NOW)
    assert isinstance(decision, Deny) and decision.stage == "source"
    return decision


@pytest.mark.parametrize("case", CASES)
def test_a_bad_source_eid_is_refused_with_its_identity_code(case: str) -> None:
    make, code = CASES[case]
    denial = _decide(make(), _informed())
    assert denial.code is code, denial.message
    assert denial.rule == "source" and "source EID" in denial.message


def test_codes_are_distinct_per_failure() -> None:
    codes = [_decide(make(), _informed()).code for make, _ in list(CASES.values())[:5]]
    assert len(set(codes)) == 5


def test_keys_not_yet_available_is_still_620_and_the_cluster_is_fetched() -> None:
    sources = EidSourceVerifier(EidVerifier())
    request = GateRequest(FREE, RemoteSource(hashes_only_eid().encode()), request_digest(b"b"))
    decision = evaluate(request, POLICY, GateState(LOCAL, sources, MemorySpentStore(10)), NOW)
    assert isinstance(decision, Deny) and decision.code is ErrorCode.SOURCE_UNVERIFIED
    assert "retry shortly" in decision.message
    assert cluster_v1().master_hash in sources.wanted


@pytest.mark.parametrize("order", list(SecurityOrder))
def test_a_node_that_forwards_answers_a_bad_source_with_its_identity_code(
        order: SecurityOrder) -> None:
    """Whether the gate runs first or the forwarding node proves the source itself."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
    core = make_core(b"f0", cid, key, {n: NodeInfo(n, True) for n in (b"f0", b"m1")},
                     {b"f0": ("10.0.0.1", 7100), b"m1": ("10.0.0.2", 7100)},
                     {b"dave": frozenset({b"m1"})})
    core.routing = RoutingConfig(NotMirroredChoice.FORWARD, order)
    body = NodeRequest(mint_eid(key, cid, b"dave").encode(), 0, 0, b"", version=1,
                       source=_bad_signature()).body()
    action = core.handle(Path.INTER_CLUSTER, encode_operation(body), b"k", 10.0, NOW)
    assert isinstance(action, Respond)
    assert decode_reply(action.reply).code == ErrorCode.BAD_EID_SIGNATURE
