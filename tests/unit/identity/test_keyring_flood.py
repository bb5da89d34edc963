"""A flood of self-made clusters cannot resurrect a real cluster's rotated-out key
(issue 17 item 5): clusters a node has reason to know are held apart from strangers', and
a stranger's cluster evicted after a rotation leaves a floor that still refuses the old key."""

from __future__ import annotations

import functools
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import BudgetSettings, SignatureBudget
from mercury_rt.core.identity import (
    ClusterId,
    EidVerifier,
    IdentityError,
    KeyRing,
    change_addresses,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
    rotate_cluster_key,
)
from mercury_rt.core.node import (
    CallPlanner,
    NodeCore,
    NodeRequest,
    Respond,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.node.planner import ContactCluster
from mercury_rt.core.routing import NodeInfo, Path
from policy.load import parse_policy
from policy.model import Policy
from tests.forgery_support import C_ADDRESS, C_CID, C_HOST, C_KEY
from tests.identity_support import ADDRESSES, CLUSTER_KEY_1, CLUSTER_KEY_2, MASTER, cluster_v1
from tests.membership_node_support import make_core

FLOOD = 5_000
REAL_V2 = rotate_cluster_key(cluster_v1(), MASTER, CLUSTER_KEY_2)
REAL_HASH = REAL_V2.master_hash


@functools.cache
def _flood() -> tuple[tuple[ClusterId, Ed25519PrivateKey], ...]:
    """FLOOD self-made clusters, each with its own master key (what a stranger sends)."""
    def k(n: int, role: int) -> Ed25519PrivateKey:
        return private_key_from_bytes(role.to_bytes(2, "big") + n.to_bytes(30, "big"))
    return tuple((issue_cluster_id(k(n, 1), k(n, 2), ()), k(n, 2)) for n in range(FLOOD))


def _rotated_out() -> bytes:
    """The real cluster's old key (stolen, say) minting at version 3, after its rotation."""
    forged = change_addresses(change_addresses(cluster_v1(), CLUSTER_KEY_1, ADDRESSES[:1]),
                              CLUSTER_KEY_1, ADDRESSES[:2])
    return mint_eid(CLUSTER_KEY_1, forged, b"mallory").encode()


def _pass_flood(verifier: EidVerifier, count: int = FLOOD) -> None:
    for cluster_id, _ in _flood()[:count]:
        verifier.add_cluster_id(cluster_id)


def _refused(verifier: EidVerifier) -> ErrorCode | None:
    with pytest.raises(IdentityError) as info:
        verifier.verify(_rotated_out())
    return info.value.code


def test_without_a_rotation_known_the_old_key_passes() -> None:
    """The baseline the ring must keep: only knowledge of the rotation refuses it."""
    assert EidVerifier().verify(_rotated_out()).fully_verified


def test_a_kept_cluster_keeps_its_rotation_history_through_a_flood() -> None:
    verifier = EidVerifier(KeyRing(max_clusters=64))
    verifier.ring.keep({REAL_HASH})
    verifier.add_cluster_id(REAL_V2)
    _pass_flood(verifier, 200)
    assert _refused(verifier) is ErrorCode.ROTATED_OUT_KEY
    stats = verifier.ring.statistics()
    assert stats["held_clusters"] == 1 and stats["clusters"] == 65
    verifier.ring.keep(())
    _pass_flood(verifier, 200)
    assert verifier.ring.master_public(REAL_HASH) is None, "no longer kept: a stranger"


def test_a_strangers_evicted_cluster_still_refuses_its_rotated_out_key() -> None:
    verifier = EidVerifier()
    verifier.add_cluster_id(REAL_V2)
    _pass_flood(verifier)
    assert verifier.ring.master_public(REAL_HASH) is None, "the flood evicted it"
    assert _refused(verifier) is ErrorCode.ROTATED_OUT_KEY
    assert verifier.ring.statistics()["floors"] == 1, "key-version-1 floods leave no floor"


def test_floors_refuse_a_second_key_at_the_same_version_and_keep_current_keys_working() -> None:
    ring = KeyRing(max_clusters=1)
    verifier = EidVerifier(ring)
    verifier.add_cluster_id(REAL_V2)
    verifier.add_cluster_id(_flood()[0][0])  # evicts the real cluster
    conflict = issue_cluster_id(MASTER, CLUSTER_KEY_1, ADDRESSES, version=3, key_version=2)
    with pytest.raises(IdentityError) as info:
        verifier.verify(mint_eid(CLUSTER_KEY_1, conflict, b"m").encode())
    assert info.value.code is ErrorCode.KEY_VERSION_CONFLICT
    assert verifier.verify(mint_eid(CLUSTER_KEY_2, REAL_V2, b"alice").encode()).fully_verified
    old = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"alice").encode()
    assert verifier.verify(old).fully_verified, "EIDs of the old version stay valid (4.6)"


