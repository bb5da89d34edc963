"""The etcd side of a node's membership, with a `replication:` section: cluster-ID versions
are published by compare-and-swap on one etcd key and learnt by watching it; each node
keeps its liveness key `m/<node id>` alive on an etcd lease and watches everyone's.

Only moves data: the adapter (core/node/membership.py) proposes a version, this shell
tries the CAS (aio/etcd_versions.py) and reports back: won (`cas_won`), etcd unreachable
(`cas_failed`), or lost, with what a re-read found (`etcd_value`, which verifies it and
says whether to CAS again). At start and on every change the watch delivers, the key's
value goes to `etcd_value` too; a node that holds a newer version than etcd's (or finds
nothing valid there) puts its own. A watch that breaks resumes from its revision; one
whose revision was compacted re-reads the key and watches again.

Liveness (`leases`): the node grants a lease of `lease_ttl` seconds, puts its key on it and
renews it; if the lease is lost (etcd let it expire) it grants a new one and puts the key
again (a lease whose put failed is revoked before the retry); on stop it revokes it, so
its peers see it gone at once. The `m/` watch feeds the adapter `lease_held` /
`lease_lost` per node (a snapshot at start and after a compacted watch): a killed node is
dead for its peers once its lease runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.etcd_versions import EtcdVersionStore, Published, after_put
from mercury_rt.aio.task_stop import stop_tasks
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.node import MembershipStep, NodeMembership
from tungsten.etcd_store import (
    CLOSE_TIMEOUT,
    EtcdState,
    EtcdWatch,
    EventKind,
    Lease,
    LeaseExpiredError,
    WatchCompactedError,
    grant_lease,
    keep_alive,
    put_on_lease,
    read_range,
    revoke_lease,
)

MEMBER_PREFIX = b"m/"
MAX_NODE_ID = 64
REVOKE_TIMEOUT = 2.0
"""Seconds a stopping node waits to revoke its lease (else it just runs out)."""
MAX_CAS_ROUNDS = 8
"""Lost CAS in a row on one proposal before giving up until the next tick."""
_log = structlog.get_logger("mercury_rt.membership.etcd")


class EtcdMembership:
    """Publishes and learns one node's cluster-ID versions on etcd. See module docstring."""

    def __init__(self, adapter: NodeMembership, etcd: EtcdState,
                 carry_out: Callable[[MembershipStep], None], interval: float, *,
                 leases: bool = False, lease_ttl: int = 5) -> None:
        self._loop = asyncio.get_running_loop()
        self.adapter = adapter
        self._etcd = etcd
        self.store = EtcdVersionStore(etcd)
        self._leases = leases
        self._lease_ttl = lease_ttl
        self._lease: Lease | None = None
        self._own_key = MEMBER_PREFIX + adapter.identity.node_id
        self._carry_out = carry_out
        self._interval = interval
        self._live: Published | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seeding = False

    def start(self) -> None:
        """Read the key and watch it (the first read also brings etcd up to date); with
        leases, keep this node's liveness key alive and watch every node's."""
        self._spawn(self._watch_versions())
        if self._leases:
            self._spawn(self._keep_lease())
            self._spawn(self._watch_members())

    async def stop(self) -> None:
        """Stop the watches and any CAS in flight; revoke this node's lease (bounded)."""
        # Bounded, as MirrorWatch.stop: a cancelled gRPC call can fail to end.
        await stop_tasks(list(self._tasks), CLOSE_TIMEOUT, _log, "membership_stop_abandoned")
        lease, self._lease = self._lease, None
        if lease is not None:
            await self._revoke(lease)

    async def _revoke(self, lease: Lease) -> None:
        """End `lease` now, waiting at most REVOKE_TIMEOUT (else it runs out by itself)."""
        try:
            async with asyncio.timeout(REVOKE_TIMEOUT):  # keeps a cancel (etcd_store.py)
                await revoke_lease(self._etcd, lease)
        except (TimeoutError, MercuryError):
            _log.info("member_lease_not_revoked", effect="it runs out by itself")

    def propose(self, proposed: ClusterId) -> None:
        """Publish the adapter's proposal by CAS on the value seen last (reported back to
        the adapter)."""
        self._spawn(self._publish(proposed, proposed, self._live))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, proposed: ClusterId | None, candidate: ClusterId,
                       basis: Published | None) -> None:
        """CAS `candidate` over `basis` (the value the decision to put it was made on)
        until it is won, adopted over, no longer needed, or MAX_CAS_ROUNDS were lost.
        `proposed` is the adapter's proposal (None: the held version, put because etcd
        was behind). The CAS names `basis`, never a value seen later: if etcd changed
        since the decision, the CAS fails and the decision is taken again."""
        try:
            for _ in range(MAX_CAS_ROUNDS):
                signed = candidate.encode()
                if await self.store.publish(signed, basis):
                    self._live = after_put(basis, signed)
                    self._carry_out(self.adapter.cas_won(candidate, self._loop.time()))
                    return
                basis = self._live = await self.store.current()
                live = None if basis is None else basis.signed
                step, again = self.adapter.etcd_value(live, self._loop.time(), proposed)
                self._carry_out(step)
                if again is None:
                    return
                candidate = again
            raise MercuryError(f"lost {MAX_CAS_ROUNDS} compare-and-swaps in a row on etcd's "
                               "cluster-ID key", ErrorCode.CLUSTER_ID_PUBLISHED_MEANWHILE)
        except MercuryError as exc:
            if proposed is not None:
                self._carry_out(self.adapter.cas_failed(proposed, exc.code, exc.message))
            else:
                _log.warning("cluster_id_not_put", code=exc.code.value, reason=exc.message,
                             effect="etcd holds an older cluster ID; retried on the next "
                                    "change")
        finally:
            if proposed is None:
                self._seeding = False

    async def _watch_versions(self) -> None:
        while True:
            try:
                found, revision = await self.store.read()
                self._seen(found)
                async with self.store.watch(revision + 1) as watch:
                    async for event in watch:
                        self._seen(Published(event.value, event.version)
                                   if event.kind is EventKind.PUT else None)
            except WatchCompactedError:
                continue  # re-read at once: the history we needed is gone
            except MercuryError as exc:
                _log.warning("cluster_id_watch_failed", code=exc.code.value,
                             reason=exc.message, effect="re-read and watched again")
                await asyncio.sleep(self._interval)

    def _seen(self, found: Published | None) -> None:
        """etcd's value now (read or watched): adopt, or put ours if etcd is behind."""
        self._live = found
        step, put = self.adapter.etcd_value(None if found is None else found.signed,
                                            self._loop.time())
        self._carry_out(step)
        if put is not None and not self._seeding:
            self._seeding = True
            self._spawn(self._publish(None, put, found))

    async def _keep_lease(self) -> None:
        """This node's liveness key on a lease, renewed; a lost lease is granted anew."""
        value = str(self.adapter.incarnation).encode()
        while True:
            try:
                await keep_alive(self._etcd, await self._lease_with_key(value))
            except LeaseExpiredError as exc:
                _log.warning("member_lease_lost", reason=exc.message,
                             effect="peers count this node dead until its key is back; "
                                    "granting a new lease")
            except MercuryError as exc:
                _log.warning("member_lease_failed", code=exc.code.value, reason=exc.message,
                             effect="retried every interval")
                await asyncio.sleep(self._interval)

    async def _lease_with_key(self, value: bytes) -> Lease:
        """A new lease holding this node's key. A lease whose put failed is revoked:
        retried every interval, each would otherwise stay granted, empty, for its TTL."""
        lease = self._lease = await grant_lease(self._etcd, self._lease_ttl)
        try:
            await put_on_lease(self._etcd, self._own_key, value, lease)
        except MercuryError:
            self._lease = None
            await self._revoke(lease)
            raise
        return lease

    async def _watch_members(self) -> None:
        """Every node's liveness key: a snapshot, then each put and delete."""
        cut = len(MEMBER_PREFIX)
        while True:
            try:
                found = await read_range(self._etcd, MEMBER_PREFIX, prefix=True)
                present = frozenset(e.key[cut:] for e in found.entries
                                    if 0 < len(e.key) - cut <= MAX_NODE_ID)
                self._carry_out(self.adapter.lease_snapshot(present, self._loop.time()))
                async with EtcdWatch(self._etcd, MEMBER_PREFIX, found.revision + 1,
                                     prefix=True) as watch:
                    async for event in watch:
                        self._member_event(event.key[cut:], event.kind)
            except WatchCompactedError:
                continue  # re-read at once
            except MercuryError as exc:
                _log.warning("member_watch_failed", code=exc.code.value, reason=exc.message,
                             effect="re-read and watched again")
                await asyncio.sleep(self._interval)

    def _member_event(self, node_id: bytes, kind: EventKind) -> None:
        if not 0 < len(node_id) <= MAX_NODE_ID:
            return
        now = self._loop.time()
        if kind is EventKind.PUT:
            self._carry_out(self.adapter.lease_held(node_id, now))
            return
        self._carry_out(self.adapter.lease_lost(node_id, now))
        lease = self._lease
        if node_id == self.adapter.identity.node_id and lease is not None:
            # Our key was deleted while our lease lives (by hand?): put it back.
            value = str(self.adapter.incarnation).encode()
            self._spawn(self._put_again(value, lease))

    async def _put_again(self, value: bytes, lease: Lease) -> None:
        try:
            await put_on_lease(self._etcd, self._own_key, value, lease)
        except MercuryError as exc:
            _log.warning("member_key_not_restored", code=exc.code.value, reason=exc.message)
