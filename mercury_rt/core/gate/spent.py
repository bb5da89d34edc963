"""Spent hashcash stamps: add-if-absent with expiry and a hard bound.

A stamp may be spent once. Entries live until the stamp would be rejected as expired
anyway, so the set never needs to grow beyond the stamps of one validity window. When the
bound is reached (after dropping expired entries) new stamps are refused rather than old
ones forgotten: forgetting would let an attacker replay, refusing only costs throughput.
The LMDB-backed store (tungsten) implements the same protocol.
"""

from __future__ import annotations

import heapq
from enum import Enum
from typing import Protocol


class SpendResult(Enum):
    """What add-if-absent did."""

    ADDED = "added"
    ALREADY_SPENT = "already-spent"
    FULL = "full"


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
