"""Intra-cluster liveness: who is alive, who moved, and which public addresses to publish.

The cluster's nodes heartbeat each other (heartbeat.py). This module is one node's view,
driven by received heartbeats and by `tick(now)` with injected time. It reports what
changed as outputs; the node acts on them (routing views, and a new cluster-ID version when
the public address list changes — the same mechanism as a key change, so outside callers
learn it on their next contact).

Rules:
- A heartbeat counts only if the injected verifier accepts it (node key certified by the
  cluster key, signature over the heartbeat), it names our cluster and not ourselves, and
  its (incarnation, seq) is newer than the last one accepted from that node (no replays).
- A higher incarnation means the node restarted (`NodeRestarted`).
- Silent for `suspect_after` intervals: SUSPECT; for `dead_after` intervals: DEAD. Any
  accepted heartbeat makes the node ALIVE again (`NodeRecovered`).
- A heartbeat from a source address other than the recorded one: `AddressChanged`.
- Published list = the public addresses of every node not DEAD (ours included), sorted.
  SUSPECT nodes stay listed so a short loss does not churn cluster-ID versions; clients
  already fail over past a silent node. A change emits `AddressListChanged`.
- At most `max_nodes` peers are tracked; a certified but surplus node is refused.
- With `leases` (a cluster on etcd), a node's liveness is its lease: every node keeps a
  key alive on an etcd lease, and the shell reports the key's loss (`lease_lost`: the lease
  expired, or the node revoked it when stopping) and its return (`lease_held`). Silence
  then only makes a node SUSPECT; DEAD comes from a lost lease, and a node without a lease
  stays DEAD whatever it sends until its key is back. Without etcd, heartbeats alone decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import Endpoint, EndpointKey, endpoint_key
from mercury_rt.core.membership.heartbeat import Heartbeat, HeartbeatVerifier, PublicAddress
from mercury_rt.core.routing import NodeInfo


class NodeStatus(Enum):
    """Liveness of a peer as this node sees it."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """Heartbeat interval (seconds) and how many missed intervals mean suspect / dead."""

    interval: float = 1.0
    suspect_after: int = 3
    dead_after: int = 6
    max_nodes: int = 256
    leases: bool = False
    """DEAD from lost etcd leases (`lease_lost`), not from silence."""

    def __post_init__(self) -> None:
        if self.interval <= 0 or not 1 <= self.suspect_after <= self.dead_after:
            raise ValueError("need interval > 0 and 1 <= suspect_after <= dead_after")
        if self.max_nodes < 1:
            raise ValueError("max_nodes must be >= 1")


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """What we know of one peer."""

    node_id: bytes
    status: NodeStatus
    incarnation: int
    seq: int
    last_heard: float
    source: EndpointKey
    public: tuple[PublicAddress, ...]


@dataclass(frozen=True, slots=True)
class NodeJoined:
    """A certified node we had never heard from."""

    node_id: bytes
    source: EndpointKey


@dataclass(frozen=True, slots=True)
class NodeRestarted:
    """A node's incarnation went up: it restarted (its in-flight work is lost)."""

    node_id: bytes
    incarnation: int


@dataclass(frozen=True, slots=True)
class NodeRecovered:
    """A SUSPECT or DEAD node is heard from again."""

    node_id: bytes


@dataclass(frozen=True, slots=True)
class NodeSuspected:
    """Silent for suspect_after intervals: stop routing to it."""

    node_id: bytes


@dataclass(frozen=True, slots=True)
class NodeDead:
    """Silent for dead_after intervals: its public addresses are unpublished."""

    node_id: bytes


@dataclass(frozen=True, slots=True)
class AddressChanged:
    """The node's heartbeats now come from another source address."""

    node_id: bytes
    old: EndpointKey
    new: EndpointKey


@dataclass(frozen=True, slots=True)
class HeartbeatRejected:
    """A heartbeat not believed; `code` says why (for metrics and debug logs)."""

    code: ErrorCode
    reason: str
    source: EndpointKey


@dataclass(frozen=True, slots=True)
class AddressListChanged:
    """The public inter-cluster address list changed: publish a new cluster-ID version."""

    addresses: tuple[PublicAddress, ...]


