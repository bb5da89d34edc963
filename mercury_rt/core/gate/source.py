"""Who sent a request: the vouched local principal, or a remote EID to verify.

The gate depends on identity (EID parsing, signature chains, key caches) only through
`SourceVerifier`, so it can be tested with fakes and a verification is a call it can
count and skip. `EidSourceVerifier` is the real one, over identity's EidVerifier and key
ring.

The gate needs a caller's Principal proven all the way to its cluster's master key, and
that cluster's public key for checking delegation certificates. An EID that verifies only
partly (hashes only, keys not yet fetched) is refused with SOURCE_UNVERIFIED and its
master hash remembered, so the node can fetch that cluster's keys and the caller's retry
succeeds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from mercury_rt.core.identity import Eid, EidVerifier


class SourceError(MercuryError):
    """An EID that does not verify (bad signature, unknown cluster key, malformed)."""

    code = ErrorCode.SOURCE_UNVERIFIED


IDENTITY_CODES = range(300, 400)
_RETRY_LATER = frozenset({ErrorCode.SOURCE_UNVERIFIED, ErrorCode.KEYS_UNAVAILABLE})


def source_failure_code(exc: MercuryError) -> ErrorCode:
    """The code a source EID's failure is answered with (docs/protocol.md 7.5): 620 when
    the node lacks the keys for now (retry), else what is wrong with the EID itself: the
    identity error's own code, or 300 for bytes that do not even decode as an EID."""
    code = exc.code
    if code is None or code in _RETRY_LATER:
        return ErrorCode.SOURCE_UNVERIFIED
    return code if code in IDENTITY_CODES else ErrorCode.IDENTITY_MALFORMED


@dataclass(frozen=True, slots=True)
class VerifiedSource:
    """A verified EID's access-control identity and its cluster's public key."""

    principal: Principal
    cluster_key: Ed25519PublicKey


ClusterKeyLookup = Callable[[bytes, bytes], Ed25519PublicKey | None]
"""(master hash, cluster key hash) -> that cluster key, if verified to its master key."""


class SourceVerifier(Protocol):
    """Verifies an EID's signature chain; raises a MercuryError (e.g. SourceError) if bad."""

    def verify(self, eid: bytes) -> VerifiedSource:
        """The identity the EID proves; implementations cache verified EIDs."""
        ...

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        """A cluster key verified to `master_hash`, by its hash, if known."""
        ...


class SessionProof(Protocol):
    """What the session a request came by proves about the node that opened it."""

    def check(self, master_hash: bytes, cluster_key: ClusterKeyLookup) -> bool:
        """Whether a node certified by cluster `master_hash` opened the session."""
        ...

    @property
    def checked(self) -> bool:
        """Whether `check` needs no more signature checks (its outcome is known)."""
        ...


class _AssumedProven:
    """A proof already established elsewhere: a request a node of this cluster forwarded
    after proving its source (node/server.py), or a what-if in `policy explain`."""

    checked = True

    @staticmethod
    def check(master_hash: bytes, cluster_key: ClusterKeyLookup) -> bool:
        return True


ASSUMED_PROVEN: SessionProof = _AssumedProven()


@dataclass(frozen=True, slots=True)
class LocalSource:
    """A same-cluster request: the originator as vouched for by the intra-cluster path."""

    principal: Principal


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """A request from another cluster: the source EID it carries, not yet verified, and
    the proof of the session it came by (None: no proof, so the source is refused).

    An EID is public, so it names the caller without proving anything: the request is
    run as that EID only if its session was opened by a node its cluster certified."""

    eid: bytes
    proof: SessionProof | None = None


Source = LocalSource | RemoteSource

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

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        """A cluster key the ring holds as verified to `master_hash`."""
        known = self.verifier.ring.certified(master_hash, key_hash)
        return None if known is None else known.public

    def _cluster_key(self, eid: Eid) -> Ed25519PublicKey:
        cid = eid.cluster_id
        known = self.verifier.ring.certified(cid.master_hash, cid.cluster_key_hash)
        if known is None:
            raise SourceError("cluster key of a verified EID is not in the key ring",
                              ErrorCode.SOURCE_UNVERIFIED)
        return known.public
