"""A calling client for tools: a node runtime that serves nothing and calls as one entity.

`mercury-rt call` needs a node to call from: the core's routing, transit sessions and
failover are the same for a tool as for an entity. A client is either a throwaway
identity (a fresh one-node cluster of its own, keys never written anywhere, its cluster
ID listing only the client's socket so the target can fetch its keys) or a node
config's cluster (its keys and cluster IDs, calling as one of its entities). Either way
it runs no membership: it is no member of any cluster and must never sign a cluster-ID
version, and it mirrors no entity, so nothing is ever served from it but key queries.

`Client.prepare` learns the endpoint and the operation's declared types from the
target's endpoint 0 (and caches them per EID), so callers name interfaces by symbol and
operations by name and write payloads as plain data (carbon.typed_input).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode, MercuryError
from carbon.interfaces import METADATA_INTERFACE, InterfaceMap
from carbon.metadata import METADATA_SPEC
from carbon.protocol_spec import Operation, OperationKind, ProtocolSpec, SpecRegistry
from carbon.symbols import Symbol, SymbolError
from carbon.typed_input import from_plain, to_plain
from carbon.types import dumps_typed, loads_typed
from lithium import HandlerRegistry
from mercury_rt.aio.call_driver import TargetCache
from mercury_rt.aio.metadata_client import get_spec, list_interfaces
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime, NodeSpec
from mercury_rt.client import ReplyDecodeError
from mercury_rt.config import OPEN_POLICY, NodeConfig, keyfiles
from mercury_rt.core.identity import ClusterId, ServerAddress, issue_cluster_id
from mercury_rt.core.node import CallRequest
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import Addr, TransportConfig
from mercury_rt.localcluster import free_port
from policy.load import parse_policy
from tungsten.memory import MemoryStore

CLIENT_NODE = b"cli"
CLIENT_ENTITY = "cli"
"""The entity a throwaway client calls as (a target sees `cli` of a cluster it never
heard of, cleared as its policy clears unknown clusters)."""
_TARGETS = TargetCache()


class ClientError(MercuryError):
    """The call cannot be made as asked (unknown interface or operation, bad payload)."""

    code = ErrorCode.UNKNOWN_OPERATION


@dataclass(frozen=True)
class Prepared:
    """What a call to one operation needs: where it goes and its declared types."""

    target: bytes
    endpoint: int
    interface: Symbol
    operation: Operation


@dataclass(frozen=True)
class Outcome:
    """One finished call: the reply as plain data, how long it took, who answered."""

    reply: Any
    seconds: float
    answered_by: Addr | None


@dataclass
class Client:
    """A started client node calling as local entity `caller`. `await close()`."""

    node: NodeRuntime
    caller: bytes
    timeout: float = 10.0
    _maps: dict[bytes, InterfaceMap] = field(default_factory=dict)
    _specs: dict[tuple[bytes, Symbol], ProtocolSpec] = field(default_factory=dict)

    async def close(self) -> None:
        """Stop the client node (its sockets are free when this returns)."""
        await self.node.stop()

    async def interfaces(self, target: bytes) -> InterfaceMap:
        """The target's endpoint map (asked once per target)."""
        if target not in self._maps:
            self._maps[target] = await list_interfaces(self.node, target, caller=self.caller,
                                                       timeout=self.timeout)
        return self._maps[target]

    async def spec(self, target: bytes, interface: Symbol) -> ProtocolSpec:
        """The interface's spec as the target publishes it (asked once per target)."""
        if interface == METADATA_INTERFACE:
            return METADATA_SPEC
        key = (target, interface)
        if key not in self._specs:
            self._specs[key] = await get_spec(self.node, target, interface,
                                              caller=self.caller, timeout=self.timeout)
        return self._specs[key]

    async def prepare(self, target: bytes, where: str, op: str) -> Prepared:
        """Resolve `where` (an interface symbol or an endpoint number) and `op` (an
        operation name or number) against the target's endpoint 0."""
        imap = await self.interfaces(target)
        endpoint, interface = _locate(imap, where)
        spec = await self.spec(target, interface)
        return Prepared(target, endpoint, interface, _operation(spec, op))

    async def invoke(self, prepared: Prepared, payload: Any) -> Outcome:
        """Call (or, for a message operation, send one-way) with `payload` as plain
        data; raises PlainInputError for a payload the declared type refuses and
        NodeCallError for a refusal or no answer."""
        operation = prepared.operation
        body = dumps_typed(operation.message, from_plain(operation.message, payload))
        one_way = operation.kind is OperationKind.MESSAGE
        request_key = os.urandom(8)
        request = CallRequest(_TARGETS.decode(prepared.target),
                              prepared.endpoint, operation.number, body, self.caller,
                              request_key, message_id=os.urandom(16) if one_way else None,
                              request_id=None if one_way else request_key)
        started = time.perf_counter()
        trace = await self.node.call_traced(request, self.timeout)
        seconds = time.perf_counter() - started
        reply = trace.reply
        if not reply.ok:
            raise NodeCallError(reply.message or "call refused", reply.code,
                                reply.required_bits)
        plain = None if one_way else _plain_reply(prepared, operation, reply.payload or b"")
        return Outcome(plain, seconds, trace.answered_by)


