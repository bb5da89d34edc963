"""A node forwarding a request (routing.not_mirrored: forward) to a mirror that does not
acknowledge passes it to the entity's next live mirror, and otherwise answers with a code
the caller treats as node-local, so the caller tries its next address (issue 16, item 1)."""

from __future__ import annotations

from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.identity import ServerAddress, issue_cluster_id, mint_eid
from mercury_rt.core.node import Forward, NodeCore, NodeRequest, decode_reply, encode_operation
from mercury_rt.core.node.server import SILENT_MIRROR_FOR
from mercury_rt.core.routing import NODE_LOCAL_CODES, NodeInfo
from tests.membership_node_support import make_core

MIRRORS = (b"m1", b"m2", b"m3")


def _front(alive: tuple[bytes, ...] = MIRRORS) -> tuple[NodeCore, bytes]:
    """Front node f0 (mirrors nothing) of a cluster whose entity dave is on m1-m3."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
    names = (b"f0", *MIRRORS)
    nodes = {n: NodeInfo(n, n == b"f0" or n in alive) for n in names}
    intra = {n: (f"10.0.0.{i + 1}", 7100) for i, n in enumerate(names)}
    core = make_core(b"f0", cid, key, nodes, intra, {b"dave": frozenset(MIRRORS)})
    return core, mint_eid(key, cid, b"dave").encode()


def _forward(core: NodeCore, target: bytes, request_key: bytes = b"k1") -> Forward:
    vouched = Principal(core.master_hash, b"alice")
    body = NodeRequest(target, 1, 2, b"", version=1, vouched=vouched).body()
    action = core.handle_local(encode_operation(body), request_key, 10.0, 0.0)
    assert isinstance(action, Forward)
    return action


def _code(core: NodeCore, sealed_or_plain: Forward | bytes) -> int:
    assert isinstance(sealed_or_plain, bytes)
    return decode_reply(sealed_or_plain).code


def test_an_unacknowledged_forward_goes_to_each_other_live_mirror_once_then_node_local() -> None:
    core, dave = _front()
    first = _forward(core, dave)
    tried = [first.node_id]
    action: Forward | bytes = first
    while isinstance(action, Forward):
        action = core.forward_failed(action, int(ErrorCode.NO_ANSWER), "did not acknowledge")
        if isinstance(action, Forward):
            assert action.payload == first.payload, "the same request goes on"
            tried.append(action.node_id)
    assert sorted(tried) == sorted(MIRRORS), "every live mirror tried exactly once"
    assert _code(core, action) == ErrorCode.NO_LIVE_MIRROR
    assert _code(core, action) in NODE_LOCAL_CODES


def test_mirrors_membership_sees_dead_are_not_tried_again() -> None:
    core, dave = _front(alive=(b"m1", b"m2"))
    first = _forward(core, dave)
    assert b"m3" not in (first.node_id, *first.fallbacks)
    second = core.forward_failed(first, int(ErrorCode.NO_ANSWER))
    assert isinstance(second, Forward) and second.node_id != first.node_id
    nodes = dict(core.state.view.nodes)
    nodes[second.node_id] = NodeInfo(second.node_id, False)
    core.state.view = type(core.state.view)(b"f0", core.state.view.cluster_id_version,
                                            nodes, core.state.view.mirrors, {})
    third = core.forward_failed(second, int(ErrorCode.NO_ANSWER))
    assert isinstance(third, bytes) and _code(core, third) in NODE_LOCAL_CODES


def test_a_forward_that_may_have_run_is_not_repeated_and_answers_node_local() -> None:
    """An acknowledged forward that then timed out may have run: not sent elsewhere."""
    core, dave = _front()
    after = core.forward_failed(_forward(core, dave), int(ErrorCode.TIMEOUT), "deadline")
    assert isinstance(after, bytes)
    assert _code(core, after) in NODE_LOCAL_CODES
    assert _code(core, core.relay(_forward(core, dave), None, int(ErrorCode.NO_ANSWER))) \
        == ErrorCode.NO_LIVE_MIRROR


def test_a_mirror_that_did_not_acknowledge_is_tried_last_for_a_while() -> None:
    """The calls that follow do not each wait for the silent mirror while membership has
    not noticed it yet; after SILENT_MIRROR_FOR it is chosen normally again."""
    core, dave = _front()
    first = _forward(core, dave, b"same-key")
    silent = first.node_id
    core.forward_failed(first, int(ErrorCode.NO_ANSWER), "silent", now=100.0)
    vouched = Principal(core.master_hash, b"alice")
    body = NodeRequest(dave, 1, 2, b"", version=1, vouched=vouched).body()
    soon = core.handle_local(encode_operation(body), b"same-key", 10.0, 101.0)
    assert isinstance(soon, Forward)
    assert soon.node_id != silent and soon.fallbacks[-1] == silent
    later = core.handle_local(encode_operation(body), b"same-key", 10.0,
                              100.0 + SILENT_MIRROR_FOR + 1)
    assert isinstance(later, Forward) and later.node_id == silent
