"""A socket-free cluster of NodeMembership adapters for membership tests, in lockstep.

Each node is a real NodeCore with real keys, seal and cluster ID, at its intra address on
the shared `Simulation` with a lossless, zero-delay network. `World.step()` advances the
clock by one interval, lets every running node heartbeat and tick in name order, and
settles the network after each, so every resulting message (and the messages those
produce) reaches its addressee in the order it was sent. Messages to a stopped node, or on
a cut link, are lost.
"""

from __future__ import annotations

import random
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.config import OPEN_POLICY
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
from mercury_rt.testing import LinkProfile, Simulation
from policy.load import parse_policy

POLICY = parse_policy(OPEN_POLICY, "p.yaml")
CONFIG = MembershipConfig(interval=1.0, suspect_after=3, dead_after=6)
LOCKSTEP = LinkProfile(delay=0.0)


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
        self.sim = Simulation(0, LOCKSTEP)
        self._ports: dict[bytes, _Port] = {}
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
        self._place(name)
        return node

    def stop(self, name: bytes) -> None:
        """The node stops: it neither sends nor receives."""
        self.nodes.pop(name)

    def step(self, count: int = 1) -> None:
        """Advance `count` intervals; every running node heartbeats and ticks each time."""
        for _ in range(count):
            self.sim.clock.advance_to(self.now + self.config.interval)
            for name in sorted(self.nodes):
                node = self.nodes.get(name)
                if node is not None:
                    self.deliver(name, node.heartbeat() + node.tick(self.now))

    @property
    def now(self) -> float:
        """The simulation's clock."""
        return self.sim.now

    def deliver(self, sender: bytes, step: MembershipStep) -> None:
        """Carry out `step` and everything it causes, in order."""
        self.carry_out(sender, step)
        self.sim.settle()

    def carry_out(self, name: bytes, step: MembershipStep) -> None:
        """Log `step`'s events and queue its messages on the node's port."""
        self.events.setdefault(name, []).extend(step.events)
        self._ports[name].outbox.extend((out.payload, out.address) for out in step.sends)

    def version(self, name: bytes) -> int:
        return self.nodes[name].core.state.cluster_id.version

    def alive_in_view(self, observer: bytes, node: bytes) -> bool:
        return self.nodes[observer].core.state.view.nodes[node].alive

    def name_at(self, address: Addr) -> bytes | None:
        """The node whose intra address this is."""
        for name, addr in self.intra.items():
            if addr == address:
                return name
        return None

    def _place(self, name: bytes) -> None:
        """Put the node's port at its current intra address (moving it if that changed)."""
        port = self._ports.get(name)
        if port is None:
            port = self._ports[name] = _Port(self, name, self.intra[name])
            self.sim.add(port.address, port)
        elif port.address != self.intra[name]:
            self.sim.move(port.address, self.intra[name])
            port.address = self.intra[name]


class _Port:
    """A node's intra address on the simulated network; drops what its node may not get."""

    def __init__(self, world: World, name: bytes, address: Addr) -> None:
        self.world, self.name, self.address = world, name, address
        self.outbox: list[tuple[bytes, Addr]] = []

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        node = self.world.nodes.get(self.name)
        source = self.world.name_at(peer)
        if node is None or source is None or frozenset((source, self.name)) in self.world.cut:
            return
        result = node.receive(data, peer, now)
        assert result is not None, "membership messages are always consumed"
        self.world.carry_out(self.name, result)

    def handle_timer(self, now: float) -> None:
        """Lockstep: the world drives heartbeats and ticks, not timers."""

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return None
