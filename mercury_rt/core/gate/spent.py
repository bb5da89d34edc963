"""Spent hashcash stamps: add-if-absent with expiry and a hard bound.

A stamp may be spent once. Entries live until the stamp would be rejected as expired
anyway, so the set never needs to grow beyond the stamps of one validity window. When the
bound is reached (after dropping expired entries) new stamps are refused rather than old
ones forgotten: forgetting would let an attacker replay, refusing only costs throughput.
The LMDB-backed store (tungsten) implements the same protocol.

With replication the cluster's nodes share spent stamps: the local store stays the first,
cheap filter, and an admitted stamp is then spent cluster-wide by the shell (ClusterSpend,
put-if-absent in etcd) bound to the request it paid for, so that request retried at another
mirror (same principal, request id and target) passes while any other use is refused.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class SpendResult(Enum):
    """What add-if-absent did."""

    ADDED = "added"
    ALREADY_SPENT = "already-spent"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class ClusterSpend:
    """An admitted request's stamp that the shell must still spend cluster-wide before its
    handler runs (only when the cluster shares spent stamps)."""

    digest: bytes
    expires_at: int
    """Wall-clock second the stamp expires: the cluster-wide record need not outlive it."""
    seen_here: bool
    """This node had spent it already: only the same request's retry may pass."""
    cost: int = 0
    """Bits the request had to pay: what a refusal asks a new stamp to carry."""


def local_refusal(result: SpendResult, *, shared: bool, has_id: bool) -> SpendResult | None:
    """The refusal the local spent store's answer makes (ALREADY_SPENT: 606, FULL: 607), or
    None to go on. With shared spending, a stamp already spent here by a request carrying a
    caller-chosen id may be that same request retried (say after failing over and back):
    the cluster-wide record decides, by the request it was spent for. Without an id no
    retry can be told from a replay, so the local answer stands."""
    if result is SpendResult.ALREADY_SPENT and shared and has_id:
        return None
    return None if result is SpendResult.ADDED else result


def cluster_spend_admits(stored: bytes | None, binding: bytes | None) -> bool:
    """Whether a cluster-wide spend lets the request through: the stamp was spent now
    (`stored` None), or before by this same request (`binding`: its id scoped by principal
    and target, never empty), i.e. its retry; anything else is a double spend."""
    return stored is None or (bool(binding) and stored == binding)


class SpentStampStore(Protocol):
    """Remembers stamp digests until they expire."""

    def add_if_absent(self, digest: bytes, expires_at: int, now: float) -> SpendResult:
        """Record `digest` as spent unless it already is; never hold more than the bound."""
        ...


class MemorySpentStore:
    """In-memory store: a dict plus an expiry heap, bounded by `limit` entries."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self._expiry: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def add_if_absent(self, digest: bytes, expires_at: int, now: float) -> SpendResult:
        """Record `digest`; expired entries are dropped first, so the bound is about live ones."""
        self._drop_expired(now)
        if digest in self._expiry:
            return SpendResult.ALREADY_SPENT
        if len(self._expiry) >= self.limit:
            return SpendResult.FULL
        self._expiry[digest] = expires_at
        heapq.heappush(self._heap, (expires_at, digest))
        return SpendResult.ADDED

    def contains(self, digest: bytes, now: float) -> bool:
        """Whether `digest` is held and unexpired at `now` (adds nothing)."""
        expires_at = self._expiry.get(digest)
        return expires_at is not None and expires_at > now

    def _drop_expired(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, digest = heapq.heappop(heap)
            self._expiry.pop(digest, None)
