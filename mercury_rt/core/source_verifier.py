"""The gate's SourceVerifier, backed by the identity layer's EidVerifier and key ring.

The gate needs a caller's Principal proven all the way to its cluster's master key, and
that cluster's public key for checking delegation certificates. An EID that verifies only
partly (hashes only, keys not yet fetched) is refused with SOURCE_UNVERIFIED and its
master hash remembered, so the node can fetch that cluster's keys and the caller's retry
succeeds.
"""

from __future__ import annotations

from collections import OrderedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.eid import Eid
from mercury_rt.core.eid_verify import EidVerifier
from mercury_rt.core.source import SourceError, VerifiedSource

MAX_WANTED = 1024


class EidSourceVerifier:
    """SourceVerifier over an EidVerifier; records clusters whose keys are missing."""

    def __init__(self, verifier: EidVerifier) -> None:
        self.verifier = verifier
        self.wanted: OrderedDict[bytes, bytes] = OrderedDict()
        """master hash -> an EID of that cluster (its address list says whom to ask)."""

    def verify(self, eid: bytes) -> VerifiedSource:
        """The EID's principal and cluster key, or SourceError."""
        result = self.verifier.verify(eid)
        if not result.fully_verified:
            cluster = result.principal.cluster
            self.wanted[cluster] = eid
            self.wanted.move_to_end(cluster)
            if len(self.wanted) > MAX_WANTED:
                self.wanted.popitem(last=False)
            raise SourceError(f"source EID not verifiable yet: {result.missing}; the node is "
                              "fetching its cluster's keys, retry shortly",
                              ErrorCode.SOURCE_UNVERIFIED)
        return VerifiedSource(result.principal, self._cluster_key(result.eid))

    def _cluster_key(self, eid: Eid) -> Ed25519PublicKey:
        cid = eid.cluster_id
        known = self.verifier.ring.certified(cid.master_hash, cid.cluster_key_hash)
        if known is None:
            raise SourceError("cluster key of a verified EID is not in the key ring",
                              ErrorCode.SOURCE_UNVERIFIED)
        return known.public
