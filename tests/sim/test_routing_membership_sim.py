"""Seeded simulation: five nodes heartbeat; nodes crash, restart, move and get partitioned.

No sockets and no real time: a FakeClock and an event heap drive every node's Membership,
and a seeded rng decides datagram loss and delay, so any failure replays from its seed.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from mercury_rt.core.membership import (
    AddressChanged,
    AddressListChanged,
    Membership,
    MembershipConfig,
    MembershipOutput,
    NodeDead,
    NodeRestarted,
    PublicAddress,
    decode_heartbeat,
)
from tests.routing_membership_support import CLUSTER, FakeVerifier, beat, pub
from tests.routing_support import Addr, addr

NAMES = [b"A", b"B", b"C", b"D", b"E"]
CONFIG = MembershipConfig(interval=1.0, suspect_after=3, dead_after=6)


class FakeClock:
    """Time that moves only when the simulation says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance_to(self, when: float) -> None:
        assert when >= self.now
        self.now = when


@dataclass
class SimNode:
    name: bytes
    source: Addr
    public: tuple[PublicAddress, ...]
    membership: Membership
    up: bool = True
    incarnation: int = 1
    seq: int = 0
    log: list[tuple[float, MembershipOutput]] = field(default_factory=list)


class World:
    """Nodes, a lossy network with partitions, and a timeline."""

    def __init__(self, seed: int, loss: float = 0.05) -> None:
        self.clock = FakeClock()
        self.rng = random.Random(seed)
        self.loss = loss
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.counter = itertools.count()
        self.partition: tuple[set[bytes], set[bytes]] | None = None
        self.nodes = {n: self._make(n, i) for i, n in enumerate(NAMES)}
        for node in self.nodes.values():
            self.at(self.rng.random(), lambda node=node: self._heartbeat(node))
            self.at(0.25, lambda node=node: self._tick(node))

    def _make(self, name: bytes, index: int) -> SimNode:
        public = (pub(f"192.0.2.{index + 1}"),)
        membership = Membership(CLUSTER, name, public, FakeVerifier(), CONFIG)
        return SimNode(name, addr(f"10.0.0.{index + 1}", 7100), public, membership)

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.heap, (when, next(self.counter), action))

    def run_until(self, end: float) -> None:
        while self.heap and self.heap[0][0] <= end:
            when, _, action = heapq.heappop(self.heap)
            self.clock.advance_to(when)
            action()
        self.clock.advance_to(end)

    def _blocked(self, a: bytes, b: bytes) -> bool:
        if self.partition is None:
            return False
        left, right = self.partition
        return (a in left) != (b in left) and (a in left | right) and (b in left | right)

    def _heartbeat(self, node: SimNode) -> None:
        if node.up:
            node.seq += 1
            hb = beat(node.name, node.incarnation, node.seq, node.public)
            wire = hb.encode()
            for peer in self.nodes.values():
                if peer is node or self._blocked(node.name, peer.name):
                    continue
                if self.rng.random() < self.loss:
                    continue
                delay = self.rng.uniform(0.001, 0.2)
                self.at(self.clock.now + delay,
                        lambda peer=peer, source=node.source: self._deliver(peer, wire, source))
        self.at(self.clock.now + CONFIG.interval, lambda: self._heartbeat(node))

    def _deliver(self, peer: SimNode, wire: bytes, source: Addr) -> None:
        if peer.up:
            outputs = peer.membership.receive(decode_heartbeat(wire), source, self.clock.now)
            peer.log.extend((self.clock.now, o) for o in outputs)

    def _tick(self, node: SimNode) -> None:
        if node.up:
            node.log.extend((self.clock.now, o) for o in node.membership.tick(self.clock.now))
        self.at(self.clock.now + 0.25, lambda: self._tick(node))

    def crash(self, name: bytes) -> None:
        self.nodes[name].up = False

    def restart(self, name: bytes) -> None:
        """A restarted process: new incarnation, sequence from 0, fresh (empty) view."""
        node = self.nodes[name]
        node.up, node.incarnation, node.seq = True, node.incarnation + 1, 0
        node.membership = Membership(CLUSTER, name, node.public, FakeVerifier(), CONFIG)

    def change_public(self, name: bytes, public: tuple[PublicAddress, ...]) -> None:
        """The node's operator reconfigures its public address; its own view learns first."""
        node = self.nodes[name]
        node.public = public
        node.log.extend((self.clock.now, o) for o in node.membership.set_local_public(public))

    def move(self, name: bytes, source: Addr) -> None:
        self.nodes[name].source = source

    def events(self, observer: bytes, kind: type, subject: bytes | None = None,
               start: float = 0.0, end: float = 1e9) -> list[tuple[float, MembershipOutput]]:
        return [(t, o) for t, o in self.nodes[observer].log
                if isinstance(o, kind) and start <= t <= end
                and (subject is None or getattr(o, "node_id", None) == subject)]


