"""Clusters of nodes in one process on 127.0.0.x: for the demo, tests and benchmarks.

Each cluster gets fresh master and cluster keys and a signed cluster ID listing its
nodes' inter-cluster addresses (SRV priority and weight as planned); each node binds
its own loopback address, so several nodes look like several hosts. Every node
serves the demo app's interface `/demo/echo/v1` (mercury_rt.apps.echo) for its entities:
op 1 `echo` (text -> text), op 2 `whoami` (-> node id), so a caller can see which node
answered (failover, redirects), and op 3 `note` (one-way text), which the node appends to
`LocalCluster.notes[node_id]`. A plan may serve the developer's own apps instead
(`apps=`, each a setup(app) function or an app module's name, as a node config's
`apps:` lists them, with `echo=False`): mercury_rt.testing.pytest_plugin builds on that.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.protocol_spec import SpecRegistry
from lithium import HandlerRegistry
from lithium.invoke import InvokeLimits
from mercury_rt.aio.node_runtime import NodeRuntime, NodeSpec
from mercury_rt.apps import NodeApp, load_apps
from mercury_rt.apps.echo import ECHO, HANDLERS, register
from mercury_rt.config import OPEN_POLICY
from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import ClusterId, ServerAddress, issue_cluster_id
from mercury_rt.core.membership import MembershipConfig, PublicAddress
from mercury_rt.core.node import MembershipSettings, RetryPolicy
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import TransportConfig
from policy.load import parse_policy
from policy.model import Policy
from tungsten.etcd_store import EtcdSettings
from tungsten.memory import MemoryStore


@dataclass(frozen=True)
class NodePlan:
    """One node: its id, loopback host, SRV priority/weight, and mirrored entities."""

    node_id: str
    host: str
    mirrors: tuple[str, ...]
    priority: int = 10
    weight: int = 10
    public: tuple[str, int] | None = None
    """The inter-cluster address the cluster ID publishes for this node, if not the bound
    one (a relay or NAT in front of it, as tests capturing traffic use)."""
    intra_public: tuple[str, int] | None = None
    """The intra-cluster address its peers are told, if not the bound one."""


@dataclass(frozen=True)
class ClusterPlan:
    """One cluster: its nodes, routing choice and policy text."""

    name: str
    nodes: tuple[NodePlan, ...]
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    policy: str = OPEN_POLICY
    record_state: bool = False
    """Whether the demo handlers record each echo and note in the entity's state."""
    apps: tuple[Callable[[NodeApp], object] | str, ...] = ()
    """Setup functions, or app module names (mercury_rt.apps, e.g. the developer's own for
    `mercury-rt dev`), run on every node after the demo app (if any) is attached."""
    echo: bool = True
    """Whether every node serves the demo app on endpoint 1 of its mirrored entities."""
    handler_timeout: float = InvokeLimits().timeout
    replication: EtcdSettings | None = None
    """Every node's `replication:` section (mirrored state and spent stamps in etcd)."""


@dataclass
class LocalCluster:
    """A started cluster: its keys, cluster ID and running nodes by id."""

    plan: ClusterPlan
    cluster_key: Ed25519PrivateKey
    cluster_id: ClusterId
    nodes: dict[str, NodeRuntime]
    notes: dict[str, list[str]] = field(default_factory=dict)

    def eid(self, entity: str) -> bytes:
        """An EID of one of this cluster's entities (minted by its first node)."""
        return next(iter(self.nodes.values())).eid_for(entity.encode())

    async def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes.values():
            await node.stop()

    async def restart(self, node_id: str, *, new_ports: bool = False) -> NodeRuntime:
        """Start a stopped node again with the same identity, state store and cluster IDs
        it was started with, and the peers' intra-cluster addresses it last knew; with
        `new_ports`, on fresh inter- and intra-cluster ports (a node that came back
        elsewhere: membership tells its peers and publishes the change)."""
        old = self.nodes[node_id]
        spec = replace(old.spec, intra_addresses=dict(old.core.state.intra_addresses))
        if new_ports:
            spec = replace(spec, inter_port=free_port(spec.host),
                           intra_port=free_port(spec.host))
        node = NodeRuntime(spec)
        await node.start()
        self.nodes[node_id] = node
        return node


