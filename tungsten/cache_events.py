"""Keeping a node's copy of mirrored entities current from etcd's watch stream (pure).

Why a cache at all: a mirrored entity's state of record is in etcd (tungsten/etcd_store.py),
but reading the whole entity from etcd on every request moves all of its records for
every call. Each node keeps its mirrored entities' records in its own LMDB instead,
with, per entity, the etcd revision the copy stands for (`Mark`); a watch from the last
revision seen feeds every change, and `CacheTracker` decides what each change does to
the copy. This module only decides; tungsten/mirror_cache.py writes the decisions to
LMDB and the asyncio shell moves events.

What makes an event stream safe to apply. Every commit to an entity is one etcd
transaction that writes the entity's state keys first and its head key last (etcd numbers
a transaction's changes in that order and never splits one revision across watch
responses). So the head event of revision r closes the entity's changes at r: the state
events seen since are applied together with the new mark, in one LMDB transaction, and a
reader never sees half a commit. Events at or below an entity's mark are already in the
copy and are skipped, which makes re-delivery harmless: after a broken watch the stream
resumes from `seen` (inclusive), so nothing after the last event seen can be missed.
State events that no head closes (nothing this code writes does that) drop the entity
from the cache instead of guessing.

When a copy may be installed. A fetched entity (records read at revision F) is only
added when F >= `seen`: the watch skipped the entity's events up to `seen` while it was
not cached, and the copy must already hold them. A copy at F < `seen` is still a valid
read for the request that fetched it, it is just not kept.

Being current is decided by the reader, not here: the reader compares the entity's head
mod revision in etcd (a linearizable read) with the mark's `head`; equal means no commit
changed the entity since the copy's revision (`standing_revision`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tungsten.keys import MAX_ENTITY_BYTES

STATE_PART = b"s/"
"""etcd key part (after the cluster prefix) of a state record: `s/<raw LMDB key>`."""
HEAD_PART = b"h/"
"""etcd key part of an entity's head: `h/<entity prefix>` (length byte, entity)."""
MAX_PENDING = 128
"""State events one revision may carry for one entity (etcd's transaction op limit)."""


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One change from the watch: an etcd key with the cluster prefix removed."""

    revision: int
    key: bytes
    value: bytes | None
    """None: the key was deleted."""


@dataclass(frozen=True, slots=True)
class Mark:
    """What a cached copy stands for: the entity's state at etcd revision `reflects`,
    whose head was last written at `head` (0: the entity never committed)."""

    reflects: int
    head: int


Write = tuple[bytes, bytes | None]
"""(raw state key, raw value or None to delete), as LMDB stores it."""


@dataclass(frozen=True, slots=True)
class Advance:
    """Apply `writes` to the copy of `entity` and give it `mark` (one transaction)."""

    entity: bytes
    mark: Mark
    writes: tuple[Write, ...]


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop the copy of `entity` (its records and mark); the next read fetches it."""

    entity: bytes
    reason: str


Effect = Advance | Forget


def epoch_of(cluster_id: int, prefix: bytes) -> bytes:
    """What a cached copy's revisions are relative to: one etcd cluster (the id in every
    etcd reply's header), one prefix. Revisions of another cluster or prefix say nothing
    about the copy, so a copy is used only with replies of its own epoch."""
    return cluster_id.to_bytes(8, "big") + prefix


def entity_of_raw(raw: bytes) -> bytes | None:
    """The entity a raw LMDB state key belongs to, or None if it is not one."""
    if not raw or not 0 < raw[0] <= MAX_ENTITY_BYTES or len(raw) <= raw[0]:
        return None
    return raw[1:1 + raw[0]]


def entity_of_head(part: bytes) -> bytes | None:
    """The entity of a head key's part after `h/` (an entity prefix), or None."""
    if not part or not 0 < part[0] <= MAX_ENTITY_BYTES or len(part) != part[0] + 1:
        return None
    return part[1:]


def standing_revision(mark: Mark | None, head_unchanged: bool, revision: int) -> int | None:
    """The revision a cached copy can be used at, or None (fetch from etcd instead).

    `head_unchanged`: a linearizable read at `revision` found the entity's head mod
    revision equal to `mark.head`. Then no commit touched the entity after the copy's
    state, so the copy is the entity's state at `revision` and at `mark.reflects` alike;
    the later of the two is returned, for the commit's compare-and-swap guards.
    """
    if mark is None or not head_unchanged:
        return None
    return max(revision, mark.reflects)


