"""Properties of liveness on etcd leases (MembershipConfig.leases): whatever the order of
heartbeats, silence, lost and regained leases, a node whose lease is gone is DEAD and
unpublished, silence alone never kills, and a regained lease brings a node heard from
recently back; without leases, the same inputs kill by silence as before."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.identity import Endpoint
from mercury_rt.core.membership import (
    Membership,
    MembershipConfig,
    NodeDead,
    NodeRecovered,
    NodeStatus,
)
from tests.routing_membership_support import CLUSTER, FakeVerifier, beat, pub

PEERS = (b"n1", b"n2", b"n3")
LEASES = MembershipConfig(interval=1.0, suspect_after=2, dead_after=4, leases=True)
SOURCE = {n: Endpoint(ipaddress.ip_address(f"10.0.0.{i + 1}"), 7100)
          for i, n in enumerate(PEERS)}
PUBLIC = {n: pub(f"192.0.2.{i + 1}") for i, n in enumerate(PEERS)}

inputs = st.lists(st.tuples(st.sampled_from(("beat", "tick", "lost", "held")),
                            st.sampled_from(PEERS), st.floats(0.0, 5.0)), max_size=40)


def membership(config: MembershipConfig) -> Membership:
    return Membership(CLUSTER, b"n0", (pub("192.0.2.100"),), FakeVerifier(), config)


@given(inputs)
@settings(max_examples=300)
def test_a_node_without_a_lease_is_dead_and_unpublished(steps: list[tuple[str, bytes,
                                                                          float]]) -> None:
    view = membership(LEASES)
    now, seq, no_lease = 0.0, 0, set()
    for kind, node, advance in steps:
        now += advance
        if kind == "beat":
            seq += 1
            view.receive(beat(node, 1, seq, (PUBLIC[node],)), SOURCE[node], now)
        elif kind == "tick":
            outputs = view.tick(now)
            assert not any(isinstance(o, NodeDead) for o in outputs), "silence killed"
        elif kind == "lost":
            no_lease.add(node)
            outputs = view.lease_lost(node, now)
        else:
            no_lease.discard(node)
            outputs = view.lease_held(node, now)
            peer = view.peers.get(node)
            if peer is not None and any(isinstance(o, NodeRecovered) for o in outputs):
                assert now - peer.last_heard < 2.0
        for peer_id, peer in view.peers.items():
            if peer_id in no_lease:
                assert peer.status is NodeStatus.DEAD
                assert PUBLIC[peer_id] not in view.published
                assert not view.is_alive(peer_id)
            else:
                assert peer.status is not NodeStatus.DEAD
                assert PUBLIC[peer_id] in view.published


def test_a_lost_lease_kills_at_once_and_a_regained_one_revives() -> None:
    view = membership(LEASES)
    view.receive(beat(b"n1", 1, 1, (PUBLIC[b"n1"],)), SOURCE[b"n1"], 0.0)
    assert PUBLIC[b"n1"] in view.published
    outputs = view.lease_lost(b"n1", 0.5)
    assert NodeDead(b"n1") in outputs and PUBLIC[b"n1"] not in view.published
    view.receive(beat(b"n1", 1, 2, (PUBLIC[b"n1"],)), SOURCE[b"n1"], 0.6)
    assert not view.is_alive(b"n1"), "heartbeats do not revive a node without a lease"
    assert NodeRecovered(b"n1") in view.lease_held(b"n1", 0.7)
    assert view.is_alive(b"n1") and PUBLIC[b"n1"] in view.published
    assert view.lease_lost(b"n0", 1.0) == []  # our own: the shell renews it


def test_without_leases_silence_still_kills() -> None:
    view = membership(MembershipConfig(interval=1.0, suspect_after=2, dead_after=4))
    view.receive(beat(b"n1", 1, 1, (PUBLIC[b"n1"],)), SOURCE[b"n1"], 0.0)
    assert NodeDead(b"n1") in view.tick(5.0)
