"""Fakes and fixtures for the gate tests: a counting EID verifier with real Ed25519 cluster
keys, a stamp resource, and the policy the pipeline tests run under."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon import cbor
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.gate import (
    DelegationError,
    GateState,
    MemorySpentStore,
    RemoteSource,
    SourceError,
    VerifiedSource,
    check_stamp,
    decode_principal,
    encode_principal,
    request_digest,
    stamp_resource,
    target_tag,
)
from policy.access import Target
from policy.load import parse_policy

LOCAL = b"\x01" + hashlib.sha256(b"local cluster").digest()
PARTNER = b"\x01" + hashlib.sha256(b"partner cluster").digest()
STRANGER = b"\x01" + hashlib.sha256(b"stranger cluster").digest()
NOW = 1_800_000_000.0
ALICE = Principal(LOCAL, b"alice")
BOB = Principal(PARTNER, b"bob", Persona(Symbol("/argon/persona/buyer"), {"n": 1}))
CAROL = Principal(LOCAL, b"carol")


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

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        """The fixture key of a known cluster (key hashes are not modelled here)."""
        return cluster_key(master_hash).public_key() if master_hash in self.clusters else None


@dataclass(frozen=True)
class SessionOf:
    """A session opened by a node of `cluster` (what transit's PeerProof proves): it proves
    that cluster only, and only when the cluster's key is known."""

    cluster: bytes
    checked = True

    def check(self, master_hash: bytes,
              cluster_key: Callable[[bytes, bytes], Ed25519PublicKey | None]) -> bool:
        return master_hash == self.cluster and cluster_key(master_hash, b"") is not None


def remote(who: Principal) -> RemoteSource:
    """`who`'s EID, arriving in a session its own cluster's node opened."""
    return RemoteSource(fake_eid(who), SessionOf(who.cluster))


# ----- hashcash: one stamp resource and the freshness window the stamp tests check against

RESOURCE = stamp_resource(target_tag(Principal(LOCAL, b"shop")), 1, 3, request_digest(b"body"))
WINDOW = {"max_age": 3600, "max_future": 300}


def check(text: str, required: int = 8, now: float = NOW, resource: str = RESOURCE) -> int:
    """The bits a stamp proves for RESOURCE (raises StampError when it is refused)."""
    return check_stamp(text, resource, required, now, **WINDOW).bits


# ----- the pipeline: a shop that charges 8 bits, a boss-only secret endpoint, a partner

POLICY = parse_policy(f"""\
version: 1
levels: [public, secret]
entities:
  shop:
    hashcash_bits: 8
    endpoints:
      1:
        classification: secret
        acl: {{allow: [boss]}}
  boss: {{clearance: secret}}
  agent: {{clearance: secret}}
  free: {{}}
new_entities:
  - {{match: "*", classification: public, clearance: public}}
trusted_clusters:
  partner: {{master_hash: "{PARTNER.hex()}", max_clearance: secret, default_clearance: public}}
delegation: {{max_chain: 2}}
""")
SHOP0 = Target(b"shop", 0, 0)


def state(verifier: CountingVerifier | None = None, limit: int = 1000) -> GateState:
    """A fresh gate state for the local cluster."""
    return GateState(LOCAL, verifier or CountingVerifier(), MemorySpentStore(limit))
