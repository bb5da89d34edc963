"""The shell side of mirrored state on etcd: LITHIUM's StateElsewhere over EtcdState.

For a node with a `replication:` section, a call's handler runs on the entity's records
at one etcd revision (bindings still come from the node's own store, see
tungsten/layered.py), and its writes commit in one etcd transaction guarded by that
revision and by the request's at-most-once record, which holds the reply. An admitted
request's hashcash stamp is spent cluster-wide first (`spend_stamp`). This module only
moves data between the core, the invoker, the node's mirror cache and the adapter.

Reads with the mirror cache, and why they stay linearizable. The node keeps a copy of
each mirrored entity in its own LMDB (tungsten/mirror_cache.py), kept current by a watch
(aio/mirror_watch.py), with a mark: the revision the copy stands for and its head's mod
revision. A watch is not enough to answer from: it can lag, or hang on a member cut off
from the majority, and a copy that merely looks current could miss a write another
mirror acknowledged before this request arrived. So every request still makes one
linearizable etcd read, a read-only transaction comparing the entity's head mod
revision with the copy's mark (and reading the request record): if equal, no commit
changed the entity since the copy, the copy is the entity's state at the read's
revision, and etcd sends nothing else; if not, the same transaction returns the
entity's records and the request runs on those (and they replace the copy when the
watch position allows). Either way one round trip, with the same real-time guarantee as
reading everything. Commits are unchanged: guarded key by key against that revision,
so a copy that went stale between the read and the commit makes the commit fail, and
the request re-runs on a fresh read (never a lost update, never a second visible run).
With the etcd majority lost the read fails like any etcd read (460, nothing answered
from the cache).
"""

from __future__ import annotations

import os
import time

import structlog

from carbon.error_codes import ErrorCode, MercuryError
from lithium.bindings import (
    ENDPOINTS_SECTION,
    ENTITY_SECTION,
    HANDLERS_SECTION,
    PERSONAS_SECTION,
)
from mercury_rt.aio.mirror_watch import MirrorWatch
from mercury_rt.core.gate import ClusterSpend
from mercury_rt.core.node.actions import Invoke
from mercury_rt.core.node.server import NodeCore
from tungsten.api import Snapshot, StateStore
from tungsten.cache_events import Mark, standing_revision
from tungsten.errors import StateError
from tungsten.etcd_store import EntityRead, EtcdState
from tungsten.layered import SplitSnapshot, raw_reads, raw_writes
from tungsten.mirror_cache import CachedCopy
from tungsten.snapshot import snapshot_of
from tungsten.staged import EntityChanges

_log = structlog.get_logger("mercury_rt.node")
NODE_LOCAL_SECTIONS = frozenset({ENTITY_SECTION, ENDPOINTS_SECTION, HANDLERS_SECTION,
                                 PERSONAS_SECTION})
"""Sections each node's apps write at start (the same on every mirror): read locally."""


class ReplicatedElsewhere:
    """One call's access to its entity's shared state (implements RecordsReplies)."""

    def __init__(self, etcd: EtcdState, local: StateStore, entity: bytes,
                 request_id: bytes | None, *, keep: int | None = None,
                 cache: MirrorWatch | None = None) -> None:
        self._etcd, self._local, self._entity = etcd, local, entity
        self._request_id = request_id
        self._keep = keep
        """Seconds the request record must be kept (None: the settings' record_ttl)."""
        self._cache = cache
        self._revision: int | None = None
        self._stored: bytes | None = None

    @property
    def stored_reply(self) -> bytes | None:
        """The reply this request already committed with (set by `fetch`)."""
        return self._stored

    async def fetch(self) -> Snapshot:
        """The entity's state at one etcd revision, layered over local bindings: the
        node's cached copy when etcd says it is current, else the records etcd sent."""
        watch = self._cache
        if watch is None or not watch.cache.ready:
            read = await self._etcd.read_entity(self._entity, self._request_id)
            return self._fetched(read)
        copy = watch.cache.read(self._entity)
        try:
            read = await self._etcd.read_entity(
                self._entity, self._request_id, None if copy.mark is None else copy.mark.head)
            if read.unchanged and not watch.cache.matches(
                    read.epoch, self._etcd.settings.prefix):  # another etcd cluster
                read = await self._etcd.read_entity(self._entity, self._request_id)
        except BaseException:
            copy.snapshot.close()
            raise
        return self._from_copy(watch, copy, read)

    def _from_copy(self, watch: MirrorWatch, copy: CachedCopy, read: EntityRead) -> Snapshot:
        standing = standing_revision(copy.mark, read.unchanged, read.revision)
        if standing is None:
            copy.snapshot.close()
            watch.counters["fetches"] += 1
            self._install(watch, read)
            return self._fetched(read)
        watch.counters["hits"] += 1
        self._revision, self._stored = standing, read.stored_reply
        return SplitSnapshot(self._local.snapshot(), copy.snapshot, NODE_LOCAL_SECTIONS)

    def _install(self, watch: MirrorWatch, read: EntityRead) -> None:
        """Keep what etcd sent as the node's copy, if the cache may (a failure to store
        it costs only a later full read)."""
        if not watch.cache.matches(read.epoch, self._etcd.settings.prefix):
            return
        try:
            if watch.cache.install(self._entity, Mark(read.revision, read.head),
                                   read.records):
                watch.counters["installs"] += 1
        except MercuryError:
            watch.counters["install_failures"] += 1

    def _fetched(self, read: EntityRead) -> Snapshot:
        self._revision, self._stored = read.revision, read.stored_reply
        return SplitSnapshot(self._local.snapshot(), snapshot_of(read.records),
                             NODE_LOCAL_SECTIONS)

    async def commit(self, changes: EntityChanges) -> None:
        """Commit without a reply to keep (StateElsewhere)."""
        await self.commit_reply(changes, b"")

    async def commit_reply(self, changes: EntityChanges, reply: bytes) -> bytes:
        """One CAS-guarded transaction: writes, head and the request record with `reply`.
        A call without a caller-chosen id still gets a fresh one, so a commit whose
        answer was lost can be retried without applying twice."""
        if self._revision is None:
            raise StateError("commit before fetch")
        request_id = self._request_id or b"n/" + os.urandom(16)
        return await self._etcd.commit(self._entity, self._revision,
                                       raw_writes(changes, NODE_LOCAL_SECTIONS), request_id,
                                       reply, raw_reads(changes), self._keep)


async def spend_stamp(etcd: EtcdState, core: NodeCore, action: Invoke,
                      spend: ClusterSpend) -> bytes | None:
    """Spend the stamp the gate admitted in etcd, bound to the request it pays for, before
    anything runs: None to invoke; else the reply (606 from the core when another request
    spent it; 460 when etcd cannot say within its timeout: fail closed, nothing runs)."""
    binding = action.call.request_id or b""
    try:
        stored = await etcd.spend_stamp(spend.digest, binding, spend.expires_at, time.time())
    except MercuryError as exc:
        code = exc.code or ErrorCode.REPLICATION_UNAVAILABLE
        _log.warning("stamp_not_spent_cluster_wide", code=code.name, error=exc.message)
        return core.finish(action, None, int(code), "the hashcash stamp could not be "
                           f"spent cluster-wide, so nothing ran: {exc.message}")
    refused = core.stamp_refusal(action, spend, stored)
    if refused is not None:  # the audit log has the gate's allow: say what followed
        _log.info("stamp_double_spent_in_cluster", entity=action.call.entity.hex(),
                  originator=action.allow.originator.local.hex())
    return refused
