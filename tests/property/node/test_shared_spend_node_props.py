"""The node core with shared spending (a replicated cluster): a paid request that runs is
handed to the shell with the stamp to spend cluster-wide; the same stamp seen again passes
on only for a request with an id (its retry), and a one-way message id seen before is left
to its etcd record; the cluster-wide answer admits a fresh spend or the same binding only.
Without shared spending every answer is the node's own, as before."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import (
    cluster_spend_admits,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
)
from mercury_rt.core.gate.hashcash import target_tag
from mercury_rt.core.identity import mint_eid
from mercury_rt.core.node import Invoke, NodeRequest, Respond, decode_reply, encode_operation
from tests.forgery_support import S_CID, S_KEY
from tests.unit.node.test_gate_order import BITS, NOW, SOURCE, TARGET, core, handle

KINDS = ("none", "request", "message")


def _paid(kind: str, text: bytes) -> bytes:
    """A paid request to svc: without an id, with a request id, or a one-way message."""
    body = NodeRequest(TARGET, 1, 1, text, version=1, source=SOURCE,
                       request_id=b"rid-" + text if kind == "request" else None,
                       message_id=b"mid-" + text if kind == "message" else None).body()
    return encode_operation(body, (hashcash_payment(_stamp_for(body)),))


def _stamp_for(body: bytes) -> str:
    tag = target_tag(mint_eid(S_KEY, S_CID, b"svc").principal())
    return mint_stamp(stamp_resource(tag, 1, 1, request_digest(body)), BITS, NOW,
                      b"shared-spend")


@settings(max_examples=30, deadline=None)
@given(st.booleans(), st.sampled_from(KINDS), st.binary(min_size=1, max_size=8))
def test_a_stamp_seen_again_passes_on_only_as_a_possible_retry(
        shared: bool, kind: str, text: bytes) -> None:
    node = core()
    node.shared_spent = shared
    payload = _paid(kind, text)
    first = handle(node, payload)
    assert isinstance(first, Invoke)
    assert (first.allow.spend is not None) is shared
    again = handle(node, payload)
    if shared and kind != "none":
        assert isinstance(again, Invoke) and again.allow.spend is not None
        assert again.allow.spend.seen_here and again.call.request_id == first.call.request_id
    else:
        assert isinstance(again, Respond)
        assert decode_reply(again.reply).code == ErrorCode.HASHCASH_DOUBLE_SPENT


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(KINDS), st.one_of(st.none(), st.binary(max_size=30)),
       st.booleans())
def test_the_cluster_wide_answer_admits_a_fresh_spend_or_the_same_request_only(
        kind: str, stored: bytes | None, stored_is_this: bool) -> None:
    node = core()
    node.shared_spent = True
    action = handle(node, _paid(kind, b"x"))
    assert isinstance(action, Invoke) and action.allow.spend is not None
    if stored_is_this and stored is not None and action.call.request_id is not None:
        stored = action.call.request_id
    refusal = node.stamp_refusal(action, action.allow.spend, stored)
    if cluster_spend_admits(stored, action.call.request_id):
        assert refusal is None
        assert stored is None or (kind != "none" and stored == action.call.request_id)
    else:
        assert refusal is not None
        reply = decode_reply(refusal)
        assert reply.code == ErrorCode.HASHCASH_DOUBLE_SPENT and reply.required_bits == BITS
