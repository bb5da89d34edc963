"""Membership in a node (pure): certificates, liveness in the routing view, publishing and
adopting cluster-ID versions, and refusing forged or stale input. No sockets, fake time."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import (
    Purpose,
    ServerAddress,
    change_addresses,
    issue_cluster_id,
    public_bytes,
    rotate_cluster_key,
    sign,
    tagged_hash,
)
from mercury_rt.core.membership import (
    HeartbeatRejected,
    NodeCert,
    NodeCertError,
    NodeCertVerifier,
    NodeDead,
    NodeIdentity,
    NodeStatus,
    PublicAddress,
    cert_message,
    certify_node,
    encode_announcement,
    encode_heartbeat_message,
)
from mercury_rt.core.node import (
    AnnouncementRejected,
    ClusterIdAdopted,
    ClusterIdPublished,
)
from tests.membership_node_support import CONFIG, World

MASTER_HASH = tagged_hash(b"master")
CLUSTER_KEY = Ed25519PrivateKey.generate()
ROGUE_KEY = Ed25519PrivateKey.generate()
NODE_KEY = Ed25519PrivateKey.generate()
TRUSTED = {tagged_hash(public_bytes(CLUSTER_KEY)): CLUSTER_KEY.public_key()}
PUBLIC = (PublicAddress(ip_address("192.0.2.9"), 7000, 10, 10),)


def identity(node_id: bytes = b"n1", signer: Ed25519PrivateKey = CLUSTER_KEY,
             master_hash: bytes = MASTER_HASH) -> NodeIdentity:
    return NodeIdentity.issue(node_id, NODE_KEY, signer, master_hash)


# ----- certificates ---------------------------------------------------------------------

def test_a_certified_node_heartbeat_verifies() -> None:
    """A node key certified by the cluster key, signing its heartbeat, is accepted."""
    verifier = NodeCertVerifier(MASTER_HASH, TRUSTED)
    verifier.verify(identity().heartbeat(MASTER_HASH, 1, 1, PUBLIC))
    verifier.verify(identity().heartbeat(MASTER_HASH, 1, 2, PUBLIC))  # cached certificate


@pytest.mark.parametrize("case", ["rogue-key", "other-node-id", "other-cluster", "tampered",
                                  "wrong-node-key", "garbage-cert"])
def test_uncertified_or_forged_heartbeats_are_refused_with_531(case: str) -> None:
    """Every way of presenting a key the cluster key did not certify, or a signature the
    certified key did not make, is refused with HEARTBEAT_NOT_CERTIFIED."""
    beat = identity().heartbeat(MASTER_HASH, 1, 1, PUBLIC)
    if case == "rogue-key":
        beat = identity(signer=ROGUE_KEY).heartbeat(MASTER_HASH, 1, 1, PUBLIC)
    elif case == "other-node-id":  # n2's certificate presented as n1's
        beat = replace(beat, node_cert=identity(b"n2").cert)
        beat = beat.with_signature(NODE_KEY.sign(beat.signed_bytes()))
    elif case == "other-cluster":
        beat = identity(master_hash=tagged_hash(b"other")).heartbeat(MASTER_HASH, 1, 1, PUBLIC)
    elif case == "tampered":
        beat = replace(beat, public=(PublicAddress(ip_address("203.0.113.1"), 7000, 0, 0),))
    elif case == "wrong-node-key":
        beat = beat.with_signature(Ed25519PrivateKey.generate().sign(beat.signed_bytes()))
    else:
        beat = replace(beat, node_cert=b"\xff" * 40)
    with pytest.raises(NodeCertError) as info:
        NodeCertVerifier(MASTER_HASH, TRUSTED).verify(beat)
    assert info.value.code is ErrorCode.HEARTBEAT_NOT_CERTIFIED


def test_certificate_wire_form_is_the_documented_one() -> None:
    """[1, cluster key hash, node key, cluster-key signature over [master, node id, key]]."""
    cert = cbor.loads(certify_node(CLUSTER_KEY, MASTER_HASH, b"n1", public_bytes(NODE_KEY)))
    assert isinstance(cert, list) and cert[:3] == [
        1, tagged_hash(public_bytes(CLUSTER_KEY)), public_bytes(NODE_KEY)]
    message = cert_message(MASTER_HASH, b"n1", public_bytes(NODE_KEY))
    assert cert[3] == sign(CLUSTER_KEY, Purpose.NODE_CERT, message)
    assert message == cbor.dumps([MASTER_HASH, b"n1", public_bytes(NODE_KEY)])
    assert NodeCert.decode(cbor.dumps(cert)).node_key == public_bytes(NODE_KEY)


def test_untrusting_a_key_forgets_certificates_it_signed() -> None:
    """After set_trusted drops a key, a cached certificate by it no longer passes."""
    verifier = NodeCertVerifier(MASTER_HASH, TRUSTED)
    beat = identity().heartbeat(MASTER_HASH, 1, 1, PUBLIC)
    verifier.verify(beat)
    verifier.set_trusted({tagged_hash(public_bytes(ROGUE_KEY)): ROGUE_KEY.public_key()})
    with pytest.raises(NodeCertError):
        verifier.verify(beat)


# ----- liveness, views and publishing ---------------------------------------------------

def test_a_cluster_that_matches_its_cluster_id_publishes_nothing() -> None:
    """Start-up, warm-up and a long steady run: no node mints a version (no churn)."""
    world = World(3)
    world.step(3 * CONFIG.dead_after)
    assert {world.version(n) for n in world.names} == {1}
    assert all(world.alive_in_view(a, b) for a in world.names for b in world.names)
    assert not any(isinstance(e, ClusterIdPublished) for ev in world.events.values() for e in ev)


def test_a_stopped_node_is_marked_dead_unrouted_and_unpublished() -> None:
    """Peers mark a silent node dead within dead_after intervals (plus one tick); the
    publisher (smallest live id) mints exactly one new version without its address,
    and the other live node adopts that version from the announcement."""
    world = World(3)
    world.step(CONFIG.dead_after + 1)
    n0, n1, n2 = world.names
    world.stop(n2)
    world.step(CONFIG.dead_after + 1)
    for observer in (n0, n1):
        assert not world.alive_in_view(observer, n2)
        peer = world.nodes[observer].membership.peers[n2]
        assert peer.status is NodeStatus.DEAD
        assert any(isinstance(e, NodeDead) for e in world.events[observer])
    world.step(CONFIG.dead_after)
    published = [e for e in world.events[n0] if isinstance(e, ClusterIdPublished)]
    assert [p.version for p in published] == [2]
    assert {a.host for a in published[0].addresses} == {ip_address("192.0.2.1"),
                                                        ip_address("192.0.2.2")}
    assert world.version(n1) == 2
    assert [e.version for e in world.events[n1] if isinstance(e, ClusterIdAdopted)] == [2]
    assert not any(isinstance(e, ClusterIdPublished) for e in world.events[n1])


def test_when_the_publisher_dies_the_next_smallest_node_publishes() -> None:
    """n0 is the publisher; when it is dead, n1 becomes the one that signs."""
    world = World(3)
    world.step(CONFIG.dead_after + 1)
    n0, n1, n2 = world.names
    world.stop(n0)
    world.step(3 * CONFIG.dead_after)
    assert [e.version for e in world.events[n1] if isinstance(e, ClusterIdPublished)] == [2]
    assert world.version(n2) == 2
    cid = world.nodes[n2].core.state.cluster_id
    assert ip_address("192.0.2.1") not in {a.host for a in cid.addresses}


def test_a_node_back_at_new_addresses_is_republished_and_reached_there() -> None:
    """A restart on a new inter port and a new intra address: peers route intra traffic to
    the new address, the publisher mints version 2 with the new port, and the restarted
    node (which came back holding version 1) adopts it."""
    world = World(3)
    world.step(CONFIG.dead_after + 1)
    n0, n1, n2 = world.names
    world.stop(n2)
    world.inter[n2] = ("192.0.2.3", 7777)
    world.intra[n2] = ("10.0.0.33", 7101)
    world.start(n2)
    world.step(CONFIG.dead_after + 3)
    for name in world.names:
        cid = world.nodes[name].core.state.cluster_id
        assert cid.version == 2
        assert ServerAddress(ip_address("192.0.2.3"), 7777, 10, 10) in cid.addresses
        assert ip_address("192.0.2.3") not in {a.host for a in cid.addresses if a.port == 7000}
    for observer in (n0, n1):
        assert world.nodes[observer].core.state.intra_addresses[n2] == ("10.0.0.33", 7101)
        assert world.alive_in_view(observer, n2)


def test_a_heartbeat_replayed_from_another_address_does_not_move_the_node() -> None:
    """Heartbeats are signed for the intra address they are sent from: a captured fresh
    one replayed from elsewhere is refused and the node stays where it is."""
    world = World(2)
    world.step(CONFIG.dead_after + 1)
    n0, n1 = world.names
    sealed = world.nodes[n1].heartbeat().sends[0].payload
    rogue = ("10.0.0.99", 7100)
    step = world.nodes[n0].receive(sealed, rogue, world.now)
    assert step is not None
    assert [type(e) for e in step.events] == [HeartbeatRejected]
    assert "signed for" in step.events[0].reason  # type: ignore[attr-defined]
    assert world.nodes[n0].core.state.intra_addresses[n1] == world.intra[n1]
    accepted = world.nodes[n0].receive(sealed, world.intra[n1], world.now)
    assert accepted is not None
    assert not any(isinstance(e, HeartbeatRejected) for e in accepted.events)


def test_an_operator_made_version_is_followed_not_reverted() -> None:
    """A version set on the cores by hand (new priorities) changes what each node
    announces; the publisher does not mint a version reverting it."""
    world = World(2)
    world.step(CONFIG.dead_after + 1)
    cid = world.cluster_id
    moved = tuple(replace(a, priority=20 + i) for i, a in enumerate(cid.addresses))
    v2 = change_addresses(cid, world.cluster_key, moved)
    for node in world.nodes.values():
        node.core.set_cluster_id(v2)
    world.step(3 * CONFIG.dead_after)
    assert {world.version(n) for n in world.names} == {2}
    assert world.nodes[world.names[1]].own_public[0].priority == 21


def test_a_configured_node_never_heard_from_is_not_alive_after_warm_up() -> None:
    """During warm-up a silent configured node is assumed alive (calls work at once);
    afterwards it is not routed to, and it is left out of the next version."""
    world = World(3)
    world.stop(world.names[2])
    world.step(1)
    assert world.alive_in_view(world.names[0], world.names[2])
    world.step(CONFIG.dead_after + 2)
    assert not world.alive_in_view(world.names[0], world.names[2])
    assert world.version(world.names[1]) == 2


# ----- refusing what peers must not be able to do -----------------------------------------

def test_announcements_that_do_not_supersede_are_not_adopted() -> None:
    """Older or equal versions are ignored; forged, foreign or garbage ones are refused
    with a code; only a properly signed newer version is adopted."""
    world = World(2)
    n0, n1 = world.names
    node = world.nodes[n1]
    peer = world.intra[n0]
    seal = world.nodes[n0].core.seal

    def offer(data: bytes) -> tuple[object, ...]:
        step = node.receive(seal.seal(encode_announcement(data)), peer, 1.0)
        assert step is not None
        return step.events

    v2 = change_addresses(world.cluster_id, world.cluster_key, world.cluster_id.addresses[:1])
    rogue_v2 = replace(v2, signature=sign(ROGUE_KEY, Purpose.CLUSTER_ID, v2.core_message()))
    other = issue_cluster_id(Ed25519PrivateKey.generate(), ROGUE_KEY, [], version=5)
    assert offer(world.cluster_id.encode()) == ()
    for data, code in ((rogue_v2.encode(), ErrorCode.BAD_CLUSTER_ID_SIGNATURE),
                       (other.encode(), ErrorCode.MASTER_MISMATCH),
                       (b"\x00garbage", None)):
        [event] = offer(data)
        assert isinstance(event, AnnouncementRejected)
        assert code is None or event.code is code
        assert node.core.state.cluster_id.version == 1
    [adopted] = offer(v2.encode())
    assert isinstance(adopted, ClusterIdAdopted) and adopted.version == 2
    v1_again = offer(world.cluster_id.encode())
    assert v1_again == () and node.core.state.cluster_id.version == 2


def test_a_heartbeat_certified_by_another_key_is_refused_inside_a_valid_seal() -> None:
    """Even sealed with the cluster's intra key, an uncertified node does not join."""
    world = World(2)
    n0, n1 = world.names
    rogue = NodeIdentity.issue(b"n9", NODE_KEY, ROGUE_KEY, world.cluster_id.master_hash)
    beat = rogue.heartbeat(world.cluster_id.master_hash, 1, 1, PUBLIC)
    sealed = world.nodes[n0].core.seal.seal(encode_heartbeat_message(beat.encode()))
    step = world.nodes[n1].receive(sealed, ("10.0.0.9", 7100), 1.0)
    assert step is not None
    [event] = step.events
    assert isinstance(event, HeartbeatRejected)
    assert event.code is ErrorCode.HEARTBEAT_NOT_CERTIFIED
    assert b"n9" not in world.nodes[n1].membership.peers
    assert b"n9" not in world.nodes[n1].core.state.intra_addresses


