"""Adapters from tungsten's node-level stores to the protocols the mercury_rt core uses.

tungsten sits below mercury_rt and cannot import its types, so its stores match the core
protocols structurally and return their own enums; this module is the one place where the
two meet, so a drift in either side fails a type check here (and in the tests).
"""

from __future__ import annotations

from carbon.symbols import Symbol
from mercury_rt.core.gate import SpendResult, SpentStampStore
from mercury_rt.core.node import DeliveredStore, HeldStore
from tungsten.api import StateStore
from tungsten.held_store import LmdbHeldStore
from tungsten.spent_store import DELIVERED_SECTIONS, SPENT_SECTIONS, LmdbSpentStore


class DurableSpentStore:
    """SpentStampStore over tungsten's LmdbSpentStore (same semantics as MemorySpentStore)."""

    def __init__(self, store: StateStore, limit: int = 1_000_000,
                 sections: tuple[Symbol, Symbol, Symbol] = SPENT_SECTIONS) -> None:
        self.inner = LmdbSpentStore(store, limit, sections)

    def __len__(self) -> int:
        return len(self.inner)

    def add_if_absent(self, digest: bytes, expires_at: int, now: float) -> SpendResult:
        """Record `digest` as spent unless it already is; never hold more than the bound."""
        return SpendResult(self.inner.add_if_absent(digest, expires_at, now).value)

    def contains(self, digest: bytes, now: float) -> bool:
        """Whether `digest` is held and unexpired at `now` (adds nothing)."""
        return self.inner.contains(digest, now)


def held_store(store: StateStore) -> HeldStore:
    """The node's durable held-message store."""
    return LmdbHeldStore(store)


def spent_store(store: StateStore, limit: int = 1_000_000) -> SpentStampStore:
    """The node's durable spent-stamp store, bounded by `limit` live stamps."""
    return DurableSpentStore(store, limit)


def delivered_store(store: StateStore, limit: int = 1_000_000) -> DeliveredStore:
    """The one-way message ids this node has run, durably (exactly once across restarts)."""
    return DurableSpentStore(store, limit, DELIVERED_SECTIONS)
