"""The mirror cache against a model of etcd: after any sequence of commits, watch
deliveries, broken and resumed streams, installs (fresh or late) and compactions, every
cached copy is exactly the entity's state at the revision its mark names, and a copy
whose head still matches is the entity's current state; a stream broken anywhere and
resumed ends in the same cache as one never broken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.symbols import Symbol
from tungsten.api import WriteView
from tungsten.cache_events import (
    HEAD_PART,
    STATE_PART,
    CacheTracker,
    KeyEvent,
    Mark,
    epoch_of,
    standing_revision,
)
from tungsten.errors import MapFullError
from tungsten.keys import encode_key, encode_value, entity_prefix
from tungsten.memory import MemoryStore
from tungsten.mirror_cache import CACHE_ENTITY, MirrorCache

T = TypeVar("T")
SECTION = Symbol("/t/acct")
ENTITIES = (b"a", b"b", b"c")
EPOCH = b"cluster-1/t/"


def raw_key(entity: bytes, key: int) -> bytes:
    return encode_key(entity, SECTION, (key,))


@dataclass
class ModelEtcd:
    """Revisions, per-revision entity states and the event history of one etcd."""

    revision: int = 1
    states: dict[bytes, list[tuple[int, dict[bytes, bytes], int]]] = field(
        default_factory=lambda: {e: [(1, {}, 0)] for e in ENTITIES})
    history: list[KeyEvent] = field(default_factory=list)
    compacted: int = 0

    def commit(self, entity: bytes, writes: list[tuple[int, int | None]]) -> None:
        """One commit as etcd_store.commit makes it: state keys, then head, then the
        request record, all at one revision (a delete of a missing key is no event)."""
        self.revision += 1
        _, current, _ = self.states[entity][-1]
        new = dict(current)
        seen: set[bytes] = set()
        for key, value in writes:
            raw = raw_key(entity, key)
            if raw in seen:
                continue  # etcd refuses a key twice in one transaction; the stager merges
            seen.add(raw)
            if value is None:
                if raw in new:
                    del new[raw]
                    self.history.append(KeyEvent(self.revision, STATE_PART + raw, None))
            else:
                new[raw] = encode_value((value,))
                self.history.append(KeyEvent(self.revision, STATE_PART + raw, new[raw]))
        self.history.append(KeyEvent(self.revision, HEAD_PART + entity_prefix(entity), b"id"))
        self.history.append(KeyEvent(self.revision, b"r/" + bytes([self.revision % 251]),
                                     b"reply"))
        self.states[entity].append((self.revision, new, self.revision))

    def other(self) -> None:
        """A revision outside every entity (a membership or version key)."""
        self.revision += 1
        self.history.append(KeyEvent(self.revision, b"m/node", b"alive"))

    def at(self, entity: bytes, revision: int) -> tuple[dict[bytes, bytes], int]:
        """(records, head mod revision) of `entity` at `revision`."""
        found: tuple[dict[bytes, bytes], int] = ({}, 0)
        for rev, records, head in self.states[entity]:
            if rev <= revision:
                found = (records, head)
        return found

    def events_from(self, revision: int) -> list[KeyEvent]:
        return [e for e in self.history if e.revision >= revision]


class Watch:
    """The stream a cache is fed from: a position in the model's (growing) history."""

    def __init__(self, etcd: ModelEtcd, cache: MirrorCache) -> None:
        self.etcd, self.cache = etcd, cache
        self.start(cache.resume())

    def start(self, revision: int) -> None:
        """Watch from `revision` (inclusive); from now when there is nothing to resume or
        its history is compacted (the cache then drops every copy)."""
        if revision == 0 or revision <= self.etcd.compacted:
            self.cache.restart_at(self.etcd.revision)
            revision = self.etcd.revision + 1
        self.position = next((i for i, e in enumerate(self.etcd.history)
                              if e.revision >= revision), len(self.etcd.history))

    def deliver(self, count: int, chunk: int) -> None:
        """Feed up to `count` more events, in responses of up to `chunk` events."""
        end = min(len(self.etcd.history), self.position + count)
        while self.position < end:
            step = min(chunk, end - self.position)
            self.cache.feed(self.etcd.history[self.position:self.position + step])
            self.position += step

    def broken(self) -> None:
        self.start(self.cache.resume())


commit = st.tuples(st.just("commit"), st.sampled_from(ENTITIES),
                   st.lists(st.tuples(st.integers(0, 3), st.none() | st.integers(0, 9)),
                            max_size=4))
