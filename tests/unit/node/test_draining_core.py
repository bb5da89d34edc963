"""A draining node core (6.11): requests from the network get NODE_DRAINING (node-local,
with the newer cluster ID for a caller holding an older one), calls of its own entities
still run, and a front node whose mirror answers NODE_DRAINING passes the request on."""

from __future__ import annotations

import random

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.identity import ClusterId, Eid
from mercury_rt.core.node import (
    CallPlanner,
    CallRequest,
    Forward,
    GotReply,
    NodeReply,
    NodeRequest,
    OutgoingCall,
    Respond,
    SendIntraStep,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.routing import NODE_LOCAL_CODES, Path
from tests.unit.node.test_forward_failover import _forward, _front


def _sealed_request(core_master: bytes, target: bytes, version: int) -> bytes:
    vouched = Principal(core_master, b"alice")
    return encode_operation(NodeRequest(target, 1, 2, b"", version=version,
                                        vouched=vouched).body())


def test_a_draining_node_turns_network_requests_away_with_a_node_local_code() -> None:
    core, dave = _front()
    core.draining = True
    current = core.state.cluster_id.version
    for version, bundled in ((current, False), (current - 1, True)):
        action = core.handle(Path.INTRA_CLUSTER, _sealed_request(core.master_hash, dave,
                                                                 version),
                             b"k", 10.0, 0.0, sealed=True)
        assert isinstance(action, Respond)
        reply = decode_reply(action.reply)
        assert reply.code == ErrorCode.NODE_DRAINING and reply.code in NODE_LOCAL_CODES
        assert (reply.cluster_id is not None) is bundled
        if bundled:
            assert reply.cluster_id is not None
            assert ClusterId.decode(reply.cluster_id) == core.state.cluster_id


def test_calls_of_the_draining_nodes_own_entities_still_run() -> None:
    core, dave = _front()
    core.draining = True
    assert isinstance(_forward(core, dave), Forward), "in-flight work may still call out"


def test_a_mirror_answering_node_draining_is_passed_over_for_the_next_live_one() -> None:
    core, dave = _front()
    first = _forward(core, dave)
    draining = NodeReply(int(ErrorCode.NODE_DRAINING), message="draining").encode()
    tried = [first.node_id]
    action: Forward | bytes = first
    while isinstance(action, Forward):
        action = core.forward_answered(action, draining, 0.0)
        if isinstance(action, Forward):
            tried.append(action.node_id)
    assert sorted(tried) == sorted({first.node_id, *first.fallbacks})
    assert decode_reply(action).code == ErrorCode.NODE_DRAINING, "then the caller moves on"
    answer = NodeReply(payload=b"ok").encode()
    assert core.forward_answered(_forward(core, dave), answer, 0.0) == answer


def test_a_local_callers_call_to_a_draining_mirror_goes_to_the_next_one() -> None:
    """Within the cluster (no contact state machine): a 516 from the chosen mirror sends the
    same call to each other live mirror in turn; when all drain, the caller sees 516."""
    core, dave = _front()
    planner = CallPlanner(core, random.Random(0), answer_timeout=0.5,
                          caller_eid=lambda local: b"")
    call = OutgoingCall(planner, CallRequest(Eid.decode(dave), 1, 2, b"", b"alice", b"k"), 0.0)
    step = call.start()
    draining = NodeReply(int(ErrorCode.NODE_DRAINING), message="draining").encode()
    sent_to = []
    while isinstance(step, SendIntraStep):
        sent_to.append(step.address)
        step = call.on_reply(draining)
    assert len(set(sent_to)) == len(sent_to) == 3, "each mirror once"
    assert isinstance(step, GotReply) and step.reply.code == ErrorCode.NODE_DRAINING
    again = OutgoingCall(planner, CallRequest(Eid.decode(dave), 1, 2, b"", b"alice", b"k"),
                         0.0)
    first = again.start()
    assert isinstance(first, SendIntraStep)
    ok = again.on_reply(draining)
    assert isinstance(ok, SendIntraStep)
    done = again.on_reply(NodeReply(payload=b"fine").encode())
    assert isinstance(done, GotReply) and done.reply.payload == b"fine"
