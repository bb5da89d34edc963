"""Fakes for the gate's collaborators: a counting EID verifier with real Ed25519 cluster keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.principal import Principal
from mercury_rt.core.gate import (
    DelegationError,
    SourceError,
    VerifiedSource,
    decode_principal,
    encode_principal,
)

LOCAL = b"\x01" + hashlib.sha256(b"local cluster").digest()
PARTNER = b"\x01" + hashlib.sha256(b"partner cluster").digest()
STRANGER = b"\x01" + hashlib.sha256(b"stranger cluster").digest()
NOW = 1_800_000_000.0


def cluster_key(cluster: bytes) -> Ed25519PrivateKey:
    """A deterministic cluster signing key per cluster hash."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"key" + cluster).digest())


def fake_eid(who: Principal) -> bytes:
    """A stand-in EID: the principal's encoding, tagged. Real EIDs come from identity."""
    return b"EID" + cbor.dumps(encode_principal(who))


@dataclass
class CountingVerifier:
    """Verifies fake EIDs of known clusters and counts every verification attempt."""

    clusters: set[bytes] = field(default_factory=lambda: {LOCAL, PARTNER, STRANGER})
    calls: int = 0

    def verify(self, eid: bytes) -> VerifiedSource:
        self.calls += 1
        if not eid.startswith(b"EID"):
            raise SourceError("not an EID")
        try:
            value = cbor.loads(eid[3:])
        except cbor.CodecError as exc:
            raise SourceError(exc.message) from None
        try:
            who = decode_principal(value)
        except DelegationError as exc:
            raise SourceError(exc.message) from None
        if who.cluster not in self.clusters:
            raise SourceError("unknown cluster key")
        return VerifiedSource(who, cluster_key(who.cluster).public_key())
