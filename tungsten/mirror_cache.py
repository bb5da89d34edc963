"""MirrorCache: a node's copy of its mirrored entities' etcd state, in its own LMDB.

The copy of each entity lives under the same raw keys it has in etcd (and in a node
without replication), in a store of its own (`<state dir>/etcd-cache`), so it can never
mix with the node's own records: bindings, connection bookkeeping and names stay in the
node's store, and deleting the cache directory loses nothing but warm reads. Beside the
records: each entity's mark (the etcd revision the copy stands for, and its head's mod
revision) and the watch position with the etcd cluster it came from (`epoch`): a node
pointed at another etcd cluster, or another prefix, starts with an empty cache.

Every change is one LMDB transaction holding the records and the mark together, so a
snapshot always shows a copy that is some whole revision of the entity (tungsten/
cache_events.py explains the order of events that makes this possible). Records are
decoded before they are stored: what etcd sends is checked like anything else, and an
entity whose records do not parse is simply not cached.

Bounded: only entities `mirrored` says this node mirrors are installed (the node's own
store has their bindings), and a cached entity the node no longer mirrors is dropped
when the cache opens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from carbon.error_codes import MercuryError
from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from tungsten.api import Snapshot, StateStore, WriteView
from tungsten.cache_events import (
    Advance,
    CacheTracker,
    Effect,
    Forget,
    KeyEvent,
    Mark,
    Write,
    epoch_of,
)
from tungsten.errors import CorruptStateError
from tungsten.keys import MAX_KEY_BYTES, decode_key, decode_stored, entity_prefix

CACHE_ENTITY = b"\x00mirror-cache"
"""The cache store's own records (no entity name may hold a control character)."""
MARK_SECTION = Symbol("/argon/mercury/cache-marks")
WATCH_SECTION = Symbol("/argon/mercury/cache-watch")
_WATCH_KEY = ("watch",)
_ALL = 1 << 62
"""`entity_records` bound when dropping a copy: everything."""


@dataclass(frozen=True, slots=True)
class CachedCopy:
    """A snapshot of the cache and the mark it shows for one entity (None: not cached).
    Close `snapshot` when done."""

    snapshot: Snapshot
    mark: Mark | None


