"""Shared spending (a replicated cluster): the local store stays the first filter, and an
admitted stamp is named in the Allow for the shell to spend cluster-wide; the cluster-wide
answer admits only a fresh spend or the same request's retry. Without shared spending the
gate decides exactly as before."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import (
    Allow,
    ClusterSpend,
    Deny,
    GateRequest,
    SpendResult,
    cluster_spend_admits,
    evaluate,
    local_refusal,
)
from tests.gate_support import NOW, POLICY, SHOP0, state
from tests.unit.gate.test_pipeline import request


@given(st.sampled_from(SpendResult), st.booleans(), st.booleans())
def test_local_refusal_defers_only_a_seen_stamp_of_a_request_with_an_id(
        result: SpendResult, shared: bool, has_id: bool) -> None:
    refusal = local_refusal(result, shared=shared, has_id=has_id)
    if result is SpendResult.ADDED:
        assert refusal is None
    elif result is SpendResult.FULL:
        assert refusal is SpendResult.FULL  # the bound holds whatever the cluster says
    else:
        assert refusal is (None if shared and has_id else SpendResult.ALREADY_SPENT)


@given(st.binary(max_size=30), st.binary(max_size=30))
def test_cluster_spend_admits_a_fresh_spend_or_the_same_binding_only(
        stored: bytes, binding: bytes) -> None:
    assert cluster_spend_admits(None, binding)
    assert cluster_spend_admits(None, None)
    assert cluster_spend_admits(stored, binding) is (bool(binding) and stored == binding)
    assert not cluster_spend_admits(stored, None)
    assert not cluster_spend_admits(b"", b"")  # a request without an id never matches


@given(st.binary(min_size=1, max_size=20), st.booleans())
def test_shared_spending_names_the_stamp_and_whether_it_was_seen_here(
        body: bytes, has_id: bool) -> None:
    gate = replace(state(), shared_spent=True)
    first = evaluate(request(body=body, has_request_id=has_id), POLICY, gate, NOW)
    assert isinstance(first, Allow) and isinstance(first.spend, ClusterSpend)
    assert not first.spend.seen_here and first.spend.expires_at > NOW
    again = evaluate(request(body=body, has_request_id=has_id), POLICY, gate, NOW)
    if has_id:  # may be its retry: the cluster-wide record decides
        assert isinstance(again, Allow) and isinstance(again.spend, ClusterSpend)
        assert again.spend.seen_here and again.spend.digest == first.spend.digest
    else:
        assert isinstance(again, Deny) and again.code is ErrorCode.HASHCASH_DOUBLE_SPENT


@given(st.binary(min_size=1, max_size=20), st.booleans(), st.integers(1, 3))
def test_without_shared_spending_nothing_changes(body: bytes, has_id: bool,
                                                 tries: int) -> None:
    gate = state()
    asked: GateRequest = request(body=body, has_request_id=has_id)
    decisions = [evaluate(asked, POLICY, gate, NOW) for _ in range(tries)]
    assert isinstance(decisions[0], Allow) and decisions[0].spend is None
    for later in decisions[1:]:
        assert isinstance(later, Deny) and later.code is ErrorCode.HASHCASH_DOUBLE_SPENT


@given(st.booleans())
def test_a_request_that_costs_nothing_has_nothing_to_spend(shared: bool) -> None:
    free = replace(SHOP0, entity=b"free")
    decision = evaluate(request(target=free, stamp=False), POLICY,
                        replace(state(), shared_spent=shared), NOW)
    assert isinstance(decision, Allow) and decision.spend is None
