"""EID verification with explicit levels, a key ring and a verified-result cache.

Levels (cumulative; the result reports the highest reached):
  UNVERIFIABLE_UNTIL_KEYS_FETCHED  only hashes are present and the keys are not cached
  SIGNATURE_VALID                  the EID signature verifies against the cluster key
  CLUSTER_KEY_CERTIFIED            ... and the master certified that cluster key
  MASTER_MATCHES_HASH              ... and that master key hashes to the EID's master hash
In format 1 the verifier always hashes the master key itself before using it, so a
certified key is always certified by the key the master hash names: level 2 implies 3
and results report 3. Only level 3 proves the Principal; the gate should require it.

A repeat of the same bytes costs two dict lookups (an Ed25519 verify costs ~120 us), so
the cache is keyed by the exact bytes. It is LRU-bounded (entries and estimated bytes:
peers choose how much each decoded EID holds), and an entry is used only while
the key ring's knowledge of that EID's cluster is unchanged: learning of a rotation can
turn an earlier pass into a reject, yet a peer feeding us keys of its own clusters cannot
flush the results for anybody else's. Bytes whose EID signature failed are remembered
too (bounded, least recently seen go first), so sending them again costs no check.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.identity.cluster_id import ClusterId
from mercury_rt.core.identity.eid import Eid
from mercury_rt.core.identity.errors import IdentityError, SignatureError
from mercury_rt.core.identity.keyring import CertifiedKey, KeyRing
from mercury_rt.core.identity.keys import SIGNATURE_SIZE, Purpose, load_public_key, verify

_BAD_SIGNATURE = ("EID signature does not verify against its cluster key: the EID was "
                  "altered or not issued by that key")


class Level(IntEnum):
    """How far an EID's proof chain was checked."""

    UNVERIFIABLE_UNTIL_KEYS_FETCHED = 0
    SIGNATURE_VALID = 1
    CLUSTER_KEY_CERTIFIED = 2
    MASTER_MATCHES_HASH = 3


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of verifying one EID. Failures raise instead (typed, coded)."""

    level: Level
    principal: Principal
    eid: Eid
    missing: str = ""
    """What to fetch to go further (empty when fully verified)."""

    @property
    def fully_verified(self) -> bool:
        """Whether the chain reached the master hash, proving the Principal."""
        return self.level is Level.MASTER_MATCHES_HASH


class EidVerifier:
    """Verifies EIDs, keeps verified keys in a KeyRing and caches results by exact bytes."""

    def __init__(self, ring: KeyRing | None = None, cache_size: int = 16_384,
                 cache_bytes: int = 32 * 1024 * 1024, failed_size: int = 4096) -> None:
        """`cache_size` bounds the result cache's entries and `cache_bytes` their estimated
        memory (`entry_cost`): a typical entry costs ~1.5 KB, but a peer can pack ~2000
        small items into one EID (~90 KB decoded), so a count alone would allow ~1.5 GB."""
        self.ring = ring if ring is not None else KeyRing()
        self._cache: OrderedDict[bytes, tuple[Verification, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._cache_cost = 0
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        """EID bytes whose signature did not verify: that depends on the bytes alone (the
        key is inline, or the one its hash names), so they fail again at no cost."""
        self._failed_size = failed_size
        self._cluster_ids: OrderedDict[bytes, ClusterId] = OrderedDict()
        """master hash -> the cluster ID cached EIDs of that cluster share (the last seen;
        as many clusters as failures are remembered)."""
        self.hits = 0
        self.misses = 0
        self.signature_checks = 0

    def verify(self, eid: bytes | Eid, decoded: Eid | None = None) -> Verification:
        """Verify EID bytes (or a decoded Eid); raise IdentityError/CodecError on failure.
        `decoded` is the Eid those bytes decode to, when the caller already decoded them."""
        data = eid.encode() if isinstance(eid, Eid) else eid
        hit = self.cached(data)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        if data in self._failed:
            self._failed.move_to_end(data)
            raise SignatureError(_BAD_SIGNATURE, ErrorCode.BAD_EID_SIGNATURE)
        if decoded is None:
            decoded = eid if isinstance(eid, Eid) else Eid.decode(data)
        try:
            result = self._verify_cold(decoded, signed_message_of(data))
        except SignatureError as exc:
            if exc.code is ErrorCode.BAD_EID_SIGNATURE:
                self._failed[data] = None
                if len(self._failed) > self._failed_size:
                    self._failed.popitem(last=False)
            raise
        if result.level is not Level.UNVERIFIABLE_UNTIL_KEYS_FETCHED:
            self._remember(data, result)
        return result

    def cached(self, data: bytes) -> Verification | None:
        """The cached result for exactly these bytes, if still valid: no signature check,
        no decode (so a genuine EID seen before costs nothing to read)."""
        entry = self._cache.get(data)
        if entry is None:
            return None
        result, generation, cost = entry
        if generation == self.ring.cluster_generation(result.principal.cluster):
            self._cache.move_to_end(data)
            return result
        del self._cache[data]
        self._cache_cost -= cost
        return None

    def known_bad(self, data: bytes) -> bool:
        """Whether these bytes already failed their signature check (verify raises again)."""
        return data in self._failed

    def statistics(self) -> dict[str, int]:
        """Counters for metrics: cache hits/misses/size/cost and signature checks done."""
        return {"cache_hits": self.hits, "cache_misses": self.misses,
                "cache_size": len(self._cache), "cache_cost": self._cache_cost,
                "failed_size": len(self._failed),
                "signature_checks": self.signature_checks,
                **{f"ring_{k}": v for k, v in self.ring.statistics().items()}}

    def _remember(self, data: bytes, result: Verification) -> None:
        """Cache a result, evicting the least recently used beyond either bound."""
        generation = self.ring.cluster_generation(result.principal.cluster)
        cost = entry_cost(data, result.eid)
        self._cache[data] = (self._shared(result), generation, cost)
        self._cache_cost += cost
        while self._cache and (len(self._cache) > self._cache_size
                               or self._cache_cost > self._cache_bytes):
            self._cache_cost -= self._cache.popitem(last=False)[1][2]

    def _shared(self, result: Verification) -> Verification:
        """The result, its EID holding the same ClusterId object as the cached EIDs of the
        same cluster ID (every EID a cluster issues embeds it), not a decoded copy of its
        own: about 1 KB less per cached EID (bench/bench_memory.py)."""
        eid, master = result.eid, result.principal.cluster
        held = self._cluster_ids.get(master)
        if held is not None and held is not eid.cluster_id and held == eid.cluster_id:
            self._cluster_ids.move_to_end(master)
            return replace(result, eid=replace(eid, cluster_id=held),
                           principal=replace(result.principal, cluster=held.master_hash))
        self._cluster_ids[master] = eid.cluster_id
        self._cluster_ids.move_to_end(master)
        if len(self._cluster_ids) > self._failed_size:
            self._cluster_ids.popitem(last=False)
        return result

    def add_keys(self, master_key: bytes, cluster_key: bytes, key_version: int,
                 cert: bytes, *, expected_master_hash: bytes | None = None) -> CertifiedKey:
        """Accept keys supplied by a node of the cluster; verified before they are kept.

        Pass the master hash of the EID the keys were fetched for, so a node answering
        with another cluster's keys is caught (MASTER_MISMATCH).
        """
        return self.ring.add_keys(master_key, cluster_key, key_version, cert,
                                  expected_master_hash=expected_master_hash)

    def add_cluster_id(self, cluster_id: ClusterId) -> CertifiedKey:
        """Learn a standalone (signed) cluster ID, e.g. one bundled with a reply."""
        return self.ring.learn_cluster_id(cluster_id)

    def _verify_cold(self, eid: Eid, signed_message: bytes) -> Verification:
        cid = eid.cluster_id
        principal = eid.principal()
        self.ring.check_current(cid.master_hash, cid.cluster_key_hash, cid.key_version,
                                cid.version)
        known = self.ring.certified(cid.master_hash, cid.cluster_key_hash)
        public = _cluster_public(eid, known)
        if public is None:
            return Verification(Level.UNVERIFIABLE_UNTIL_KEYS_FETCHED, principal, eid,
                                "cluster key (fetch keys from a node of the cluster)")
        self.signature_checks += 1
        if not verify(public, Purpose.EID, signed_message, eid.signature):
            raise SignatureError(_BAD_SIGNATURE, ErrorCode.BAD_EID_SIGNATURE)
        if (known is not None and known.key_version == cid.key_version
                and cid.cert in (None, known.cert)):
            return Verification(Level.MASTER_MATCHES_HASH, principal, eid)
        return self._check_cert(eid, principal)

    def _check_cert(self, eid: Eid, principal: Principal) -> Verification:
        cid = eid.cluster_id
        if cid.cert is None:
            return Verification(Level.SIGNATURE_VALID, principal, eid, "master certificate")
        master_key = cid.master.key
        if master_key is None:
            master_public = self.ring.master_public(cid.master_hash)
            if master_public is None:
                return Verification(Level.SIGNATURE_VALID, principal, eid, "master key")
            master_key = _master_bytes(self.ring, cid)
        cluster_key = cid.cluster_key.key or _known_key(self.ring, cid)
        self.signature_checks += 1
        self.ring.add_keys(master_key, cluster_key, cid.key_version, cid.cert)
        return Verification(Level.MASTER_MATCHES_HASH, principal, eid)


def entry_cost(data: bytes, eid: Eid) -> int:
    """Estimated bytes a cached result holds (measured with tracemalloc, rounded up):
    ~1 KB fixed, the EID bytes, ~144 B per address, hint and algorithm, and ~80 B per item
    of the free-form values (persona parameters, hint requirements), where a hostile EID
    can put an empty map in each byte."""
    hints = eid.hints or ()
    structured = len(eid.cluster_id.addresses) + len(hints) + len(eid.algorithms or ())
    free: list[Value] = [eid.persona.params] if eid.persona is not None else []
    free.extend(value for hint in hints for item in hint.requirements.items() for value in item)
    return 1024 + len(data) + 144 * structured + 80 * _count_items(free)


def _count_items(values: list[Value]) -> int:
    count, stack = 0, list(values)
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
    return count


def signed_message_of(data: bytes) -> bytes:
    """The signed body of canonical EID bytes, without re-encoding.

    Valid only for bytes that decoded strictly (canonical): the EID is a 7-item array
    (0x87) ending in a 64-byte signature (0x58 0x40 + 64 bytes), and the body is the same
    items but the last as a 6-item array (0x86). Saves a full re-encode per cold verify.
    """
    return b"\x86" + data[1:-(2 + SIGNATURE_SIZE)]


def _cluster_public(eid: Eid, known: CertifiedKey | None) -> Ed25519PublicKey | None:
    key = eid.cluster_id.cluster_key.key
    if key is not None:
        return known.public if known is not None else load_public_key(key, "cluster key")
    return known.public if known is not None else None


def _master_bytes(ring: KeyRing, cid: ClusterId) -> bytes:
    key = ring.master_key(cid.master_hash)
    if key is None:
        raise IdentityError("master key vanished from the key ring")
    return key


def _known_key(ring: KeyRing, cid: ClusterId) -> bytes:
    known = ring.certified(cid.master_hash, cid.cluster_key_hash)
    if known is None:
        raise IdentityError("cluster key vanished from the key ring")
    return known.key
