"""Seeded two-cluster simulation of the routing core: contact, routing, replies, held messages.

Cluster X's node calls entity `svc` in cluster Y (nodes Y1 front, Y2 and Y3 mirrors). Nodes
crash, restart and change address; Y publishes a new cluster-ID version when an address
changes, and the caller learns it from a bundled reply. One-way messages that find no node
are held and delivered exactly once when a node is back. No sockets, no real time: a seeded
rng drives loss, and every reply crosses the routing-reply codec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import MemorySpentStore, SpendResult
from mercury_rt.core.identity import Endpoint, endpoint_key
from mercury_rt.core.node import (
    HeldQueue,
    HeldState,
    MemoryHeldStore,
    RetryPolicy,
)
from mercury_rt.core.routing import (
    Answered,
    ClusterIdReplaced,
    ClusterView,
    Contact,
    ContactEvent,
    Failed,
    ForwardTo,
    NoAnswer,
    NodeInfo,
    NodeLocalError,
    NotMirroredChoice,
    RequestSummary,
    RoutingConfig,
    RunHere,
    RunWithRemoteState,
    Succeeded,
    TryAddress,
    decide_route,
    decode_routing_reply,
    reply_for_decision,
    reply_to_event,
)
from tests.routing_support import FakeClusterId, FakeServerAddress, addr, supersedes

CLUSTER_Y = b"\x01cluster-y"


@dataclass
class YNode:
    name: bytes
    address: FakeServerAddress
    up: bool = True


@dataclass
class ClusterY:
    config: RoutingConfig
    nodes: dict[bytes, YNode] = field(default_factory=dict)
    versions: list[FakeClusterId] = field(default_factory=list)
    executions: list[bytes] = field(default_factory=list)  # request ids run by svc
    inbox: list[bytes] = field(default_factory=list)  # one-way message ids accepted by svc
    dedup: MemorySpentStore = field(default_factory=MemorySpentStore)  # delivered ids
    repeats: int = 0  # one-way repeats the receiver dropped (lost acknowledgements)

    @property
    def current(self) -> FakeClusterId:
        return self.versions[-1]

    def publish(self) -> None:
        """A node's address changed: new cluster-ID version listing every node."""
        addrs = tuple(n.address for n in self.nodes.values())
        self.versions.append(FakeClusterId(len(self.versions) + 1, addrs, CLUSTER_Y))

    def view(self, local: bytes) -> ClusterView:
        nodes = {n.name: NodeInfo(n.name, n.up, n.address) for n in self.nodes.values()}
        return ClusterView(local, self.current.version, nodes,
                           {b"svc": frozenset({b"Y2", b"Y3"})}, {})

    def node_at(self, endpoint: Endpoint) -> YNode | None:
        for node in self.nodes.values():
            if node.up and endpoint_key(node.address) == endpoint_key(endpoint):
                return node
        return None

    def serve(self, node: YNode, request_id: bytes, caller_version: int,
              one_way: bytes | None, now: float) -> ContactEvent:
        """What the caller observes from sending this request to `node`."""
        decision = decide_route(RequestSummary(b"svc", request_id, caller_version),
                                self.config, self.view(node.name))
        bundled = self.current if decision.bundle_cluster_id else None
        if isinstance(decision, ForwardTo | RunWithRemoteState):
            target = decision.node_id if isinstance(decision, ForwardTo) \
                else decision.state_node
            if not self.nodes[target].up:
                return NodeLocalError(int(ErrorCode.NODE_LOCAL_ERROR), "mirror went away")
            decision = RunHere(decision.bundle_cluster_id)
        if isinstance(decision, RunHere):
            if one_way is None:
                self.executions.append(request_id)
            elif self.dedup.add_if_absent(one_way, int(now + 3600), now) is SpendResult.ADDED:
                self.inbox.append(one_way)
            else:
                self.repeats += 1
            return Answered("ok", bundled)
        wire = reply_for_decision(decision, b"current").encode()
        return reply_to_event(decode_routing_reply(wire), lambda _: self.current)


