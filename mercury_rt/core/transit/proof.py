"""Who opened a session: the calling node's proof that it holds a key of its cluster.

An EID is an address, not a credential, so a request's source EID proves nothing about
who sent it. Every first datagram therefore carries the calling node's certificate (its
node key certified by its cluster key, docs/protocol.md 6.7.1) and that node key's
signature over this very first datagram. A receiver accepts the session's requests as
coming from cluster M only once the certificate verifies under a cluster key proven to
M's master key and the signature under the certified node key. Checking is lazy (the
source's cluster keys may have to be fetched first) and done once per session.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import MercuryError
from mercury_rt.core.identity import Purpose, load_public_key, verify, verify_raw
from mercury_rt.core.membership.certs import NodeCert, cert_message
from mercury_rt.core.transit.certs import ClusterKeyLookup

MAX_CERTS = 4096


@dataclass(frozen=True, slots=True)
class NodeCredential:
    """What this node proves itself with: its id, node key and the cluster's certificate."""

    master_hash: bytes
    node_id: bytes
    key: Ed25519PrivateKey
    cert: bytes

    def sign(self, message: bytes) -> bytes:
        """The node key's signature over a proof message (domain-prefixed already)."""
        return self.key.sign(message)


@dataclass(slots=True)
class PeerProof:
    """A session's unchecked claim: cluster, node, certificate, signature, signed message."""

    master_hash: bytes
    node_id: bytes
    node_cert: bytes
    signature: bytes
    message: bytes
    proven: bool | None = field(default=None)
    """None until checked; then whether it held."""
    certs: CertCache | None = field(default=None)
    """Node certificates checked before (shared by a responder's sessions)."""

    @property
    def checked(self) -> bool:
        """Whether the proof was checked already (a later `check` costs nothing)."""
        return self.proven is not None

    def check(self, master_hash: bytes, cluster_key: ClusterKeyLookup) -> bool:
        """Whether this session was opened by a node of cluster `master_hash`.

        `cluster_key` yields cluster keys already verified to their master key; a claim for
        another cluster, or one not yet checkable, is False (and not cached as checked
        when the key was merely unknown, so a later fetch can still prove it)."""
        if master_hash != self.master_hash:
            return False
        if self.proven is not None:
            return self.proven
        try:
            cert = NodeCert.decode(self.node_cert)
        except MercuryError:
            self.proven = False
            self.node_cert = self.signature = self.message = b""
            return False
        signer = cluster_key(master_hash, cert.cluster_key_hash)
        if signer is None:
            return False
        key = (master_hash, self.node_id, self.node_cert)
        certified = self.certs is not None and self.certs.holds(key)
        if not certified:
            certified = verify(signer, Purpose.NODE_CERT,
                               cert_message(master_hash, self.node_id, cert.node_key),
                               cert.signature)
            if certified and self.certs is not None:
                self.certs.add(key)
        self.proven = certified and self._signed_by(cert.node_key)
        self.node_cert = self.signature = self.message = b""  # settled: ~400 B per session
        return self.proven

    def _signed_by(self, node_key: bytes) -> bool:
        try:
            public = load_public_key(node_key, "node key")
        except MercuryError:
            return False
        return verify_raw(public, self.message, self.signature)


class CertCache:
    """Node certificates (master hash, node id, certificate bytes) that verified, bounded:
    a node that opens many sessions costs one certificate check, not one per session. An
    entry counts only while the cluster key that signed it is still trusted (the lookup
    in `PeerProof.check` runs first)."""

    def __init__(self, limit: int = MAX_CERTS) -> None:
        self._held: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._limit = limit

    def holds(self, key: tuple[bytes, bytes, bytes]) -> bool:
        """Whether this certificate verified before."""
        if key in self._held:
            self._held.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[bytes, bytes, bytes]) -> None:
        """Remember a certificate that verified."""
        self._held[key] = None
        if len(self._held) > self._limit:
            self._held.popitem(last=False)