deliver = st.tuples(st.just("deliver"), st.integers(1, 12), st.integers(1, 5))
install = st.tuples(st.just("install"), st.sampled_from(ENTITIES), st.integers(0, 3))
_KINDS = {"commit": commit, "deliver": deliver, "install": install,
          "other": st.tuples(st.just("other")), "break": st.tuples(st.just("break")),
          "compact": st.tuples(st.just("compact"))}
op = st.sampled_from(["commit"] * 8 + ["deliver"] * 8 + ["install"] * 5 + ["other", "break",
                      "break", "compact"]).flatmap(_KINDS.__getitem__)


def cached_records(cache: MirrorCache, entity: bytes) -> dict[bytes, bytes]:
    copy = cache.read(entity)
    try:
        records = copy.snapshot.entity_records(entity, 1 << 30) or []
    finally:
        copy.snapshot.close()
    prefix = entity_prefix(entity)
    return {prefix + suffix: value for suffix, value in records}


def run(ops: list[tuple[object, ...]], breaks: bool) -> tuple[ModelEtcd, MirrorCache]:
    etcd = ModelEtcd()
    cache = MirrorCache(MemoryStore(), mirrored=lambda e: e in ENTITIES)
    cache.open(EPOCH)
    watch = Watch(etcd, cache)
    for step in ops:
        kind = step[0]
        if kind == "commit":
            etcd.commit(step[1], step[2])  # type: ignore[arg-type]
        elif kind == "other":
            etcd.other()
        elif kind == "deliver":
            watch.deliver(step[1], step[2])  # type: ignore[arg-type]
        elif kind == "break" and breaks:
            watch.broken()
        elif kind == "install":
            entity, lag = step[1], step[2]
            assert isinstance(entity, bytes) and isinstance(lag, int)
            at = max(1, etcd.revision - lag)
            records, head = etcd.at(entity, at)
            kept = cache.install(entity, Mark(at, head), records)
            assert kept == (at >= cache.seen)
        elif kind == "compact" and breaks:
            etcd.compacted = etcd.revision
        check_copies(etcd, cache)
    return etcd, cache


def check_copies(etcd: ModelEtcd, cache: MirrorCache) -> None:
    for entity in cache.entities():
        mark = cache.mark(entity)
        assert mark is not None
        records, head = etcd.at(entity, mark.reflects)
        assert mark.head == head
        assert cached_records(cache, entity) == records
        copy = cache.read(entity)
        copy.snapshot.close()
        assert copy.mark == mark
        now_records, now_head = etcd.at(entity, etcd.revision)
        standing = standing_revision(mark, now_head == mark.head, etcd.revision)
        if standing is not None:
            assert cached_records(cache, entity) == now_records
            assert etcd.at(entity, standing) == (now_records, now_head)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, min_size=5, max_size=60))
def test_every_copy_is_the_state_at_its_mark(ops: list[tuple[object, ...]]) -> None:
    run(ops, breaks=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(op, min_size=5, max_size=60))
def test_a_resumed_stream_ends_where_an_unbroken_one_does(ops: list[tuple[object, ...]]) -> None:
    """Same commits and installs; one stream breaks (sometimes after its history was
    compacted, which drops every copy), the other never does. Once both have every
    event, every entity both still cache is identical, and current."""
    etcd_a, broken = run(ops, breaks=True)
    etcd_b, whole = run(ops, breaks=False)
    for etcd, cache in ((etcd_a, broken), (etcd_b, whole)):
        watch = Watch(etcd, cache)
        watch.deliver(10**6, 7)
    for entity in broken.entities() & whole.entities():
        assert cached_records(broken, entity) == cached_records(whole, entity)
        assert broken.mark(entity) == whole.mark(entity)
        assert (broken.mark(entity) or Mark(0, 0)).head == etcd_a.at(entity, etcd_a.revision)[1]


def test_state_without_its_head_drops_the_copy() -> None:
    tracker = CacheTracker({b"a": Mark(5, 5)}, seen=5)
    raw = raw_key(b"a", 1)
    effects = tracker.feed([KeyEvent(6, STATE_PART + raw, b"\x81\x01"),
                            KeyEvent(7, b"m/x", b"")])
    assert [type(e).__name__ for e in effects] == ["Forget"]
    assert tracker.mark(b"a") is None


def test_a_copy_older_than_the_watch_is_not_kept() -> None:
    cache = MirrorCache(MemoryStore(), mirrored=lambda e: True)
    cache.open(EPOCH)
    cache.restart_at(10)
    assert not cache.install(b"a", Mark(9, 0), {})
    assert cache.install(b"a", Mark(10, 0), {})


