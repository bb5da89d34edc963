"""Verified keys per cluster, and the checks that use them: standalone cluster-ID
verification, rotated-out key detection and "does this cluster ID supersede that one".

A KeyRing only ever holds keys that passed verification: a master key stored under the
hash it was hashed to, and cluster keys whose master certificate verified. So anything
found here is as good as re-checking the chain, at the cost of a dict lookup. It is
bounded (LRU over clusters, newest keys per cluster) because peers choose what we see.

A stranger can make a node learn thousands of self-made clusters, so the LRU alone would let
it push out a real cluster's rotation history and make its rotated-out key pass again. So
clusters the node has reason to know (its own and its policy's trusted clusters: `keep`;
clusters it called: `pin`) live apart from strangers' and are never evicted by them, and a
stranger's cluster evicted with a key version above 1 leaves a compact floor (its highest
key version and that key's hash) that still refuses its rotated-out keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.cluster_id import ClusterId, cert_message
from mercury_rt.core.identity.errors import IdentityError, KeysUnavailableError, SignatureError
from mercury_rt.core.identity.keys import (
    Purpose,
    load_public_key,
    show_hash,
    tagged_hash,
    verify,
)


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A cluster key whose master certificate verified."""

    key: bytes
    key_hash: bytes
    key_version: int
    cert: bytes
    public: Ed25519PublicKey = field(compare=False, repr=False)


@dataclass(slots=True)
class _Cluster:
    master_key: bytes
    master_public: Ed25519PublicKey
    keys: dict[bytes, CertifiedKey] = field(default_factory=dict)
    generation: int = 0


_SHORT = 8
"""Bytes of a master or key hash a floor keeps: enough that no key collides by chance, and
a stranger cannot aim a collision at another cluster's floor (2^64 work)."""


def _short(digest: bytes) -> int:
    return int.from_bytes(digest[-_SHORT:], "big")


