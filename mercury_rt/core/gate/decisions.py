"""Gate decisions remembered for requests that pay and delegate nothing (issue 13).

Most requests a node serves come again and again from the same callers to the same
operations, owe no stamp and carry no delegation: their decision (source, MAC, DAC) is
then a function of who sent them, the target operation, the policy and ACLs in force, our
cluster, and what the key ring knows about the source's cluster. `DecisionCache` keeps that
decision, keyed by exactly these, so a repeat costs a dict lookup instead of the source
check and the MAC/DAC lookups.

What the key holds and why each part suffices:
- the source as sent: a local (vouched) principal, or the remote EID's exact bytes and the
  session proof it came with (the proof object itself is kept in the entry, so its id cannot
  be reused by another session while the entry lives); a decision is stored only once the
  source authenticated, so that proof held for that EID's cluster, and a proof that held
  keeps holding (transit's PeerProof settles once);
- the target entity, endpoint and operation (classification, ACLs and the stamp cost come
  from the policy for them; the target persona decides nothing here);
- the key-ring generation of the source's cluster when decided (as EidVerifier's own cache:
  any change to what the ring knows of that cluster, a rotation, a new cluster-ID version,
  an eviction, makes it differ), checked on every hit;
- the entity's labels version (`labels`, for an ACL source that changes in place; the
  policy's ACLs change only with the policy).
The policy object, the ACL source object and our cluster are bound to the whole cache: a
different one (a policy reload, a new cluster) clears it. `clear` and `entity_changed` are
the explicit invalidations the node calls on a cluster-ID change or a label/ACL change.

Not cached: a source denial (it may be a retry-later while the node fetches that cluster's
keys, which the verifier notes as it refuses; a bad EID is already remembered by the
verifier), anything that paid a stamp, anything delegated. The cache is bounded in entries
and in the bytes of its keys, least recently used first out, so a peer sending many
distinct EIDs only pushes out older entries.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from mercury_rt.core.gate.source import LocalSource, SessionProof, Source
from policy.access import Target

DEFAULT_ENTRIES = 4096
DEFAULT_BYTES = 4 * 1024 * 1024
ENTRY_OVERHEAD = 400
"""Estimated bytes of one entry beyond its key's bytes (tuple, entry, decision, dict slot)."""

Generation = Callable[[bytes], int]
"""master hash -> the key ring's generation of that cluster (KeyRing.cluster_generation)."""
LabelsVersion = Callable[[bytes], int]
"""local entity name -> the version of its labels and ACLs."""
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[D]):
    decision: D
    proof: SessionProof | None
    """The session proof in the key, held so its id() stays its own."""
    cluster: bytes | None
    """The remote source's cluster, whose key generation is checked; None: a local source
    (its decision depends on no key)."""
    generation: int
    labels: int
    cost: int


def _no_labels(entity: bytes) -> int:
    return 0


class DecisionCache(Generic[D]):
    """Bounded, explicitly invalidated memory of gate decisions; see module docstring."""

    def __init__(self, generation: Generation, *, labels: LabelsVersion = _no_labels,
                 max_entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES) -> None:
        self._generation = generation
        self._labels = labels
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Entry[D]] = OrderedDict()
        self._bytes = 0
        self._bound: tuple[object, object, bytes] | None = None
        self.hits = 0
        self.misses = 0
        self.stale = 0
        """Entries found but no longer valid (their source cluster's keys or the entity's
        labels changed since)."""
        self.clears = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held (keys plus ENTRY_OVERHEAD each)."""
        return self._bytes

    def statistics(self) -> dict[str, int]:
        """Counters for metrics."""
        return {"hits": self.hits, "misses": self.misses, "stale": self.stale,
                "clears": self.clears, "size": len(self._entries), "bytes": self._bytes}

    def clear(self) -> None:
        """Forget every decision (a cluster-ID or key change the node knows of)."""
        self._entries.clear()
        self._bytes = 0
        self.clears += 1

    def entity_changed(self, entity: bytes) -> None:
        """Forget the decisions about `entity` (its labels or ACLs changed)."""
        for key in [k for k in self._entries if _entity_of(k) == entity]:
            self._drop(key)

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

    def get(self, target: Target, source: Source) -> D | None:
        """The decision remembered for this request (after `bind`), if still valid."""
        key = decision_key(target, source)
        entry = self._entries.get(key)
        if entry is None or (entry.proof is not None
                             and entry.proof is not getattr(source, "proof", None)):
            self.misses += 1
            return None
        if (entry.cluster is not None and entry.generation != self._generation(entry.cluster)) \
                or entry.labels != self._labels(target.entity):
            self.stale += 1
            self.misses += 1
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.decision

    def put(self, target: Target, source: Source, originator: bytes, decision: D) -> None:
        """Remember a decision reached without stamp or delegation for a source that
        authenticated as a principal of cluster `originator` (after `bind`)."""
        if isinstance(source, LocalSource):
            proof, cluster, generation = None, None, 0
            cost = len(source.principal.local)
        else:
            proof, cluster, cost = source.proof, originator, len(source.eid)
            generation = self._generation(originator)
        cost += ENTRY_OVERHEAD + len(target.entity)
        if cost > self.max_bytes or self.max_entries < 1:
            return
        key = decision_key(target, source)
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(decision, proof, cluster, generation,
                                    self._labels(target.entity), cost)
        self._bytes += cost
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= self._entries.popitem(last=False)[1].cost

    def _drop(self, key: Hashable) -> None:
        self._bytes -= self._entries.pop(key).cost


def decision_key(target: Target, source: Source) -> Hashable:
    """What a cached decision is found by: target operation and the source as sent."""
    if isinstance(source, LocalSource):
        return (target.entity, target.endpoint, target.operation, source.principal)
    return (target.entity, target.endpoint, target.operation, source.eid, id(source.proof))


def _entity_of(key: Hashable) -> bytes:
    assert isinstance(key, tuple) and isinstance(key[0], bytes)
    return key[0]
