"""Deterministic keys and cluster IDs shared by the identity tests (no randomness)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.principal import Persona
from carbon.symbols import Symbol
from mercury_rt.core.identity import (
    AcceptedAlgorithm,
    ClusterId,
    Eid,
    MintOptions,
    OperationHint,
    ServerAddress,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
)


def key(n: int) -> Ed25519PrivateKey:
    """A fixed Ed25519 key per small integer."""
    return private_key_from_bytes(bytes([n]) * 32)


MASTER = key(1)
CLUSTER_KEY_1 = key(2)
CLUSTER_KEY_2 = key(3)
OTHER_MASTER = key(9)
ADDRESSES = (
    ServerAddress(IPv4Address("192.0.2.10"), 7400, 10, 60),
    ServerAddress(IPv4Address("192.0.2.11"), 7400, 10, 40),
    ServerAddress(IPv6Address("2001:db8::7"), 7401, 20, 0),
)
HINTS = (OperationHint(0, 1, 2, 12, {"max-size": 4096}),)
ALGORITHMS = (AcceptedAlgorithm(1, 2), AcceptedAlgorithm(2, 3))
PERSONA = Persona(Symbol("/example/personas/work"), {"team": "ops", "level": 2})


def cluster_v1() -> ClusterId:
    """Version 1 of the test cluster: MASTER certifies CLUSTER_KEY_1."""
    return issue_cluster_id(MASTER, CLUSTER_KEY_1, ADDRESSES)


def full_eid(cid: ClusterId | None = None, local: bytes = b"alice") -> Eid:
    """A full-keys EID with persona, hints and algorithms."""
    return mint_eid(CLUSTER_KEY_1, cid or cluster_v1(), local, persona=PERSONA, hints=HINTS,
                    algorithms=ALGORITHMS)


def hashes_only_eid(cid: ClusterId | None = None, local: bytes = b"alice") -> Eid:
    """A hashes-only EID without optional parts."""
    return mint_eid(CLUSTER_KEY_1, cid or cluster_v1(), local,
                    options=MintOptions(full_keys=False, include_hints=False))