class KeyRing:
    """Verified master and cluster keys, per cluster (master hash)."""

    def __init__(self, max_clusters: int = 4096, max_keys_per_cluster: int = 32,
                 max_pinned: int = 1024, max_floors: int = 65_536) -> None:
        self._clusters: OrderedDict[bytes, _Cluster] = OrderedDict()
        """Strangers' clusters, least recently used first."""
        self._held: dict[bytes, _Cluster] = {}
        """Kept and pinned clusters: not evicted however many strangers pass."""
        self._kept: frozenset[bytes] = frozenset()
        self._pinned: OrderedDict[bytes, None] = OrderedDict()
        self._floors: dict[int, int] = {}
        """Evicted strangers: short master hash -> highest key version << 64 | short key
        hash. About 100 bytes each, oldest dropped first beyond max_floors."""
        self._max_clusters = max_clusters
        self._max_keys = max_keys_per_cluster
        self._max_pinned = max_pinned
        self._max_floors = max_floors
        self.generation = 0
        """Bumped on every change; each cluster records the value of its last change, so
        caches built on this ring invalidate per cluster (see cluster_generation)."""

    def keep(self, master_hashes: Iterable[bytes]) -> None:
        """Never evict these clusters (this node's own, its policy's trusted clusters);
        replaces the previous set. Operator-chosen, so not bounded here."""
        old, self._kept = self._kept, frozenset(master_hashes)
        for master_hash in old - self._kept:
            if master_hash not in self._pinned:
                self._demote(master_hash)
        for master_hash in self._kept:
            self._promote(master_hash)

    def pin(self, master_hash: bytes) -> None:
        """A cluster this node called (its target verified): held apart from strangers,
        the `max_pinned` most recently pinned."""
        self._pinned[master_hash] = None
        self._pinned.move_to_end(master_hash)
        self._promote(master_hash)
        while len(self._pinned) > self._max_pinned:
            dropped, _ = self._pinned.popitem(last=False)
            if dropped not in self._kept:
                self._demote(dropped)

    def held_apart(self, master_hash: bytes) -> bool:
        """Whether the cluster is kept or pinned: one this node has reason to trust, not
        merely a stranger's whose keys happened to verify."""
        return master_hash in self._kept or master_hash in self._pinned

    def master_public(self, master_hash: bytes) -> Ed25519PublicKey | None:
        """The verified master key for a cluster, if known."""
        entry = self._entry(master_hash)
        return entry.master_public if entry else None

    def master_key(self, master_hash: bytes) -> bytes | None:
        """The verified raw master public key for a cluster, if known."""
        entry = self._entry(master_hash)
        return entry.master_key if entry else None

    def certified(self, master_hash: bytes, key_hash: bytes) -> CertifiedKey | None:
        """A certified cluster key by hash, if known (marks the cluster recently used)."""
        entry = self._entry(master_hash)
        if entry is None:
            return None
        if master_hash in self._clusters:
            self._clusters.move_to_end(master_hash)
        return entry.keys.get(key_hash)

    def cluster_generation(self, master_hash: bytes) -> int:
        """The ring generation at this cluster's last change; -1 if the cluster is unknown.

        Unique across clusters and evictions, so a cached result recorded with this value
        is stale exactly when what the ring knows about that cluster has changed.
        """
        entry = self._entry(master_hash)
        return entry.generation if entry else -1

    def add_keys(self, master_key: bytes, cluster_key: bytes, key_version: int,
                 cert: bytes, *, expected_master_hash: bytes | None = None) -> CertifiedKey:
        """Verify supplied keys (as fetched from a node of the cluster) and keep them.

        Raises MASTER_MISMATCH if the master key does not hash to `expected_master_hash`
        (the hash in the EID the keys were fetched for), SignatureError
        (BAD_CLUSTER_KEY_CERT) if the master did not certify this cluster key at this key
        version, and IdentityError for malformed keys.
        """
        master_public = load_public_key(master_key, "master key")
        master_hash = tagged_hash(master_key)
        if expected_master_hash is not None and master_hash != expected_master_hash:
            raise IdentityError(f"supplied master key hashes to {show_hash(master_hash)}, not "
                                f"the expected {show_hash(expected_master_hash)}: wrong cluster "
                                "or a forged key", ErrorCode.MASTER_MISMATCH)
        cluster_public = load_public_key(cluster_key, "cluster key")
        key_hash = tagged_hash(cluster_key)
        if not verify(master_public, Purpose.CLUSTER_KEY_CERT,
                      cert_message(master_hash, key_hash, key_version), cert):
            raise SignatureError(f"master certificate for cluster key {show_hash(key_hash)} "
                                 f"(key version {key_version}) does not verify against master "
                                 f"{show_hash(master_hash)}", ErrorCode.BAD_CLUSTER_KEY_CERT)
        certified = CertifiedKey(cluster_key, key_hash, key_version, cert, cluster_public)
        self._store(master_hash, master_key, master_public, certified)
        return certified

    def learn_cluster_id(self, cluster_id: ClusterId) -> CertifiedKey:
        """Verify a standalone cluster ID (see verify_cluster_id) and remember its keys."""
        certified = verify_cluster_id(cluster_id, self)
        entry = self._entry(cluster_id.master_hash)
        master_key = cluster_id.master.key or (entry.master_key if entry else None)
        if master_key is None:  # verify_cluster_id needed one of the two
            raise KeysUnavailableError("master key not known")
        self._store(cluster_id.master_hash, master_key,
                    entry.master_public if entry else load_public_key(master_key), certified)
        return certified

    def statistics(self) -> dict[str, int]:
        """Counters for metrics: clusters and certified keys held, and the generation."""
        entries = [*self._clusters.values(), *self._held.values()]
        return {"clusters": len(entries), "held_clusters": len(self._held),
                "cluster_keys": sum(len(e.keys) for e in entries),
                "floors": len(self._floors), "generation": self.generation}

    def check_current(self, master_hash: bytes, key_hash: bytes, key_version: int,
                      version: int) -> None:
        """Reject a key presented at a version when a newer key had replaced it by then."""
        self._check_floor(master_hash, key_hash, key_version, version)
        entry = self._entry(master_hash)
        if entry is None:
            return
        for other in entry.keys.values():
            if other.key_hash != key_hash:
                _refuse_replaced(key_hash, key_version, other.key_version, version)

    def _check_floor(self, master_hash: bytes, key_hash: bytes, key_version: int,
                     version: int) -> None:
        """check_current for a stranger's cluster evicted since: what its floor proves."""
        floor = self._floors.get(_short(master_hash))
        if floor is None or _short(key_hash) == floor & ((1 << 64) - 1):
            return
        _refuse_replaced(key_hash, key_version, floor >> 64, version)

    def _entry(self, master_hash: bytes) -> _Cluster | None:
        entry = self._held.get(master_hash)
        return entry if entry is not None else self._clusters.get(master_hash)

    def _promote(self, master_hash: bytes) -> None:
        entry = self._clusters.pop(master_hash, None)
        if entry is not None:
            self._held[master_hash] = entry

    def _demote(self, master_hash: bytes) -> None:
        entry = self._held.pop(master_hash, None)
        if entry is not None:
            self._clusters[master_hash] = entry
            self._evict()

    def _evict(self) -> None:
        while len(self._clusters) > self._max_clusters:
            master_hash, entry = self._clusters.popitem(last=False)
            self._remember_floor(master_hash, entry)

    def _remember_floor(self, master_hash: bytes, entry: _Cluster) -> None:
        """Keep what refuses the evicted cluster's rotated-out keys (none below version 2)."""
        if not entry.keys:
            return
        newest = max(entry.keys.values(), key=lambda k: k.key_version)
        if newest.key_version < 2:
            return
        short = _short(master_hash)
        floor = newest.key_version << 64 | _short(newest.key_hash)
        held = self._floors.pop(short, None)
        self._floors[short] = floor if held is None or held >> 64 < newest.key_version \
            else held
        if len(self._floors) > self._max_floors:
            del self._floors[next(iter(self._floors))]

    def _store(self, master_hash: bytes, master_key: bytes, master_public: Ed25519PublicKey,
               certified: CertifiedKey) -> None:
        entry = self._entry(master_hash)
        if entry is None:
            entry = _Cluster(master_key, master_public)
            if master_hash in self._kept or master_hash in self._pinned:
                self._held[master_hash] = entry
            else:
                self._clusters[master_hash] = entry
                self._evict()
        if master_hash in self._clusters:
            self._clusters.move_to_end(master_hash)
        if entry.keys.get(certified.key_hash) == certified:
            return
        entry.keys[certified.key_hash] = certified
        if len(entry.keys) > self._max_keys:
            oldest = min(entry.keys.values(), key=lambda k: k.key_version)
            del entry.keys[oldest.key_hash]
        self._changed(entry)

    def _changed(self, entry: _Cluster) -> None:
        self.generation += 1
        entry.generation = self.generation