class MirrorCache:
    """The cached copies in `store`; usable once `open` has checked the epoch."""

    def __init__(self, store: StateStore, mirrored: Callable[[bytes], bool]) -> None:
        self.store = store
        self._mirrored = mirrored
        self._tracker = CacheTracker()
        self.epoch: bytes | None = None
        """The etcd cluster (and prefix) the copies came from; None until `open`."""

    @property
    def ready(self) -> bool:
        """True once `open` has matched the copies to the etcd cluster in use."""
        return self.epoch is not None

    def matches(self, cluster_id: int, prefix: bytes) -> bool:
        """Whether the copies are of etcd cluster `cluster_id` under `prefix` (what an
        etcd reply's header says it came from): only then may a reply confirm a copy."""
        return self.epoch == epoch_of(cluster_id, prefix)

    @property
    def seen(self) -> int:
        """The watch position: the highest revision fed."""
        return self._tracker.seen

    def entities(self) -> frozenset[bytes]:
        """Every cached entity."""
        return self._tracker.entities

    def mark(self, entity: bytes) -> Mark | None:
        """The mark of `entity`'s copy, or None."""
        return self._tracker.mark(entity)

    def open(self, epoch: bytes) -> int:
        """Load the copies if they came from `epoch`, else drop them all; the revision
        to resume the watch from (0: nothing to resume, watch from now)."""
        with self.store.reading() as view:
            stored = view.get(CACHE_ENTITY, WATCH_SECTION, _WATCH_KEY)
            rows = view.scan(CACHE_ENTITY, MARK_SECTION, limit=_ALL)
        parsed = [_mark_of(key, value) for key, value in rows]
        kept = {found[0]: found[1] for found in parsed if found is not None}
        marks: dict[bytes, Mark] = {}
        seen = 0
        if stored is not None and len(stored) == 2 and stored[0] == epoch \
                and type(stored[1]) is int:
            marks, seen = dict(kept), stored[1]
        stale = [entity for entity in marks if not self._mirrored(entity)]
        wiped = [entity for entity in kept if entity not in marks]
        for entity in stale:
            del marks[entity]
        self._tracker = CacheTracker(marks, seen)
        self.epoch = epoch
        self._write([Forget(entity, "not mirrored here") for entity in (*stale, *wiped)])
        return self._tracker.resume()

    def read(self, entity: bytes) -> CachedCopy:
        """A snapshot and the mark it shows for `entity` (read from the same snapshot, so
        records and mark agree). Not ready: the mark is None."""
        snapshot = self.store.snapshot()
        if self.epoch is None:
            return CachedCopy(snapshot, None)
        try:
            found = snapshot.get(CACHE_ENTITY, MARK_SECTION, (entity,))
        except BaseException:
            snapshot.close()
            raise
        parsed = None if found is None else _mark_of((entity,), found)
        return CachedCopy(snapshot, None if parsed is None else parsed[1])

    def install(self, entity: bytes, mark: Mark, records: Mapping[bytes, bytes]) -> bool:
        """Keep a copy fetched at `mark.reflects` (`records`: raw key -> raw value); False
        when it is not kept (not ready, not mirrored here, older than the watch
        position, or records that do not parse as this entity's)."""
        if not self.ready or not self._tracker.may_install(mark.reflects) \
                or not self._mirrored(entity):
            return False
        try:
            writes = _checked(entity, records.items())
        except MercuryError:
            return False

        old = self._records_of(entity)

        def body(txn: WriteView) -> None:
            _drop(txn, entity, old)
            _apply(txn, entity, writes)
            _put_mark(txn, entity, mark)

        self.store.apply(body)
        self._tracker.install(entity, mark)
        return True

    def feed(self, events: Sequence[KeyEvent]) -> list[Effect]:
        """Apply what the watch delivered (in order) to the copies; the effects."""
        effects = self._tracker.feed(events)
        if effects:
            self._write(effects)
        return effects

    def save_position(self) -> None:
        """Store the watch position now (it is otherwise stored with each change to a
        copy, so a restart may re-read some revisions: harmless)."""
        self._write(())

    def resume(self) -> int:
        """The revision a new watch stream starts from (inclusive; 0: from now)."""
        return self._tracker.resume()

    def restart_at(self, revision: int) -> list[Forget]:
        """The watch cannot resume: drop every copy, watch from `revision` on. Copies
        the store holds but the tracker does not are dropped too: a copy no stream
        covered may have missed changes, and must never be taken as current."""
        dropped = self._tracker.restart_at(revision)
        with self.store.reading() as view:
            rows = view.scan(CACHE_ENTITY, MARK_SECTION, limit=_ALL)
        known = {effect.entity for effect in dropped}
        dropped += [Forget(found[0], "not covered by the watch") for found in
                    (_mark_of(key, value) for key, value in rows)
                    if found is not None and found[0] not in known]
        self._write(list(dropped))
        return dropped

    def forget(self, entity: bytes) -> None:
        """Drop one copy (e.g. its records could not be stored)."""
        self._tracker.forget(entity)
        self._write([Forget(entity, "dropped")])

    def _write(self, effects: Iterable[Effect]) -> None:
        """The effects and the watch position, in one transaction. An Advance whose
        records do not parse drops that copy instead."""
        checked: list[tuple[Effect, tuple[Write, ...]]] = []
        for effect in effects:
            if isinstance(effect, Advance):
                try:
                    checked.append((effect, _checked(effect.entity, effect.writes)))
                except MercuryError:
                    self._tracker.forget(effect.entity)
                    checked.append((Forget(effect.entity, "records do not parse"), ()))
            else:
                checked.append((effect, self._records_of(effect.entity)))
        epoch, seen = self.epoch, self._tracker.seen

        def body(txn: WriteView) -> None:
            for effect, writes in checked:
                if isinstance(effect, Advance):
                    _apply(txn, effect.entity, writes)
                    _put_mark(txn, effect.entity, effect.mark)
                else:
                    _drop(txn, effect.entity, writes)
            if epoch is not None:
                txn.put(CACHE_ENTITY, WATCH_SECTION, _WATCH_KEY, (epoch, seen))

        try:
            self.store.apply(body)
        except MercuryError:
            self._reload()
            raise

    def _reload(self) -> None:
        """After a failed write the tracker is ahead of the store: take the marks and the
        position back from the store (they agree with its records), so the watch resumes
        from there and re-applies what was lost."""
        with self.store.reading() as view:
            stored = view.get(CACHE_ENTITY, WATCH_SECTION, _WATCH_KEY)
            rows = view.scan(CACHE_ENTITY, MARK_SECTION, limit=_ALL)
        if stored is None or len(stored) != 2 or stored[0] != self.epoch \
                or type(stored[1]) is not int:
            self._tracker = CacheTracker()
            return
        parsed = [_mark_of(key, value) for key, value in rows]
        self._tracker = CacheTracker({found[0]: found[1] for found in parsed
                                      if found is not None}, stored[1])

    def _records_of(self, entity: bytes) -> tuple[Write, ...]:
        """The raw keys of `entity`'s copy, as deletions (only this class writes the
        cache store, and never across an await, so they are still current when used)."""
        prefix = entity_prefix(entity)
        snapshot = self.store.snapshot()
        try:
            found = snapshot.entity_records(entity, _ALL) or []
        finally:
            snapshot.close()
        return tuple((prefix + suffix, None) for suffix, _ in found)


def _mark_of(key: CarbonTuple, value: CarbonTuple) -> tuple[bytes, Mark] | None:
    """(entity, mark) of a mark row, or None if the row is not one."""
    if len(key) != 1 or len(value) != 2:
        return None
    entity, reflects, head = key[0], value[0], value[1]
    if type(entity) is not bytes or type(reflects) is not int or type(head) is not int:
        return None
    return entity, Mark(reflects, head)


def _checked(entity: bytes, writes: Iterable[Write]) -> tuple[Write, ...]:
    """`writes` if each is a well-formed record of `entity`; CorruptStateError if not."""
    out = []
    for raw, value in writes:
        if len(raw) > MAX_KEY_BYTES or decode_key(raw)[0] != entity:
            raise CorruptStateError("a cached record is not a record of its entity")
        if value is not None:
            decode_stored(value)
        out.append((raw, value))
    return tuple(out)


def _apply(txn: WriteView, entity: bytes, writes: Iterable[Write]) -> None:
    for raw, value in writes:
        owner, section, key = decode_key(raw)
        if value is None:
            txn.delete(owner, section, key)
        else:
            txn.put(owner, section, key, decode_stored(value))


def _drop(txn: WriteView, entity: bytes, records: Iterable[Write]) -> None:
    """Delete the copy of `entity` (its `records`) and its mark."""
    _apply(txn, entity, records)
    txn.delete(CACHE_ENTITY, MARK_SECTION, (entity,))


def _put_mark(txn: WriteView, entity: bytes, mark: Mark) -> None:
    txn.put(CACHE_ENTITY, MARK_SECTION, (entity,), (mark.reflects, mark.head))


__all__ = ["CACHE_ENTITY", "MARK_SECTION", "WATCH_SECTION", "CachedCopy", "MirrorCache"]
