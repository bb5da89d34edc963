"""The heartbeat signing contract with real Ed25519 keys (node key certified by cluster key).

Identity owns the real certificate format; this test shows the contract membership relies
on: `signed_bytes()` is what the node key signs, and a verifier that checks the certificate
chain makes membership refuse forged, uncertified and tampered heartbeats.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from carbon.error_codes import ErrorCode
from mercury_rt.core.membership import (
    Heartbeat,
    HeartbeatRejected,
    Membership,
    NodeJoined,
    decode_heartbeat,
)
from tests.routing_membership_support import CLUSTER, pub
from tests.routing_support import addr

CLUSTER_KEY = Ed25519PrivateKey.generate()
ROGUE_KEY = Ed25519PrivateKey.generate()


def certify(cluster_key: Ed25519PrivateKey, node_id: bytes, node_key: Ed25519PrivateKey) -> bytes:
    raw = node_key.public_key().public_bytes_raw()
    return raw + cluster_key.sign(b"node-cert" + CLUSTER + node_id + raw)


class Ed25519Verifier:
    def __init__(self, cluster_public: Ed25519PublicKey) -> None:
        self.cluster_public = cluster_public

    def verify(self, heartbeat: Heartbeat) -> None:
        raw, cert_sig = heartbeat.node_cert[:32], heartbeat.node_cert[32:]
        self.cluster_public.verify(cert_sig, b"node-cert" + heartbeat.cluster
                                   + heartbeat.node_id + raw)
        Ed25519PublicKey.from_public_bytes(raw).verify(heartbeat.signature,
                                                       heartbeat.signed_bytes())


def signed(node_key: Ed25519PrivateKey, cert: bytes, seq: int = 1) -> Heartbeat:
    hb = Heartbeat(CLUSTER, b"B", 1, seq, (pub("192.0.2.2"),), cert)
    return hb.with_signature(node_key.sign(hb.signed_bytes()))


def test_real_signatures_accepted_and_forgeries_refused() -> None:
    """Certified + signed: joins. Rogue-certified, wrong key or tampered: refused (531)."""
    node_key = Ed25519PrivateKey.generate()
    good_cert = certify(CLUSTER_KEY, b"B", node_key)
    m = Membership(CLUSTER, b"A", (), Ed25519Verifier(CLUSTER_KEY.public_key()))
    src = addr("10.0.0.2")
    out = m.receive(decode_heartbeat(signed(node_key, good_cert).encode()), src, now=0.0)
    assert isinstance(out[0], NodeJoined)
    rogue_cert = certify(ROGUE_KEY, b"B", node_key)
    other_key = Ed25519PrivateKey.generate()
    hb = signed(node_key, good_cert, seq=3)
    tampered = Heartbeat(hb.cluster, hb.node_id, hb.incarnation, hb.seq,
                         (pub("203.0.113.66"),), hb.node_cert, hb.signature)
    for bad in (signed(node_key, rogue_cert, seq=2), signed(other_key, good_cert, seq=2),
                tampered):
        [rejected] = m.receive(bad, src, now=1.0)
        assert isinstance(rejected, HeartbeatRejected)
        assert rejected.code is ErrorCode.HEARTBEAT_NOT_CERTIFIED
    assert m.published == (pub("192.0.2.2"),)
