"""A seeded, socket-free cluster of NodeMembership adapters for membership tests.

Each node is a real NodeCore with real keys, seal and cluster ID; `World.step()` advances
a fake clock by one interval, lets every running node heartbeat and tick, and delivers
every resulting message (and the messages those produce) to its addressee by intra
address, in order. Messages to a stopped node, or on a cut link, are lost.
"""

from __future__ import annotations

import random
from collections import deque
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import ClusterId, ServerAddress, issue_cluster_id
from mercury_rt.core.membership import MembershipConfig, NodeIdentity
from mercury_rt.core.node import (
    MembershipEvent,
    MembershipSettings,
    MembershipStep,
    NodeCore,
    NodeMembership,
)
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import Addr
from policy.load import parse_policy

POLICY = parse_policy("version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n",
                      "p.yaml")
CONFIG = MembershipConfig(interval=1.0, suspect_after=3, dead_after=6)


def make_core(node_id: bytes, cluster_id: ClusterId, cluster_key: Ed25519PrivateKey,
              nodes: dict[bytes, NodeInfo], intra: dict[bytes, Addr],
              mirrors: dict[bytes, frozenset[bytes]] | None = None,
              seed: int = 0) -> NodeCore:
    """A node core as NodeRuntime builds it, without sockets."""
    view = ClusterView(node_id, cluster_id.version, dict(nodes), mirrors or {}, {})
    return NodeCore.for_cluster([cluster_id], cluster_key, POLICY, view, dict(intra),
                                routing=RoutingConfig(), spent=MemorySpentStore(1000),
                                seal_prefix=random.Random(seed).randbytes(4))


class World:
    """Nodes n0..n{count-1}: inter 192.0.2.i:7000, intra 10.0.0.i:7100."""

    def __init__(self, count: int, config: MembershipConfig = CONFIG) -> None:
        self.config = config
        self.master = Ed25519PrivateKey.generate()
        self.cluster_key = Ed25519PrivateKey.generate()
        self.names = [f"n{i}".encode() for i in range(count)]
        self.inter = {n: (f"192.0.2.{i + 1}", 7000) for i, n in enumerate(self.names)}
        self.intra = {n: (f"10.0.0.{i + 1}", 7100) for i, n in enumerate(self.names)}
        self.cluster_id = issue_cluster_id(self.master, self.cluster_key, [
            ServerAddress(ip_address(h), p, 10, 10) for h, p in self.inter.values()])
        self.nodes: dict[bytes, NodeMembership] = {}
        self.events: dict[bytes, list[MembershipEvent]] = {}
        self.cut: set[frozenset[bytes]] = set()
        self.now = 0.0
        self._incarnation = 0
        for name in self.names:
            self.start(name)

    def start(self, name: bytes, cluster_id: ClusterId | None = None) -> NodeMembership:
        """(Re)start a node with a higher incarnation at its current addresses."""
        self._incarnation += 1
        configured = {n: NodeInfo(n, True, None) for n in self.names}
        core = make_core(name, cluster_id or self.cluster_id, self.cluster_key, configured,
                         self.intra, seed=self._incarnation)
        identity = NodeIdentity.issue(name, Ed25519PrivateKey.generate(), self.cluster_key,
                                      self.cluster_id.master_hash)
        node = NodeMembership(core, identity, self.cluster_key, inter_address=self.inter[name],
                              intra_address=self.intra[name],
                              settings=MembershipSettings(self.config),
                              incarnation=self._incarnation, now=self.now)
        self.nodes[name] = node
        self.events[name] = []
        return node

    def stop(self, name: bytes) -> None:
        """The node stops: it neither sends nor receives."""
        self.nodes.pop(name)

    def step(self, count: int = 1) -> None:
        """Advance `count` intervals; every running node heartbeats and ticks each time."""
        for _ in range(count):
            self.now += self.config.interval
            for name in sorted(self.nodes):
                node = self.nodes.get(name)
                if node is not None:
                    self.deliver(name, node.heartbeat() + node.tick(self.now))

    def deliver(self, sender: bytes, step: MembershipStep) -> None:
        """Carry out `step` and everything it causes, in order."""
        queue = deque([(sender, step)])
        while queue:
            source, current = queue.popleft()
            self.events.setdefault(source, []).extend(current.events)
            for out in current.sends:
                target = self._node_at(out.address)
                if target is None or frozenset((source, target)) in self.cut:
                    continue
                result = self.nodes[target].receive(out.payload, self.intra[source], self.now)
                assert result is not None, "membership messages are always consumed"
                queue.append((target, result))

    def version(self, name: bytes) -> int:
        return self.nodes[name].core.state.cluster_id.version

    def alive_in_view(self, observer: bytes, node: bytes) -> bool:
        return self.nodes[observer].core.state.view.nodes[node].alive

    def _node_at(self, address: Addr) -> bytes | None:
        for name, addr in self.intra.items():
            if addr == address and name in self.nodes:
                return name
        return None
