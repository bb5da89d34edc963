"""The gate's collaborators are built once and kept until one of them is replaced: a new
policy (a reload), spent store, verifier or tag cache is seen by the very next request."""

from __future__ import annotations

from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.routing import NodeInfo
from policy.access import PolicyAcls
from policy.load import parse_policy
from tests.forgery_support import S_ADDRESS, S_CID, S_HOST, S_KEY
from tests.membership_node_support import make_core

POLICY = parse_policy("version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n",
                      "p.yaml")


def test_the_gate_state_is_kept_until_a_collaborator_is_replaced() -> None:
    node = make_core(b"s1", S_CID, S_KEY, {b"s1": NodeInfo(b"s1", True, S_ADDRESS)},
                     {b"s1": (S_HOST, 7001)}, {})
    first = node._gate_state()
    assert node._gate_state() is first
    node.state.policy = POLICY  # a policy reload
    reloaded = node._gate_state()
    assert reloaded is not first and isinstance(reloaded.acls, PolicyAcls)
    assert reloaded.acls.policy is POLICY
    node.spent = MemorySpentStore(10)
    assert node._gate_state().spent is node.spent
    node.target_tags = type(node.target_tags)()
    assert node._gate_state().tags is node.target_tags
    assert node._gate_state() is node._gate_state()
