"""Clusters of nodes in one process on 127.0.0.x: for the demo, tests and benchmarks.

Each cluster gets fresh master and cluster keys and a signed cluster ID listing its
nodes' inter-cluster addresses (SRV priority and weight as planned); each node binds
its own loopback address, so several nodes look like several hosts. Every node
serves the demo interface `/demo/echo/v1` for the entities it mirrors:
op 1 `echo` (text -> text) and op 2 `whoami` (-> node id), so a caller can see which
node answered (failover, redirects).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.protocol_spec import Interface, SpecRegistry, request
from lithium import HandlerRegistry, attach
from lithium.context import RequestContext
from mercury_rt.aio.node_runtime import NodeRuntime, NodeSpec
from mercury_rt.core.cluster_id import ClusterId, ServerAddress
from mercury_rt.core.membership import MembershipConfig
from mercury_rt.core.mint import issue_cluster_id
from mercury_rt.core.node_membership_types import MembershipSettings
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport_config import TransportConfig
from policy.model import Policy, parse_policy
from tungsten.memory import MemoryStore

ECHO = Interface("/demo/echo/v1", ops=[request(1, "echo", str, str),
                                       request(2, "whoami", None, str)])
OPEN_POLICY = "version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n"


@dataclass(frozen=True)
class NodePlan:
    """One node: its id, loopback host, SRV priority/weight, and mirrored entities."""

    node_id: str
    host: str
    mirrors: tuple[str, ...]
    priority: int = 10
    weight: int = 10


@dataclass(frozen=True)
class ClusterPlan:
    """One cluster: its nodes, routing choice and policy text."""

    name: str
    nodes: tuple[NodePlan, ...]
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    policy: str = OPEN_POLICY


@dataclass
class LocalCluster:
    """A started cluster: its keys, cluster ID and running nodes by id."""

    plan: ClusterPlan
    cluster_key: Ed25519PrivateKey
    cluster_id: ClusterId
    nodes: dict[str, NodeRuntime]

    def eid(self, entity: str) -> bytes:
        """An EID of one of this cluster's entities (minted by its first node)."""
        return next(iter(self.nodes.values())).eid_for(entity.encode())

    async def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes.values():
            await node.stop()


def free_port(host: str) -> int:
    """A UDP port free on `host` right now (tests accept the tiny race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_cluster(plan: ClusterPlan, transport: TransportConfig | None = None,
                        seed: int | None = None,
                        membership: MembershipConfig | None = None) -> LocalCluster:
    """Generate keys, publish addresses, start every node of `plan` (heartbeating with
    `membership` timing, default 1 s)."""
    transport = transport or TransportConfig()
    ports = {n.node_id: (free_port(n.host), free_port(n.host)) for n in plan.nodes}
    addresses = [ServerAddress(ip_address(n.host), ports[n.node_id][0], n.priority, n.weight)
                 for n in plan.nodes]
    master, cluster_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cluster_id = issue_cluster_id(master, cluster_key, addresses)
    policy = parse_policy(plan.policy, f"{plan.name}-policy.yaml")
    view = _view(plan, addresses)
    intra = {n.node_id.encode(): (n.host, ports[n.node_id][1]) for n in plan.nodes}
    nodes: dict[str, NodeRuntime] = {}
    for index, node in enumerate(plan.nodes):
        spec = _spec(node, plan, cluster_key, cluster_id, ports[node.node_id], view, intra,
                     policy, transport, None if seed is None else seed + index)
        spec.membership = MembershipSettings(membership or MembershipConfig(),
                                             priority=node.priority, weight=node.weight)
        runtime = NodeRuntime(spec)
        await runtime.start()
        nodes[node.node_id] = runtime
    return LocalCluster(plan, cluster_key, cluster_id, nodes)


def _view(plan: ClusterPlan, addresses: list[ServerAddress]) -> ClusterView:
    nodes = {n.node_id.encode(): NodeInfo(n.node_id.encode(), True, address)
             for n, address in zip(plan.nodes, addresses, strict=True)}
    mirrors: dict[bytes, set[bytes]] = {}
    for node in plan.nodes:
        for entity in node.mirrors:
            mirrors.setdefault(entity.encode(), set()).add(node.node_id.encode())
    return ClusterView(b"", 1, nodes, {k: frozenset(v) for k, v in mirrors.items()}, {})


def _spec(node: NodePlan, plan: ClusterPlan, cluster_key: Ed25519PrivateKey,
          cluster_id: ClusterId, ports: tuple[int, int], view: ClusterView,
          intra: dict[bytes, tuple[str, int]], policy: Policy, transport: TransportConfig,
          seed: int | None) -> NodeSpec:
    store, specs, registry = MemoryStore(), SpecRegistry(), _handlers(node.node_id)
    with store.writing() as txn:
        for entity in node.mirrors:
            attach(txn, entity.encode(), ECHO, endpoint=1, specs=specs,
                   handlers={"echo": "demo.echo", "whoami": "demo.whoami"})
    own_view = ClusterView(node.node_id.encode(), view.cluster_id_version, view.nodes,
                           view.mirrors, view.moved)
    return NodeSpec(node.node_id.encode(), cluster_key, [cluster_id], node.host, ports[0],
                    ports[1], plan.routing, own_view, intra, policy, store, registry, specs,
                    transport=transport, seed=seed)


def _handlers(node_id: str) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.handler("demo.echo")
    def echo(ctx: RequestContext, text: str) -> str:
        return text

    @registry.handler("demo.whoami")
    def whoami(ctx: RequestContext, _: None) -> str:
        return node_id

    return registry


async def restart_node(cluster: LocalCluster, node_id: str, *, new_ports: bool) -> NodeRuntime:
    """Stop a node and start it again with the same identity, state and cluster IDs it
    was started with; with `new_ports`, on fresh inter- and intra-cluster ports (a node
    that came back elsewhere). Membership tells its peers and publishes the change."""
    old = cluster.nodes[node_id]
    await old.stop()
    spec = old.spec
    if new_ports:
        spec = replace(spec, inter_port=free_port(spec.host), intra_port=free_port(spec.host))
    runtime = NodeRuntime(replace(spec, intra_addresses=dict(old.core.state.intra_addresses)))
    await runtime.start()
    cluster.nodes[node_id] = runtime
    return runtime
