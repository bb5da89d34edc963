"""The shell side of mirrored state on etcd: LITHIUM's StateElsewhere over EtcdState.

For a node with a `replication:` section, a call's handler runs on the entity's records
read from etcd at one revision (bindings still come from the node's own store, see
tungsten/layered.py), and its writes commit in one etcd transaction guarded by that
revision and by the request's at-most-once record, which holds the reply. An admitted
request's hashcash stamp is spent cluster-wide first (`spend_stamp`). This module only
moves data between the core, the invoker and the adapter.
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
from mercury_rt.core.gate import ClusterSpend
from mercury_rt.core.node.actions import Invoke
from mercury_rt.core.node.server import NodeCore
from tungsten.api import Snapshot, StateStore
from tungsten.errors import StateError
from tungsten.etcd_store import EtcdState
from tungsten.layered import LayeredSnapshot, raw_reads, raw_writes
from tungsten.staged import EntityChanges

_log = structlog.get_logger("mercury_rt.node")
NODE_LOCAL_SECTIONS = frozenset({ENTITY_SECTION, ENDPOINTS_SECTION, HANDLERS_SECTION,
                                 PERSONAS_SECTION})
"""Sections each node's apps write at start (the same on every mirror): read locally."""


class ReplicatedElsewhere:
    """One call's access to its entity's shared state (implements RecordsReplies)."""

    def __init__(self, etcd: EtcdState, local: StateStore, entity: bytes,
                 request_id: bytes | None, keep: int | None = None) -> None:
        self._etcd, self._local, self._entity = etcd, local, entity
        self._request_id = request_id
        self._keep = keep
        """Seconds the request record must be kept (None: the settings' record_ttl)."""
        self._revision: int | None = None
        self._stored: bytes | None = None

    @property
    def stored_reply(self) -> bytes | None:
        """The reply this request already committed with (set by `fetch`)."""
        return self._stored

    async def fetch(self) -> Snapshot:
        """The entity's records at one etcd revision, layered over local bindings."""
        read = await self._etcd.read_entity(self._entity, self._request_id)
        self._revision, self._stored = read.revision, read.stored_reply
        return LayeredSnapshot(self._local.snapshot(), read.records, NODE_LOCAL_SECTIONS)

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
