"""Connections under a hostile network, simulated: 20 % loss, duplication and
reordering; ten connections between two clusters carry 1,000 calls each way, every one
completes and every handler ran once. Each end's traffic goes through the connection
state machine, as the node's handles do."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.types import dumps_typed
from mercury_rt.core.connections import (
    Answered,
    Connection,
    ConnectionField,
    ConnectionForm,
    ConnectionSettings,
    Go,
    Opened,
    Reservation,
    Send,
    opening,
    served,
    step,
)
from mercury_rt.core.identity import ServerAddress, issue_cluster_id
from mercury_rt.core.node import MemoryHeldStore, RetryPolicy
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import OPEN_POLICY
from mercury_rt.testing import Executions, LinkProfile, SimNode, SimNodeSpec, Simulation
from policy.load import parse_policy

HOSTILE = LinkProfile(loss=0.2, duplicate=0.2, reorder=0.2, delay=0.001, jitter=0.003)
TRANSPORT = TransportConfig(initial_rto=0.05, min_rto=0.02, max_rto=0.5, record_slack=30.0,
                            reassembly_timeout=5.0)
CONNECTIONS, CALLS = 10, 100
SETTINGS = ConnectionSettings(idle_timeout=1e9)
ANSWER_TIMEOUT = 10.0
"""Each node has one address, so silence has nowhere to fail over to: a long answer
timeout keeps retransmitting (at 20 % loss each way, 2 s still lost about one call in 1,000)."""


def _node(sim: Simulation, name: str, host: str, entity: str, ex: Executions) -> SimNode:
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    address = ServerAddress(ip_address(host), 7000, 10, 10)
    cid = issue_cluster_id(master, key, [address])
    view = ClusterView(name.encode(), 1, {name.encode(): NodeInfo(name.encode(), True, address)},
                       {entity.encode(): frozenset({name.encode()})}, {})
    spec = SimNodeSpec(name, key, [cid], (host, 7000), (host, 7001), RoutingConfig(), view,
                       {name.encode(): (host, 7001)}, parse_policy(OPEN_POLICY, "p"),
                       (entity,), MemoryHeldStore(), TRANSPORT, ANSWER_TIMEOUT,
                       RetryPolicy(ttl=60.0))
    return SimNode(sim.net, spec, ex)


class End:
    """One end of one connection: its machine, and a chain of calls made one after the
    other (the next when the last is answered)."""

    def __init__(self, node: SimNode, entity: bytes, peer: bytes, conn: Connection,
                 prefix: str, results: dict[str, object]) -> None:
        self.node, self.entity, self.peer, self.conn = node, entity, peer, conn
        self.prefix, self.results, self.next = prefix, results, 0

    def call_next(self) -> None:
        if self.next >= CALLS:
            return
        text = f"{self.prefix}-{self.next}"
        self.next += 1
        payload = dumps_typed(str, text)
        self.conn, outputs = step(self.conn, Send(len(payload), self.node.net.clock.now),
                                  SETTINGS)
        assert outputs == (Go(),)
        field = ConnectionField(ConnectionForm.USE, self.conn.connection_id)

        def done(reply: bytes | None, code: int | None, message: str) -> None:
            self.results[text] = code if code is not None else reply
            self.conn, _ = step(self.conn, Answered(code, len(reply or b""),
                                                    self.node.net.clock.now), SETTINGS)
            self.call_next()
        self.node.call(self.peer, 1, payload, caller=self.entity, done=done, timeout=120.0,
                       connection=field)


def _opened(ends: list[End], index: int, home: SimNode, carol: bytes, away: SimNode,
            alice: bytes, results: dict[str, object]) -> Callable[[bytes | None, int | None,
                                                                  str], None]:
    cid = bytes([index]) * 16

    def done(reply: bytes | None, code: int | None, message: str) -> None:
        assert code is None, f"open {index} failed: {code} {message}"
        now = home.net.clock.now
        mine, _ = step(opening(cid, Reservation(), now), Opened(Reservation(), now), SETTINGS)
        ends.append(End(home, b"alice", carol, mine, f"a{index}", results))
        ends.append(End(away, b"carol", alice, served(cid, Reservation(), now), f"c{index}",
                        results))
        ends[-2].call_next()
        ends[-1].call_next()
    return done


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_thousand_calls_each_way_on_ten_connections_all_complete_once(seed: int) -> None:
    sim = Simulation(seed, HOSTILE)
    ex = Executions()
    home = _node(sim, "h1", "10.1.0.1", "alice", ex)
    away = _node(sim, "w1", "10.2.0.1", "carol", ex)
    alice, carol = home.eid_for(b"alice"), away.eid_for(b"carol")
    results: dict[str, object] = {}
    ends: list[End] = []
    for index in range(CONNECTIONS):
        home.open_connection(carol, b"alice", bytes([index]) * 16, timeout=120.0,
                             done=_opened(ends, index, home, carol, away, alice, results))
    sim.net.run_until(lambda: len(results) == 2 * CONNECTIONS * CALLS, max_time=3600.0)
    expected = {f"{side}{c}-{i}" for side in "ac" for c in range(CONNECTIONS)
                for i in range(CALLS)}
    failed = {text: r for text, r in results.items() if not isinstance(r, bytes)}
    assert not failed, f"seed {seed}: calls that did not complete: {list(failed.items())[:5]}"
    assert set(results) == expected
    assert {text: nodes for text, nodes in ex.runs.items() if len(nodes) != 1} == {}, \
        f"seed {seed}: a handler ran more than once"
    assert set(ex.runs) == expected
    assert {node for nodes in ex.runs.values() for node in nodes} == {"h1", "w1"}
    assert len(ends) == 2 * CONNECTIONS
    assert all(end.conn.counters.answered == CALLS for end in ends)
    assert sim.net.dropped > 0.15 * (sim.net.dropped + sim.net.delivered), "20 % were lost"
    assert len(home.connections) == len(away.connections) == CONNECTIONS
    assert set(home.connections) == {(b"alice", bytes([i]) * 16) for i in range(CONNECTIONS)}