class Caller:
    """Cluster X's node: holds Y's cluster ID, calls svc, holds undeliverable messages."""

    def __init__(self, y: ClusterY, seed: int) -> None:
        self.y = y
        self.rng = random.Random(seed)
        self.cluster_id = y.current
        self.held = HeldQueue(MemoryHeldStore(), RetryPolicy(initial_delay=1.0, max_delay=4.0,
                                                             ttl=600.0))
        self.outcomes: list[tuple[float, object]] = []

    def call(self, request_id: bytes, now: float, one_way: bytes | None = None,
             ack_loss: float = 0.0) -> Succeeded | Failed:
        contact = Contact(self.cluster_id, self.rng, supersedes)  # type: ignore[arg-type]
        actions = contact.start()
        while True:
            event: ContactEvent = NoAnswer()
            for action in actions:
                if isinstance(action, ClusterIdReplaced):
                    self.cluster_id = action.cluster_id  # type: ignore[assignment]
                elif isinstance(action, Succeeded | Failed):
                    return action
                elif isinstance(action, TryAddress):
                    node = self.y.node_at(action.endpoint)
                    if node is not None:
                        event = self.y.serve(node, request_id, action.cluster_id_version,
                                             one_way, now)
                        if one_way and isinstance(event, Answered) \
                                and self.rng.random() < ack_loss:
                            event = NoAnswer()  # delivered, but the acknowledgement was lost
            actions = contact.handle(event)

    def send_one_way(self, message_id: bytes, now: float) -> None:
        result = self.call(message_id, now, one_way=message_id)
        if isinstance(result, Failed):
            self.held.hold(message_id, b"x-sender", b"svc", b"payload", now=now, rng=self.rng)

    def retry_held(self, now: float, ack_loss: float) -> None:
        due, _ = self.held.poll(now)
        for record in due:
            result = self.call(record.message_id, now, one_way=record.message_id,
                               ack_loss=ack_loss)
            if isinstance(result, Succeeded):
                self.held.acknowledged(record.message_id, now)
            else:
                self.held.attempt_failed(record.message_id, now, self.rng)


def world(choice: NotMirroredChoice) -> ClusterY:
    y = ClusterY(RoutingConfig(choice))
    y.nodes = {b"Y1": YNode(b"Y1", addr("192.0.2.1", priority=10)),
               b"Y2": YNode(b"Y2", addr("192.0.2.2", priority=20)),
               b"Y3": YNode(b"Y3", addr("192.0.2.3", priority=20))}
    y.publish()
    return y


def run(choice: NotMirroredChoice, seed: int) -> tuple[ClusterY, Caller]:
    y = world(choice)
    caller = Caller(y, seed)
    now, n = 0.0, 0
    while now < 120.0:
        if now == 5.0:
            y.nodes[b"Y1"].up = False
        if now == 10.0:
            y.nodes[b"Y2"].up = y.nodes[b"Y3"].up = False
        if now == 20.0:  # Y2 comes back on a new address; Y publishes version 2
            y.nodes[b"Y2"] = YNode(b"Y2", addr("198.51.100.2", priority=20))
            y.publish()
        if now == 25.0:
            y.nodes[b"Y3"].up = True
        n += 1
        result = caller.call(f"req-{n}".encode(), now)
        caller.outcomes.append((now, result))
        if now < 30.0:
            caller.send_one_way(f"msg-{n}".encode(), now)
        caller.retry_held(now, ack_loss=0.3)
        now += 0.5
    return y, caller


@pytest.mark.parametrize("choice", list(NotMirroredChoice))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_requests_succeed_or_fail_clearly_and_run_at_most_once(choice: NotMirroredChoice,
                                                               seed: int) -> None:
    """Every request ends Succeeded or Failed(500) listing attempts; none runs twice."""
    y, caller = run(choice, seed)
    assert len(y.executions) == len(set(y.executions))
    for now, result in caller.outcomes:
        if isinstance(result, Failed):
            assert 10.0 <= now < 25.0, now  # only while every mirror was down
            assert result.code is ErrorCode.NO_NODE_ANSWERED
            assert "tried:" in result.message and result.attempts
        else:
            assert isinstance(result, Succeeded)
    assert any(isinstance(r, Failed) for _, r in caller.outcomes)  # the outage was felt
    done = [r for _, r in caller.outcomes if isinstance(r, Succeeded)]
    assert len(done) == len(y.executions)  # every success ran exactly once, no failure ran


@pytest.mark.parametrize("choice", list(NotMirroredChoice))
def test_caller_learns_new_cluster_id_and_reaches_moved_node(choice: NotMirroredChoice) -> None:
    """After Y3 returns, a bundled reply brings version 2; the moved Y2 is then reachable."""
    y, caller = run(choice, seed=4)
    assert caller.cluster_id.version == 2
    late = [r for now, r in caller.outcomes if now >= 25.0]
    assert all(isinstance(r, Succeeded) for r in late)
    assert any(isinstance(r, Succeeded) and r.endpoint == y.nodes[b"Y2"].address for r in late)


@pytest.mark.parametrize("seed", [1, 5, 9])
def test_held_messages_delivered_exactly_once_after_return(seed: int) -> None:
    """Messages sent while Y was dark are held, then each accepted by svc exactly once."""
    y, caller = run(NotMirroredChoice.FORWARD, seed)
    held = [f"msg-{i}".encode() for i in range(1, 61)]
    statuses = [caller.held.status(m).state for m in held if m in
                {r.message_id for r in caller.held.for_sender(b"x-sender")}]
    assert statuses and all(s is HeldState.DELIVERED for s in statuses)
    assert len(y.inbox) == len(set(y.inbox))
    assert set(y.inbox) == set(held)  # every message arrived, directly or from the hold
    assert y.repeats > 0  # lost acknowledgements caused resends, and dedup absorbed them
