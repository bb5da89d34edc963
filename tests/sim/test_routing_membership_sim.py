"""Seeded simulation: five nodes heartbeat; nodes crash, restart, move and get partitioned.

No sockets and no real time: the shared `Simulation` (one network, one fake clock) carries
every node's heartbeats and wakes its Membership, and its seed decides datagram loss and
delay, so any failure replays from its seed. The nodes are membership-only hosts.
"""

from __future__ import annotations

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
from mercury_rt.core.transport import Addr
from mercury_rt.testing import LinkProfile, Simulation
from tests.routing_membership_support import CLUSTER, FakeVerifier, beat, pub
from tests.routing_support import addr

NAMES = [b"A", b"B", b"C", b"D", b"E"]
CONFIG = MembershipConfig(interval=1.0, suspect_after=3, dead_after=6)
NETWORK = LinkProfile(loss=0.05, delay=0.001, jitter=0.199)
TICK = 0.25


@dataclass
class MembershipHost:
    """A membership-only host: heartbeats every interval, ticks every TICK seconds."""

    name: bytes
    source: Addr
    public: tuple[PublicAddress, ...]
    membership: Membership
    peers: list[MembershipHost]
    next_beat: float
    next_tick: float = TICK
    incarnation: int = 1
    seq: int = 0
    log: list[tuple[float, MembershipOutput]] = field(default_factory=list)
    outbox: list[tuple[bytes, Addr]] = field(default_factory=list)

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        source = addr(*peer)
        self.log.extend((now, o) for o in self.membership.receive(decode_heartbeat(data), source,
                                                                  now))

    def handle_timer(self, now: float) -> None:
        if self.next_beat <= now:
            self.next_beat += CONFIG.interval
            self.seq += 1
            wire = beat(self.name, self.incarnation, self.seq, self.public).encode()
            self.outbox.extend((wire, peer.source) for peer in self.peers if peer is not self)
        if self.next_tick <= now:
            self.next_tick += TICK
            self.log.extend((now, o) for o in self.membership.tick(now))

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return min(self.next_beat, self.next_tick)

    def catch_up(self, now: float) -> None:
        """Timers missed while down are skipped, keeping the node's rhythm."""
        while self.next_beat < now:
            self.next_beat += CONFIG.interval
        while self.next_tick < now:
            self.next_tick += TICK


class World:
    """Five membership-only hosts on one Simulation, and a timeline of faults."""

    def __init__(self, seed: int) -> None:
        self.sim = Simulation(seed, NETWORK)
        peers: list[MembershipHost] = []
        self.nodes = {n: self._make(n, i, peers) for i, n in enumerate(NAMES)}
        peers.extend(self.nodes.values())
        for node in peers:
            self.sim.add(node.source, node)

    def _make(self, name: bytes, index: int, peers: list[MembershipHost]) -> MembershipHost:
        public = (pub(f"192.0.2.{index + 1}"),)
        membership = Membership(CLUSTER, name, public, FakeVerifier(), CONFIG)
        return MembershipHost(name, (f"10.0.0.{index + 1}", 7100), public, membership, peers,
                              next_beat=self.sim.net.rng.random())

    def at(self, when: float, action: Callable[[], object]) -> None:
        self.sim.at(when, action)

    def run_until(self, end: float) -> None:
        self.sim.run_to(end)

    def crash(self, name: bytes) -> None:
        self.sim.crash(self.nodes[name].source)

    def restart(self, name: bytes) -> None:
        """A restarted process: new incarnation, sequence from 0, fresh (empty) view."""
        node = self.nodes[name]
        node.incarnation, node.seq = node.incarnation + 1, 0
        node.membership = Membership(CLUSTER, name, node.public, FakeVerifier(), CONFIG)
        node.catch_up(self.sim.now)
        self.sim.revive(node.source)

    def change_public(self, name: bytes, public: tuple[PublicAddress, ...]) -> None:
        """The node's operator reconfigures its public address; its own view learns first."""
        node = self.nodes[name]
        node.public = public
        node.log.extend((self.sim.now, o) for o in node.membership.set_local_public(public))

    def move(self, name: bytes, source: Addr) -> None:
        node = self.nodes[name]
        self.sim.move(node.source, source)
        node.source = source

    def split(self, left: set[bytes], right: set[bytes]) -> None:
        self.sim.split([self.nodes[n].source for n in left],
                       [self.nodes[n].source for n in right])

    def events(self, observer: bytes, kind: type, subject: bytes | None = None,
               start: float = 0.0, end: float = 1e9) -> list[tuple[float, MembershipOutput]]:
        return [(t, o) for t, o in self.nodes[observer].log
                if isinstance(o, kind) and start <= t <= end
                and (subject is None or getattr(o, "node_id", None) == subject)]


def scenario(seed: int) -> World:
    world = World(seed)
    world.at(10.0, lambda: world.crash(b"C"))
    world.at(30.0, lambda: world.restart(b"C"))
    world.at(40.0, lambda: world.move(b"D", ("10.0.9.4", 7100)))
    world.at(50.0, lambda: world.change_public(b"E", (pub("198.51.100.5"),)))

    world.at(60.0, lambda: world.split({b"A", b"B"}, {b"C", b"D", b"E"}))
    world.at(75.0, world.sim.heal)
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
