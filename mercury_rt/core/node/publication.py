"""What a node does with the cluster-ID value it finds in etcd (pure).

With a `replication:` section, a node publishes a new cluster-ID version only by a
compare-and-swap on etcd's cluster-ID key (the key's etcd version must still be the one
the node last saw), so two nodes can never both issue the next number. When the CAS
fails, the node re-reads the key; at start, and on every change its watch delivers, it
reads it too. `decide` says what to do with what was found.

etcd's content is not trusted: the adapter first verifies the value as any cluster ID
(this cluster's master, signatures by the cluster keys, no rotated-out key) and passes
`rejected=True` for anything else. `decide` never adopts a rejected value or one not above
the held version, and only puts a version above every verified version it was shown, so
no number is issued twice (a rejected value's number is ignored: a forged value cannot
push the numbering up).
"""

from __future__ import annotations

from dataclasses import dataclass

from mercury_rt.core.identity import ClusterId


@dataclass(frozen=True, slots=True)
class Won:
    """etcd holds the proposal: it was published (a CAS whose answer was lost, retried,
    finds its own value)."""


@dataclass(frozen=True, slots=True)
class Adopt:
    """A verified version above the held one: adopt it (drop the proposal; the node
    builds a new one on top if its change is still needed)."""

    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class Put:
    """CAS `cluster_id` over what etcd holds now: the proposal (still needed and still
    above everything seen), or the held version where etcd has nothing valid or older."""

    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class InSync:
    """etcd holds the held version and nothing is proposed."""


@dataclass(frozen=True, slots=True)
class Bump:
    """etcd holds another list under the held version's number: the next version must be
    numbered above `version` (and is published even if the list is unchanged)."""

    version: int


Decision = Won | Adopt | Put | InSync | Bump


def decide(held: ClusterId, proposed: ClusterId | None, live: ClusterId | None,
           rejected: bool = False) -> Decision:
    """What to do given the held version, the proposal in flight (None: none, or a
    read at start or from the watch) and etcd's value (None: absent; `rejected`: it did
    not verify)."""
    if proposed is not None and proposed.version <= held.version:
        proposed = None  # overtaken by a version adopted while the CAS was in flight
    if live is not None and not rejected:
        if proposed is not None and live == proposed:
            return Won()
        if live.version > held.version:
            return Adopt(live)
        if live == held:
            return InSync() if proposed is None else Put(proposed)
        if live.version == held.version and proposed is None:
            return Bump(live.version)
    return Put(proposed if proposed is not None else held)


__all__ = ["Adopt", "Bump", "Decision", "InSync", "Put", "Won", "decide"]
