"""Fakes for membership tests: a verifier standing in for node-cert + signature checks."""

from __future__ import annotations

import hashlib
import ipaddress

from mercury_rt.core.membership import Heartbeat, PublicAddress

CLUSTER = b"\x01cluster-a"


def fake_sign(heartbeat: Heartbeat) -> Heartbeat:
    """A keyed-hash 'signature' so tampering is detectable without real keys."""
    cert = heartbeat.node_cert
    return heartbeat.with_signature(hashlib.sha256(cert + heartbeat.signed_bytes()).digest())


class FakeVerifier:
    """Accepts certs of the form b'cert:' + node_id and matching fake signatures."""

    def verify(self, heartbeat: Heartbeat) -> None:
        if heartbeat.node_cert != b"cert:" + heartbeat.node_id:
            raise ValueError("node certificate not issued by the cluster key")
        if fake_sign(heartbeat).signature != heartbeat.signature:
            raise ValueError("bad signature")


def pub(host: str, port: int = 7000, priority: int = 10, weight: int = 10) -> PublicAddress:
    return PublicAddress(ipaddress.ip_address(host), port, priority, weight)


def beat(node: bytes, incarnation: int, seq: int, public: tuple[PublicAddress, ...] = (),
         cluster: bytes = CLUSTER) -> Heartbeat:
    return fake_sign(Heartbeat(cluster, node, incarnation, seq, public, b"cert:" + node))
