"""The membership shell of a node: a heartbeat timer and one-way sends, nothing else.

Every interval it asks the adapter (core/node/membership.py) for this node's heartbeat and
for what the passage of time changed, and sends what it is told to, one-way over the
intra-cluster endpoint. Membership messages that arrive are handed to the adapter; the
node core sees only the resulting views and cluster-ID versions. Every cluster ID the node
holds (at start, and each one it publishes or adopts) goes to the version sink, if any,
before any announcement of it is sent (core/identity/live.py `VersionSink`). Sends to a silent peer
give up after `suspect_after` intervals, so at most a few are ever in flight per peer.
With etcd (a `replication:` section) new versions go out by compare-and-swap and are
learnt by watching etcd's cluster-ID key (aio/etcd_membership.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import MercuryError
from mercury_rt.aio.endpoint import CallError, TransportEndpoint
from mercury_rt.aio.etcd_membership import EtcdMembership
from mercury_rt.aio.task_stop import stop_tasks
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.identity.live import VersionSink
from mercury_rt.core.membership import HeartbeatRejected, NodeIdentity
from mercury_rt.core.node import (
    AnnouncementRejected,
    ClusterIdAdopted,
    ClusterIdLearned,
    ClusterIdPublished,
    MembershipSettings,
    MembershipStep,
    NodeCore,
    NodeMembership,
)
from mercury_rt.core.transport import Addr
from tungsten.etcd_store import EtcdState

_log = structlog.get_logger("mercury_rt.membership")

STOP_TIMEOUT = 2.0
"""Seconds a stop waits for the heartbeat loop and the sends in flight to end."""


class MembershipService:
    """Runs one node's membership. `start()` after the endpoints are bound; `await stop()`."""

    def __init__(self, core: NodeCore, intra: TransportEndpoint, cluster_key: Ed25519PrivateKey,
                 settings: MembershipSettings, inter_address: Addr,
                 on_cluster_id: Callable[[], None] | None = None,
                 sink: VersionSink | None = None, etcd: EtcdState | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        identity = settings.identity or NodeIdentity.issue(
            core.state.view.local_node, Ed25519PrivateKey.generate(), cluster_key,
            core.master_hash)
        incarnation = settings.incarnation if settings.incarnation is not None \
            else time.time_ns()  # grows across restarts without stored state
        self.adapter = NodeMembership(core, identity, cluster_key, inter_address=inter_address,
                                      settings=settings, incarnation=incarnation,
                                      now=self._loop.time(),
                                      intra_address=intra.local_address)
        self._intra = intra
        self._on_cluster_id = on_cluster_id
        self._sink = sink
        self._recorded: ClusterId | None = None
        self._failed: ClusterId | None = None
        self._retry_at = 0.0
        self.sink_failures = 0
        self._interval = settings.config.interval
        self._send_timeout = max(settings.config.suspect_after * self._interval, 0.01)
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self.send_failures = 0
        self.etcd = None if etcd is None else EtcdMembership(
            self.adapter, etcd, self._carry_out, self._interval,
            leases=settings.config.leases, lease_ttl=settings.lease_ttl)
        """Cluster-ID versions by CAS on etcd and its watch, if replicated."""

    def start(self) -> None:
        """Start the heartbeat timer (the first heartbeat goes out at once)."""
        if self._task is None:
            self._record()
            self._task = self._loop.create_task(self._run())
            if self.etcd is not None:
                self.etcd.start()

    async def stop(self) -> None:
        """Stop heartbeating and abandon sends in flight."""
        if self.etcd is not None:
            await self.etcd.stop()
        tasks = [t for t in (self._task, *self._sends) if t is not None]
        self._task = None
        await stop_tasks(tasks, STOP_TIMEOUT, _log, "heartbeat_stop_abandoned")

    def drain(self) -> None:
        """Stop announcing this node's public addresses (a heartbeat saying so goes out
        now); the cluster publishes a cluster-ID version without them."""
        self._carry_out(self.adapter.drain(self._loop.time()))

    def consume(self, payload: bytes, peer: Addr) -> bool:
        """Handle a one-way intra-cluster message if it is a membership message."""
        step = self.adapter.receive(payload, peer, self._loop.time())
        if step is None:
            return False
        self._carry_out(step)
        return True

    async def _run(self) -> None:
        next_at = self._loop.time()
        settled = False
        while True:
            self._carry_out(self.adapter.heartbeat() + self.adapter.tick(self._loop.time()))
            if not settled and self.adapter.warm:
                settled = True  # from now on this node may publish cluster-ID versions
                _log.info("membership_settled", peers=len(self.adapter.membership.peers))
            next_at = max(next_at + self._interval, self._loop.time())
            await asyncio.sleep(next_at - self._loop.time())

    def _carry_out(self, step: MembershipStep) -> None:
        self._record()  # first: the sends below go out only after this returns
        for out in step.sends:
            task = self._loop.create_task(self._send(out.address, out.payload))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        for proposed in step.proposals:
            if self.etcd is not None:
                self.etcd.propose(proposed)
        for event in step.events:
            _log_event(event)
            if isinstance(event, ClusterIdPublished | ClusterIdAdopted | ClusterIdLearned) \
                    and self._on_cluster_id is not None:
                self._on_cluster_id()

    def _record(self) -> None:
        """Persist the cluster ID the node holds now, if it changed. Synchronous (a
        version changes rarely; the write is one small file and an fsync) so it is on
        disk before the node announces it. A failure is logged and retried next time."""
        held = self.adapter.core.state.cluster_id
        if self._sink is None or held is self._recorded:
            return
        if held is self._failed and self._loop.time() < self._retry_at:
            return  # at most one attempt (and one log line) per interval while it fails
        try:
            self._sink.record(held)
        except (MercuryError, OSError) as exc:
            self.sink_failures += 1
            if held is not self._failed:
                _log.error("cluster_id_not_recorded", version=held.version, reason=str(exc),
                           effect="a restart may resume from an older version; retried "
                                  "every interval")
            self._failed, self._retry_at = held, self._loop.time() + self._interval
            return
        self._recorded, self._failed = held, None

    async def _send(self, address: Addr, payload: bytes) -> None:
        try:
            await self._intra.send(address, payload, timeout=self._send_timeout)
        except CallError:
            self.send_failures += 1  # a silent peer: membership notices by itself


def _log_event(event: Any) -> None:
    name = "membership_" + _snake(type(event).__name__)
    fields = {k: _show(getattr(event, k)) for k in event.__slots__}
    if isinstance(event, HeartbeatRejected | AnnouncementRejected):
        _log.debug(name, **fields)
    else:
        _log.info(name, **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _show(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")[:64]
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return value if isinstance(value, int | str | float | None) else str(value)
