"""The one-way message ids a node has run, with a share per source cluster.

A one-way message with an id runs at most once: its id is remembered (durably, in the
node's state) for `retention` seconds, by default the held-message lifetime, since a
sender retries a held message until it expires and never after. The store is bounded;
were it shared first come first served, one client sending ids as fast as it can would
fill it and every other sender's new messages would be refused for the whole retention.
So each source cluster may hold at most `per_cluster` live ids: a cluster at its share gets
203 OVERLOADED for new ids (its retries of ids already run are still acknowledged), while
other clusters keep delivering. Counts are kept in memory from the node's start (the store
itself survives restarts and keeps the global bound), in time buckets of a sixteenth of the
retention, so a share frees up at most that late and the memory is bounded by
MAX_SENDERS x 17 buckets, however many ids there are.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

from mercury_rt.core.gate import SpendResult, SpentStampStore
from mercury_rt.core.node.held import RetryPolicy

MAX_SENDERS = 4096
"""Source clusters counted one by one; beyond, new ones share one share (OTHERS)."""
OTHERS = b""
BUCKETS = 16


class DeliveredStore(SpentStampStore, Protocol):
    """A spent-id store that can also say whether an id is held (without adding it)."""

    def contains(self, digest: bytes, now: float) -> bool:
        """Whether `digest` is held and has not expired at `now`."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveredSettings:
    """Bounds of the delivered-id store (the node config's `delivered` section)."""

    limit: int = 1_000_000
    per_cluster: int = 100_000
    retention: float = RetryPolicy().ttl

    def __post_init__(self) -> None:
        if not (1 <= self.per_cluster <= self.limit and self.retention > 0):
            raise ValueError("need 1 <= per_cluster <= limit and retention > 0")


class DeliveredIds:
    """Run-once bookkeeping for one-way message ids over a bounded store, per sender."""

    def __init__(self, store: DeliveredStore, settings: DeliveredSettings) -> None:
        self.store = store
        self.settings = settings
        self._width = max(1, math.ceil(settings.retention / BUCKETS))
        self._live: dict[bytes, int] = {}
        """Source cluster -> ids it holds in the store (counted since start)."""
        self._due: dict[tuple[int, bytes], int] = {}
        self._heap: list[tuple[int, bytes]] = []
        self.share_refusals = 0

    def add(self, sender: bytes, message_id: bytes, now: float) -> SpendResult:
        """ADDED (run it), ALREADY_SPENT (ran before: acknowledge) or FULL (refuse: 203)."""
        self._expire(now)
        key = sender if sender in self._live or len(self._live) < MAX_SENDERS else OTHERS
        if self._live.get(key, 0) >= self.settings.per_cluster:
            if self.store.contains(message_id, now):
                return SpendResult.ALREADY_SPENT
            self.share_refusals += 1
            return SpendResult.FULL
        expires_at = int(now + self.settings.retention)
        result = self.store.add_if_absent(message_id, expires_at, now)
        if result is SpendResult.ADDED:
            self._count(key, expires_at)
        return result

    def held_by(self, sender: bytes) -> int:
        """How many live ids `sender` is counted for (for metrics and tests)."""
        return self._live.get(sender, 0)

    def _count(self, key: bytes, expires_at: int) -> None:
        self._live[key] = self._live.get(key, 0) + 1
        due = (-(-expires_at // self._width) * self._width, key)  # the bucket's end
        if due not in self._due:
            self._due[due] = 0
            heapq.heappush(self._heap, due)
        self._due[due] += 1

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            due = heapq.heappop(heap)
            left = self._live[due[1]] - self._due.pop(due)
            if left > 0:
                self._live[due[1]] = left
            else:
                del self._live[due[1]]
