"""Draining a node: leave the cluster ID, turn new callers away, finish, hand on, exit.

The order is what lets a node leave under load with no failed call (docs/operator-guide.md,
"Draining a node"; docs/protocol.md 6.11):

1. Unpublish: the node stops announcing its public addresses (membership's heartbeats go
   on), so the cluster's publisher mints a cluster-ID version without it. The node keeps
   serving meanwhile, and every reply to a caller holding an older version bundles the new
   one, so callers stop choosing this node before it turns anyone away. Bounded: a node
   with no other live node to take over (or whose peers cannot publish) goes on after
   `unpublish_timeout`.
2. Refuse: requests from the network are answered NODE_DRAINING (516, node-local): the
   caller moves to its next address at once, nothing ran here.
3. Finish: the handlers in flight run to their end (the endpoints' drain).
4. Hand on: one last delivery attempt for every held one-way message; what is still
   pending stays in the durable held store and is retried when the node starts again
   (kept, not passed to another node: the sender's message status is answered here, and
   the target's run-once store makes the later retry harmless).
5. Linger for `linger` seconds still answering NODE_DRAINING, so a caller that chose this
   node just before learning the new version is told to move on instead of timing out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from mercury_rt.aio.endpoint import TransportEndpoint
from mercury_rt.aio.held_pump import HeldPump
from mercury_rt.aio.membership_service import MembershipService
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.node import NodeCore

_log = structlog.get_logger("mercury_rt.node")


@dataclass(frozen=True, slots=True)
class DrainSettings:
    """Bounds of each drain phase, in seconds (None: from the membership interval)."""

    unpublish_timeout: float | None = None
    """Default: (settle_intervals + 4) membership intervals, time for a peer's heartbeat,
    the publisher's settle wait and the announcement."""
    held_timeout: float = 5.0
    linger: float | None = None
    """Default: the node's answer timeout (callers give up on a silent node after it)."""


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What a drain achieved (logged, and returned to `node drain` callers in-process)."""

    unpublished: bool
    cluster_id_version: int
    held_pending: int


@dataclass(frozen=True, slots=True)
class DrainParts:
    """The pieces of a running node a drain acts on."""

    core: NodeCore
    membership: MembershipService | None
    endpoints: tuple[TransportEndpoint, ...]
    held: HeldPump
    answer_timeout: float


async def drain_node(parts: DrainParts, settings: DrainSettings,
                     stop: Callable[[], Awaitable[None]]) -> DrainReport:
    """Run phases 1-5 (module docstring), then `stop` the node."""
    unpublished = await _unpublish(parts, settings)
    parts.core.draining = True
    _log.info("node_draining", unpublished=unpublished,
              cluster_id_version=parts.core.state.cluster_id.version)
    for endpoint in parts.endpoints:
        await endpoint.drain()
    pending = await parts.held.flush(settings.held_timeout)
    if pending:
        _log.warning("held_messages_kept", pending=pending,
                     effect="retried when this node starts again")
    await asyncio.sleep(settings.linger if settings.linger is not None
                        else parts.answer_timeout)
    report = DrainReport(unpublished, parts.core.state.cluster_id.version, pending)
    await stop()
    _log.info("node_drained", unpublished=report.unpublished,
              cluster_id_version=report.cluster_id_version, held_pending=pending)
    return report


async def _unpublish(parts: DrainParts, settings: DrainSettings) -> bool:
    """Phase 1: True once the cluster ID this node holds no longer lists it (at once if
    it never did); False if that did not happen within the bound or cannot happen."""
    service = parts.membership
    if service is None:
        return False
    own = {(str(a.host), a.port) for a in service.adapter.own_public}
    service.drain()
    if not _lists(parts.core.state.cluster_id, own):
        return True
    if not service.adapter.membership.published:
        _log.warning("drain_not_unpublished", reason="no other live node publishes "
                     "addresses; callers move on when this node stops answering")
        return False
    config = service.adapter.config
    timeout = settings.unpublish_timeout if settings.unpublish_timeout is not None \
        else (service.adapter.settings.settle_intervals + 4) * config.interval
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _lists(parts.core.state.cluster_id, own):
        if loop.time() >= deadline:
            _log.warning("drain_not_unpublished", waited=timeout,
                         reason="no cluster-ID version without this node arrived in time")
            return False
        await asyncio.sleep(config.interval / 4)
    return True


def _lists(cluster_id: ClusterId, own: Iterable[tuple[str, int]]) -> bool:
    listed = {(str(a.host), a.port) for a in cluster_id.addresses}
    return any(address in listed for address in own)
