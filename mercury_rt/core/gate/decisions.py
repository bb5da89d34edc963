"""Gate allows remembered for requests that pay and delegate nothing (issue 13).

Most requests a node serves come again and again from the same callers to the same
operations, owe no stamp and carry no delegation: their decision (source, MAC, DAC) is
then a function of who sent them, the target operation, the policy and ACLs in force, our
cluster, what the key ring knows about the source's cluster, and whether the session it
came by proves that cluster. `DecisionCache` keeps an Allow so reached, keyed by what it
depends on, so a repeat costs a dict lookup and a settled proof's answer instead of the
source check and the MAC/DAC lookups.

Only allows are kept. A refusal is what a hostile peer can produce at will (any EID, any
target it is not cleared for); were refusals kept, its flood would push the allows of every
other caller out of the bounded cache. Refused requests are decided afresh each time (the
verifier remembers their EIDs), and cost the cache nothing.

What an entry is found by and checked against, and why that suffices:
- the target entity, endpoint and operation (classification, ACLs and the stamp cost come
  from the policy for them; the target persona decides nothing here);
- the source as sent: a local (vouched) principal, or the remote EID's exact bytes;
- for a remote source, on every hit: the key-ring generation of the source's cluster, equal
  to the one when decided (as EidVerifier's own cache: any change to what the ring knows of
  that cluster, a rotation, a new cluster-ID version, an eviction, makes it differ), and the
  request's own session proof checked for that cluster, as the uncached gate checks it (a
  settled proof answers without a signature check). So an entry is per caller and target,
  not per session: a caller's new session reuses it, and a session that proves another
  cluster (or nothing) never gets it.
The policy object, the ACL source object and our cluster are bound to the whole cache: a
different one (a policy reload, a new cluster) clears it. `clear` is the explicit
invalidation the node calls on a cluster-ID change; an ACL source that changes in place
must call it too.

Not cached: any refusal, anything that paid a stamp, anything delegated. The cache is
bounded in entries and in the bytes of its keys, least recently used first out. An entry
is a key tuple and a 3-tuple (the decision, its originator, the generation); it copies no
bytes of its own (the key's bytes are the request's), and its decision and originator are
the very objects the gate returned.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from carbon.principal import Principal
from mercury_rt.core.gate.source import ClusterKeyLookup, LocalSource, RemoteSource, Source
from policy.access import Target

DEFAULT_ENTRIES = 4096
DEFAULT_BYTES = 4 * 1024 * 1024
ENTRY_OVERHEAD = 400
"""Estimated bytes of one entry beyond its key's bytes (key and entry tuples, the decision
and what it holds, the dict slot), an upper bound on what bench/bench_memory.py measures."""

Generation = Callable[[bytes], int]
"""master hash -> the key ring's generation of that cluster (KeyRing.cluster_generation)."""
LOCAL_GENERATION = -1
"""The generation field of a local source's entry: its decision depends on no key."""
D = TypeVar("D")
Key = tuple[bytes, int, int, bytes | Principal]
"""(target entity, endpoint, operation, remote EID bytes or local principal)."""


class DecisionCache(Generic[D]):
    """Bounded, explicitly invalidated memory of gate allows; see module docstring."""

    def __init__(self, generation: Generation, *, max_entries: int = DEFAULT_ENTRIES,
                 max_bytes: int = DEFAULT_BYTES) -> None:
        self._generation = generation
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, tuple[D, Principal, int]] = OrderedDict()
        self._bytes = 0
        self._bound: tuple[object, object, bytes] | None = None
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        """Entries pushed out by the bounds (least recently used first)."""
        self.invalidations = 0
        """Entries forgotten because what they depend on changed: found stale (the source
        cluster's keys changed, or the session does not prove it), or cleared."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held (keys plus ENTRY_OVERHEAD each)."""
        return self._bytes

    def statistics(self) -> dict[str, int]:
        """Counters and sizes for metrics."""
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "invalidations": self.invalidations, "size": len(self._entries),
                "bytes": self._bytes}

    def clear(self) -> None:
        """Forget every decision (a cluster-ID or key change the node knows of)."""
        self.invalidations += len(self._entries)
        self._entries.clear()
        self._bytes = 0

    def bind(self, policy: object, acls: object, local_cluster: bytes) -> None:
        """Clear unless the policy, the ACL source and our cluster are the ones bound (by
        identity: a reloaded policy is a new object even when its text is the same)."""
        bound = self._bound
        if bound is not None and bound[0] is policy and bound[1] is acls \
                and bound[2] == local_cluster:
            return
        if self._entries:
            self.clear()
        self._bound = (policy, acls, local_cluster)

    def get(self, target: Target, source: Source, cluster_key: ClusterKeyLookup) -> D | None:
        """The allow remembered for this request (after `bind`), if still valid;
        `cluster_key` is the verifier's, for checking the request's session proof."""
        key = decision_key(target, source)
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        decision, originator, generation = entry
        if generation != LOCAL_GENERATION and (
                generation != self._generation(originator.cluster)
                or not _proves(source, originator.cluster, cluster_key)):
            self.invalidations += 1
            self.misses += 1
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return decision

    def put(self, target: Target, source: Source, originator: Principal, decision: D) -> None:
        """Remember an allow reached without stamp or delegation for a source that
        authenticated as `originator` (after `bind`)."""
        key = decision_key(target, source)
        cost = _cost(key)
        if cost > self.max_bytes or self.max_entries < 1:
            return
        generation = LOCAL_GENERATION if isinstance(source, LocalSource) \
            else self._generation(originator.cluster)
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (decision, originator, generation)
        self._bytes += cost
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= _cost(self._entries.popitem(last=False)[0])
            self.evictions += 1

    def _drop(self, key: Key) -> None:
        del self._entries[key]
        self._bytes -= _cost(key)


def _proves(source: Source, cluster: bytes, cluster_key: ClusterKeyLookup) -> bool:
    """Whether the request's session proves `cluster`, asked as the uncached gate asks."""
    proof = source.proof if isinstance(source, RemoteSource) else None
    return proof is not None and proof.check(cluster, cluster_key)


def _cost(key: Key) -> int:
    who = key[3]
    return ENTRY_OVERHEAD + len(key[0]) + (len(who) if isinstance(who, bytes)
                                           else len(who.local))


def decision_key(target: Target, source: Source) -> Key:
    """What a cached decision is found by: target operation and the source as sent."""
    if isinstance(source, LocalSource):
        return (target.entity, target.endpoint, target.operation, source.principal)
    return (target.entity, target.endpoint, target.operation, source.eid)