def _plain_reply(prepared: Prepared, operation: Operation, payload: bytes) -> Any:
    """The reply as plain data; a reply not of the declared type is the target's fault,
    not the caller's, so it is REPLY_TYPE_MISMATCH as the typed client reports it."""
    try:
        return to_plain(operation.reply, loads_typed(operation.reply, payload))
    except MercuryError as exc:
        raise ReplyDecodeError(f"{prepared.interface} {operation.name}: the reply is not "
                               f"{operation.reply}: {exc.message}") from None


def _locate(imap: InterfaceMap, where: str) -> tuple[int, Symbol]:
    offered = ", ".join(f"{n} {s}" for n, s in imap.items())
    if where.isdigit():
        endpoint = int(where)
        interface = imap.interface_at(endpoint)
        if interface is None:
            raise ClientError(f"the target has no endpoint {endpoint} (it offers: {offered})",
                              ErrorCode.UNKNOWN_ENDPOINT)
        return endpoint, interface
    try:
        symbol = Symbol(where)
    except SymbolError as exc:
        raise ClientError(f"{where!r} is neither an endpoint number nor an interface "
                          f"symbol: {exc.message}", ErrorCode.UNKNOWN_INTERFACE) from None
    number = imap.endpoint_of(symbol)
    if number is None:
        raise ClientError(f"the target offers no interface {symbol} (it offers: {offered})",
                          ErrorCode.UNKNOWN_INTERFACE)
    return number, symbol


def _operation(spec: ProtocolSpec, op: str) -> Operation:
    found = spec.operation(int(op)) if op.isdigit() else \
        next((o for o in spec.operations if o.name == op), None)
    if found is None:
        ops = ", ".join(f"{o.number} {o.name}" for o in spec.operations)
        raise ClientError(f"{spec.interface} has no operation {op!r} (it has: {ops})",
                          ErrorCode.UNKNOWN_OPERATION)
    return found


def describe(operation: Operation) -> str:
    """One line saying what an operation takes and gives, for usage errors."""
    if operation.kind is OperationKind.MESSAGE:
        return f"{operation.name} (one-way) takes {operation.message}"
    return f"{operation.name} takes {operation.message} and replies {operation.reply}"


async def throwaway_client(host: str = "127.0.0.1",
                           transport: TransportConfig | None = None) -> Client:
    """A client with a fresh identity of its own, listening on `host`."""
    inter, intra = free_port(host), free_port(host)
    master, cluster_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cluster_id = issue_cluster_id(master, cluster_key,
                                  [ServerAddress(ip_address(host), inter, 10, 10)])
    view = ClusterView(CLIENT_NODE, 1, {CLIENT_NODE: NodeInfo(
        CLIENT_NODE, True, cluster_id.addresses[0])}, {}, {})
    spec = _client_spec(cluster_key, [cluster_id], host, (inter, intra), view, {},
                        RoutingConfig(), transport)
    return await _started(spec, CLIENT_ENTITY.encode())


async def config_client(config: NodeConfig, entity: str,
                        transport: TransportConfig | None = None) -> Client:
    """A client calling as `entity` of the cluster of a node config (its keys and
    cluster IDs), from ephemeral ports on the config's listen host; calls to its own
    cluster go over the intra-cluster path to a mirror, as the node's own would."""
    cluster_key, _ = keyfiles.load_cluster_key(config.cluster_dir)
    history = keyfiles.load_cluster_ids(config.cluster_dir)
    host = config.listen.host
    nodes = {p.node_id.encode(): NodeInfo(p.node_id.encode(), True, p.public_address)
             for p in config.cluster.nodes}
    mirrors = {e.encode(): frozenset(p.node_id.encode() for p in config.mirrors_of(e))
               for e in config.entities()}
    view = ClusterView(CLIENT_NODE, history[-1].version, nodes, mirrors, {})
    intra = {p.node_id.encode(): p.intra_address for p in config.cluster.nodes}
    spec = _client_spec(cluster_key, history, host, (free_port(host), free_port(host)), view,
                        intra, config.cluster.routing.to_config(),
                        transport or config.transport.to_config())
    return await _started(spec, entity.encode())


def _client_spec(cluster_key: Ed25519PrivateKey, history: list[ClusterId], host: str,
                 ports: tuple[int, int], view: ClusterView, intra: dict[bytes, Addr],
                 routing: RoutingConfig, transport: TransportConfig | None) -> NodeSpec:
    return NodeSpec(CLIENT_NODE, cluster_key, history, host, ports[0], ports[1], routing, view,
                    intra, parse_policy(OPEN_POLICY, "<client policy>"), MemoryStore(),
                    HandlerRegistry(), SpecRegistry(),
                    transport=transport or TransportConfig(), run_membership=False)


async def _started(spec: NodeSpec, caller: bytes) -> Client:
    node = NodeRuntime(spec)
    await node.start()
    return Client(node, caller)
