"""The caller verifies before it trusts (issue 11, "Verify before trusting"), step by step on
the pure call machine: the target EID must verify to its master hash before its cluster ID
or addresses are used; hashes-only EIDs get their keys fetched from the target's cluster;
bundled cluster IDs and redirects count only when they verify or are listed.

The network is played by hand: cluster S's node is a real `NodeCore` answering at S's
address, the forger's address answers what a test says (nothing by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import ASSUMED_PROVEN
from mercury_rt.core.identity import (
    ClusterId,
    Eid,
    Endpoint,
    IdentityError,
    ServerAddress,
    change_addresses,
)
from mercury_rt.core.node import (
    CallPlanner,
    CallStep,
    FetchKeysStep,
    GaveUp,
    GotReply,
    Invoke,
    NodeCore,
    NodeReply,
    OutgoingCall,
    Respond,
    SendInterStep,
)
from mercury_rt.core.routing import NodeInfo, Path
from mercury_rt.core.transport import Addr
from tests.forgery_support import (
    C_CID,
    FORGER_ADDRESS,
    FORGER_HOST,
    FORGERIES,
    S_ADDRESS,
    S_CID,
    S_HOST,
    S_KEY,
    caller_planner,
    echo,
    forged_cluster_id,
    forged_eid,
    genuine_eid,
)
from tests.membership_node_support import make_core

NOW = 1_700_000_000.0
S_ADDR: Addr = (S_HOST, 7000)
FORGER: Addr = (FORGER_HOST, 7000)

Responder = Callable[[bytes], bytes | None]
"""What a node at one address answers to a request payload (None: it stays silent)."""


def s_core(cluster_ids: list[ClusterId] | None = None) -> NodeCore:
    """Cluster S's node s1, mirroring `svc`, with S's cluster-ID history."""
    node = b"s1"
    ids = cluster_ids or [S_CID]
    core = make_core(node, ids[0], S_KEY, {node: NodeInfo(node, True, S_ADDRESS)},
                     {node: (S_HOST, 7001)}, {b"svc": frozenset({node})})
    for cid in ids[1:]:
        core.set_cluster_id(cid)
    return core


def serving(core: NodeCore, result: bytes = b"ran at S",
            bundle: bytes | None = None) -> Responder:
    """A responder that is `core`: key queries and routing answered by it, operations run
    (and answered with `result`; `bundle` replaces the cluster ID it bundles)."""
    def respond(payload: bytes) -> bytes:
        action = core.handle(Path.INTER_CLUSTER, payload, payload[-16:], 1e12, NOW,
                             proof=ASSUMED_PROVEN, transit=2)
        if isinstance(action, Respond):
            return action.reply
        assert isinstance(action, Invoke), action
        if bundle is not None:
            return NodeReply(payload=result, cluster_id=bundle).encode()
        return core.finish(action, result, None)
    return respond



def answering(reply: NodeReply) -> Responder:
    return lambda _: reply.encode()


@dataclass
class Wire:
    """Who answers at which address, and every step the call machine took."""

    nodes: dict[Addr, Responder]
    sent: list[tuple[str, Addr]] = field(default_factory=list)

    def run(self, call: OutgoingCall) -> GotReply | GaveUp:
        step: CallStep = call.start()
        while not isinstance(step, GotReply | GaveUp):
            assert isinstance(step, FetchKeysStep | SendInterStep), step
            self.sent.append((type(step).__name__, step.address))
            responder = self.nodes.get(step.address)
            raw = responder(step.payload) if responder is not None else None
            step = (call.on_failure(int(ErrorCode.NO_ANSWER), "silent", NOW) if raw is None
                    else call.on_reply(raw))
        return step

    def to(self, address: Addr) -> list[str]:
        return [kind for kind, a in self.sent if a == address]


def call(planner: CallPlanner, wire: Wire, target: Eid, text: str = "hello") -> GotReply | GaveUp:
    return wire.run(OutgoingCall(planner, echo(target, text), NOW))


def payload_of(end: GotReply | GaveUp) -> bytes | None:
    assert isinstance(end, GotReply), end
    assert end.reply.ok, end.reply
    return end.reply.payload


def identity_code(end: GotReply | GaveUp) -> int:
    assert isinstance(end, GaveUp), end
    assert 300 <= end.code < 400, end
    return end.code


def master() -> bytes:
    return S_CID.master_hash


def holds(planner: CallPlanner, cluster_id: ClusterId) -> bool:
    """Whether the planner's newest cluster ID for S is `cluster_id` (in any form: one
    learnt from an EID carries no cluster-ID signature of its own)."""
    held = planner.known.get(master())
    return held is not None and held.core_message() == cluster_id.core_message()


REFUSED = (ErrorCode.BAD_CLUSTER_KEY_CERT, ErrorCode.KEYS_UNAVAILABLE,
           ErrorCode.KEY_VERSION_CONFLICT)
"""How a forged target EID fails: its key is not certified by S's master (307), nobody
proved S's keys (313), or it claims a key version S's certified key holds (325)."""


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_higher_version_fails_and_genuine_eids_still_reach_s(forgery: str) -> None:
    """The hijack with the version bump: after a genuine call, a forged EID claims S's
    master hash at version 99 with the forger's key and address. The forged call fails
    with an identity code, and genuine EIDs of S still go to S, never to the forger."""
    planner, wire = caller_planner(), Wire({S_ADDR: serving(s_core())})
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    forged = forged_eid(forged_cluster_id(99, **FORGERIES[forgery]))
    assert identity_code(call(planner, wire, forged)) in REFUSED
    assert holds(planner, S_CID)
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    assert payload_of(call(planner, wire, genuine_eid(b"svc", full_keys=False))) == b"ran at S"
    assert wire.to(FORGER) == []
    assert wire.sent.count(("SendInterStep", S_ADDR)) == 3


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_eid_seen_first_fails_and_stores_nothing(forgery: str) -> None:
    """The hijack without the version bump: the forged EID (version 1) is the first of S
    the caller sees. It fails with an identity code, nothing is stored for S, no request
    reaches the forger, and the genuine EID then goes to S."""
    planner, wire = caller_planner(), Wire({S_ADDR: serving(s_core())})
    forged = forged_eid(forged_cluster_id(1, **FORGERIES[forgery]))
    assert identity_code(call(planner, wire, forged)) in REFUSED
    assert master() not in planner.known
    assert "SendInterStep" not in wire.to(FORGER)
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    assert holds(planner, S_CID)
    assert planner.refusals["target_eid"] == 1


def test_forger_answering_the_key_fetch_with_s_genuine_keys_does_not_help_it() -> None:
    """A hashes-only forged EID lists only the forger, who answers the key fetch with S's
    real (public) cluster ID: the caller learns S's genuine keys, and the forged EID's
    cluster key is still not S's (it claims the key version S's certified key holds)."""
    planner = caller_planner()
    wire = Wire({FORGER: answering(NodeReply(cluster_id=S_CID.encode()))})
    forged = forged_eid(forged_cluster_id(1, master_inline=False), cluster_key_inline=False)
    assert identity_code(call(planner, wire, forged)) == ErrorCode.KEY_VERSION_CONFLICT
    assert wire.sent == [("FetchKeysStep", FORGER)]
    assert holds(planner, S_CID)


@pytest.mark.parametrize("answer", ["forged", "other-cluster", "garbage", "silence"])
def test_a_key_fetch_that_proves_nothing_fails_the_call(answer: str) -> None:
    """A hashes-only EID of S whose keys nobody proves: a forged cluster ID, another
    cluster's, bytes that are no reply, or no answer at all. The call fails with
    KEYS_UNAVAILABLE after asking each listed address once, and stores nothing."""
    nodes: dict[str, Responder] = {
        "forged": answering(NodeReply(cluster_id=forged_cluster_id(1, with_cert=True).encode())),
        "other-cluster": answering(NodeReply(cluster_id=C_CID.encode())),
        "garbage": lambda _: b"\xff\x00"}
    wire = Wire({S_ADDR: nodes[answer]} if answer in nodes else {})
    planner = caller_planner()
    end = call(planner, wire, genuine_eid(full_keys=False))
    assert identity_code(end) == ErrorCode.KEYS_UNAVAILABLE
    assert wire.sent == [("FetchKeysStep", S_ADDR)]
    assert planner.known == {}
    assert planner.refusals["fetched_keys"] == (answer != "silence")


def test_hashes_only_target_fetches_keys_once_then_calls_directly() -> None:
    """A hashes-only EID of a cluster whose keys are unknown: the call first asks S's node
    for its cluster ID (`[1, master_hash]`), verifies it, then calls. The verified keys
    are kept: the next call, and a full-keys EID, need no fetch."""
    planner, wire = caller_planner(), Wire({S_ADDR: serving(s_core())})
    assert payload_of(call(planner, wire, genuine_eid(full_keys=False))) == b"ran at S"
    assert wire.sent == [("FetchKeysStep", S_ADDR), ("SendInterStep", S_ADDR)]
    assert payload_of(call(planner, wire, genuine_eid(b"svc", full_keys=False))) == b"ran at S"
    assert wire.sent[2:] == [("SendInterStep", S_ADDR)]
    ring = planner.core.verifier.ring
    assert ring.certified(master(), S_CID.cluster_key_hash) is not None


def test_fetch_asks_the_cluster_we_already_trust_before_the_eids_addresses() -> None:
    """Once S is known, a key fetch for an S EID (here one whose embedded cluster ID lists
    the forger first) goes to S's verified addresses first."""
    planner, wire = caller_planner(), Wire({S_ADDR: serving(s_core())})
    planner.learn(S_CID)
    forged = forged_eid(forged_cluster_id(2, master_inline=False))
    assert identity_code(call(planner, wire, forged)) == ErrorCode.BAD_CLUSTER_KEY_CERT
    assert wire.sent == [("FetchKeysStep", S_ADDR)]


