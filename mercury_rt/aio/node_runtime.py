"""The node shell: two UDP endpoints, the node core, LITHIUM, and the public call API.

The inter-cluster port and the intra-cluster port are separate sockets (the design keeps
them apart for firewalling). Every request goes to `NodeCore.handle`, whose action this
shell carries out: send the bytes, invoke the handler through LITHIUM, or forward over
the intra-cluster path. Calls made by local entities use the same core: same node (no
network), another node of the cluster (intra path), or another cluster (contact state
machine over the target's published addresses, with failover and redirects).
Carrying out a call's steps is aio/call_driver.py; held one-way messages, aio/held_pump.py.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO, assert_never

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from carbon.metadata import EndpointCache
from carbon.names import NamePins
from carbon.principal import Persona
from carbon.protocol_spec import OperationKind, ProtocolSpec, SpecRegistry
from lithium.bindings import entity_exists
from lithium.context import IncomingCall
from lithium.invoke import InvokeLimits, Invoker
from lithium.naming import set_name
from lithium.registry import HandlerRegistry
from mercury_rt.aio.admin_http import AdminServer, AdminSettings
from mercury_rt.aio.audit import audit_decision, json_audit_logger
from mercury_rt.aio.call_driver import CallDriver, NodeCallError, TargetCache, unwrap
from mercury_rt.aio.connections import NodeConnections
from mercury_rt.aio.drain import DrainParts, DrainReport, DrainSettings, drain_node
from mercury_rt.aio.endpoint import CallError, TransportEndpoint, open_endpoint
from mercury_rt.aio.first_datagrams import FirstDatagramLane, is_first_datagram
from mercury_rt.aio.held_pump import HeldPump
from mercury_rt.aio.membership_service import MembershipService
from mercury_rt.aio.mirror_watch import MirrorWatch
from mercury_rt.aio.names import NAMING_ENTITY, resolve_name
from mercury_rt.aio.node_calls import NodeEntityCalls, NodeRawCalls
from mercury_rt.aio.node_metrics import NodeMetrics
from mercury_rt.aio.remote_state import IntraStateElsewhere
from mercury_rt.aio.replicated_state import ReplicatedElsewhere, spend_stamp
from mercury_rt.aio.transit_host import NodeTransit
from mercury_rt.client import TypedClient
from mercury_rt.core.connections import ConnectionLimits
from mercury_rt.core.gate import (
    Allow,
    BudgetSettings,
    Deny,
    GateRequest,
    MemorySpentStore,
    PaymentStamp,
    SignatureBudget,
    SpentStampStore,
)
from mercury_rt.core.identity import ClusterId, Eid, MintDefaults, mint_eid
from mercury_rt.core.identity.live import VersionSink
from mercury_rt.core.membership import NodeIdentity
from mercury_rt.core.node import (
    CallPlanner,
    CallRequest,
    DeliveredSettings,
    DeliveredStore,
    Drop,
    FetchKeys,
    Forward,
    HeldMessage,
    HeldQueue,
    HeldStore,
    Invoke,
    MembershipSettings,
    MemoryHeldStore,
    NodeAction,
    NodeCore,
    NodeReply,
    OutgoingCall,
    Respond,
    RetryPolicy,
    ServeState,
    StateFetch,
    should_hold,
)
from mercury_rt.core.routing import ClusterView, Path, ProximityRule, RoutingConfig
from mercury_rt.core.transit.responder import Channel, Opened
from mercury_rt.core.transport import Addr, MessageReceived, RequestReceived, TransportConfig
from policy.model import Policy
from tungsten.api import StateStore
from tungsten.etcd_store import EtcdSettings, EtcdState
from tungsten.memory import MemoryStore
from tungsten.mirror_cache import MirrorCache
from tungsten.moves import Move, StoredMoves

__all__ = ["KEY_FETCH_TIMEOUT", "CallTrace", "NodeCallError", "NodeRuntime", "NodeSpec"]

_log = structlog.get_logger("mercury_rt.node")
KEY_FETCH_TIMEOUT = 2.0
EID_CACHE_LIMIT = 4096
"""EIDs (entity, persona) a node keeps minted; the cache starts afresh when full."""
SPENT_STORE_LIMIT = 1_000_000
"""Spent stamps remembered by a node whose spec brings no store (the node config's
`gate.spent_store_limit` default)."""


@dataclass
class NodeSpec:
    """Everything a node is built from (the node config loader fills this in)."""

    node_id: bytes
    cluster_key: Ed25519PrivateKey
    cluster_ids: list[ClusterId]
    host: str
    inter_port: int
    intra_port: int
    routing: RoutingConfig
    view: ClusterView
    intra_addresses: dict[bytes, Addr]
    policy: Policy
    store: StateStore
    registry: HandlerRegistry
    specs: SpecRegistry
    transport: TransportConfig = field(default_factory=TransportConfig)
    invoke_limits: InvokeLimits = field(default_factory=InvokeLimits)
    spent: SpentStampStore | None = None
    delivered: DeliveredStore | None = None
    delivered_settings: DeliveredSettings = field(default_factory=DeliveredSettings)
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    """Bounds on the connections this node serves (the config's `connections:`)."""
    signature_budget: BudgetSettings = field(default_factory=BudgetSettings)
    """The gate's signature budget for strangers (the node config's `limits.signatures`)."""
    audit_file: pathlib.Path | None = None
    """Append every gate decision here as a JSON line (the audit trail), if set."""
    held_store: HeldStore | None = None
    held_policy: RetryPolicy | None = None
    answer_timeout: float | None = None
    proximity: ProximityRule | None = None
    """Favour published addresses near this node's own (SRV adjustment), if set."""
    seed: int | None = None
    membership: MembershipSettings = field(default_factory=MembershipSettings)
    moves: tuple[tuple[bytes, bytes], ...] = ()
    """Migrations the config names (local part, new EID): stored at start if new, then
    answered for with the stored ones (`apply_stored_moves`)."""
    owns_store: bool = False
    """Close `store` in `stop()` (set by build_node_spec, which opened it): a node built
    again from the same config in the same process can then open it again."""
    admin: AdminSettings | None = None
    """Serve the admin interface (/metrics, /healthz, /readyz, /status) here, if set."""
    mint_defaults: MintDefaults = field(default_factory=MintDefaults)
    """The cluster's EID form (the cluster directory's mint-defaults.yaml) for `eid_for`."""
    version_sink: VersionSink | None = None
    """Record every cluster ID the node holds here (config/published.py), if set."""
    replication: EtcdSettings | None = None
    """Keep the state of the entities this node serves in etcd, shared by every mirror
    (the config's `replication:` section); None: LMDB only."""
    mirror_cache_store: StateStore | None = None
    """Where the node keeps its copy of the mirrored entities' etcd state (its read
    cache, tungsten/mirror_cache.py): build_node_spec opens `<state_dir>/etcd-cache`;
    None with replication: a cache in memory (lost on restart)."""
    run_membership: bool = True
    """Heartbeat and publish cluster IDs. False for a client borrowing a cluster's keys
    (`mercury-rt call --as`): it is no member and must never sign a cluster-ID version."""


@dataclass(frozen=True)
class CallTrace:
    """A call's reply and the address of the node it came from (None: this node)."""

    reply: NodeReply
    answered_by: Addr | None


class NodeRuntime:
    """One running node. `await start()`, then `call(...)`; `await stop()` drains."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        rng = random.Random(spec.seed if spec.seed is not None else os.urandom(16))
        self.rng = rng
        self.metrics = NodeMetrics()
        self.core = NodeCore.for_cluster(
            spec.cluster_ids, spec.cluster_key, spec.policy, spec.view, spec.intra_addresses,
            routing=spec.routing, seal_prefix=os.urandom(4), delivered=spec.delivered,
            delivered_settings=spec.delivered_settings,
            audit=self._audit,
            spent=spec.spent if spec.spent is not None
            else MemorySpentStore(SPENT_STORE_LIMIT))
        self.core.signature_budget = SignatureBudget(spec.signature_budget)
        self.core.connections.limits = spec.connection_limits
        self.held = HeldQueue(spec.held_store if spec.held_store is not None
                              else MemoryHeldStore(), spec.held_policy)
        self._held = HeldPump(self.held, rng, self._deliver, spec.transport.default_timeout)
        self.identity = spec.membership.identity or NodeIdentity.issue(
            spec.node_id, Ed25519PrivateKey.generate(), spec.cluster_key, self.core.master_hash)
        self.transit = NodeTransit(self.core, spec.cluster_key, self.identity)
        self._calls = CallDriver(self.core, self._endpoint, self._carry_out, self.transit.caller)
        self._targets = TargetCache()
        self.first_datagrams = FirstDatagramLane()
        """Other clusters' session first datagrams, opened one at a time after the rest."""
        self._key_fetches: dict[bytes, asyncio.Future[None]] = {}
        self.invoker: Invoker | None = None
        self.etcd = None if spec.replication is None else EtcdState(spec.replication)
        """Mirrored entities' shared state and spent stamps (tungsten/etcd_store.py), if
        replicated."""
        self.core.shared_spent = self.etcd is not None
        self.mirror_watch = None if self.etcd is None else MirrorWatch(self.etcd, MirrorCache(
            spec.mirror_cache_store or MemoryStore(), mirrored=self._mirrors))
        """The node's copy of that state, kept current by a watch (aio/mirror_watch.py)."""
        self.inter: TransportEndpoint | None = None
        self.intra: TransportEndpoint | None = None
        self._eids: dict[tuple[bytes, Persona | None], bytes] = {}
        self.name_pins = NamePins()
        self.membership: MembershipService | None = None
        self._audit_stream: TextIO | None = None
        self._audit_logger: Any = None
        self.answer_timeout = spec.answer_timeout or default_answer_timeout(spec.transport)
        """A node that has not acknowledged a request within this time is passed over
        (two initial retransmission timeouts: the request was sent twice by then)."""
        self.planner = CallPlanner(self.core, rng, caller_eid=self._caller_eid,
                                   answer_timeout=self.answer_timeout, proximity=spec.proximity,
                                   persona_eid=self.eid_for)
        self.endpoints = EndpointCache()
        """Which endpoint each target offers each interface on, as typed clients learnt."""
        self._metered = {path: self.metrics.metered(path, self._carry_out) for path in Path}
        self.admin: AdminServer | None = None
        self.connections = NodeConnections(self.run_call, rng, spec.store, spec.specs,
                                           self.core.connections, self._caller_eid)
        """Connections this node's entities opened or serve (aio/connections.py)."""

    # ----- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind both ports and start serving."""
        loop = asyncio.get_running_loop()
        spec = self.spec
        self._open_audit()
        self.invoker = Invoker(spec.store, spec.registry, spec.specs, limits=spec.invoke_limits,
                               clock=loop.time, calls=self._entity_calls,
                               incident_prefix=f"{spec.node_id.decode()}-{os.urandom(3).hex()}")
        self.inter = await open_endpoint((spec.host, spec.inter_port), config=spec.transport,
                                         on_request=self._on_inter,
                                         on_message=self._on_inter_message,
                                         rng=self._endpoint_rng())
        self.intra = await open_endpoint((spec.host, spec.intra_port), config=spec.transport,
                                         on_request=self._on_intra,
                                         on_message=self._on_intra_message,
                                         rng=self._endpoint_rng())
        self._held.start()
        self.apply_stored_moves()
        if self.mirror_watch is not None:
            self.mirror_watch.start()
        if spec.run_membership:
            self._start_membership()
        await self._start_admin()

    async def _start_admin(self) -> None:
        """The admin interface, last (it reports the rest); a port in use stops the node."""
        if self.spec.admin is None:
            return
        admin = self.spec.admin
        self.admin = AdminServer(self, admin)
        try:
            self.admin.start()
        except OSError as exc:
            self.admin = None
            await self.stop()
            raise OSError(exc.errno, f"admin interface {admin.host} port {admin.port}: "
                          f"{exc.strerror}") from exc

    def _endpoint_rng(self) -> random.Random:
        """An endpoint's generator: from the node's seed when one is set (reproducible
        runs), else from os.urandom. Its outputs key transfer nonces (protocol.md 3.7), so
        they must not be derivable from the node's own generator, whose outputs (request
        keys, message ids) go on the wire."""
        if self.spec.seed is not None:
            return random.Random(self.rng.getrandbits(64))
        return random.Random(os.urandom(32))

    def _audit(self, request: GateRequest, decision: Allow | Deny) -> None:
        self.metrics.gate_decision(decision)
        if self._audit_stream is not None:
            audit_decision(request, decision, self._audit_logger)

    def _open_audit(self) -> None:
        """Open the audit log (append, one JSON line per decision, flushed per line)."""
        if self.spec.audit_file is not None and self._audit_stream is None:
            self._audit_stream = open(self.spec.audit_file, "a", encoding="utf-8",  # noqa: SIM115
                                      buffering=1)
            self._audit_logger = json_audit_logger(self._audit_stream)

    async def stop(self) -> None:
        """Drain handlers in flight, then close both sockets (and the audit log, and the
        state store if the node owns it)."""
        if self.admin is not None:
            await self.admin.stop()
            self.admin = None
        if self.membership is not None:
            await self.membership.stop()
        await self._held.stop()
        self.connections.stop()
        for endpoint in (self.inter, self.intra):
            if endpoint is not None:
                await endpoint.drain()
                endpoint.close()
                await endpoint.closed.wait()  # the port is free once this returns
        if self.invoker is not None:
            self.invoker.close()
        if self.mirror_watch is not None:
            await self.mirror_watch.stop()
        if self.etcd is not None:
            await self.etcd.close()
        if self.spec.owns_store:
            self.spec.store.close()
            if self.spec.mirror_cache_store is not None:
                self.spec.mirror_cache_store.close()
        if self._audit_stream is not None:
            self._audit_stream.close()
            self._audit_stream = None

    async def drain(self, settings: DrainSettings | None = None) -> DrainReport:
        """Leave cleanly (aio/drain.py): unpublish this node, answer new requests with
        NODE_DRAINING, finish in-flight work, try held messages once more, then `stop()`."""
        endpoints = tuple(e for e in (self.inter, self.intra) if e is not None)
        parts = DrainParts(self.core, self.membership, endpoints, self._held,
                           self.answer_timeout)
        return await drain_node(parts, settings or DrainSettings(), self.stop)

    def _start_membership(self) -> None:
        """Heartbeats, liveness and cluster-ID publishing (aio/membership_service.py)."""
        assert self.inter is not None and self.intra is not None
        settings = replace(self.spec.membership, identity=self.identity,
                           cas=self.etcd is not None)
        if self.etcd is not None:  # liveness from etcd leases, not from silence
            settings = replace(settings, config=replace(settings.config, leases=True))
        self.membership = MembershipService(self.core, self.intra, self.spec.cluster_key,
                                            settings, self.inter.local_address,
                                            on_cluster_id=self._eids.clear,
                                            sink=self.spec.version_sink, etcd=self.etcd)
        self.membership.start()

    @property
    def addresses(self) -> tuple[Addr, Addr]:
        """(inter-cluster, intra-cluster) bound addresses."""
        assert self.inter is not None and self.intra is not None
        return self.inter.local_address, self.intra.local_address

    def migrate(self, local: bytes, new_eid: bytes) -> None:
        """Record that entity `local` moved to another cluster as `new_eid`: requests for it
        are answered with a forwarding record signed by this cluster's key, so callers
        holding the old EID follow it. Kept in the state store, so it outlives a restart.
        Every node of the cluster should be told."""
        move = Move(local, new_eid, int(time.time()))
        StoredMoves(self.spec.store).record(move)
        self.core.record_move(local, new_eid, move.issued_at, self.spec.cluster_key)

    def apply_stored_moves(self) -> int:
        """Answer for every migration in the state store, after storing the spec's new ones
        (at start, and on reload: `entity migrate` adds rows from another process and the
        config may name more); returns how many there are."""
        stored = StoredMoves(self.spec.store)
        known = {move.local: move.new_eid for move in stored.all()}
        for local, new_eid in self.spec.moves:
            if known.get(local) != new_eid:
                stored.record(Move(local, new_eid, int(time.time())))
        moves = stored.all()
        for move in moves:
            self.core.record_move(move.local, move.new_eid, move.issued_at,
                                  self.spec.cluster_key)
        return len(moves)

    def eid_for(self, local: bytes, persona: Persona | None = None) -> bytes:
        """This node's (cached) EID for a local entity, in the cluster's mint defaults' form
        (full keys unless the cluster directory's mint-defaults.yaml says otherwise)."""
        key = (local, persona)
        eid = self._eids.get(key)
        if eid is None:
            eid = mint_eid(self.spec.cluster_key, self.core.state.cluster_id, local,
                           persona=persona, defaults=self.spec.mint_defaults).encode()
            if len(self._eids) >= EID_CACHE_LIMIT:  # personas may come from call payloads:
                self._eids.clear()  # never let them grow the cache without bound
            self._eids[key] = eid
        return eid

    def cache_sizes(self) -> dict[str, int]:
        """Entries in the runtime's own caches (decoded targets, minted EIDs), for metrics."""
        sizes = {"target_eids": len(self._targets), "own_eids": len(self._eids)}
        if self.mirror_watch is not None:
            sizes["mirrored_copies"] = len(self.mirror_watch.cache.entities())
        return sizes

    def mirror_cache_counters(self) -> dict[str, int]:
        """The mirror cache's counters, for metrics (empty without replication)."""
        return {} if self.mirror_watch is None else dict(self.mirror_watch.counters)

    def _caller_eid(self, local: bytes) -> bytes:
        return self.eid_for(local)  # looked up per call: tests stand in their own eid_for

    def client(self, target: bytes | Eid, interface: ProtocolSpec, *, caller: bytes,
               persona: Persona | None = None, endpoint: int | None = None,
               timeout: float = 30.0) -> TypedClient:
        """A typed client (mercury_rt.client) for `interface` on `target`, calling as local
        entity `caller` (or as its `persona`); the endpoint is learnt from endpoint 0."""
        eid = target.encode() if isinstance(target, Eid) else target
        return TypedClient(NodeRawCalls(self, caller, timeout), eid, interface,
                           persona=persona, endpoint=endpoint, endpoints=self.endpoints)

    def _entity_calls(self, call: IncomingCall) -> NodeEntityCalls:
        """`ctx.calls` for one invocation: as its entity, within its deadline."""
        return NodeEntityCalls(self, call.entity, call.deadline,
                               self.spec.invoke_limits.timeout)

    # ----- serving -----------------------------------------------------------------------

    def _on_inter(self, event: RequestReceived) -> bytes | Awaitable[bytes]:
        if is_first_datagram(event.payload):  # the costly kind: after what else arrived
            return self.first_datagrams.admit(lambda: self._serve(Path.INTER_CLUSTER, event))
        return self._serve(Path.INTER_CLUSTER, event)

    def _on_intra(self, event: RequestReceived) -> bytes | Awaitable[bytes]:
        return self._serve(Path.INTRA_CLUSTER, event)

    def _on_inter_message(self, event: MessageReceived) -> Awaitable[None] | None:
        return self._serve_message(Path.INTER_CLUSTER, event)

    def _on_intra_message(self, event: MessageReceived) -> Awaitable[None] | None:
        if self.membership is not None and self.membership.consume(event.payload, event.peer):
            return None
        return self._serve_message(Path.INTRA_CLUSTER, event)

    def _serve(self, path: Path, event: RequestReceived) -> bytes | Awaitable[bytes]:
        key = _request_key(event.peer, event.request_id)

        def handle(path: Path, payload: bytes, channel: Channel | None) -> NodeAction:
            return self.core.handle_opened(path, payload, channel, event.peer, key,
                                           event.deadline, time.time())

        return self.transit.serve(path, event.payload, event.peer, self._endpoint(path),
                                  handle, self._metered[path])

    def _serve_message(self, path: Path, event: MessageReceived) -> Awaitable[None] | None:
        """A transport one-way message: opened like a request, but nothing can be answered."""
        key = _request_key(event.peer, event.message_id)
        deadline = self._now() + self.spec.invoke_limits.timeout
        outcome = self.transit.responder(path).open(event.payload, event.peer, time.time())
        if not isinstance(outcome, Opened):
            return None
        self.metrics.message(path)
        action = self.core.handle_opened(path, outcome.payload, outcome.channel, event.peer,
                                         key, deadline, time.time(), one_way=True)
        match action:
            case Invoke() | Forward():
                return self._discard(self._carry_out(action))
            case Respond() | ServeState() | FetchKeys() | Drop():
                return None  # a transport one-way message has no reply to carry an answer
            case _:
                assert_never(action)

    def _carry_out(self, action: NodeAction) -> bytes | Awaitable[bytes]:
        match action:
            case Respond():
                return action.reply
            case Invoke():
                return self._invoke(action)
            case Forward():
                return self._forward(action)
            case FetchKeys():
                return self._fetch_keys(action)
            case ServeState():
                return self._serve_state(action)
            case Drop():
                _log.debug("intra_datagram_dropped", reason=action.reason)
                return b""
            case _:
                assert_never(action)

    async def _invoke(self, action: Invoke) -> bytes:
        assert self.invoker is not None
        if action.allow.spend is not None and self.etcd is not None:
            refused = await spend_stamp(self.etcd, self.core, action, action.allow.spend)
            if refused is not None:
                return refused
        elsewhere: IntraStateElsewhere | ReplicatedElsewhere | None = None
        if action.state_at is None and self.etcd is not None:
            elsewhere = ReplicatedElsewhere(self.etcd, self.spec.store, action.call.entity,
                                            action.call.request_id, keep=self._record_keep(action),
                                            cache=self.mirror_watch)
        elif action.state_at is not None:
            assert self.intra is not None
            elsewhere = IntraStateElsewhere(
                self.core, self.transit.caller, self.intra, action.state_at, action.call.entity,
                action.call.deadline or self._now() + self.spec.invoke_limits.timeout,
                self.answer_timeout, self._now)
        result = await self.invoker.invoke(action.call, elsewhere)
        self.connections.after_invoke(action.call, result.ok)
        code = None if result.ok else int(result.code or ErrorCode.NODE_LOCAL_ERROR)
        return self.core.finish(action, result.payload, code, result.message)

    async def _serve_state(self, action: ServeState) -> bytes:
        """Send an entity's image to, or apply changes from, a node running a call on it."""
        assert self.invoker is not None
        request = action.request
        result = self.invoker.state_image(request.entity) if isinstance(request, StateFetch) \
            else await self.invoker.apply_changes(request.changes)
        code = None if result.ok else int(result.code or ErrorCode.STATE_FAILURE)
        return self.core.finish(action, result.payload, code, result.message)

    async def _fetch_keys(self, action: FetchKeys) -> bytes:
        """Fetch a caller's cluster keys from its nodes (or wait for the fetch already under
        way for that cluster), then decide its request again."""
        running = self._key_fetches.get(action.master_hash)
        if running is None:
            running = asyncio.ensure_future(self._fetch_from(action))
            self._key_fetches[action.master_hash] = running
        await asyncio.shield(running)
        result = self._carry_out(self.core.retry(action, time.time()))
        return result if isinstance(result, bytes) else await result

    async def _fetch_from(self, action: FetchKeys) -> None:
        """Ask the addresses in turn until one returns the cluster ID asked for."""
        assert self.inter is not None
        try:
            for address in action.addresses:
                try:
                    reply = await self.inter.call(address, action.query,
                                                  timeout=KEY_FETCH_TIMEOUT,
                                                  answer_timeout=self.answer_timeout)
                except CallError:
                    continue
                if self.core.learn_keys(action.master_hash, reply):
                    _log.info("cluster_keys_fetched", cluster=action.master_hash.hex()[:16])
                    break
        finally:
            self.core.fetch_finished(action.master_hash)
            self._key_fetches.pop(action.master_hash, None)

    async def _forward(self, action: Forward) -> bytes:
        """Forward to a mirror; one that does not acknowledge is passed over for the
        entity's next live mirror (`forward_failed`)."""
        assert self.intra is not None
        while True:
            try:
                reply = await self.transit.caller.call(self.intra, action.address,
                                                       self.core.master_hash, action.payload,
                                                       answer_timeout=self.answer_timeout)
            except CallError as exc:
                after = self.core.forward_failed(action, int(exc.code), exc.message,
                                                 time.time())
                if isinstance(after, bytes):
                    return after
                action = after
                continue
            answered = self.core.forward_answered(action, reply, time.time())
            if isinstance(answered, bytes):
                return self.core.relay(action, answered)
            action = answered

    @staticmethod
    async def _discard(result: bytes | Awaitable[bytes]) -> None:
        if not isinstance(result, bytes):
            await result

    # ----- calling -----------------------------------------------------------------------

    async def call(self, target: bytes | Eid, endpoint: int, operation: int, payload: bytes,
                   *, caller: bytes, timeout: float = 30.0,
                   payments: tuple[PaymentStamp, ...] = (),
                   delegation: tuple[bytes, ...] = (),
                   classification: int | None = None, persona: Persona | None = None) -> bytes:
        """Call an operation on any entity, by EID, as local entity `caller`.

        The same call works whether the target is on this node, elsewhere in this
        cluster, or in another cluster (failover, redirects, cluster-ID refresh and
        migration included). A hashcash demand is met automatically (minted off the event
        loop), and once more if a larger one follows (a signature budget's after a
        policy's, or after the caller's own smaller stamp). `classification` (a level
        rank) protects this call's messages above the caller's transit floor; it can never
        lower it. With `persona`, the caller acts as that persona of itself (the target's
        ctx.caller carries it). Raises NodeCallError with the wire code.
        """
        eid = target if isinstance(target, Eid) else self._targets.decode(target)
        deadline = self._now() + timeout
        key = self.rng.randbytes(8)  # also the request id: the same on every attempt
        request = CallRequest(eid, endpoint, operation, payload, caller, key,
                              payments, delegation, classification=classification,
                              caller_persona=persona, request_id=key)
        call = OutgoingCall(self.planner, request, time.monotonic())
        return unwrap(await self._calls.run(call, deadline))

    async def send(self, target: bytes | Eid, endpoint: int, operation: int, payload: bytes,
                   *, caller: bytes, timeout: float = 30.0,
                   persona: Persona | None = None) -> HeldMessage | bytes:
        """Send a one-way message to any entity, as local entity `caller`.

        Returns the message id when a node of the target acknowledged it now. When no
        node of the target answers, the message is held (durably, if the node's held
        store is), retried with backoff and delivered once when a node is back; the
        returned HeldMessage (state PENDING) is what `message_status` reports later.
        End-to-end refusals (access denied, unknown entity...) raise NodeCallError.
        A message sent as a `persona` is not held (the held store keeps no persona): when
        it cannot be delivered now, NodeCallError says so.
        """
        eid = target if isinstance(target, Eid) else self._targets.decode(target)
        message_id = self.rng.randbytes(16)
        request = CallRequest(eid, endpoint, operation, payload, caller, message_id[:8],
                              message_id=message_id, caller_persona=persona)
        try:
            await self._deliver(request, timeout)
        except NodeCallError as exc:
            if not should_hold(exc.raw_code) or persona is not None:
                raise
            return self._held.hold(request)
        return message_id

    async def call_traced(self, request: CallRequest, timeout: float = 30.0) -> CallTrace:
        """Carry out one call or one-way message (`request.message_id`) once, never
        holding it, and report which node answered: for tools that show the caller what
        happened (`mercury-rt call`). An error reply is returned, not raised; a call that
        reached no node raises NodeCallError."""
        call = OutgoingCall(self.planner, request, time.monotonic())
        reply = await self._calls.run(call, self._now() + timeout)
        return CallTrace(reply, call.answered_by)

    async def resolve_name(self, name: str, naming: bytes, *, caller: bytes,
                           timeout: float = 10.0) -> bytes:
        """The EID bytes `name` (`local@cluster`) stands for, asked of the naming entity
        `naming` (an EID) as local entity `caller`; pinned: a later, different answer
        raises NamePinMismatchError (mercury_rt/aio/names.py)."""
        return await resolve_name(self, self.name_pins, name, naming, caller=caller,
                                  timeout=timeout)

    def publish_name(self, name: str, eid: bytes, naming_entity: bytes = NAMING_ENTITY) -> None:
        """Publish (or replace) `name` -> `eid` in the naming entity's state on this node
        (it must be served here, e.g. by the app mercury_rt.apps.naming); every mirror of
        the naming entity should be told, as with `migrate`."""
        with self.spec.store.writing() as txn:
            set_name(txn, naming_entity, name, eid)

    async def run_call(self, request: CallRequest, timeout: float) -> NodeReply:
        """Carry out one call prepared by the caller (connections build theirs with the
        connection field); its reply, or NodeCallError when no node took it."""
        call = OutgoingCall(self.planner, request, time.monotonic())
        return await self._calls.run(call, self._now() + timeout)

    def message_status(self, message_id: bytes) -> HeldMessage:
        """A held message's state (PENDING, DELIVERED, EXPIRED, REFUSED); HeldError if unknown."""
        return self.held.status(message_id)

    async def message_settled(self, message_id: bytes) -> HeldMessage:
        """Wait until a held message is no longer PENDING; returns its final record."""
        return await self._held.settled(message_id)

    def held_messages(self, sender: bytes) -> list[HeldMessage]:
        """Every message `sender` has held at this node, oldest first."""
        return self.held.for_sender(sender)

    async def _deliver(self, request: CallRequest, timeout: float) -> None:
        """One delivery attempt of a one-way message; raises NodeCallError."""
        call = OutgoingCall(self.planner, request, time.monotonic())
        unwrap(await self._calls.run(call, self._now() + timeout))

    def _endpoint(self, path: Path) -> TransportEndpoint:
        endpoint = self.intra if path is Path.INTRA_CLUSTER else self.inter
        assert endpoint is not None, "the node has not started"
        return endpoint

    def _record_keep(self, action: Invoke) -> int | None:
        """A one-way message's etcd record is kept as long as its id is remembered here
        (a sender may resend it until then); a request's for `record_ttl`."""
        if action.call.kind is not OperationKind.MESSAGE:
            return None
        return max(1, int(self.spec.delivered_settings.retention))
    def _mirrors(self, entity: bytes) -> bool:
        """Whether this node's apps attached `entity` (the mirror cache keeps only those)."""
        with self.spec.store.reading() as view:
            return entity_exists(view, entity)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()


def default_answer_timeout(transport: TransportConfig) -> float:
    """Two initial retransmission timeouts (docs/operator-guide.md states this); the
    transport sends an unacknowledged request at least 12 times within it (calling.py)."""
    return 2 * transport.initial_rto


def _request_key(peer: Addr, request_id: int) -> bytes:
    return f"{peer[0]}|{peer[1]}|{request_id}".encode()
