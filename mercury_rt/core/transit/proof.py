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

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import Purpose, load_public_key, verify, verify_raw
from mercury_rt.core.membership.certs import NodeCert, cert_message
from mercury_rt.core.transit.certs import ClusterKeyLookup


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
            return False
        signer = cluster_key(master_hash, cert.cluster_key_hash)
        if signer is None:
            return False
        self.proven = verify(signer, Purpose.NODE_CERT,
                             cert_message(master_hash, self.node_id, cert.node_key),
                             cert.signature) and self._signed_by(cert.node_key)
        return self.proven

    def _signed_by(self, node_key: bytes) -> bool:
        try:
            public = load_public_key(node_key, "node key")
        except MercuryError:
            return False
        return verify_raw(public, self.message, self.signature)


class ProofError(MercuryError):
    """A session whose opener did not prove the cluster its request claims."""

    code = ErrorCode.SOURCE_NOT_PROVEN
