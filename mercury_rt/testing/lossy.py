"""Many calls between two simulated clusters over a lossy network, with their ground truth.

Issue 17 item 8: between two real clusters, under 20 % loss each way with 5 % duplication
and reordering, 1.3-1.7 % of calls failed (500 "no listed node answered") and some of them
had run. `run_lossy_calls` is that experiment in the deterministic simulation: the home
cluster's node h1 calls, at a steady rate, carol (mirrored on w1 and w2 of the away
cluster, so the caller fails over between them) and dave (only on w3, so w1 and w2 forward
to it over the intra-cluster path), every call in a transit session, every datagram on
every link under the same `LinkProfile`. It reports what a caller sees (outcomes, latency)
beside what ran where (`Executions`), so a test or benchmark can check that every call
completed within its deadline and ran exactly once. Used by tests/sim/test_loss_sim.py and
bench/bench_loss.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.types import dumps_typed, loads_typed
from mercury_rt.config import OPEN_POLICY
from mercury_rt.core.identity import ServerAddress, issue_cluster_id
from mercury_rt.core.node import MemoryHeldStore, RetryPolicy
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import TransportConfig
from mercury_rt.testing.network import LinkProfile
from mercury_rt.testing.nodes import Executions, SimNode, SimNodeSpec
from mercury_rt.testing.simulation import Simulation
from policy.load import parse_policy

LOSSY = LinkProfile(loss=0.2, duplicate=0.05, reorder=0.05, delay=0.005, jitter=0.01,
                    reorder_delay=0.02)
"""The red team's network: 20 % loss each way, 5 % duplication, 5 % reordering."""
Layout = list[tuple[str, int, tuple[str, ...]]]
"""(node id, SRV priority, entities it mirrors) per node of a cluster."""
HOME: Layout = [("h1", 10, ("alice",))]
AWAY: Layout = [("w1", 10, ("carol",)), ("w2", 10, ("carol",)), ("w3", 20, ("dave",))]
TARGETS = (b"carol", b"dave")


@dataclass
class LossRun:
    """What `run_lossy_calls` saw: per call its outcome and latency, and what ran where."""

    seed: int
    calls: int
    timeout: float
    latencies: dict[str, float] = field(default_factory=dict)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    wrong_replies: list[str] = field(default_factory=list)
    executions: Executions = field(default_factory=Executions)
    retransmissions: int = 0
    datagrams_dropped: int = 0

    @property
    def completed(self) -> int:
        """Calls that got their own echo back."""
        return len(self.latencies) - len(self.failures) - len(self.wrong_replies)

    @property
    def late(self) -> list[str]:
        """Calls that ended after their deadline."""
        return [c for c, t in self.latencies.items() if t > self.timeout]

    @property
    def duplicate_executions(self) -> int:
        """Runs beyond the first, over all calls (on any node)."""
        return sum(len(nodes) - 1 for nodes in self.executions.runs.values())

    @property
    def not_run(self) -> list[str]:
        """Calls that completed although no handler ran them (must be none)."""
        return [c for c in self.latencies
                if c not in self.failures and c not in self.executions.runs]

    def summary(self) -> str:
        """One line for a test's assertion message or a benchmark's output."""
        codes = Counter(code for code, _ in self.failures.values())
        return (f"seed={self.seed} calls={self.calls} completed={self.completed} "
                f"failed={dict(codes)} late={len(self.late)} "
                f"duplicate_executions={self.duplicate_executions} "
                f"retransmissions={self.retransmissions}")


def _cluster(sim: Simulation, prefix: str, layout: Layout, ex: Executions,
             transport: TransportConfig, answer_timeout: float) -> dict[str, SimNode]:
    """One cluster of simulated nodes on `prefix`.1, .2, ...: inter port 7000, intra 7001."""
    master, key = (Ed25519PrivateKey.from_private_bytes(sim.net.rng.randbytes(32))
                   for _ in range(2))  # from the seed too, so a run replays exactly
    hosts = {node: f"{prefix}.{i + 1}" for i, (node, _, _) in enumerate(layout)}
    addresses = [ServerAddress(ip_address(hosts[n]), 7000, prio, 10) for n, prio, _ in layout]
    cluster_id = issue_cluster_id(master, key, addresses)
    infos = {n.encode(): NodeInfo(n.encode(), True, a)
             for (n, _, _), a in zip(layout, addresses, strict=True)}
    mirrors: dict[bytes, set[bytes]] = {}
    for node, _, entities in layout:
        for entity in entities:
            mirrors.setdefault(entity.encode(), set()).add(node.encode())
    intra = {n.encode(): (hosts[n], 7001) for n, _, _ in layout}
    held = RetryPolicy(initial_delay=0.2, factor=2.0, max_delay=1.0, jitter=0.2, ttl=120.0)
    nodes = {}
    for node, _, entities in layout:
        view = ClusterView(node.encode(), 1, infos,
                           {k: frozenset(v) for k, v in mirrors.items()}, {})
        spec = SimNodeSpec(node, key, [cluster_id], (hosts[node], 7000), (hosts[node], 7001),
                           RoutingConfig(), view, intra, parse_policy(OPEN_POLICY, "p"),
                           entities, MemoryHeldStore(), transport, answer_timeout, held)
        nodes[node] = SimNode(sim.net, spec, ex)
    return nodes


def run_lossy_calls(seed: int, calls: int, *, profile: LinkProfile = LOSSY,
                    rate: float = 100.0, timeout: float = 30.0,
                    transport: TransportConfig | None = None,
                    answer_timeout: float | None = None) -> LossRun:
    """Start `calls` calls from h1, `rate` per second, alternately to carol and dave, each
    with deadline `timeout`; run until every one ended. Node settings are the defaults a
    node runs with: `TransportConfig()` and an answer timeout of 2 x its initial RTO."""
    transport = transport or TransportConfig()
    answer = 2 * transport.initial_rto if answer_timeout is None else answer_timeout
    sim = Simulation(seed, profile)
    result = LossRun(seed, calls, timeout)
    ex = result.executions
    home = _cluster(sim, "10.1.0", HOME, ex, transport, answer)["h1"]
    away = _cluster(sim, "10.2.0", AWAY, ex, transport, answer)
    targets = [away["w1"].eid_for(entity) for entity in TARGETS]

    def call(i: int) -> None:
        text, started = f"call-{i}", sim.now

        def done(payload: bytes | None, code: int | None, message: str) -> None:
            assert text not in result.latencies, f"{text} ended twice"
            result.latencies[text] = sim.now - started
            if code is not None:
                result.failures[text] = (code, message)
            elif payload is None or loads_typed(str, payload) != text:
                result.wrong_replies.append(text)
        home.call(targets[i % len(targets)], 1, dumps_typed(str, text), caller=b"alice",
                  done=done, timeout=timeout)

    for i in range(calls):
        sim.at(i / rate, partial(call, i))
    sim.run_until(lambda: len(result.latencies) == calls,
                  max_time=calls / rate + 2 * timeout)
    nodes = [home, *away.values()]
    result.retransmissions = sum(n.inter.stats.retransmissions + n.intra.stats.retransmissions
                                 for n in nodes)
    result.datagrams_dropped = sim.net.dropped
    return result
