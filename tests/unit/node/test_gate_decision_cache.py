"""The node remembers the gate's decision for a request that pays and delegates nothing
(issue 13): a repeat is decided without the source check, a policy reload or a new cluster
ID forgets every decision, a request owing a stamp is never remembered, and the request
digest is hashed only when a stamp is due."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import pipeline
from mercury_rt.core.node import Invoke, NodeCore, decode_reply
from policy.load import parse_policy
from tests.forgery_support import S_CID
from tests.unit.node.test_gate_order import POLICY, TARGET, core, handle, request, stamp

FREE = parse_policy("version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n",
                    "free.yaml")
CLOSED = parse_policy("version: 1\nlevels: [public]\n", "closed.yaml")


def free_core() -> NodeCore:
    node = core()
    node.state.policy = FREE
    return node


def test_a_repeated_free_request_is_decided_from_the_cache() -> None:
    node = free_core()
    assert isinstance(handle(node, request(TARGET)), Invoke)
    verified = node.verifier.hits + node.verifier.misses
    assert isinstance(handle(node, request(TARGET, text=b"again")), Invoke)
    assert node.decisions.hits == 1 and len(node.decisions) == 1
    assert node.verifier.hits + node.verifier.misses - verified < 2  # no source verify


def test_a_policy_reload_is_seen_by_the_next_request() -> None:
    node = free_core()
    assert isinstance(handle(node, request(TARGET)), Invoke)
    node.state.policy = CLOSED  # the source's cluster is no longer cleared
    refused = handle(node, request(TARGET))
    assert not isinstance(refused, Invoke)
    assert decode_reply(refused.reply).code == ErrorCode.MAC_UNKNOWN_CLUSTER
    assert node.decisions.hits == 0


def test_a_new_cluster_id_forgets_every_decision() -> None:
    node = free_core()
    assert isinstance(handle(node, request(TARGET)), Invoke)
    assert len(node.decisions) == 1
    node.set_cluster_id(S_CID)
    assert len(node.decisions) == 0


def test_a_request_owing_a_stamp_is_never_remembered() -> None:
    node = core()
    assert node.state.policy is POLICY
    for text in (b"hi", b"again"):
        assert isinstance(handle(node, request(TARGET, stamp(TARGET, text), text)), Invoke)
    assert len(node.decisions) == 0 and node.decisions.hits == 0


def test_the_request_digest_is_hashed_only_when_a_stamp_is_due(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[bytes] = []
    real = pipeline.request_digest

    def counting(body: bytes) -> bytes:
        hashed.append(body)
        return real(body)

    monkeypatch.setattr(pipeline, "request_digest", counting)
    assert isinstance(handle(free_core(), request(TARGET)), Invoke)
    assert hashed == []
    assert isinstance(handle(core(), request(TARGET, stamp(TARGET))), Invoke)
    assert len(hashed) == 1