class CacheTracker:
    """The cache's marks and the watch position, and what each event does (pure)."""

    def __init__(self, marks: Mapping[bytes, Mark] | None = None, seen: int = 0) -> None:
        self._marks: dict[bytes, Mark] = dict(marks or {})
        self.seen = seen
        """Highest revision of any event fed; the watch resumes from it, inclusive."""
        self._pending_revision = 0
        self._pending: dict[bytes, list[Write]] = {}

    def mark(self, entity: bytes) -> Mark | None:
        """The copy's mark, or None if `entity` is not cached."""
        return self._marks.get(entity)

    @property
    def entities(self) -> frozenset[bytes]:
        """Every cached entity."""
        return frozenset(self._marks)

    def may_install(self, revision: int) -> bool:
        """Whether a copy read at `revision` holds every event the watch skipped."""
        return revision >= self.seen

    def install(self, entity: bytes, mark: Mark) -> None:
        """Start tracking a copy fetched at `mark.reflects` (`may_install` held)."""
        if not self.may_install(mark.reflects):
            raise ValueError("a copy older than the watch position would miss events")
        self._marks[entity] = mark
        self._pending.pop(entity, None)

    def forget(self, entity: bytes) -> None:
        """Stop tracking `entity` (its copy was dropped)."""
        self._marks.pop(entity, None)
        self._pending.pop(entity, None)

    def resume(self) -> int:
        """A new stream starts: the revision to watch from (0: from now). Half-seen
        revisions are dropped; the stream sends them again."""
        self._pending.clear()
        self._pending_revision = 0
        return self.seen

    def restart_at(self, revision: int) -> list[Forget]:
        """The stream cannot resume (its revisions were compacted): drop every copy and
        watch from `revision` on; each entity is fetched again on its next read."""
        dropped = [Forget(entity, "the watch history was compacted") for entity in self._marks]
        self._marks.clear()
        self.resume()
        self.seen = revision
        return dropped

    def feed(self, events: Iterable[KeyEvent]) -> list[Effect]:
        """What the events (in stream order) do to the cached copies."""
        effects: list[Effect] = []
        for event in events:
            self._feed_one(event, effects)
        return effects

    def _feed_one(self, event: KeyEvent, effects: list[Effect]) -> None:
        if event.revision > self._pending_revision:
            self._close_revision(effects)
            self._pending_revision = event.revision
        self.seen = max(self.seen, event.revision)
        if event.key.startswith(STATE_PART):
            self._state_event(event, event.key[len(STATE_PART):], effects)
        elif event.key.startswith(HEAD_PART):
            self._head_event(event, entity_of_head(event.key[len(HEAD_PART):]), effects)

    def _close_revision(self, effects: list[Effect]) -> None:
        """A revision ended: state changes no head closed make their copies unknown."""
        for entity in self._pending:
            self._marks.pop(entity, None)
            effects.append(Forget(entity, "state changed without its head"))
        self._pending.clear()

    def _state_event(self, event: KeyEvent, raw: bytes, effects: list[Effect]) -> None:
        entity = entity_of_raw(raw)
        mark = None if entity is None else self._marks.get(entity)
        if entity is None or mark is None or event.revision <= mark.reflects:
            return
        pending = self._pending.setdefault(entity, [])
        pending.append((raw, event.value))
        if len(pending) > MAX_PENDING:
            self.forget(entity)
            effects.append(Forget(entity, "more state changes in one revision than a "
                                          "commit can make"))

    def _head_event(self, event: KeyEvent, entity: bytes | None,
                    effects: list[Effect]) -> None:
        mark = None if entity is None else self._marks.get(entity)
        if entity is None or mark is None or event.revision <= mark.reflects:
            return
        writes = tuple(self._pending.pop(entity, ()))
        if event.value is None:
            self.forget(entity)
            effects.append(Forget(entity, "its head was deleted"))
            return
        new = Mark(event.revision, event.revision)
        self._marks[entity] = new
        effects.append(Advance(entity, new, writes))


__all__ = ["HEAD_PART", "MAX_PENDING", "STATE_PART", "Advance", "CacheTracker", "Effect",
           "Forget", "KeyEvent", "Mark", "Write", "entity_of_head", "entity_of_raw", "epoch_of",
           "standing_revision"]
