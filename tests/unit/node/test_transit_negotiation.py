"""The design's transit negotiation end to end on the pure call machine (docs/protocol.md
8.8): the caller picks the cheapest algorithm its policy trusts for the message, the
receiver refuses one too weak for the operation with 707 and its list, the caller retries
once with the cheapest common one, and the handler sees the message's classification.

The caller is cluster C's real planner and call machine; the receiver is cluster S's real
NodeCore, handed each attempt's algorithm as its session would (tests/unit/transit test
the sessions themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import ASSUMED_PROVEN
from mercury_rt.core.identity import AcceptedAlgorithm, MintOptions, OperationHint, mint_eid
from mercury_rt.core.node import (
    CallRequest,
    GaveUp,
    GotReply,
    Invoke,
    NodeCore,
    NodeReply,
    OutgoingCall,
    Respond,
    SendInterStep,
    SendIntraStep,
)
from mercury_rt.core.routing import NodeInfo, Path
from policy.load import parse_policy
from tests.forgery_support import (
    C_ADDRESS,
    C_CID,
    C_HOST,
    C_KEY,
    S_ADDRESS,
    S_CID,
    S_HOST,
    S_KEY,
    caller_planner,
    echo,
    genuine_eid,
)
from tests.membership_node_support import make_core

NOW = 1_700_000_000.0

RECEIVER_POLICY = """
version: 1
levels: [public, secret]
unknown_cluster_clearance: secret
entities:
  svc:
    clearance: secret
    endpoints:
      1:
        operations:
          1: {transit: secret}
transit:
  inter_cluster: {public: [1, 2], secret: [3]}
"""

CALLER_POLICY = """
version: 1
levels: [public, secret]
entities:
  alice: {clearance: public}
  boss: {clearance: secret}
  pub: {clearance: public}
transit:
  inter_cluster: {public: [1, 2], secret: [INTER_SECRET]}
"""


def receiver() -> NodeCore:
    core = make_core(b"s1", S_CID, S_KEY, {b"s1": NodeInfo(b"s1", True, S_ADDRESS)},
                     {b"s1": (S_HOST, 7001)}, {b"svc": frozenset({b"s1"})})
    core.state.policy = parse_policy(RECEIVER_POLICY, "receiver.yaml")
    return core


def caller(inter_secret: str = "3") -> NodeCore:
    core = make_core(b"c1", C_CID, C_KEY, {b"c1": NodeInfo(b"c1", True, C_ADDRESS),
                                           b"c2": NodeInfo(b"c2", True, C_ADDRESS)},
                     {b"c1": (C_HOST, 7001), b"c2": (C_HOST, 7002)},
                     {b"pub": frozenset({b"c2"})})
    core.state.policy = parse_policy(CALLER_POLICY.replace("INTER_SECRET", inter_secret),
                                     "caller.yaml")
    return core


@dataclass
class Run:
    """Each attempt's algorithm, and what the receiver's handler was asked to run."""

    algorithms: list[int] = field(default_factory=list)
    invoked: list[Invoke] = field(default_factory=list)


def run(call: OutgoingCall, node: NodeCore, record: Run) -> GotReply | GaveUp:
    step = call.start()
    while not isinstance(step, GotReply | GaveUp):
        assert isinstance(step, SendInterStep), step
        record.algorithms.append(step.algorithm)
        action = node.handle(Path.INTER_CLUSTER, step.payload, step.payload[-16:], 1e12, NOW,
                             proof=ASSUMED_PROVEN, transit=step.algorithm)
        if isinstance(action, Invoke):
            record.invoked.append(action)
            step = call.on_reply(node.finish(action, b"ran", None))
        else:
            assert isinstance(action, Respond), action
            step = call.on_reply(action.reply)
    return step



def test_a_too_weak_algorithm_is_refused_then_the_call_retries_once_stronger() -> None:
    record = Run()
    end = run(OutgoingCall(caller_planner(caller()), echo(genuine_eid()), NOW), receiver(),
              record)
    assert isinstance(end, GotReply) and end.reply.ok, end
    assert record.algorithms == [2, 3], "cheapest first, then the receiver's list"
    assert [i.call.transit for i in record.invoked] == [1], "the handler sees 'secret'"


def test_no_common_algorithm_fails_with_709_and_nothing_runs() -> None:
    record = Run()
    end = run(OutgoingCall(caller_planner(caller(inter_secret="")), echo(genuine_eid()), NOW),
              receiver(), record)
    assert isinstance(end, GaveUp) and end.code == ErrorCode.NO_COMMON_ALGORITHM, end
    assert record.algorithms == [2] and record.invoked == []


def test_an_eid_hint_avoids_the_first_rejection() -> None:
    hinted = mint_eid(S_KEY, S_CID, b"svc", options=MintOptions(),
                      hints=(OperationHint(1, 1, 1, 0),),
                      algorithms=(AcceptedAlgorithm(2, 0), AcceptedAlgorithm(3, 1)))
    record = Run()
    end = run(OutgoingCall(caller_planner(caller()), echo(hinted), NOW), receiver(), record)
    assert isinstance(end, GotReply) and end.reply.ok
    assert record.algorithms == [3]


def test_a_forged_list_cannot_make_the_caller_go_below_its_own_minimum() -> None:
    """A boss (clearance secret) may only use algorithm 3; a 707 listing only 1 and 2 (a
    receiver or a man in the middle lying) ends the call instead of downgrading it."""
    core = caller()
    planner = caller_planner(core)
    call = OutgoingCall(planner, CallRequest(genuine_eid(), 1, 1, b"\x00", b"boss", b"k"), NOW)
    step = call.start()
    assert isinstance(step, SendInterStep) and step.algorithm == 3
    forged = NodeReply(int(ErrorCode.ALGORITHM_TOO_WEAK), acceptable=(1, 2)).encode()
    end = call.on_reply(forged)
    assert isinstance(end, GaveUp) and end.code == ErrorCode.NO_COMMON_ALGORITHM


def test_within_the_cluster_a_message_above_the_targets_clearance_is_never_sent() -> None:
    planner = caller_planner(caller())
    local_pub = mint_eid(C_KEY, C_CID, b"pub")
    boss = OutgoingCall(planner, CallRequest(local_pub, 1, 1, b"\x00", b"boss", b"k"), NOW)
    end = boss.start()
    assert isinstance(end, GaveUp) and end.code == ErrorCode.CLASSIFIED_ABOVE_TARGET
    alice = OutgoingCall(planner, echo(local_pub), NOW).start()
    assert isinstance(alice, SendIntraStep) and alice.algorithm in (1, 2)


def test_a_caller_may_ask_for_more_protection_for_one_call_never_less() -> None:
    planner = caller_planner(caller())
    more = CallRequest(genuine_eid(), 1, 1, b"\x00", b"alice", b"k", classification=1)
    step = OutgoingCall(planner, more, NOW).start()
    assert isinstance(step, SendInterStep) and step.algorithm == 3
    less = CallRequest(genuine_eid(), 1, 1, b"\x00", b"boss", b"k", classification=0)
    step = OutgoingCall(planner, less, NOW).start()
    assert isinstance(step, SendInterStep) and step.algorithm == 3, "boss's floor is secret"