def scenario(seed: int) -> World:
    world = World(seed)
    world.at(10.0, lambda: world.crash(b"C"))
    world.at(30.0, lambda: world.restart(b"C"))
    world.at(40.0, lambda: world.move(b"D", addr("10.0.9.4", 7100)))
    world.at(50.0, lambda: world.change_public(b"E", (pub("198.51.100.5"),)))

    def split() -> None:
        world.partition = ({b"A", b"B"}, {b"C", b"D", b"E"})

    world.at(60.0, split)
    world.at(75.0, lambda: setattr(world, "partition", None))
    world.run_until(100.0)
    return world


def test_crash_detected_within_bound_and_no_false_deaths() -> None:
    """Everyone declares C dead within dead_after + 2 intervals of the crash, and only C."""
    world = scenario(seed=1)
    for name in (b"A", b"B", b"D", b"E"):
        deaths = world.events(name, NodeDead, start=0.0, end=59.0)
        assert [o.node_id for _, o in deaths] == [b"C"], name  # type: ignore[attr-defined]
        assert 10.0 < deaths[0][0] <= 10.0 + 6 + 2


def test_restart_and_address_change_detected_by_all() -> None:
    """C's restart and D's new source address reach every other live node promptly."""
    world = scenario(seed=1)
    for name in (b"A", b"B", b"E"):
        [(t_restart, _)] = world.events(name, NodeRestarted, b"C")
        assert 30.0 <= t_restart <= 32.5
        moves = world.events(name, AddressChanged, b"D", start=40.0, end=59.0)
        assert len(moves) == 1 and moves[0][0] <= 42.5


def test_partition_kills_the_other_side_then_heals() -> None:
    """During a partition each side declares the other dead; afterwards all recover."""
    world = scenario(seed=1)
    dead_for_a = {o.node_id for _, o in world.events(b"A", NodeDead, start=60.0, end=75.0)}
    assert dead_for_a == {b"C", b"D", b"E"}  # type: ignore[attr-defined]
    for node in world.nodes.values():
        assert all(node.membership.is_alive(n) for n in NAMES), node.name


def test_published_list_follows_membership_and_converges() -> None:
    """C's death unpublished its address; at the end every node publishes the same list."""
    world = scenario(seed=1)
    lists = world.events(b"A", AddressListChanged, start=10.0, end=29.0)
    assert lists and pub("192.0.2.3") not in lists[-1][1].addresses  # type: ignore[attr-defined]
    expected = tuple(sorted({a for n in world.nodes.values() for a in n.public},
                            key=PublicAddress.sort_key))
    assert pub("198.51.100.5") in expected and pub("192.0.2.5") not in expected
    for node in world.nodes.values():
        assert node.membership.published == expected, node.name


def test_same_seed_replays_exactly() -> None:
    """The simulation is deterministic: same seed, same event logs."""
    a, b = scenario(seed=7), scenario(seed=7)
    assert [n.log for n in a.nodes.values()] == [n.log for n in b.nodes.values()]


def test_many_seeds_keep_the_safety_properties() -> None:
    """Across seeds: crash always detected in bound; nobody alive is declared dead."""
    for seed in range(2, 8):
        world = scenario(seed)
        for name in (b"A", b"B", b"D", b"E"):
            deaths = world.events(name, NodeDead, end=59.0)
            assert {o.node_id for _, o in deaths} == {b"C"}, (seed, name)  # type: ignore[attr-defined]
