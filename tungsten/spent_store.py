"""Spent hashcash stamps, durably: add-if-absent with expiry and a hard bound.

The same semantics as `mercury_rt.core.spent.MemorySpentStore` (tungsten may not import
it; `mercury_rt.config.stores` maps the outcome to its SpendResult): expired entries are
dropped first, so the bound counts live stamps only; a stamp already present is refused;
when the bound is reached new stamps are refused rather than old ones forgotten, because
forgetting would let an attacker replay. Surviving a restart closes the replay window a
restart would otherwise open.

Layout in the node's reserved entity: `spent` maps (digest,) -> (expires_at,);
`spent-expiry` holds (expires_at, digest) -> () so the oldest entries are the first keys
(canonical CBOR of non-negative integers sorts like the integers); `spent-meta` keeps the
live count, so the bound costs one read. One add is one write transaction: atomic, and a
crash loses at most that add. Negative expiry times are stored as 0 (already expired for
any non-negative `now`, as in the memory store).
"""

from __future__ import annotations

from enum import Enum

from carbon.symbols import Symbol
from tungsten.api import StateStore, WriteView
from tungsten.errors import CorruptStateError
from tungsten.node_state import (
    DELIVERED_EXPIRY_SECTION,
    DELIVERED_META_SECTION,
    DELIVERED_SECTION,
    NODE_ENTITY,
    SPENT_EXPIRY_SECTION,
    SPENT_META_SECTION,
    SPENT_SECTION,
)

PURGE_BATCH = 256
_COUNT_KEY = ("count",)


class SpendOutcome(Enum):
    """What add_if_absent did; the values equal mercury_rt's SpendResult values."""

    ADDED = "added"
    ALREADY_SPENT = "already-spent"
    FULL = "full"


SPENT_SECTIONS = (SPENT_SECTION, SPENT_EXPIRY_SECTION, SPENT_META_SECTION)
DELIVERED_SECTIONS = (DELIVERED_SECTION, DELIVERED_EXPIRY_SECTION, DELIVERED_META_SECTION)


class LmdbSpentStore:
    """A bounded, expiring set of ids over a StateStore: spent stamps by default, or (with
    DELIVERED_SECTIONS) the one-way message ids a node has run."""

    def __init__(self, store: StateStore, limit: int = 1_000_000,
                 sections: tuple[Symbol, Symbol, Symbol] = SPENT_SECTIONS) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.store = store
        self.limit = limit
        self.entries, self.expiries, self.meta = sections

    def __len__(self) -> int:
        with self.store.reading() as view:
            return _count(view.get(NODE_ENTITY, self.meta, _COUNT_KEY))

    def add_if_absent(self, digest: bytes, expires_at: int, now: float) -> SpendOutcome:
        """Record `digest` unless present or full; expired entries are dropped first."""
        return self.store.apply(lambda w: self._add(w, digest, expires_at, now))

    def contains(self, digest: bytes, now: float) -> bool:
        """Whether `digest` is held and unexpired at `now` (one read, adds nothing)."""
        with self.store.reading() as view:
            value = view.get(NODE_ENTITY, self.entries, (digest,))
        return value is not None and type(value[0]) is int and value[0] > now

    def _add(self, w: WriteView, digest: bytes, expires_at: int, now: float) -> SpendOutcome:
        before = _count(w.get(NODE_ENTITY, self.meta, _COUNT_KEY))
        count = before - _drop_expired(w, now, self.entries, self.expiries)
        outcome = SpendOutcome.ADDED
        if w.get(NODE_ENTITY, self.entries, (digest,)) is not None:
            outcome = SpendOutcome.ALREADY_SPENT
        elif count >= self.limit:
            outcome = SpendOutcome.FULL
        else:
            w.put(NODE_ENTITY, self.entries, (digest,), (expires_at,))
            w.put(NODE_ENTITY, self.expiries, (max(0, expires_at), digest), ())
            count += 1
        if count != before:
            w.put(NODE_ENTITY, self.meta, _COUNT_KEY, (count,))
        return outcome


def _drop_expired(w: WriteView, now: float, entries: Symbol, expiries: Symbol) -> int:
    """Delete every entry whose expiry is <= now, oldest first; returns how many.

    Usually nothing or one entry is due, so the first look reads one key; the batch then
    doubles (up to PURGE_BATCH) while everything read was due.
    """
    dropped, batch = 0, 1
    while True:
        rows = w.scan(NODE_ENTITY, expiries, limit=batch)
        for key, _ in rows:
            expiry, digest = _expiry_key(key)
            if expiry > now:
                return dropped
            w.delete(NODE_ENTITY, expiries, key)
            w.delete(NODE_ENTITY, entries, (digest,))
            dropped += 1
        if len(rows) < batch:
            return dropped
        batch = min(2 * batch, PURGE_BATCH)


def _expiry_key(key: tuple[object, ...]) -> tuple[int, bytes]:
    if len(key) != 2 or type(key[0]) is not int or type(key[1]) is not bytes:
        raise CorruptStateError(f"spent-stamp expiry key {key!r} is not (int, bytes)")
    return key[0], key[1]


def _count(value: tuple[object, ...] | None) -> int:
    if value is None:
        return 0
    if len(value) != 1 or type(value[0]) is not int or value[0] < 0:
        raise CorruptStateError(f"spent-stamp count {value!r} is not (non-negative int,)")
    return value[0]
