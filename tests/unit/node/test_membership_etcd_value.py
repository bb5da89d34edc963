"""What a node does with the cluster-ID value it reads from etcd (sans-IO): a newer
version that verifies is adopted; one of another cluster, forged, damaged or oversized is
rejected with its code and never adopted (the node puts its own instead); an older one is
replaced by the held version; a proposal that lost to a newer version is dropped."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import ServerAddress, change_addresses, issue_cluster_id
from mercury_rt.core.membership import MembershipConfig, NodeIdentity
from mercury_rt.core.node import (
    ClusterIdLearned,
    EtcdValueRejected,
    MembershipSettings,
    NodeMembership,
)
from mercury_rt.core.node.membership import MAX_ETCD_VALUE
from mercury_rt.core.routing import NodeInfo
from tests.membership_node_support import make_core

KEY = Ed25519PrivateKey.generate()
V1 = issue_cluster_id(Ed25519PrivateKey.generate(), KEY,
                      [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
ALONE = (ServerAddress(ip_address("192.0.2.9"), 7000, 10, 10),)


def node() -> NodeMembership:
    core = make_core(b"n0", V1, KEY, {b"n0": NodeInfo(b"n0", True, None)},
                     {b"n0": ("10.0.0.1", 7100)})
    identity = NodeIdentity.issue(b"n0", Ed25519PrivateKey.generate(), KEY, V1.master_hash)
    return NodeMembership(core, identity, KEY, inter_address=("192.0.2.1", 7000),
                          settings=MembershipSettings(MembershipConfig(), cas=True),
                          incarnation=1, now=0.0)


def rejected_code(adapter: NodeMembership, data: bytes) -> ErrorCode:
    step, put = adapter.etcd_value(data, 1.0)
    assert put == V1 and adapter.core.state.cluster_id == V1
    (event,) = [e for e in step.events if isinstance(e, EtcdValueRejected)]
    return event.code


def test_a_newer_verified_version_is_adopted() -> None:
    adapter, v2 = node(), change_addresses(V1, KEY, ALONE)
    step, put = adapter.etcd_value(v2.encode(), 1.0)
    assert put is None and adapter.core.state.cluster_id == v2
    assert ClusterIdLearned(2) in step.events
    assert adapter.etcd_value(v2.encode(), 2.0)[1] is None  # in sync: nothing to put


def test_what_does_not_verify_is_never_adopted_and_is_replaced() -> None:
    adapter = node()
    other = issue_cluster_id(Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(),
                             list(ALONE), 5)
    assert rejected_code(adapter, other.encode()) is ErrorCode.MASTER_MISMATCH
    forged = replace(change_addresses(V1, KEY, ALONE), signature=bytes(64))
    assert rejected_code(adapter, forged.encode()) is ErrorCode.BAD_CLUSTER_ID_SIGNATURE
    rejected_code(adapter, b"\xff not cbor")
    rejected_code(adapter, b"\x00" * (MAX_ETCD_VALUE + 1))
    assert adapter.counters["etcd_values_rejected"] == 4


def test_an_older_value_is_replaced_and_a_lost_proposal_dropped() -> None:
    adapter = node()
    v2 = change_addresses(V1, KEY, ALONE)
    adapter.etcd_value(v2.encode(), 1.0)
    assert adapter.etcd_value(V1.encode(), 2.0)[1] == v2  # etcd went back: put ours
    mine = change_addresses(v2, KEY, (ServerAddress(ip_address("192.0.2.7"), 7000, 1, 1),))
    theirs = change_addresses(v2, KEY, (ServerAddress(ip_address("192.0.2.8"), 7000, 1, 1),))
    step, put = adapter.etcd_value(theirs.encode(), 3.0, proposed=mine)
    assert put is None and adapter.core.state.cluster_id == theirs
    assert ClusterIdLearned(3) in step.events
    late = adapter.etcd_value(mine.encode(), 4.0, proposed=mine)  # overtaken: not put
    assert late[1] is None and adapter.core.state.cluster_id == theirs


def test_a_cas_whose_reread_finds_the_proposal_counts_as_won_not_lost() -> None:
    """A CAS reported lost (its reply lost, the retry found the key changed) whose re-read
    finds the very proposal was won: published, not counted in `cas_lost`; a CAS that
    did lose to another version is."""
    adapter = node()
    mine = change_addresses(V1, KEY, ALONE)
    put = adapter.etcd_value(mine.encode(), 1.0, proposed=mine)[1]
    assert put is None and adapter.core.state.cluster_id == mine
    assert adapter.counters["cas_lost"] == 0 and adapter.counters["cluster_ids_published"] == 1
    again = change_addresses(mine, KEY, (ServerAddress(ip_address("192.0.2.7"), 7000, 1, 1),))
    theirs = change_addresses(mine, KEY, (ServerAddress(ip_address("192.0.2.8"), 7000, 1, 1),))
    adapter.etcd_value(theirs.encode(), 2.0, proposed=again)
    assert adapter.counters["cas_lost"] == 1
