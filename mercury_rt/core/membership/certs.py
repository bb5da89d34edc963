"""Node keys certified by the cluster key, and the heartbeat verifier that checks them.

Nodes of a cluster must know that a heartbeat comes from a node of their own cluster, not
from whoever can reach the intra-cluster port. Each node has an Ed25519 node key; the
cluster key certifies it for (cluster master hash, node id), so a certificate cannot be
moved to another node id or another cluster. Wire form of a certificate (canonical CBOR,
docs/protocol.md 6.7): `[1, cluster key hash, node public key (32 bytes), signature]`,
where the signature is the cluster key's, for Purpose.NODE_CERT, over the canonical
encoding of `[master hash, node id, node public key]`. Naming the cluster key by hash lets
a verifier accept certificates from the current and the previous cluster key across a
key rotation.

The verifier caches certificates it has checked (bounded), so a steady heartbeat costs
one Ed25519 verification (the node's signature), not two.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon import cbor
from carbon.cbor import CodecError, Limits
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    IdentityError,
    IPAddress,
    Purpose,
    load_public_key,
    public_bytes,
    sign,
    tagged_hash,
    verify,
    verify_raw,
)
from mercury_rt.core.membership.heartbeat import Heartbeat, HeartbeatError, PublicAddress

CERT_FORMAT = 1
MAX_CERT_CACHE = 1024
_CERT_LIMITS = Limits(max_bytes=512, max_depth=2, max_items=8)


class NodeCertError(HeartbeatError):
    """A node certificate or heartbeat signature that does not verify."""

    code = ErrorCode.HEARTBEAT_NOT_CERTIFIED


@dataclass(frozen=True, slots=True)
class NodeCert:
    """A decoded node certificate."""

    cluster_key_hash: bytes
    node_key: bytes
    signature: bytes

    def encode(self) -> bytes:
        """Canonical wire form."""
        return cbor.dumps([CERT_FORMAT, self.cluster_key_hash, self.node_key, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> NodeCert:
        """Strict decode; raises NodeCertError."""
        try:
            value = cbor.loads(data, _CERT_LIMITS)
        except CodecError as exc:
            raise NodeCertError(f"node certificate: {exc.message}") from None
        if (not isinstance(value, list) or len(value) != 4 or value[0] != CERT_FORMAT
                or type(value[1]) is not bytes or not 1 <= len(value[1]) <= 64
                or type(value[2]) is not bytes or len(value[2]) != PUBLIC_KEY_SIZE
                or type(value[3]) is not bytes or len(value[3]) != SIGNATURE_SIZE):
            raise NodeCertError("node certificate must be [1, key hash, 32-byte node key, "
                                "64-byte signature]")
        return cls(value[1], value[2], value[3])


def cert_message(master_hash: bytes, node_id: bytes, node_key: bytes) -> bytes:
    """What the cluster key signs to certify a node key."""
    return cbor.dumps([master_hash, node_id, node_key])


def certify_node(cluster_key: Ed25519PrivateKey, master_hash: bytes, node_id: bytes,
                 node_key: bytes) -> bytes:
    """A certificate for `node_key` as node `node_id` of cluster `master_hash`."""
    signature = sign(cluster_key, Purpose.NODE_CERT, cert_message(master_hash, node_id, node_key))
    return NodeCert(tagged_hash(public_bytes(cluster_key)), node_key, signature).encode()


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """This node's id, its node key and the cluster key's certificate for it."""

    node_id: bytes
    key: Ed25519PrivateKey
    cert: bytes

    @classmethod
    def issue(cls, node_id: bytes, key: Ed25519PrivateKey, cluster_key: Ed25519PrivateKey,
              master_hash: bytes) -> NodeIdentity:
        """Certify `key` for `node_id` with the cluster key this node holds."""
        return cls(node_id, key, certify_node(cluster_key, master_hash, node_id,
                                              public_bytes(key)))

    def heartbeat(self, cluster: bytes, incarnation: int, seq: int,
                  public: tuple[PublicAddress, ...],
                  intra: tuple[IPAddress, int] | None = None) -> Heartbeat:
        """This node's signed heartbeat (the node key signs `signed_bytes()`, which
        begins with the heartbeat domain tag), bound to `intra` when given."""
        unsigned = Heartbeat(cluster, self.node_id, incarnation, seq, public, self.cert,
                             intra=intra)
        return unsigned.with_signature(self.key.sign(unsigned.signed_bytes()))


class NodeCertVerifier:
    """HeartbeatVerifier: certificate by a trusted cluster key, signature by the node key.

    `trusted` maps cluster key hashes to the cluster public keys whose certificates are
    accepted (the shell passes the current key and, after a rotation, the previous one).
    """

    def __init__(self, master_hash: bytes, trusted: Mapping[bytes, Ed25519PublicKey],
                 cache_size: int = MAX_CERT_CACHE) -> None:
        self.master_hash = master_hash
        self._trusted = dict(trusted)
        self._cache: OrderedDict[tuple[bytes, bytes], Ed25519PublicKey] = OrderedDict()
        self._cache_size = cache_size

    def set_trusted(self, trusted: Mapping[bytes, Ed25519PublicKey]) -> None:
        """Replace the trusted cluster keys (forgets certificates checked before)."""
        if dict(trusted) != self._trusted:
            self._trusted = dict(trusted)
            self._cache.clear()

    def verify(self, heartbeat: Heartbeat) -> None:
        """Raise NodeCertError unless the heartbeat is certified and signed."""
        node_key = self._node_key(heartbeat.node_id, heartbeat.node_cert)
        if not verify_raw(node_key, heartbeat.signed_bytes(), heartbeat.signature):
            raise NodeCertError("heartbeat signature does not verify against the node key")

    def _node_key(self, node_id: bytes, cert_bytes: bytes) -> Ed25519PublicKey:
        cached = self._cache.get((node_id, cert_bytes))
        if cached is not None:
            self._cache.move_to_end((node_id, cert_bytes))
            return cached
        cert = NodeCert.decode(cert_bytes)
        cluster_public = self._trusted.get(cert.cluster_key_hash)
        if cluster_public is None:
            raise NodeCertError("node certificate is signed by a cluster key this node does "
                                "not trust (another cluster, or a rotated-out key)")
        message = cert_message(self.master_hash, node_id, cert.node_key)
        if not verify(cluster_public, Purpose.NODE_CERT, message, cert.signature):
            raise NodeCertError("node certificate does not verify for this node id and "
                                "cluster")
        try:
            node_key = load_public_key(cert.node_key, "node key")
        except IdentityError as exc:
            raise NodeCertError(exc.message) from None
        self._cache[(node_id, cert_bytes)] = node_key
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return node_key