def _refuse_replaced(key_hash: bytes, key_version: int, other_version: int,
                     version: int) -> None:
    """The rotation rule (4.6) against one other key of the cluster, held or remembered as
    an evicted stranger's floor: a second key at the same key version, or this key
    presented at a version by which the other had replaced it."""
    if key_version == other_version:
        raise IdentityError(f"two different cluster keys claim key version {key_version}",
                            ErrorCode.KEY_VERSION_CONFLICT)
    if key_version < other_version <= version:
        raise IdentityError(
            f"rotated-out key presented as current: cluster key {show_hash(key_hash)} "
            f"(introduced at version {key_version}) was replaced at key version "
            f"{other_version}, but is presented at version {version}", ErrorCode.ROTATED_OUT_KEY)


def verify_cluster_id(cluster_id: ClusterId, ring: KeyRing) -> CertifiedKey:
    """Verify a standalone cluster ID: master certificate, cluster-ID signature, rotation.

    Keys missing from the ID itself are taken from `ring`; if still missing, raises
    KeysUnavailableError (fetch them from a node of that cluster and `add_keys`).
    """
    ring.check_current(cluster_id.master_hash, cluster_id.cluster_key_hash,
                       cluster_id.key_version, cluster_id.version)
    certified = _certified_key(cluster_id, ring)
    if cluster_id.signature is None:
        raise IdentityError("cluster ID carries no cluster-key signature; a standalone cluster "
                            "ID must be signed", ErrorCode.CLUSTER_ID_UNSIGNED)
    if not verify(certified.public, Purpose.CLUSTER_ID, cluster_id.core_message(),
                  cluster_id.signature):
        raise SignatureError(f"cluster-ID version {cluster_id.version} signature does not "
                             "verify against its cluster key", ErrorCode.BAD_CLUSTER_ID_SIGNATURE)
    return certified


def _certified_key(cluster_id: ClusterId, ring: KeyRing) -> CertifiedKey:
    """The cluster key of `cluster_id`, proven by a master certificate (cached or inline)."""
    master_hash, key_hash = cluster_id.master_hash, cluster_id.cluster_key_hash
    known = ring.certified(master_hash, key_hash)
    if (known is not None and known.key_version == cluster_id.key_version
            and cluster_id.cert in (None, known.cert)):
        return known
    cluster_key = cluster_id.cluster_key.key or (known.key if known else None)
    master_public = (load_public_key(cluster_id.master.key, "master key")
                     if cluster_id.master.key is not None else ring.master_public(master_hash))
    if cluster_key is None or master_public is None:
        raise KeysUnavailableError(f"keys of cluster {show_hash(master_hash)} are not known; "
                                   "fetch them from one of its nodes")
    if cluster_id.cert is None:
        raise KeysUnavailableError("cluster ID carries no master certificate for its cluster "
                                   "key and none is cached; fetch the keys from a node")
    if not verify(master_public, Purpose.CLUSTER_KEY_CERT, cluster_id.cert_message(),
                  cluster_id.cert):
        raise SignatureError("master certificate does not verify: the cluster key was not "
                             "certified by this cluster's master key at this key version",
                             ErrorCode.BAD_CLUSTER_KEY_CERT)
    public = load_public_key(cluster_key, "cluster key")
    return CertifiedKey(cluster_key, key_hash, cluster_id.key_version, cluster_id.cert, public)


def check_supersedes(candidate: ClusterId, held: ClusterId, ring: KeyRing) -> None:
    """Raise unless `candidate` properly supersedes `held` (same master, higher version,
    valid signatures, key not rotated out). On success the ring learns the candidate."""
    if candidate.master_hash != held.master_hash:
        raise IdentityError("cluster ID belongs to a different cluster (master key hash "
                            f"{show_hash(candidate.master_hash)} != "
                            f"{show_hash(held.master_hash)})", ErrorCode.MASTER_MISMATCH)
    if candidate.version <= held.version:
        raise IdentityError(f"cluster-ID version {candidate.version} does not supersede held "
                            f"version {held.version} (downgrade or replay)",
                            ErrorCode.VERSION_DOWNGRADE)
    ring.learn_cluster_id(candidate)


def supersedes(candidate: ClusterId, held: ClusterId, ring: KeyRing) -> bool:
    """Whether `candidate` properly supersedes `held` (see check_supersedes)."""
    try:
        check_supersedes(candidate, held, ring)
    except IdentityError:
        return False
    return True
