"""Whole nodes on the simulated network: the real NodeCore and OutgoingCall, no sockets.

`SimNode` puts a node's two transport cores (inter- and intra-cluster, each at its own
simulated address) on a `SimNetwork`, serves requests with synchronous demo handlers
(`/demo/echo/v1`: echo, whoami, note) and makes calls by carrying out `OutgoingCall`
steps, so routing, the gate, failover, redirects, cluster-ID refresh and held messages
all run exactly as in a real node, under seeded loss, crashes and partitions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import assert_never

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed
from lithium.context import CLOSE, OPEN, IncomingCall
from mercury_rt.apps.echo import RAN
from mercury_rt.core.connections import ConnectionField, ConnectionForm, OpenReply
from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import ClusterId, Eid, mint_eid
from mercury_rt.core.membership import NodeIdentity
from mercury_rt.core.node import (
    CallPlanner,
    CallRequest,
    CallStep,
    Drop,
    FetchKeys,
    FetchKeysStep,
    Forward,
    GaveUp,
    GotReply,
    HeldQueue,
    HeldStore,
    Invoke,
    NeedStamp,
    NodeAction,
    NodeCore,
    OutgoingCall,
    Respond,
    RetryPolicy,
    RunHereStep,
    SendInterStep,
    SendIntraStep,
    ServeState,
    StateFetch,
    decode_image,
    encode_state_commit,
    encode_state_fetch,
    pay_for,
    settle_attempt,
    should_hold,
    state_failure,
)
from mercury_rt.core.routing import ClusterView, Path, RoutingConfig
from mercury_rt.core.transit import AlgorithmId
from mercury_rt.core.transit.ends import build_transit_ends
from mercury_rt.core.transit.exchange import Done, ExchangeStep, Failed, SecureExchange, Send
from mercury_rt.core.transit.responder import (
    Answered,
    Dropped,
    Opened,
    Plain,
)
from mercury_rt.core.transport import (
    Addr,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
    TransportEvent,
)
from mercury_rt.core.transport import (
    CallFailed as TransportCallFailed,
)
from mercury_rt.testing.network import SimNetwork
from policy.model import Policy
from tungsten.staged import EntityChanges

DEFAULT_ALGORITHM = int(AlgorithmId.X25519_AES256GCM)
OPEN_OPERATION = 4
"""The demo entities' CONNECTION operation (endpoint 1) in the simulator."""

Outcome = Callable[[bytes | None, int | None, str], None]
"""(reply payload, error code, message): called once when a call ends."""


@dataclass
class Executions:
    """What ran where: the ground truth a simulation test checks."""

    runs: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def ran(self, key: str, node: str) -> None:
        """Record that `node` ran the request tagged `key`."""
        self.runs.setdefault(key, []).append(node)


@dataclass
class SimNodeSpec:
    """Everything a simulated node is built from; reused to restart it."""

    node_id: str
    cluster_key: Ed25519PrivateKey
    cluster_ids: list[ClusterId]
    inter: Addr
    intra: Addr
    routing: RoutingConfig
    view: ClusterView
    intra_addresses: dict[bytes, Addr]
    policy: Policy
    mirrors: tuple[str, ...]
    held_store: HeldStore
    transport: TransportConfig
    answer_timeout: float
    held_policy: RetryPolicy


