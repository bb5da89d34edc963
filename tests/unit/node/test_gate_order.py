"""Hashcash is checked before anything else (docs/protocol.md 7.1, issue 17 item 7): a
request whose target EID was altered costs the node no signature check unless it carries
a stamp that pays for the target its EID names; a genuine target seen before costs none,
and an altered one with a good stamp is still refused with what is wrong with it."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import (
    ASSUMED_PROVEN,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
)
from mercury_rt.core.gate.hashcash import target_tag
from mercury_rt.core.identity import mint_eid
from mercury_rt.core.node import (
    Forward,
    Invoke,
    NodeCore,
    NodeRequest,
    Respond,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.routing import NodeInfo, NotMirroredChoice, Path, RoutingConfig
from policy.load import parse_policy
from tests.forgery_support import C_CID, C_KEY, S_ADDRESS, S_CID, S_HOST, S_KEY
from tests.membership_node_support import make_core

NOW = 1_700_000_000.0
BITS = 8
POLICY = parse_policy(f"""\
version: 1
levels: [public]
unknown_cluster_clearance: public
entities:
  svc: {{hashcash_bits: {BITS}}}
  svx: {{hashcash_bits: {BITS}}}
""", "p.yaml")
TARGET = mint_eid(S_KEY, S_CID, b"svc").encode()
SOURCE = mint_eid(C_KEY, C_CID, b"alice").encode()


def core(*, mirrored_here: bool = True) -> NodeCore:
    """Cluster S's node s1; `svc` and `svx` (both charging BITS) are mirrored on s1, or
    only on s2 (requests forwarded)."""
    nodes = {n: NodeInfo(n, True, S_ADDRESS) for n in (b"s1", b"s2")}
    mirror = b"s1" if mirrored_here else b"s2"
    node = make_core(b"s1", S_CID, S_KEY, nodes, {b"s1": (S_HOST, 7001), b"s2": (S_HOST, 7002)},
                     {b"svc": frozenset({mirror}), b"svx": frozenset({mirror})})
    node.state.policy = POLICY
    node.routing = RoutingConfig(NotMirroredChoice.FORWARD)
    return node


def altered_signature(eid: bytes) -> bytes:
    data = bytearray(eid)
    data[-5] ^= 1
    return bytes(data)


def altered_local(eid: bytes) -> bytes:
    assert eid.count(b"svc") == 1
    return eid.replace(b"svc", b"svx")


def request(target: bytes, stamp: str | None = None, text: bytes = b"hi") -> bytes:
    body = NodeRequest(target, 1, 1, text, version=1, source=SOURCE).body()
    payments = (hashcash_payment(stamp),) if stamp is not None else ()
    return encode_operation(body, payments)


def stamp(target: bytes, text: bytes = b"hi", local: bytes = b"svc") -> str:
    """A stamp paying for `local` of S with the body `request` builds around `target`."""
    body = NodeRequest(target, 1, 1, text, version=1, source=SOURCE).body()
    tag = target_tag(mint_eid(S_KEY, S_CID, local).principal())
    resource = stamp_resource(tag, 1, 1, request_digest(body))
    return mint_stamp(resource, BITS, NOW, text.ljust(12, b"."))


def handle(node: NodeCore, payload: bytes) -> Respond | Invoke | Forward:
    action = node.handle(Path.INTER_CLUSTER, payload, payload[-16:], 1e12, NOW,
                         proof=ASSUMED_PROVEN, transit=2)
    assert isinstance(action, Respond | Invoke | Forward), action
    return action


def code(action: Respond | Invoke | Forward) -> int:
    assert isinstance(action, Respond), action
    return decode_reply(action.reply).code


ALTERED = {"signature": altered_signature, "local part": altered_local}
UNPAID = {"no stamp": None, "garbage stamp": "1:8:not-a-stamp", "stamp for another body": ""}


@pytest.mark.parametrize("mirrored_here", [True, False], ids=["runs-here", "forwards"])
@pytest.mark.parametrize("unpaid", UNPAID)
@pytest.mark.parametrize("altered", ALTERED)
def test_an_unpaid_request_with_an_altered_target_costs_no_signature_check(
        altered: str, unpaid: str, mirrored_here: bool) -> None:
    node = core(mirrored_here=mirrored_here)
    target = ALTERED[altered](TARGET)
    given = UNPAID[unpaid]
    paid = stamp(target, b"other body") if given == "" else given
    answer = code(handle(node, request(target, paid)))
    assert answer in (ErrorCode.HASHCASH_REQUIRED, ErrorCode.HASHCASH_MALFORMED,
                      ErrorCode.HASHCASH_WRONG_RESOURCE)
    assert node.verifier.signature_checks == 0


@pytest.mark.parametrize("mirrored_here", [True, False], ids=["runs-here", "forwards"])
def test_a_paid_request_with_a_forged_target_is_refused_for_its_signature(
        mirrored_here: bool) -> None:
    """The stamp pays for the target the EID names, but the EID's signature is not S's:
    the request neither runs nor is forwarded."""
    node = core(mirrored_here=mirrored_here)
    target = altered_signature(TARGET)
    assert code(handle(node, request(target, stamp(target)))) == ErrorCode.BAD_EID_SIGNATURE
    assert node.verifier.signature_checks == 1


@pytest.mark.parametrize("mirrored_here", [True, False], ids=["runs-here", "forwards"])
def test_a_paid_request_for_an_altered_local_part_is_refused(mirrored_here: bool) -> None:
    """`svc`'s EID altered to name `svx`, with a stamp paying for `svx`."""
    node = core(mirrored_here=mirrored_here)
    target = altered_local(TARGET)
    answer = code(handle(node, request(target, stamp(target, local=b"svx"))))
    assert answer == ErrorCode.BAD_EID_SIGNATURE


@pytest.mark.parametrize("mirrored_here", [True, False], ids=["runs-here", "forwards"])
def test_a_genuine_target_costs_one_check_once_then_none(mirrored_here: bool) -> None:
    """Its first request verifies target and source; later ones hit the caches."""
    node = core(mirrored_here=mirrored_here)
    first = handle(node, request(TARGET, stamp(TARGET)))
    assert isinstance(first, Invoke if mirrored_here else Forward)
    checks = node.verifier.signature_checks
    for text in (b"again", b"and again"):
        assert isinstance(handle(node, request(TARGET, stamp(TARGET, text), text)),
                          Invoke if mirrored_here else Forward)
    assert node.verifier.signature_checks == checks