MembershipOutput = (NodeJoined | NodeRestarted | NodeRecovered | NodeSuspected | NodeDead
                    | AddressChanged | HeartbeatRejected | AddressListChanged)


class Membership:
    """One node's view of its cluster's members."""

    def __init__(self, cluster: bytes, local_node: bytes, local_public: tuple[PublicAddress, ...],
                 verifier: HeartbeatVerifier, config: MembershipConfig | None = None) -> None:
        self.cluster = cluster
        self.local_node = local_node
        self.config = config or MembershipConfig()
        self._verifier = verifier
        self._local_public = local_public
        self._peers: dict[bytes, PeerRecord] = {}
        self._no_lease: set[bytes] = set()
        """Nodes whose lease key is gone (leases mode): DEAD until it is back."""
        self._published = self._compute_published()

    @property
    def peers(self) -> Mapping[bytes, PeerRecord]:
        """Current records of every peer ever heard from."""
        return dict(self._peers)

    @property
    def published(self) -> tuple[PublicAddress, ...]:
        """The public address list the cluster ID should carry now."""
        return self._published

    def is_alive(self, node_id: bytes) -> bool:
        """True for ourselves and for ALIVE peers (SUSPECT is not routed to)."""
        if node_id == self.local_node:
            return True
        peer = self._peers.get(node_id)
        return peer is not None and peer.status is NodeStatus.ALIVE

    def routing_nodes(self) -> dict[bytes, NodeInfo]:
        """The node table routing.ClusterView needs: liveness and a redirect address each.

        A node's redirect address is its first public address in priority order; a node
        without public addresses can be forwarded to but not redirected to.
        """
        def first(public: tuple[PublicAddress, ...]) -> PublicAddress | None:
            return min(public, key=PublicAddress.sort_key) if public else None

        nodes = {node_id: NodeInfo(node_id, peer.status is NodeStatus.ALIVE, first(peer.public))
                 for node_id, peer in self._peers.items()}
        nodes[self.local_node] = NodeInfo(self.local_node, True, first(self._local_public))
        return nodes

    def is_publisher(self) -> bool:
        """True if this node should mint the new cluster-ID version on AddressListChanged.

        One node must sign each new version, or two nodes could issue different lists under
        the same number. The rule is deterministic from the shared view: the ALIVE node (us
        included) with the smallest node id. During a partition each side has a publisher;
        the higher version wins at callers, and the sides converge when the partition heals.
        """
        alive = [n for n, p in self._peers.items() if p.status is NodeStatus.ALIVE]
        return all(self.local_node < n for n in alive)

    def receive(self, heartbeat: Heartbeat, source: Endpoint,
                now: float) -> list[MembershipOutput]:
        """Account for a decoded heartbeat from `source`; never raises for peer input."""
        where = endpoint_key(source)
        refusal = self._refusal(heartbeat)
        if refusal is not None:
            return [HeartbeatRejected(refusal[0], refusal[1], where)]
        old = self._peers.get(heartbeat.node_id)
        outputs: list[MembershipOutput] = []
        if old is None:
            if len(self._peers) >= self.config.max_nodes:
                return [HeartbeatRejected(ErrorCode.TOO_MANY_NODES,
                                          f"already tracking {self.config.max_nodes} nodes",
                                          where)]
            outputs.append(NodeJoined(heartbeat.node_id, where))
        else:
            stale = (heartbeat.incarnation, heartbeat.seq) <= (old.incarnation, old.seq)
            if stale:
                return [HeartbeatRejected(ErrorCode.STALE_HEARTBEAT,
                                          "incarnation/sequence not newer (replay?)", where)]
            outputs.extend(_changes(old, heartbeat, where))
        status = NodeStatus.ALIVE
        if heartbeat.node_id in self._no_lease:
            status = NodeStatus.DEAD  # heard, but without a lease it is not a member
            outputs = [o for o in outputs if not isinstance(o, NodeRecovered)]
        self._peers[heartbeat.node_id] = PeerRecord(
            heartbeat.node_id, status, heartbeat.incarnation, heartbeat.seq, now,
            where, heartbeat.public)
        return outputs + self._republish()

    def lease_lost(self, node_id: bytes, now: float) -> list[MembershipOutput]:
        """The node's lease key is gone (its lease expired or was revoked): DEAD, whatever
        it still sends, until `lease_held`. Our own id is ignored (the shell renews it)."""
        if node_id == self.local_node:
            return []
        if node_id not in self._no_lease and len(self._no_lease) >= self.config.max_nodes:
            strangers = [n for n in self._no_lease if n not in self._peers]
            if node_id not in self._peers or not strangers:
                return []  # bounded; a known peer's loss displaces an unknown id's
            self._no_lease.discard(strangers[0])
        self._no_lease.add(node_id)
        peer = self._peers.get(node_id)
        if peer is None or peer.status is NodeStatus.DEAD:
            return []
        self._peers[node_id] = replace(peer, status=NodeStatus.DEAD)
        return [NodeDead(node_id), *self._republish()]

    def lease_held(self, node_id: bytes, now: float) -> list[MembershipOutput]:
        """The node's lease key is (back) in etcd: a DEAD node heard from within the
        suspect window is ALIVE again, else SUSPECT until its next heartbeat."""
        self._no_lease.discard(node_id)
        peer = self._peers.get(node_id)
        if peer is None or peer.status is not NodeStatus.DEAD:
            return []
        fresh = now - peer.last_heard < self.config.suspect_after * self.config.interval
        status = NodeStatus.ALIVE if fresh else NodeStatus.SUSPECT
        self._peers[node_id] = replace(peer, status=status)
        outputs: list[MembershipOutput] = [NodeRecovered(node_id)] if fresh \
            else [NodeSuspected(node_id)]
        return outputs + self._republish()

    def tick(self, now: float) -> list[MembershipOutput]:
        """Advance suspicion and death by silence; call at least once per interval."""
        outputs: list[MembershipOutput] = []
        suspect_at = self.config.suspect_after * self.config.interval
        dead_at = self.config.dead_after * self.config.interval
        for node_id, peer in sorted(self._peers.items()):
            silent = now - peer.last_heard
            status = peer.status
            if status is NodeStatus.ALIVE and silent >= suspect_at:
                status = NodeStatus.SUSPECT
                outputs.append(NodeSuspected(node_id))
            if status is NodeStatus.SUSPECT and silent >= dead_at and not self.config.leases:
                status = NodeStatus.DEAD
                outputs.append(NodeDead(node_id))
            if status is not peer.status:
                self._peers[node_id] = replace(peer, status=status)
        return outputs + self._republish()

    def set_local_public(self, addresses: tuple[PublicAddress, ...]) -> list[MembershipOutput]:
        """Our own public addresses changed (reconfiguration or a new interface address)."""
        self._local_public = addresses
        return self._republish()

    def _refusal(self, heartbeat: Heartbeat) -> tuple[ErrorCode, str] | None:
        if heartbeat.cluster != self.cluster:
            return ErrorCode.BAD_HEARTBEAT, "heartbeat from another cluster"
        if heartbeat.node_id == self.local_node:
            return ErrorCode.BAD_HEARTBEAT, "heartbeat claims to be from this node"
        try:
            self._verifier.verify(heartbeat)
        except Exception as exc:
            return (ErrorCode.HEARTBEAT_NOT_CERTIFIED,
                    f"node certificate or signature invalid ({type(exc).__name__})")
        return None

    def _compute_published(self) -> tuple[PublicAddress, ...]:
        addresses = set(self._local_public)
        for peer in self._peers.values():
            if peer.status is not NodeStatus.DEAD:
                addresses.update(peer.public)
        return tuple(sorted(addresses, key=PublicAddress.sort_key))

    def _republish(self) -> list[MembershipOutput]:
        current = self._compute_published()
        if current == self._published:
            return []
        self._published = current
        return [AddressListChanged(current)]


def _changes(old: PeerRecord, heartbeat: Heartbeat,
             where: EndpointKey) -> list[MembershipOutput]:
    """What a fresh heartbeat from a known peer tells us beyond 'still alive'."""
    outputs: list[MembershipOutput] = []
    if heartbeat.incarnation > old.incarnation:
        outputs.append(NodeRestarted(heartbeat.node_id, heartbeat.incarnation))
    if old.status is not NodeStatus.ALIVE:
        outputs.append(NodeRecovered(heartbeat.node_id))
    if where != old.source:
        outputs.append(AddressChanged(heartbeat.node_id, old.source, where))
    return outputs