def test_floors_are_bounded() -> None:
    ring = KeyRing(max_clusters=2, max_floors=3)
    for n in range(10):
        master = private_key_from_bytes(bytes([100 + n]) * 32)
        v1 = issue_cluster_id(master, private_key_from_bytes(bytes([150 + n]) * 32), ())
        ring.learn_cluster_id(rotate_cluster_key(v1, master, private_key_from_bytes(
            bytes([200 + n]) * 32)))
    stats = ring.statistics()
    assert stats["clusters"] == 2 and stats["floors"] == 3


def test_pins_are_bounded_and_a_dropped_pin_returns_to_the_strangers() -> None:
    ring = KeyRing(max_clusters=2, max_pinned=1)
    verifier = EidVerifier(ring)
    (a, _), (b, _) = _flood()[:2]
    ring.pin(a.master_hash)
    verifier.add_cluster_id(a)
    for cluster_id, _ in _flood()[2:6]:
        verifier.add_cluster_id(cluster_id)
    assert ring.master_public(a.master_hash) is not None, "pinned: not evicted"
    ring.pin(b.master_hash)
    assert ring.statistics()["held_clusters"] == 0, "b unknown yet; a went back"
    verifier.add_cluster_id(_flood()[6][0])
    verifier.add_cluster_id(_flood()[7][0])
    assert ring.master_public(a.master_hash) is None


# ----- the node: its policy's trusted clusters, its own cluster, the clusters it calls

UNBOUNDED = BudgetSettings(burst=1e9, cluster_burst=1e9)
"""A signature budget the flood cannot spend (tests/unit/node/test_signature_budget.py
tests the real one)."""
POLICY = parse_policy(f"""\
version: 1
levels: [public]
new_entities: [{{match: "*", classification: public, clearance: public}}]
trusted_clusters:
  real: {{master_hash: "{REAL_HASH.hex()}", max_clearance: public}}
""")


def _node(policy: Policy = POLICY) -> NodeCore:
    node = b"c1"
    core = make_core(node, C_CID, C_KEY, {node: NodeInfo(node, True, C_ADDRESS)},
                     {node: (C_HOST, 7001)}, {b"svc": frozenset({node})})
    core.state.policy = policy  # as the shell does on a policy reload
    core.signature_budget = SignatureBudget(UNBOUNDED)  # the flood must reach the key ring
    return core


def _call_from(core: NodeCore, source: bytes) -> int:
    """The reply code of a request to c1's svc carrying `source` (0: it would run)."""
    body = NodeRequest(mint_eid(C_KEY, C_CID, b"svc").encode(), 0, 0, b"", version=1,
                       source=source).body()
    action = core.handle(Path.INTER_CLUSTER, encode_operation(body), b"k", 10.0, 0.0)
    return decode_reply(action.reply).code if isinstance(action, Respond) else 0


def test_a_node_keeps_its_policys_trusted_clusters_through_a_flood_of_sources() -> None:
    core = _node()
    real = mint_eid(CLUSTER_KEY_2, REAL_V2, b"alice").encode()
    assert _call_from(core, real) == ErrorCode.SOURCE_NOT_PROVEN, "verified; no session"
    for cluster_id, key in _flood():
        assert _call_from(core, mint_eid(key, cluster_id, b"x").encode()) \
            == ErrorCode.SOURCE_NOT_PROVEN
    assert core.verifier.ring.master_public(REAL_HASH) is not None
    assert _call_from(core, _rotated_out()) == ErrorCode.ROTATED_OUT_KEY


def test_a_node_keeps_its_own_cluster_and_pins_the_clusters_it_calls() -> None:
    core = _node(parse_policy("version: 1\nlevels: [public]\n"))
    planner = CallPlanner(core, random.Random(0), answer_timeout=0.5,
                          caller_eid=lambda local: mint_eid(C_KEY, C_CID, local).encode())
    assert isinstance(planner.route(mint_eid(CLUSTER_KEY_2, REAL_V2, b"svc"), b"k"),
                      ContactCluster)
    _pass_flood(core.verifier)
    assert core.verifier.ring.statistics()["clusters"] == 4096 + 2
    assert core.verifier.ring.master_public(C_CID.master_hash) is not None
    assert core.verifier.ring.master_public(REAL_HASH) is not None
    assert _refused(core.verifier) is ErrorCode.ROTATED_OUT_KEY
