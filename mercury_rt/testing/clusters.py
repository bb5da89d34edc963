"""A test network of real nodes serving the developer's own apps (like Orleans' test cluster).

    async with app_network(apps=[counter_app.setup], entities=["alice"], clusters=2) as net:
        counter = net.client(net.eid("alice", cluster=1), COUNTER, caller="bob")
        assert await counter.add(n=5) == 5

Each cluster gets fresh keys and its own nodes (NodeRuntime, in this process, real UDP
on 127.0.0.0/8, in-memory state), each entity mirrored by one node (round robin: node
state is not replicated, so one mirror keeps an entity's state in one place; the other
nodes forward its calls), and every node runs each app's setup(app) exactly as a node
started from a config with `apps:` would. Leaving
the block stops every node. `SyncAppNetwork` (the pytest fixture `mercury_network`, see
mercury_rt.testing.pytest_plugin) is the same for synchronous tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from carbon.principal import Persona
from carbon.protocol_spec import ProtocolSpec
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.apps import NodeApp, import_app
from mercury_rt.client import TypedClient
from mercury_rt.config import OPEN_POLICY
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan, start_cluster

__all__ = ["TEST_TRANSPORT", "AppNetwork", "SyncAppNetwork", "app_network"]

T = TypeVar("T")
App = str | Callable[[NodeApp], object]
"""An app: its module name (as under a node config's `apps:`) or its setup function."""
TEST_TRANSPORT = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0,
                                 reassembly_timeout=5.0)
"""Loopback timings: a lost datagram is resent after 0.1 s, not the internet's 0.5 s."""
MAX_CLUSTERS, MAX_NODES = 8, 16


@dataclass
class AppNetwork:
    """Started clusters; look up EIDs, nodes and typed clients by cluster index."""

    clusters: list[LocalCluster]

    def node(self, cluster: int = 0, node: int = 0) -> NodeRuntime:
        """One running node (index within its cluster, in start order)."""
        return list(self.clusters[cluster].nodes.values())[node]

    def eid(self, entity: str, cluster: int = 0) -> bytes:
        """The EID of an entity of one cluster (any local part; mirrored or not)."""
        return self.clusters[cluster].eid(entity)

    def client(self, target: bytes, interface: ProtocolSpec, *, caller: str = "tester",
               cluster: int = 0, node: int = 0, persona: Persona | None = None,
               endpoint: int | None = None, timeout: float = 10.0) -> TypedClient:
        """A typed client calling from a node as its cluster's entity `caller`."""
        return self.node(cluster, node).client(target, interface, caller=caller.encode(),
                                               persona=persona, endpoint=endpoint,
                                               timeout=timeout)


def _setup(app: App) -> Callable[[NodeApp], object]:
    return import_app(app) if isinstance(app, str) else app


def _entities_of(entities: Sequence[str] | Mapping[int, Sequence[str]],
                 cluster: int) -> tuple[str, ...]:
    if isinstance(entities, Mapping):
        return tuple(entities.get(cluster, ()))
    return tuple(entities)


@asynccontextmanager
async def app_network(*, apps: Sequence[App], entities: Sequence[str] | Mapping[int,
                      Sequence[str]], clusters: int = 1, nodes: int = 1,
                      policy: str = OPEN_POLICY, handler_timeout: float = 5.0,
                      echo: bool = False,
                      transport: TransportConfig = TEST_TRANSPORT) -> AsyncIterator[AppNetwork]:
    """Start `clusters` clusters of `nodes` nodes each serving `apps` for `entities` (the
    same names in every cluster, or a mapping cluster index -> names; the n-th name is
    mirrored by node n modulo `nodes`); stop them on exit."""
    if not (1 <= clusters <= MAX_CLUSTERS and 1 <= nodes <= MAX_NODES):
        raise ValueError(f"a test network has 1-{MAX_CLUSTERS} clusters of 1-{MAX_NODES} "
                         "nodes")
    setups = tuple(_setup(app) for app in apps)
    started: list[LocalCluster] = []
    try:
        for index in range(clusters):
            names = _entities_of(entities, index)
            plan = ClusterPlan(f"cluster{index}", tuple(
                NodePlan(f"c{index}-n{n}", f"127.0.{40 + index}.{1 + n}", names[n::nodes])
                for n in range(nodes)), policy=policy, apps=setups, echo=echo,
                handler_timeout=handler_timeout)
            started.append(await start_cluster(plan, transport))
        yield AppNetwork(started)
    finally:
        for cluster in started:
            await cluster.stop()


class SyncAppNetwork(AppNetwork):
    """An AppNetwork driven from synchronous code: `run(awaitable)` runs it on the
    network's own event loop (the nodes serve only while something runs there, so run
    whole scenarios rather than one call at a time across slow test code)."""

    def __init__(self, clusters: list[LocalCluster], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(clusters)
        self.loop = loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` (a client call, or a whole async scenario) to its end."""
        async def wrapped() -> T:
            return await awaitable
        return self.loop.run_until_complete(wrapped())


class NetworkStarter:
    """What the `mercury_network` fixture gives: call it to start a network; every
    network started is stopped, and the loop closed, when the test ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stack = AsyncExitStack()

    def __call__(self, **options: Any) -> SyncAppNetwork:
        """app_network(**options), started on this fixture's loop."""
        started = self.loop.run_until_complete(
            self._stack.enter_async_context(app_network(**options)))
        return SyncAppNetwork(started.clusters, self.loop)

    def close(self) -> None:
        """Stop every node started, then close the loop (again: nothing to do)."""
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(self._stack.aclose())
        finally:
            self.loop.close()
