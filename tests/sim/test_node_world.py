"""Two clusters, five nodes, one seeded simulated network: crashes, restarts, an address
change and a partition, while callers keep calling and sending. No sockets."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.types import dumps_typed, loads_typed
from mercury_rt.core.identity import ClusterId, ServerAddress, change_addresses, issue_cluster_id
from mercury_rt.core.node import MemoryHeldStore, RetryPolicy
from mercury_rt.core.routing import ClusterView, NodeInfo, NotMirroredChoice, RoutingConfig
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import OPEN_POLICY
from mercury_rt.testing import Executions, LinkProfile, SimNetwork, SimNode, SimNodeSpec
from policy.load import parse_policy

TRANSPORT = TransportConfig(initial_rto=0.05, min_rto=0.02, max_rto=1.0, record_slack=10.0,
                            reassembly_timeout=5.0)
HELD = RetryPolicy(initial_delay=0.2, factor=2.0, max_delay=1.0, jitter=0.2, ttl=120.0)
NETWORK = LinkProfile(loss=0.03, duplicate=0.02, reorder=0.05, delay=0.001, jitter=0.002)


class Scheduler:
    """Runs callbacks at simulated times (a sans-IO endpoint the network wakes)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), action))

    def receive_datagram(self, data: bytes, peer: tuple[str, int], now: float) -> None:
        return

    def handle_timer(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            heapq.heappop(self._queue)[2]()

    def datagrams_to_send(self) -> list[tuple[bytes, tuple[str, int]]]:
        return []

    def get_timer(self) -> float | None:
        return self._queue[0][0] if self._queue else None


@dataclass
class Cluster:
    name: str
    key: Ed25519PrivateKey
    cluster_id: ClusterId
    specs: dict[str, SimNodeSpec] = field(default_factory=dict)
    nodes: dict[str, SimNode] = field(default_factory=dict)


def _build(net: SimNetwork, name: str, prefix: str,
           layout: list[tuple[str, int, tuple[str, ...]]], ex: Executions,
           routing: RoutingConfig | None = None) -> Cluster:
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    hosts = {node: f"{prefix}.{i + 1}" for i, (node, _, _) in enumerate(layout)}
    addresses = [ServerAddress(ip_address(hosts[n]), 7000, prio, 10) for n, prio, _ in layout]
    cid = issue_cluster_id(master, key, addresses)
    nodes = {n.encode(): NodeInfo(n.encode(), True, a)
             for (n, _, _), a in zip(layout, addresses, strict=True)}
    mirrors: dict[bytes, set[bytes]] = {}
    for node, _, entities in layout:
        for entity in entities:
            mirrors.setdefault(entity.encode(), set()).add(node.encode())
    intra = {n.encode(): (hosts[n], 7001) for n, _, _ in layout}
    cluster = Cluster(name, key, cid)
    for node, _, entities in layout:
        view = ClusterView(node.encode(), 1, nodes, {k: frozenset(v) for k, v in mirrors.items()},
                           {})
        spec = SimNodeSpec(node, key, [cid], (hosts[node], 7000), (hosts[node], 7001),
                           routing or RoutingConfig(), view, intra,
                           parse_policy(OPEN_POLICY, "p"),
                           entities, MemoryHeldStore(), TRANSPORT, 0.15, HELD)
        cluster.specs[node] = spec
        cluster.nodes[node] = SimNode(net, spec, ex)
    return cluster


@dataclass
class World:
    net: SimNetwork
    ex: Executions
    home: Cluster
    away: Cluster
    crashed_at: dict[str, list[float]] = field(default_factory=dict)

    def crash(self, cluster: Cluster, node: str) -> None:
        spec = cluster.specs[node]
        self.net.crash(spec.inter)
        self.net.crash(spec.intra)
        self.crashed_at.setdefault(node, []).append(self.net.clock.now)

    def restart(self, cluster: Cluster, node: str) -> None:
        spec = cluster.specs[node]
        spec.cluster_ids = [cluster.cluster_id]
        self.net.down.discard(spec.inter)
        self.net.down.discard(spec.intra)
        cluster.nodes[node] = SimNode(self.net, spec, self.ex)

    def move(self, cluster: Cluster, node: str, new_host: str) -> None:
        """The node comes back at a new address; the cluster publishes a new cluster ID."""
        self.crash(cluster, node)
        spec = cluster.specs[node]
        addresses = tuple(replace(a, host=ip_address(new_host))
                          if str(a.host) == spec.inter[0] else a
                          for a in cluster.cluster_id.addresses)
        cluster.cluster_id = change_addresses(cluster.cluster_id, cluster.key, addresses)
        spec.inter = (new_host, 7000)
        for other in cluster.nodes.values():
            if other.node_id != node:
                other.core.set_cluster_id(cluster.cluster_id)
        self.restart(cluster, node)


def _world(seed: int, away_routing: NotMirroredChoice) -> World:
    net = SimNetwork(seed, NETWORK)
    ex = Executions()
    home = _build(net, "home", "10.1.0", [("h1", 10, ("alice",)), ("h2", 10, ("bob",))], ex)
    away = _build(net, "away", "10.2.0", [("w1", 10, ("carol",)), ("w2", 10, ("carol",)),
                                          ("w3", 20, ("carol", "dave"))], ex,
                  RoutingConfig(away_routing))
    return World(net, ex, home, away)


FORWARD, REMOTE = NotMirroredChoice.FORWARD, NotMirroredChoice.RUN_WITH_REMOTE_STATE


@pytest.mark.parametrize(("seed", "away_routing"), [
    (1, FORWARD), (2, FORWARD), (3, FORWARD), (1, REMOTE), (2, REMOTE)])
def test_every_request_succeeds_once_or_fails_clearly_and_held_notes_arrive_once(
        seed: int, away_routing: NotMirroredChoice) -> None:
    """dave lives only on w3: w1 and w2 forward requests for it there, or (remote-state)
    run them themselves with dave's state on w3, which records each run as it commits."""
    world = _world(seed, away_routing)
    net, ex, home, away = world.net, world.ex, world.home, world.away
    sched = Scheduler()
    net.add(("scheduler", 0), sched)
    targets = {"carol": away.nodes["w1"].eid_for(b"carol"),
               "dave": away.nodes["w1"].eid_for(b"dave"),
               "bob": home.nodes["h1"].eid_for(b"bob")}
    outcomes: dict[str, tuple[bytes | None, int | None]] = {}
    notes: dict[str, str] = {}

    def call(text: str, target: str) -> Callable[[], None]:
        def go() -> None:
            def done(payload: bytes | None, code: int | None, _: str) -> None:
                assert text not in outcomes, "a call ended twice"
                outcomes[text] = (payload, code)
            home.nodes["h1"].call(targets[target], 1, dumps_typed(str, text),
                                  caller=b"alice", done=done)
        return go

    def note(text: str) -> Callable[[], None]:
        def go() -> None:
            home.nodes["h1"].send(targets["carol"], dumps_typed(str, text), caller=b"alice",
                                  done=lambda how: notes.__setitem__(text, how))
        return go

    for i in range(240):
        sched.at(0.05 * i, call(f"req-{i}", ("carol", "dave", "bob")[i % 3]))
    sched.at(2.0, lambda: world.crash(away, "w1"))
    sched.at(3.0, lambda: net.partition(home.specs["h1"].inter, away.specs["w2"].inter))
    sched.at(5.0, lambda: world.restart(away, "w1"))
    sched.at(6.0, net.heal)
    sched.at(7.0, lambda: world.move(away, "w3", "10.2.0.33"))
    sched.at(12.5, lambda: [world.crash(away, n) for n in ("w1", "w2", "w3")])
    for i in range(5):
        sched.at(13.0 + 0.1 * i, note(f"note-{i}"))
    sched.at(16.0, lambda: [world.restart(away, n) for n in ("w1", "w2", "w3")])

    def settled() -> bool:
        held = home.nodes["h1"].held
        return (len(outcomes) == 240 and len(notes) == 5 and held.pending_count() == 0
                and sched.get_timer() is None)

    net.run_until(settled, max_time=300)

    failures = Counter(code for _, code in outcomes.values() if code is not None)
    successes = [t for t, (payload, code) in outcomes.items() if code is None]
    assert len(successes) >= 200, f"too few successes: {failures}"
    for text in successes:
        assert loads_typed(str, outcomes[text][0] or b"") == text
    for text, nodes in ex.runs.items():
        assert len(nodes) == len(set(nodes)), f"{text} ran twice on one node: {nodes}"
        if len(nodes) > 1:
            first = nodes[0]
            assert world.crashed_at.get(first), \
                f"{text} ran on {nodes} although {first} never crashed"
    dave_runners = {n for i in range(1, 240, 3) for n in ex.runs.get(f"req-{i}", [])}
    if away_routing is REMOTE:
        assert dave_runners & {"w1", "w2"}, "front nodes ran dave's requests themselves"
    else:
        assert dave_runners == {"w3"}, "forwarded to dave's only mirror"
    delivered = Counter(n for texts in ex.notes.values() for n in texts)
    assert set(notes.values()) == {"held"}, notes
    assert delivered == Counter(f"note-{i}" for i in range(5)), delivered
    assert home.nodes["h1"].planner.known[away.cluster_id.master_hash].version == 2
