"""A node's transit keys: one per KEM, rotated without downtime.

Each rotation makes a new key pair per KEM and certifies it; the previous pair keeps
opening first datagrams until its certificate expires, so callers holding the old
certificate are not refused mid-rotation. Keys live only in memory: a node that restarts
has new keys, and callers learn them from the 702 answer (docs/protocol.md 8.4). Erasing
old private keys is what bounds how long a captured first datagram stays decryptable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.core.transit.algorithms import Kem
from mercury_rt.core.transit.certs import TransitCert, issue_cert
from mercury_rt.core.transit.kem import SEED_SIZE, KemKeyPair, key_pair_from_seed

DEFAULT_LIFETIME = 3600
"""Seconds a transit key is current before the next rotation."""
DEFAULT_GRACE = 600
"""Seconds a rotated-out key keeps working (and its certificate stays valid)."""


@dataclass(frozen=True, slots=True)
class NodeTransitKey:
    """One key pair and its certificate."""

    pair: KemKeyPair
    cert: TransitCert
    cert_bytes: bytes


class NodeTransitKeys:
    """The keys this node opens first datagrams with, by key id."""

    def __init__(self, cluster_key: Ed25519PrivateKey, master_hash: bytes,
                 random_bytes: Callable[[int], bytes], now: float,
                 lifetime: int = DEFAULT_LIFETIME, grace: int = DEFAULT_GRACE) -> None:
        self._cluster_key = cluster_key
        self._master_hash = master_hash
        self._random = random_bytes
        self.lifetime = lifetime
        self.grace = grace
        self._by_id: dict[bytes, NodeTransitKey] = {}
        self._current: dict[Kem, NodeTransitKey] = {}
        self.rotated_at = now
        self._earliest_expiry = float("inf")
        self.rotate(now)

    def rotate(self, now: float) -> None:
        """Make new current keys; forget keys whose certificates have expired."""
        not_after = int(now) + self.lifetime + self.grace
        for kem in Kem:
            pair = key_pair_from_seed(kem, self._random(SEED_SIZE[kem]))
            cert = issue_cert(self._cluster_key, self._master_hash, kem, pair.public,
                              not_after)
            key = NodeTransitKey(pair, cert, cert.encode())
            self._current[kem] = key
            self._by_id[cert.key_id] = key
        self.rotated_at = now
        self.expire(now)

    def tick(self, now: float) -> None:
        """Rotate when the current keys' lifetime is over, and erase expired keys as soon
        as they expire (not only at the next rotation): how long a stolen key opens
        recorded first datagrams is bounded by its certificate. Cheap: two comparisons
        unless something is due."""
        if self.due(now):
            self.rotate(now)
        elif self._by_id and now >= self._earliest_expiry:
            self.expire(now)

    def due(self, now: float) -> bool:
        """Whether the current keys have been current for their lifetime."""
        return now - self.rotated_at >= self.lifetime

    def expire(self, now: float) -> None:
        """Erase keys whose certificates have expired."""
        for kid in [k for k, v in self._by_id.items() if v.cert.not_after <= now]:
            del self._by_id[kid]
        self._earliest_expiry = min((v.cert.not_after for v in self._by_id.values()),
                                    default=float("inf"))

    def key(self, key_id: bytes, now: float) -> NodeTransitKey | None:
        """The unexpired key named `key_id`, if this node holds it."""
        key = self._by_id.get(key_id)
        if key is None or key.cert.not_after <= now:
            return None
        return key

    def current(self, kem: Kem) -> NodeTransitKey:
        """The current key for `kem` (what a key query answers)."""
        return self._current[kem]
