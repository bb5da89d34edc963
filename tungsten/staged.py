"""Staged (optimistic) transactions: how a handler reads and writes across `await`s.

LMDB permits one writer per environment and a write transaction must not span an await,
so a handler never holds one. It reads from a snapshot and stages its writes in memory;
`commit()` then opens one short write transaction, re-checks that everything the handler
read is unchanged (else ConflictError, and the caller may re-run the handler), and applies
the writes all at once. A handler that wrote nothing commits nothing: read-only work never
opens a write transaction and never waits for an fsync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from tungsten.api import DEFAULT_SCAN_LIMIT, ReadView, StateStore, WriteView
from tungsten.errors import ClosedError, ConflictError, StateError
from tungsten.keys import encode_key, encode_value, section_prefix

MAX_STAGED_WRITES = 10_000
"""Bound on one handler's writes, so a runaway handler cannot exhaust memory."""
MAX_CHECKS = 10_000
"""Bound on the reads and scans one remote-state transaction asks the state node to
re-check (docs/protocol.md 6.10)."""


@dataclass(frozen=True, slots=True)
class _Write:
    entity: bytes
    section: Symbol
    key: CarbonTuple
    value: CarbonTuple | None


@dataclass(frozen=True, slots=True)
class _Scan:
    entity: bytes
    section: Symbol
    limit: int
    seen: list[tuple[CarbonTuple, CarbonTuple]]


class StagedState:
    """A WriteView over a snapshot, whose writes land only at `commit()`."""

    def __init__(self, snapshot: ReadView) -> None:
        self._snapshot = snapshot
        self._reads: dict[bytes, tuple[bytes, Symbol, CarbonTuple, CarbonTuple | None]] = {}
        self._scans: dict[tuple[bytes, int], _Scan] = {}
        self._writes: dict[bytes, _Write] = {}
        self._sealed = False

    @property
    def has_writes(self) -> bool:
        """True when commit() would open a write transaction."""
        return bool(self._writes)

    def _check(self) -> None:
        if self._sealed:
            raise ClosedError("the handler's transaction is over (finished, failed or timed out)")

    def get(self, entity: bytes, section: Symbol, key: CarbonTuple) -> CarbonTuple | None:
        """Own staged write if any, else the snapshot's value (recorded for validation)."""
        self._check()
        raw_key = encode_key(entity, section, key)
        staged = self._writes.get(raw_key)
        if staged is not None:
            return staged.value
        if raw_key not in self._reads:
            self._reads[raw_key] = (entity, section, key,
                                    self._snapshot.get(entity, section, key))
        return self._reads[raw_key][3]

    def scan(self, entity: bytes, section: Symbol,
             limit: int = DEFAULT_SCAN_LIMIT) -> list[tuple[CarbonTuple, CarbonTuple]]:
        """The snapshot's section overlaid with own staged writes, in key-byte order."""
        self._check()
        prefix = section_prefix(entity, section)
        own = [(raw_key, w) for raw_key, w in self._writes.items() if raw_key.startswith(prefix)]
        # Each own delete may hide one snapshot record: read that many more, so the
        # result still has `limit` records when the section has them.
        deletes = sum(w.value is None for _, w in own)
        base_limit = limit + deletes if limit > 0 else limit
        base = self._snapshot.scan(entity, section, base_limit)
        # The snapshot never changes, so a repeated scan is re-checked once.
        self._scans.setdefault((prefix, base_limit), _Scan(entity, section, base_limit, base))
        merged = {encode_key(entity, section, k): (k, v) for k, v in base}
        for raw_key, write in own:
            if write.value is None:
                merged.pop(raw_key, None)
            else:
                merged[raw_key] = (write.key, write.value)
        return [merged[k] for k in sorted(merged)][:limit]

    def put(self, entity: bytes, section: Symbol, key: CarbonTuple,
            value: CarbonTuple) -> None:
        """Stage a write (validated now, so a bad value fails inside the handler)."""
        self._check()
        encode_value(value)
        self._stage(_Write(entity, section, key, value))

    def delete(self, entity: bytes, section: Symbol, key: CarbonTuple) -> bool:
        """Stage a delete; True if the key currently exists."""
        existed = self.get(entity, section, key) is not None
        self._stage(_Write(entity, section, key, None))
        return existed

    def _stage(self, write: _Write) -> None:
        raw_key = encode_key(write.entity, write.section, write.key)
        if raw_key not in self._writes and len(self._writes) >= MAX_STAGED_WRITES:
            raise StateError(f"a handler may stage at most {MAX_STAGED_WRITES} writes")
        self._writes[raw_key] = write

    def discard(self) -> None:
        """Drop staged writes; further use raises ClosedError."""
        self._sealed = True
        self._writes.clear()

    def commit(self, store: StateStore) -> int | None:
        """Validate reads and apply writes atomically; the commit's sequence, or None.

        None means nothing was written, so there is nothing to make durable.
        """
        self._check()
        self._sealed = True
        if not self._writes:
            return None
        store.apply(self._validate_and_apply)
        return store.commit_seq

    def _validate_and_apply(self, txn: WriteView) -> None:
        check_and_write(txn, self._reads.values(),
                        ((s.entity, s.section, s.limit, s.seen) for s in self._scans.values()),
                        ((w.entity, w.section, w.key, w.value) for w in self._writes.values()))

    def changes(self, entity: bytes) -> EntityChanges:
        """What this transaction read and wrote, as the portable unit a node that holds
        `entity`'s state validates and applies (remote-state routing). Seals it."""
        self._check()
        self._sealed = True
        scans = self._scans.values()
        if any(e != entity for e, *_ in self._reads.values()) or \
                any(s.entity != entity for s in scans) or \
                any(w.entity != entity for w in self._writes.values()):
            raise StateError("a remote-state transaction may touch only its own entity")
        if len(self._reads) + len(scans) > MAX_CHECKS:
            raise StateError(f"a remote-state transaction may re-check at most {MAX_CHECKS} "
                             f"reads and scans; this one made {len(self._reads)} reads and "
                             f"{len(scans)} scans, so the node holding the state would refuse it")
        return EntityChanges(
            entity,
            tuple((section, key, seen) for _, section, key, seen in self._reads.values()),
            tuple((s.section, s.limit, tuple(s.seen)) for s in scans),
            tuple((w.section, w.key, w.value) for w in self._writes.values()))


