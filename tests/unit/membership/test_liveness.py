"""Membership: heartbeat codec, authentication, suspicion/death, restarts, address changes."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

import pytest

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.core.membership import (
    AddressChanged,
    AddressListChanged,
    Heartbeat,
    HeartbeatError,
    HeartbeatRejected,
    Membership,
    MembershipConfig,
    NodeDead,
    NodeJoined,
    NodeRecovered,
    NodeRestarted,
    NodeStatus,
    NodeSuspected,
    decode_heartbeat,
)
from mercury_rt.core.routing import NodeInfo
from tests.routing_membership_support import CLUSTER, FakeVerifier, beat, fake_sign, pub
from tests.routing_support import addr

LOCAL_PUB = pub("192.0.2.1")
B_PUB = pub("192.0.2.2")
SRC = addr("10.0.0.2", 7100)
SRC2 = addr("10.0.0.22", 7100)


def member(**config: object) -> Membership:
    return Membership(CLUSTER, b"A", (LOCAL_PUB,), FakeVerifier(),
                      MembershipConfig(**config))  # type: ignore[arg-type]


def test_heartbeat_round_trip_and_signed_bytes() -> None:
    """A heartbeat survives the wire; the signature covers everything but itself."""
    hb = beat(b"B", 3, 9, (B_PUB, pub("2001:db8::1", 7001, 20, 0)))
    assert decode_heartbeat(hb.encode()) == hb
    assert hb.signed_bytes() == hb.with_signature(b"other").signed_bytes()
    bound = replace(hb, intra=(ip_address("10.0.0.2"), 7100))
    assert decode_heartbeat(bound.encode()) == bound
    assert bound.signed_bytes() != hb.signed_bytes(), "the intra address is signed"


@pytest.mark.parametrize("mutate", [
    lambda m: m.pop(7),
    lambda m: m.update({0: 2}),
    lambda m: m.update({2: b""}),
    lambda m: m.update({3: -1}),
    lambda m: m.update({4: True}),
    lambda m: m.update({5: [[b"\x01\x02\x03", 1, 0, 0]]}),
    lambda m: m.update({5: [[b"\x01\x02\x03\x04", 0, 0, 0]]}),
    lambda m: m.update({5: [[b"\x01\x02\x03\x04", 1, 0, 0]] * 17}),
    lambda m: m.update({6: b"x" * 3000}),
    lambda m: m.update({8: [b"\x0a\x00\x00", 7100]}),
    lambda m: m.update({8: [b"\x0a\x00\x00\x02", 0]}),
    lambda m: m.update({9: 1}),
])
def test_malformed_heartbeats_rejected(mutate) -> None:  # type: ignore[no-untyped-def]
    """Wrong keys, versions, types, ranges and oversize lists are HeartbeatErrors."""
    fields = cbor.loads(beat(b"B", 1, 1).encode())
    assert isinstance(fields, dict)
    mutate(fields)
    with pytest.raises(HeartbeatError):
        decode_heartbeat(cbor.dumps(fields))




def test_join_publish_and_liveness_progression() -> None:
    """New node joins and its address is published; silence -> suspect -> dead -> dropped."""
    m = member(interval=1.0, suspect_after=3, dead_after=6)
    out = m.receive(beat(b"B", 1, 1, (B_PUB,)), SRC, now=0.0)
    assert out == [NodeJoined(b"B", (SRC.host, SRC.port)),
                   AddressListChanged((LOCAL_PUB, B_PUB))]
    assert m.tick(2.9) == []
    assert m.tick(3.0) == [NodeSuspected(b"B")]
    assert not m.is_alive(b"B")
    assert m.published == (LOCAL_PUB, B_PUB)  # suspects stay published
    assert m.tick(6.0) == [NodeDead(b"B"), AddressListChanged((LOCAL_PUB,))]
    assert m.peers[b"B"].status is NodeStatus.DEAD


def test_silence_longer_than_dead_at_once_reports_both() -> None:
    """A long pause between ticks still reports suspect before dead."""
    m = member()
    m.receive(beat(b"B", 1, 1), SRC, now=0.0)
    assert m.tick(100.0) == [NodeSuspected(b"B"), NodeDead(b"B")]


def test_recovery_and_restart() -> None:
    """A dead node heard again recovers; a higher incarnation is reported as a restart."""
    m = member()
    m.receive(beat(b"B", 1, 5, (B_PUB,)), SRC, now=0.0)
    m.tick(10.0)
    out = m.receive(beat(b"B", 2, 0, (B_PUB,)), SRC, now=11.0)
    assert out == [NodeRestarted(b"B", 2), NodeRecovered(b"B"),
                   AddressListChanged((LOCAL_PUB, B_PUB))]
    assert m.is_alive(b"B")


def test_address_change_detected() -> None:
    """Same node, new source address: reported with old and new."""
    m = member()
    m.receive(beat(b"B", 1, 1), SRC, now=0.0)
    out = m.receive(beat(b"B", 1, 2), SRC2, now=1.0)
    assert out == [AddressChanged(b"B", (SRC.host, SRC.port), (SRC2.host, SRC2.port))]


def test_public_address_change_publishes_new_list() -> None:
    """A node announcing a new public address changes the list to publish."""
    m = member()
    m.receive(beat(b"B", 1, 1, (B_PUB,)), SRC, now=0.0)
    new = pub("198.51.100.2")
    assert m.receive(beat(b"B", 1, 2, (new,)), SRC, now=1.0) == [
        AddressListChanged((LOCAL_PUB, new))]
    assert m.set_local_public(()) == [AddressListChanged((new,))]
    assert m.set_local_public(()) == []


@pytest.mark.parametrize(("hb", "code"), [
    (beat(b"B", 1, 1, cluster=b"\x01other"), ErrorCode.BAD_HEARTBEAT),
    (beat(b"A", 1, 1), ErrorCode.BAD_HEARTBEAT),
    (Heartbeat(CLUSTER, b"B", 1, 1, (), b"cert:B", b"forged"),
     ErrorCode.HEARTBEAT_NOT_CERTIFIED),
    (beat(b"B", 1, 1).with_signature(b""), ErrorCode.HEARTBEAT_NOT_CERTIFIED),
])
def test_unauthenticated_heartbeats_are_rejected(hb: Heartbeat, code: ErrorCode) -> None:
    """Other cluster, our own id, bad signature: refused without touching the view."""
    m = member()
    [rejected] = m.receive(hb, SRC, now=0.0)
    assert isinstance(rejected, HeartbeatRejected) and rejected.code is code
    assert m.peers == {}


def test_uncertified_node_rejected() -> None:
    """A node whose key the cluster key did not certify is not a member."""
    m = member()
    hb = Heartbeat(CLUSTER, b"B", 1, 1, (), b"cert:X")
    [rejected] = m.receive(fake_sign(hb), SRC, now=0.0)
    assert isinstance(rejected, HeartbeatRejected)
    assert rejected.code is ErrorCode.HEARTBEAT_NOT_CERTIFIED


def test_replayed_heartbeat_does_not_keep_node_alive() -> None:
    """An old heartbeat replayed from anywhere is stale: no liveness, no address change."""
    m = member()
    old = beat(b"B", 1, 1)
    m.receive(old, SRC, now=0.0)
    m.receive(beat(b"B", 1, 2), SRC, now=1.0)
    [rejected] = m.receive(old, SRC2, now=5.0)
    assert isinstance(rejected, HeartbeatRejected)
    assert rejected.code is ErrorCode.STALE_HEARTBEAT
    assert m.peers[b"B"].source == (SRC.host, SRC.port)
    assert m.tick(6.0) == [NodeSuspected(b"B")]


def test_node_count_bounded() -> None:
    """Certified nodes beyond max_nodes are refused, not tracked."""
    m = member(max_nodes=1)
    m.receive(beat(b"B", 1, 1), SRC, now=0.0)
    [rejected] = m.receive(beat(b"C", 1, 1), SRC2, now=0.0)
    assert isinstance(rejected, HeartbeatRejected)
    assert rejected.code is ErrorCode.TOO_MANY_NODES


def test_config_validates() -> None:
    """suspect_after must not exceed dead_after."""
    with pytest.raises(ValueError):
        MembershipConfig(suspect_after=5, dead_after=4)








def test_publisher_is_smallest_alive_node() -> None:
    """Exactly one node mints new cluster-ID versions; a dead smaller node hands over."""
    b_view = Membership(CLUSTER, b"B", (B_PUB,), FakeVerifier())
    assert b_view.is_publisher()
    b_view.receive(beat(b"A", 1, 1), SRC, now=0.0)
    assert not b_view.is_publisher()
    b_view.tick(10.0)
    assert b_view.is_publisher()
    a_view = member()
    a_view.receive(beat(b"B", 1, 1), SRC, now=0.0)
    assert a_view.is_publisher()


def test_routing_nodes_feed_the_routing_view() -> None:
    """Membership gives routing each node's liveness and its best public address."""
    m = member()
    backup = pub("192.0.2.9", priority=20)
    m.receive(beat(b"B", 1, 1, (backup, B_PUB)), SRC, now=0.0)
    m.receive(beat(b"C", 1, 1), SRC2, now=0.0)
    m.tick(3.5)
    assert m.routing_nodes() == {b"A": NodeInfo(b"A", True, LOCAL_PUB),
                                 b"B": NodeInfo(b"B", False, B_PUB),
                                 b"C": NodeInfo(b"C", False, None)}