def free_port(host: str) -> int:
    """A UDP port free on `host` right now (tests accept the tiny race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_cluster(plan: ClusterPlan, transport: TransportConfig | None = None,
                        seed: int | None = None,
                        held_policy: RetryPolicy | None = None,
                        membership: MembershipConfig | None = None) -> LocalCluster:
    """Generate keys, publish addresses, start every node of `plan` (heartbeating with
    `membership` timing, default 1 s; retrying held messages with `held_policy`)."""
    transport = transport or TransportConfig()
    ports = {n.node_id: (free_port(n.host), free_port(n.host)) for n in plan.nodes}
    published = {n.node_id: n.public or (n.host, ports[n.node_id][0]) for n in plan.nodes}
    addresses = [ServerAddress(ip_address(published[n.node_id][0]), published[n.node_id][1],
                               n.priority, n.weight) for n in plan.nodes]
    master, cluster_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cluster_id = issue_cluster_id(master, cluster_key, addresses)
    policy = parse_policy(plan.policy, f"{plan.name}-policy.yaml")
    view = _view(plan, addresses)
    intra = {n.node_id.encode(): n.intra_public or (n.host, ports[n.node_id][1])
             for n in plan.nodes}
    cluster = LocalCluster(plan, cluster_key, cluster_id, {})
    for index, node in enumerate(plan.nodes):
        notes = cluster.notes.setdefault(node.node_id, [])
        spec = _spec(node, plan, cluster_key, cluster_id, ports[node.node_id], view, intra,
                     policy, transport, None if seed is None else seed + index, notes)
        spec.held_policy = held_policy
        spec.membership = MembershipSettings(membership or MembershipConfig(),
                                             priority=node.priority, weight=node.weight,
                                             public=_public(node, addresses[index]))
        runtime = NodeRuntime(spec)
        await runtime.start()
        cluster.nodes[node.node_id] = runtime
    return cluster


def _public(node: NodePlan, address: ServerAddress) -> tuple[PublicAddress, ...] | None:
    """What membership announces for a node published elsewhere than it is bound (else it
    would republish the bound address and route callers around what stands in front)."""
    if node.public is None:
        return None
    return (PublicAddress(address.host, address.port, address.priority, address.weight),)


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
          seed: int | None, notes: list[str]) -> NodeSpec:
    store, specs, registry = MemoryStore(), SpecRegistry(), HandlerRegistry()
    app = NodeApp(node.node_id, node.mirrors, registry, specs, store)
    if plan.echo:
        register(registry, node.node_id, notes.append, record=plan.record_state)
        app.attach_to_mirrors(ECHO, endpoint=1, handlers=HANDLERS)
    for setup in plan.apps:
        if isinstance(setup, str):
            load_apps([setup], app)
        else:
            setup(app)
    own_view = replace(view, local_node=node.node_id.encode())
    return NodeSpec(node.node_id.encode(), cluster_key, [cluster_id], node.host, ports[0],
                    ports[1], plan.routing, own_view, intra, policy, store, registry, specs,
                    transport=transport, seed=seed,
                    invoke_limits=InvokeLimits(timeout=plan.handler_timeout),
                    delivered=MemorySpentStore(100_000),  # outlives restarts, as LMDB does
                    replication=plan.replication)


async def restart_node(cluster: LocalCluster, node_id: str, *, new_ports: bool) -> NodeRuntime:
    """Stop a running node, then `LocalCluster.restart` it."""
    await cluster.nodes[node_id].stop()
    return await cluster.restart(node_id, new_ports=new_ports)