Entry = tuple[Symbol, CarbonTuple, CarbonTuple | None]
"""(section, key, value or None for absent/deleted)."""
ScanEntry = tuple[Symbol, int, tuple[tuple[CarbonTuple, CarbonTuple], ...]]
"""(section, limit, what the scan returned)."""


@dataclass(frozen=True, slots=True)
class EntityChanges:
    """A staged transaction on one entity: what it read (to re-check) and what it writes.

    Why a separate form: with remote-state routing the handler runs on one node and the
    entity's state lives on another, which validates and applies these changes exactly
    as a local commit would (docs/protocol.md 6.10).
    """

    entity: bytes
    reads: tuple[Entry, ...]
    scans: tuple[ScanEntry, ...]
    writes: tuple[Entry, ...]

    def apply(self, txn: WriteView) -> None:
        """Re-check every read against `txn`, then write; ConflictError if one changed."""
        entity = self.entity
        check_and_write(txn, ((entity, *r) for r in self.reads),
                        ((entity, s, limit, list(seen)) for s, limit, seen in self.scans),
                        ((entity, *w) for w in self.writes))


def check_and_write(txn: WriteView,
                    reads: Iterable[tuple[bytes, Symbol, CarbonTuple, CarbonTuple | None]],
                    scans: Iterable[tuple[bytes, Symbol, int,
                                          list[tuple[CarbonTuple, CarbonTuple]]]],
                    writes: Iterable[tuple[bytes, Symbol, CarbonTuple, CarbonTuple | None]],
                    ) -> None:
    """Optimistic validation then all writes, inside one write transaction.

    A scan is re-run only to one record past what it saw: that decides equality with the
    full re-run, and bounds the work by what the transaction saw rather than by its limit
    (which, for a change set from a peer, the peer chose).
    """
    for entity, section, key, seen in reads:
        if txn.get(entity, section, key) != seen:
            raise ConflictError(f"{section} {key!r} changed while the handler ran")
    for entity, section, limit, seen_scan in scans:
        if txn.scan(entity, section, min(limit, len(seen_scan) + 1)) != seen_scan:
            raise ConflictError(f"section {section} changed while the handler ran")
    for entity, section, key, value in writes:
        if value is None:
            txn.delete(entity, section, key)
        else:
            txn.put(entity, section, key, value)
