"""Membership between real nodes on loopback (127.0.7.x, 127.0.8.x): a stopped node is
declared dead and routed around; a node restarted on new ports is republished in a new
cluster-ID version that outside callers pick up on their next contact. Heartbeats every
50 ms; every wait polls with a deadline in loop time; every node is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from ipaddress import ip_address

import pytest

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.core.identity import ServerAddress
from mercury_rt.core.membership import MembershipConfig, NodeStatus
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import (
    ClusterPlan,
    LocalCluster,
    NodePlan,
    restart_node,
    start_cluster,
)

pytestmark = pytest.mark.net
FAST = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0, reassembly_timeout=5.0)
BEAT = MembershipConfig(interval=0.05, suspect_after=3, dead_after=6)
DEAD_BOUND = (BEAT.dead_after + 1) * BEAT.interval  # silence plus one tick
SLACK = 0.5  # scheduling on a loaded 2-core CI machine
NOTHING = dumps_typed(None, None)

HOME = ClusterPlan("home", (NodePlan("h1", "127.0.7.9", ("alice",)),))
MIRRORED = ClusterPlan("mirrored", (
    NodePlan("x1", "127.0.7.1", (), priority=10),
    NodePlan("x2", "127.0.7.2", ("eve",), priority=20),
    NodePlan("x3", "127.0.7.3", ("eve",), priority=20)))
MOVING = ClusterPlan("moving", (
    NodePlan("m1", "127.0.8.1", (), priority=20),
    NodePlan("m2", "127.0.8.2", ("zed",), priority=10)))


@asynccontextmanager
async def clusters(*plans: ClusterPlan) -> AsyncIterator[list[LocalCluster]]:
    started: list[LocalCluster] = []
    try:
        for plan in plans:
            started.append(await start_cluster(plan, FAST, seed=len(started), membership=BEAT))
        yield started
    finally:
        for cluster in started:
            await cluster.stop()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=30))


async def until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Poll `condition` until true; the time it took. Fails after `within` seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > within:
            raise AssertionError(f"not within {within:.2f} s: {what}")
        await asyncio.sleep(0.01)
    return loop.time() - start


async def whoami(node: NodeRuntime, target: bytes) -> str:
    return str(loads_typed(str, await node.call(target, 1, 2, NOTHING, caller=b"alice")))


def status(observer: NodeRuntime, node: str) -> NodeStatus | None:
    assert observer.membership is not None
    peer = observer.membership.adapter.membership.peers.get(node.encode())
    return None if peer is None else peer.status


def test_a_stopped_node_is_declared_dead_in_time_and_routed_around() -> None:
    """x3 stops: x1 and x2 mark it dead within dead_after intervals (plus one tick), and
    calls to an entity mirrored on x2 and x3, made on x1 or forwarded by x1 for another
    cluster, all run on x2; the cluster republishes without x3."""
    async def main() -> None:
        async with clusters(HOME, MIRRORED) as (home, mirrored):
            x1, x2, x3 = (mirrored.nodes[n] for n in ("x1", "x2", "x3"))
            await until(lambda: all(status(a, b) is NodeStatus.ALIVE for a, b in
                                    ((x1, "x2"), (x1, "x3"), (x2, "x3"))), 2.0, "all heard")
            x3_inter = x3.addresses[0]
            await x3.stop()
            took = await until(lambda: not x1.core.state.view.nodes[b"x3"].alive
                               and status(x1, "x3") is NodeStatus.DEAD
                               and status(x2, "x3") is NodeStatus.DEAD,
                               DEAD_BOUND + SLACK, "x3 dead at x1 and x2")
            assert took >= BEAT.suspect_after * BEAT.interval, "not declared before silence"
            eid = mirrored.eid("eve")
            assert [await whoami(x1, eid) for _ in range(8)] == ["x2"] * 8
            h1 = home.nodes["h1"]
            assert [await whoami(h1, eid) for _ in range(8)] == ["x2"] * 8
            assert x2.inter.core.stats.datagrams_in == 0, "reached via x1"  # type: ignore[union-attr]
            await until(lambda: all(
                (str(a.host), a.port) != x3_inter for n in (x1, x2)
                for a in n.core.state.cluster_id.addresses), 2.0, "x3 unpublished")
            assert x1.core.state.cluster_id.version == x2.core.state.cluster_id.version == 2

    run(main)


def test_a_node_restarted_on_new_ports_is_republished_and_reached_there() -> None:
    """m2 comes back on a new inter-cluster port and intra-cluster port: the publisher
    mints cluster-ID version 2 with the new address and both nodes adopt it; a caller in
    another cluster holding the old EID is answered by m2, receives version 2 bundled,
    and its next call goes to m2's new port directly."""
    async def main() -> None:
        async with clusters(HOME, MOVING) as (home, moving):
            m1 = moving.nodes["m1"]
            assert m1.membership is not None
            old_eid = moving.eid("zed")
            await until(lambda: m1.membership is not None and m1.membership.adapter.warm
                        and status(m1, "m2") is NodeStatus.ALIVE, 2.0, "m1 warm")
            m2 = await restart_node(moving, "m2", new_ports=True)
            new_inter = ServerAddress(ip_address("127.0.8.2"), m2.addresses[0][1], 10, 10)
            await until(lambda: all(new_inter in n.core.state.cluster_id.addresses
                                    for n in (m1, m2)), 3.0, "new address published")
            v2 = m1.core.state.cluster_id
            assert v2.version == 2 and m2.core.state.cluster_id == v2
            assert len(v2.addresses) == 2
            assert m1.core.state.intra_addresses[b"m2"] == m2.addresses[1]
            h1 = home.nodes["h1"]
            assert await whoami(h1, old_eid) == "m2"
            assert h1.planner.known[v2.master_hash] == v2
            m1_in = m1.inter.core.stats.datagrams_in  # type: ignore[union-attr]
            m2_in = m2.inter.core.stats.datagrams_in  # type: ignore[union-attr]
            assert await whoami(h1, old_eid) == "m2"
            assert m2.inter.core.stats.datagrams_in > m2_in  # type: ignore[union-attr]
            assert m1.inter.core.stats.datagrams_in == m1_in  # type: ignore[union-attr]

    run(main)