def test_only_mirrored_entities_are_cached_and_reopening_drops_the_rest() -> None:
    store = MemoryStore()
    mirrored = {b"a", b"b"}
    cache = MirrorCache(store, mirrored=lambda e: e in mirrored)
    cache.open(EPOCH)
    cache.restart_at(1)
    assert not cache.install(b"x", Mark(1, 0), {})
    assert cache.install(b"a", Mark(1, 0), {raw_key(b"a", 1): encode_value((1,))})
    assert cache.install(b"b", Mark(1, 0), {})
    mirrored.discard(b"a")
    again = MirrorCache(store, mirrored=lambda e: e in mirrored)
    assert again.open(EPOCH) == 1
    assert again.entities() == {b"b"}
    assert cached_records(again, b"a") == {}


def test_another_etcd_cluster_starts_an_empty_cache() -> None:
    store = MemoryStore()
    cache = MirrorCache(store, mirrored=lambda e: True)
    cache.open(EPOCH)
    cache.install(b"a", Mark(3, 2), {raw_key(b"a", 1): encode_value((1,))})
    other = MirrorCache(store, mirrored=lambda e: True)
    assert other.open(b"cluster-2/t/") == 0
    assert other.entities() == frozenset()
    assert cached_records(other, b"a") == {}
    with store.reading() as view:
        assert view.get(CACHE_ENTITY, Symbol("/argon/mercury/cache-marks"), (b"a",)) is None


def test_records_that_are_not_the_entitys_are_refused() -> None:
    cache = MirrorCache(MemoryStore(), mirrored=lambda e: True)
    cache.open(EPOCH)
    assert not cache.install(b"a", Mark(1, 0), {raw_key(b"b", 1): encode_value((1,))})
    assert not cache.install(b"a", Mark(1, 0), {raw_key(b"a", 1): b"\xff"})
    assert cache.entities() == frozenset()


class FailingStore(MemoryStore):
    """A MemoryStore whose next write fails (the map is full), once."""

    fail_next = False

    def apply(self, body: Callable[[WriteView], T]) -> T:
        if self.fail_next:
            self.fail_next = False
            raise MapFullError("state map is full")
        return super().apply(body)


def test_a_failed_write_resumes_from_what_the_store_holds() -> None:
    """The watch fed a commit the store could not take: the cache falls back to the
    store's marks and position, so the re-delivered stream applies it after all."""
    etcd = ModelEtcd()
    store = FailingStore()
    cache = MirrorCache(store, mirrored=lambda e: True)
    cache.open(EPOCH)
    cache.restart_at(etcd.revision)
    assert cache.install(b"a", Mark(etcd.revision, 0), {})
    etcd.commit(b"a", [(1, 7)])
    etcd.commit(b"a", [(2, 8)])
    store.fail_next = True
    with pytest.raises(MapFullError):
        cache.feed(etcd.events_from(1))
    assert cache.mark(b"a") == Mark(1, 0)
    cache.feed(etcd.events_from(cache.resume()))
    assert cache.mark(b"a") == Mark(3, 3)
    assert cached_records(cache, b"a") == etcd.at(b"a", 3)[0]


def test_restarting_the_watch_drops_copies_the_tracker_lost_track_of() -> None:
    """A copy in the store that no stream covers (the tracker was rebuilt without it) is
    dropped when the watch restarts, so a later reload never takes it as current."""
    store = MemoryStore()
    cache = MirrorCache(store, mirrored=lambda e: True)
    cache.open(EPOCH)
    cache.restart_at(1)
    cache.install(b"a", Mark(1, 0), {raw_key(b"a", 1): encode_value((1,))})
    cache._tracker.forget(b"a")  # as after a rebuild that could not read the position
    cache.restart_at(5)
    again = MirrorCache(store, mirrored=lambda e: True)
    again.open(EPOCH)
    assert again.entities() == frozenset()
    assert cached_records(again, b"a") == {}


@given(st.integers(0, 2**64 - 1), st.binary(max_size=8), st.integers(0, 2**64 - 1),
       st.binary(max_size=8))
def test_a_copy_matches_only_replies_of_its_own_etcd_cluster_and_prefix(
        cluster: int, prefix: bytes, other_cluster: int, other_prefix: bytes) -> None:
    """A reply whose header names another etcd cluster (or that was read under another
    prefix) never confirms a copy: its revisions say nothing about it."""
    cache = MirrorCache(MemoryStore(), mirrored=lambda e: True)
    assert not cache.matches(cluster, prefix)  # not opened: nothing to confirm
    cache.open(epoch_of(cluster, prefix))
    assert cache.matches(cluster, prefix)
    same = (other_cluster, other_prefix) == (cluster, prefix)
    assert cache.matches(other_cluster, other_prefix) is same