def test_bundled_forged_newer_cluster_id_is_not_adopted() -> None:
    """S's reply arrives with a cluster ID claiming to be S's version 99 (forger's key,
    forger's self-signed cert): the answer stands, the cluster ID is not stored, and the
    next call still goes to S."""
    forged = forged_cluster_id(99, with_cert=True).encode()
    planner = caller_planner()
    wire = Wire({S_ADDR: serving(s_core(), bundle=forged)})
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    assert holds(planner, S_CID)
    wire.nodes[S_ADDR] = serving(s_core())
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    assert wire.to(FORGER) == []


def test_bundled_genuine_newer_cluster_id_is_adopted() -> None:
    """S moved to a second address and bundles its version 2 (signed by S's key): the
    caller adopts it, and its next call tries the new list."""
    v2 = change_addresses(S_CID, S_KEY, (ServerAddress(ip_address("10.2.0.2"), 7000, 1, 10),))
    planner = caller_planner()
    wire = Wire({S_ADDR: serving(s_core([S_CID, v2]))})
    assert payload_of(call(planner, wire, genuine_eid())) == b"ran at S"
    assert holds(planner, v2)
    assert planner.held(S_CID) == v2


def _two_address_s() -> tuple[ClusterId, Addr]:
    second = ServerAddress(ip_address("10.2.0.2"), 7000, 20, 10)
    return change_addresses(S_CID, S_KEY, (S_ADDRESS, second)), ("10.2.0.2", 7000)