class _Port:
    """One of a node's addresses on the simulated network."""

    def __init__(self, node: SimNode, transport: Transport, path: Path) -> None:
        self.node, self.transport, self.path = node, transport, path

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        self.transport.receive_datagram(data, peer, now)
        self.node.drain(now)

    def handle_timer(self, now: float) -> None:
        self.transport.handle_timer(now)
        self.node.drain(now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        return self.transport.datagrams_to_send()

    def get_timer(self) -> float | None:
        timers = [t for t in (self.transport.get_timer(),
                              self.node.next_held_wakeup() if self.path is Path.INTER_CLUSTER
                              else None) if t is not None]
        return min(timers) if timers else None


class SimNode:
    """A node on a SimNetwork. See module docstring."""

    def __init__(self, net: SimNetwork, spec: SimNodeSpec, executions: Executions) -> None:
        self.net, self.spec, self.executions = net, spec, executions
        rng = random.Random(net.rng.getrandbits(64))
        self.rng = rng
        self.core = NodeCore.for_cluster(
            spec.cluster_ids, spec.cluster_key, spec.policy, spec.view, spec.intra_addresses,
            routing=spec.routing, spent=MemorySpentStore(), seal_prefix=rng.randbytes(4))
        self.planner = CallPlanner(self.core, rng, caller_eid=self.eid_for,
                                   answer_timeout=spec.answer_timeout)
        self._build_transit(net.clock.now)
        self.inter = net.transport(spec.transport)
        self.intra = net.transport(spec.transport)
        self.held = HeldQueue(spec.held_store, spec.held_policy)
        self.held.recover()
        self._pending: dict[tuple[int, int], Callable[[TransportEvent], None]] = {}
        self.connections: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
        """(entity, connection id) -> the peer entity (cluster, local): each end's map
        (the demo interface on endpoint 1), as lithium records it (docs/protocol.md 5.9)."""
        net.add(spec.inter, _Port(self, self.inter, Path.INTER_CLUSTER))
        net.add(spec.intra, _Port(self, self.intra, Path.INTRA_CLUSTER))

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self.spec.node_id

    def _build_transit(self, now: float) -> None:
        """This node's transit ends (core/transit/ends.py), as the node builds them, with
        the simulation's seeded randomness and clock."""
        node_key = Ed25519PrivateKey.from_private_bytes(self.rng.randbytes(32))
        identity = NodeIdentity.issue(self.spec.node_id.encode(), node_key,
                                      self.spec.cluster_key, self.core.master_hash)
        ends = build_transit_ends(self.spec.cluster_key, self.core.master_hash,
                                  self.core.sources.cluster_key, identity,
                                  self.rng.randbytes, now)
        self.responders = {Path.INTER_CLUSTER: ends.inter, Path.INTRA_CLUSTER: ends.intra}
        self.initiator = ends.initiator

    def eid_for(self, local: bytes) -> bytes:
        """A full-keys EID for a local entity."""
        return mint_eid(self.spec.cluster_key, self.core.state.cluster_id, local).encode()

    # ----- serving -----------------------------------------------------------------------

    def drain(self, now: float) -> None:
        """Handle every event both transports produced."""
        for transport, path in ((self.inter, Path.INTER_CLUSTER),
                                (self.intra, Path.INTRA_CLUSTER)):
            while (event := transport.next_event()) is not None:
                self._on_event(transport, path, event, now)
        self._retry_held(now)

    def _on_event(self, transport: Transport, path: Path, event: TransportEvent,
                  now: float) -> None:
        match event:
            case RequestReceived():
                self._on_request(transport, path, event, now)
            case MessageReceived():
                return
            case ReplyReceived() | MessageDelivered() | TransportCallFailed():
                waiter = self._pending.pop((id(transport), event.handle), None)
                if waiter is not None:
                    waiter(event)
            case _:
                assert_never(event)

    def _on_request(self, transport: Transport, path: Path, event: RequestReceived,
                    now: float) -> None:
        """Open the request's transit envelope, let the core decide, seal the answer. A
        request not answered at once (forwarded, or waiting for remote state) is
        acknowledged at once, as the node's endpoint does for a handler that awaits
        (aio/endpoint.py), so the caller polls instead of failing over."""
        answered = False

        def reply(data: bytes) -> None:
            nonlocal answered
            answered = True
            transport.reply(event.peer, event.request_id, data, self.net.clock.now)

        self._open_and_carry_out(transport, path, event, now, reply)
        if not answered:
            transport.acknowledge(event.peer, event.request_id)

    def _open_and_carry_out(self, transport: Transport, path: Path, event: RequestReceived,
                            now: float, reply: Callable[[bytes], None]) -> None:
        key = f"{event.peer}|{event.request_id}".encode()
        responder = self.responders[path]
        outcome = responder.open(event.payload, event.peer, now)
        match outcome:
            case Answered():
                reply(outcome.reply)
            case Dropped():
                reply(b"")
            case Plain():
                self._carry_out(self.core.handle_opened(path, outcome.payload, None,
                                                        event.peer, key, event.deadline, now),
                                now, reply)
            case Opened():
                channel = outcome.channel
                if channel.address_validated:
                    transport.validate_address(event.peer, now)
                action = self.core.handle_opened(path, outcome.payload, channel, event.peer,
                                                 key, event.deadline, now)
                self._carry_out(action, now,
                                lambda data: reply(responder.seal(channel, data)))
            case _:
                assert_never(outcome)

    def _carry_out(self, action: NodeAction, now: float,
                   answer: Callable[[bytes], object]) -> None:
        match action:
            case Respond():
                answer(action.reply)
            case Invoke() if action.state_at is not None:
                self._invoke_with_remote_state(action, answer)
            case Invoke():
                payload, code, message = self._invoke(action)
                answer(self.core.finish(action, payload, code, message))
            case ServeState():
                payload, code, message = self._serve_state(action)
                answer(self.core.finish(action, payload, code, message))
            case Forward():
                self._forward(action, answer)
            case FetchKeys():  # simulated callers send full-keys EIDs
                self.core.fetch_finished(action.master_hash)
                self._carry_out(self.core.retry(action, now), now, answer)
            case Drop():
                answer(b"")
            case _:
                assert_never(action)

    def _forward(self, action: Forward, answer: Callable[[bytes], object]) -> None:
        def relayed(event: TransportEvent) -> None:
            if isinstance(event, ReplyReceived):
                answer(self.core.relay(action, event.payload))
            elif isinstance(event, TransportCallFailed):
                after = self.core.forward_failed(action, event.code, event.detail,
                                                 self.net.clock.now)
                if isinstance(after, bytes):
                    answer(after)
                else:
                    self._forward(after, answer)
        self._secure_send(self.intra, action.address, self.core.master_hash, action.payload,
                          self.spec.answer_timeout, relayed)

    def _invoke(self, action: Invoke) -> tuple[bytes | None, int | None, str]:
        call = action.call
        entity = call.entity.decode()
        if call.connection is not None and entity in self.spec.mirrors:
            return self._invoke_on_connection(call)
        if entity not in self.spec.mirrors or call.endpoint != 1:
            return None, int(ErrorCode.ENTITY_NOT_ON_NODE), "not here"
        if call.operation == 1:
            text = str(loads_typed(str, call.payload))
            self.executions.ran(text, self.node_id)
            return dumps_typed(str, text), None, ""
        if call.operation == 2:
            return dumps_typed(str, self.node_id), None, ""
        if call.operation == 3:
            self.executions.notes.setdefault(self.node_id, []).append(
                str(loads_typed(str, call.payload)))
            return b"", None, ""
        return None, int(ErrorCode.UNKNOWN_OPERATION), "no such operation"

    def _invoke_on_connection(self, call: IncomingCall) -> tuple[bytes | None, int | None, str]:
        """Open (operation OPEN_OPERATION accepts, offering the demo interface on endpoint
        1), use (echo, recorded once per run) or close a connection."""
        assert call.connection is not None and call.connection_id is not None
        key, caller = (call.entity, call.connection_id), call.originator or call.caller
        peer = (caller.cluster, caller.local)
        known = self.connections.get(key)
        if call.connection.form == OPEN:
            if known not in (None, peer):
                return None, int(ErrorCode.CONNECTION_ID_IN_USE), "another peer's id"
            self.connections[key] = peer
            reply = OpenReply(dumps_typed(str, self.node_id), ((1, "/demo/echo/v1"),))
            return reply.encode(), None, ""
        if known is None:
            return None, int(ErrorCode.CONNECTION_UNKNOWN), "no such connection here"
        if known != peer:
            return None, int(ErrorCode.CONNECTION_NOT_PEER), "not the peer"
        if call.connection.form == CLOSE:
            del self.connections[key]
            return dumps_typed(None, None), None, ""
        if call.endpoint != 1 or call.operation != 1:
            return None, int(ErrorCode.UNKNOWN_OPERATION), "no such operation"
        text = str(loads_typed(str, call.payload))
        self.executions.ran(text, self.node_id)
        return dumps_typed(str, text), None, ""

    def open_connection(self, target: bytes, caller: bytes, connection_id: bytes, *,
                        done: Outcome, timeout: float = 60.0) -> None:
        """Open a connection from local `caller` to `target` (its OPEN_OPERATION),
        recording this end's map first so calls back are taken at once."""
        eid = Eid.decode(target)
        principal = eid.principal()
        self.connections[(caller, connection_id)] = (principal.cluster, principal.local)
        field = ConnectionField(ConnectionForm.OPEN, connection_id, ((1, "/demo/echo/v1"),))
        self.call(target, OPEN_OPERATION, b"", caller=caller, done=done, timeout=timeout,
                  connection=field)

    def _invoke_with_remote_state(self, action: Invoke, answer: Callable[[bytes], object]) -> None:
        """Remote-state routing: fetch the entity's image from the state node, run the
        demo handler here, and for echo commit its record there (docs/protocol.md 6.10)."""
        call, address = action.call, action.state_at
        assert address is not None

        def finish(payload: bytes | None, code: int | None, message: str = "") -> None:
            answer(self.core.finish(action, payload, code, message))

        def ask(request: bytes, committing: bool, then: Callable[[bytes], None]) -> None:
            def on_event(event: TransportEvent) -> None:
                try:
                    then(self._state_reply(event, committing))
                except MercuryError as exc:
                    finish(None, int(exc.code or ErrorCode.STATE_FAILURE), exc.message)
            remaining = (call.deadline or self.net.clock.now + 5.0) - self.net.clock.now
            self._secure_send(self.intra, address, self.core.master_hash, request,
                              self.spec.answer_timeout, on_event, max(remaining, 0.001))

        def fetched(image: bytes) -> None:
            decode_image(call.entity, image)
            if call.endpoint != 1 or call.operation not in (1, 2):
                finish(None, int(ErrorCode.UNKNOWN_OPERATION), "no such operation")
            elif call.operation == 2:
                finish(dumps_typed(str, self.node_id), None)
            else:
                text = str(loads_typed(str, call.payload))
                changes = EntityChanges(call.entity, (), (), (
                    (Symbol(RAN), (text,), (self.node_id,)),))
                ask(encode_state_commit(changes), True,
                    lambda _: finish(dumps_typed(str, text), None))
        ask(encode_state_fetch(call.entity), False, fetched)

    def _state_reply(self, event: TransportEvent, committing: bool) -> bytes:
        """The state node's answer, or the error it becomes, as aio/remote_state.py maps it."""
        if isinstance(event, TransportCallFailed):
            raise state_failure(event.code, event.detail, committing=committing, answered=False)
        assert isinstance(event, ReplyReceived)
        return self.core.state_reply(event.payload, committing=committing)

    def _serve_state(self, action: ServeState) -> tuple[bytes | None, int | None, str]:
        """The state node's side: an (empty) image, or a commit recorded as the run."""
        request = action.request
        if isinstance(request, StateFetch):
            return cbor.dumps([]), None, ""
        for section, key, value in request.changes.writes:
            if section == Symbol(RAN) and value is not None:
                self.executions.ran(str(key[0]), str(value[0]))
        return b"", None, ""

    # ----- calling -----------------------------------------------------------------------

    def call(self, target: bytes, operation: int, payload: bytes, *, caller: bytes,
             done: Outcome, timeout: float = 60.0, message_id: bytes | None = None,
             connection: ConnectionField | None = None) -> None:
        """Start a call (on a connection, with `connection`); `done` runs once with its
        outcome."""
        request = CallRequest(Eid.decode(target), 1, operation, payload, caller,
                              self.rng.randbytes(8), message_id=message_id,
                              connection=connection)
        driver = OutgoingCall(self.planner, request, self.net.clock.now)
        self._step(driver, driver.start(), self.net.clock.now + timeout, done)

    def send(self, target: bytes, payload: bytes, *, caller: bytes,
             done: Callable[[str], None]) -> None:
        """A one-way note (op 3); held when unreachable. `done` gets delivered/held/error."""
        message_id = self.rng.randbytes(16)

        def outcome(_: bytes | None, code: int | None, message: str) -> None:
            if code is None:
                done("delivered")
            elif should_hold(code):
                self.held.hold(message_id, caller, target, cbor.dumps([payload]),
                               now=self.net.clock.now, rng=self.rng)
                done("held")
            else:
                done(f"error {code}: {message}")
        self.call(target, 3, payload, caller=caller, done=outcome, message_id=message_id)

    def next_held_wakeup(self) -> float | None:
        """When a held message is next due (the simulator wakes the node then)."""
        return self.held.next_wakeup()

    def _retry_held(self, now: float) -> None:
        due, _ = self.held.poll(now)
        for record in due:
            value = cbor.loads(record.payload)
            assert isinstance(value, list) and isinstance(value[0], bytes)

            def outcome(_: bytes | None, code: int | None, message: str,
                        mid: bytes = record.message_id) -> None:
                settle_attempt(self.held, mid, code, self.net.clock.now, self.rng)
            self.call(record.target, 3, value[0], caller=record.sender, done=outcome,
                      message_id=record.message_id)

    def _step(self, driver: OutgoingCall, step: CallStep, deadline: float,
              done: Outcome) -> None:
        while True:
            match step:
                case GotReply(reply=reply):
                    done(reply.payload if reply.ok else None, None if reply.ok else reply.code,
                         reply.message)
                    return
                case GaveUp():
                    done(None, step.code, step.message)
                    return
                case NeedStamp():
                    step = driver.on_stamp(pay_for(step, self.net.clock.now,
                                                   self.rng.randbytes(12)))
                case RunHereStep():
                    replies: list[bytes] = []
                    action = self.core.handle_local(step.payload, driver.request_key, deadline,
                                                    self.net.clock.now)
                    self._carry_out(action, self.net.clock.now, replies.append)
                    if not replies:
                        done(None, int(ErrorCode.NODE_LOCAL_ERROR),
                             "local forwarding unsupported")
                        return
                    step = driver.on_reply(replies[0])
                case SendIntraStep() | SendInterStep() | FetchKeysStep():
                    self._send_step(driver, step, deadline, done)
                    return
                case _:
                    assert_never(step)

    def _send_step(self, driver: OutgoingCall,
                   step: SendIntraStep | SendInterStep | FetchKeysStep,
                   deadline: float, done: Outcome) -> None:
        remaining = deadline - self.net.clock.now
        if remaining <= 0:
            done(None, int(ErrorCode.TIMEOUT), "call deadline passed")
            return
        transport = self.intra if isinstance(step, SendIntraStep) else self.inter
        answer = None if isinstance(step, SendIntraStep) else min(step.answer_timeout, remaining)

        def on_event(event: TransportEvent) -> None:
            now = self.net.clock.now
            if isinstance(event, ReplyReceived):
                self._step(driver, driver.on_reply(event.payload), deadline, done)
            elif isinstance(event, TransportCallFailed):
                self._step(driver, driver.on_failure(event.code, event.detail, now),
                           deadline, done)
        timeout = min(remaining, self.spec.transport.max_ttl)
        if isinstance(step, FetchKeysStep):  # in clear: the caller verifies the answer
            self._send(transport, step.address, step.payload, answer, on_event, timeout)
            return
        cluster = self.core.master_hash if isinstance(step, SendIntraStep) else step.cluster
        self._secure_send(transport, step.address, cluster, step.payload, answer, on_event,
                          timeout, step.algorithm)

    def _secure_send(self, transport: Transport, address: Addr, cluster: bytes,
                     payload: bytes, answer_timeout: float | None,
                     on_event: Callable[[TransportEvent], None],
                     timeout: float | None = None,
                     algorithm: int = DEFAULT_ALGORITHM) -> None:
        """Send a node message in a transit session (SecureExchange); `on_event` gets a
        ReplyReceived with the opened reply, or a CallFailed."""
        exchange = SecureExchange(self.initiator, address, cluster, algorithm, payload)

        def follow(step: ExchangeStep) -> None:
            match step:
                case Done():
                    on_event(ReplyReceived(0, step.reply))
                case Failed():
                    on_event(TransportCallFailed(0, int(step.code), step.message))
                case Send():
                    self._send(transport, address, step.datagram, answer_timeout, answered,
                               timeout)

        def answered(event: TransportEvent) -> None:
            if isinstance(event, ReplyReceived):
                follow(exchange.answered(event.payload, self.net.clock.now))
            else:
                on_event(event)

        follow(exchange.start(self.net.clock.now))

    def _send(self, transport: Transport, address: Addr, payload: bytes,
              answer_timeout: float | None, on_event: Callable[[TransportEvent], None],
              timeout: float | None = None) -> None:
        handle = transport.call(address, payload, self.net.clock.now, timeout, answer_timeout)
        self._pending[(id(transport), handle)] = on_event