def test_other_intra_messages_are_left_to_the_node_core() -> None:
    """Unsealed bytes and sealed operations are not membership's: receive returns None."""
    world = World(2)
    node, seal = world.nodes[world.names[1]], world.nodes[world.names[0]].core.seal
    assert node.receive(b"\x82\x03\x40" + b"\x00" * 30, ("10.0.0.1", 7100), 1.0) is None
    operation = cbor.dumps([0, b"body", [], 0])
    assert node.receive(seal.seal(operation), ("10.0.0.1", 7100), 1.0) is None


def test_after_a_key_rotation_nodes_certified_by_the_previous_key_still_join() -> None:
    """Certificates by the new cluster key and the one before are accepted; a node
    certified by a key two rotations back is not."""
    world = World(2)
    node = world.nodes[world.names[1]]
    keys = [world.cluster_key, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()]
    cid = world.cluster_id
    for new_key in keys[1:]:
        cid = rotate_cluster_key(cid, world.master, new_key)
        node.core.set_cluster_id(cid)
        node.tick(1.0)
    master_hash = cid.master_hash
    results = []
    for index, key in enumerate(keys):
        ident = NodeIdentity.issue(f"x{index}".encode(), NODE_KEY, key, master_hash)
        beat = ident.heartbeat(master_hash, 1, 1, ())
        step = node.receive(node.core.seal.seal(encode_heartbeat_message(beat.encode())),
                            (f"10.0.1.{index}", 7100), 2.0)
        assert step is not None
        results.append(not any(isinstance(e, HeartbeatRejected) for e in step.events))
    assert results == [False, True, True]