def test_unsigned_redirect_to_an_unlisted_address_is_not_followed() -> None:
    """S's first address answers "redirect to the forger" (no cluster ID with it): the
    caller ignores it and goes on in priority order to S's second address."""
    v2, second = _two_address_s()
    redirect = NodeReply(int(ErrorCode.REDIRECT), target=Endpoint(FORGER_ADDRESS.host, 7000))
    planner = caller_planner()
    wire = Wire({S_ADDR: answering(redirect), second: serving(s_core([S_CID, v2]))})
    assert payload_of(call(planner, wire, genuine_eid(cluster_id=v2))) == b"ran at S"
    assert wire.sent == [("SendInterStep", S_ADDR), ("SendInterStep", second)]
    assert planner.refusals["redirect_not_listed"] == 1


def test_redirect_to_a_listed_address_is_followed() -> None:
    """A redirect to an address S's verified cluster ID lists is followed at once (the
    second address has the higher priority number, so only the redirect leads there)."""
    v2, second = _two_address_s()
    redirect = NodeReply(int(ErrorCode.REDIRECT), target=Endpoint(ip_address(second[0]), 7000))
    planner = caller_planner()
    wire = Wire({S_ADDR: answering(redirect), second: serving(s_core([S_CID, v2]))})
    assert payload_of(call(planner, wire, genuine_eid(cluster_id=v2))) == b"ran at S"
    assert wire.sent == [("SendInterStep", S_ADDR), ("SendInterStep", second)]
    assert planner.refusals["redirect_not_listed"] == 0


def test_redirect_listed_only_in_a_bundled_forged_cluster_id_is_not_followed() -> None:
    """A redirect to the forger that carries a forged "newer" cluster ID listing the forger
    is neither followed nor adopted; the call fails over to S's next address."""
    v2, second = _two_address_s()
    forged = forged_cluster_id(7, with_cert=True)
    redirect = NodeReply(int(ErrorCode.REDIRECT), target=Endpoint(FORGER_ADDRESS.host, 7000),
                         cluster_id=forged.encode())
    planner = caller_planner()
    wire = Wire({S_ADDR: answering(redirect), second: serving(s_core([S_CID, v2]))})
    assert payload_of(call(planner, wire, genuine_eid(cluster_id=v2))) == b"ran at S"
    assert wire.to(FORGER) == []
    assert holds(planner, v2)
    assert planner.refusals["cluster_id_rejected"] == 1


def test_learn_refuses_what_does_not_verify_and_keeps_the_newest() -> None:
    """`learn` stores a cluster ID only when it proves itself, and never an older one."""
    planner = caller_planner()
    for forged in (forged_cluster_id(5), forged_cluster_id(5, with_cert=True)):
        with pytest.raises(IdentityError) as info:
            planner.learn(forged)
        assert info.value.code in (ErrorCode.KEYS_UNAVAILABLE, ErrorCode.BAD_CLUSTER_KEY_CERT)
    with pytest.raises(IdentityError):
        planner.learn(forged_cluster_id(5, addresses=()), proof=genuine_eid())
    assert planner.known == {}
    v2, _ = _two_address_s()
    assert planner.learn(v2)
    assert not planner.learn(S_CID)
    assert holds(planner, v2)


def test_node_local_error_bundling_a_forged_newer_cluster_id_is_not_adopted() -> None:
    """S's first address answers a node-local error carrying a forged "newer" cluster ID
    (listing only the forger): it is not adopted, no new round starts at the forger, and
    the call goes on to S's second address."""
    v2, second = _two_address_s()
    error = NodeReply(int(ErrorCode.NODE_LOCAL_ERROR), message="busy",
                      cluster_id=forged_cluster_id(8, with_cert=True).encode())
    planner = caller_planner()
    wire = Wire({S_ADDR: answering(error), second: serving(s_core([S_CID, v2]))})
    assert payload_of(call(planner, wire, genuine_eid(cluster_id=v2))) == b"ran at S"
    assert wire.sent == [("SendInterStep", S_ADDR), ("SendInterStep", second)]
    assert holds(planner, v2)
    assert planner.refusals["cluster_id_rejected"] == 1


@pytest.mark.parametrize("code", [ErrorCode.TRANSIT_OPEN_FAILED, ErrorCode.TRANSIT_CERT_INVALID,
                                  ErrorCode.TRANSIT_MALFORMED, ErrorCode.UNKNOWN_SESSION])
def test_a_transit_failure_at_one_address_moves_on_to_the_next(code: ErrorCode) -> None:
    """S's first address is a fake node: its answers do not authenticate, so the secure
    exchange fails with a 7xx code. That proves nothing about S, so the call passes the
    address over, as a silent one, and reaches S's genuine second address."""
    v2, second = _two_address_s()
    genuine = serving(s_core([S_CID, v2]))
    outgoing = OutgoingCall(caller_planner(), echo(genuine_eid(cluster_id=v2), "hello"), NOW)
    step: CallStep = outgoing.start()
    sent: list[Addr] = []
    while not isinstance(step, GotReply | GaveUp):
        assert isinstance(step, SendInterStep), step
        sent.append(step.address)
        step = outgoing.on_failure(int(code), "did not open", NOW) if step.address == S_ADDR \
            else outgoing.on_reply(genuine(step.payload))
    assert payload_of(step) == b"ran at S"
    assert sent == [S_ADDR, second]
