"""Kept transit plans (issue 13) are exactly the plans worked out afresh: for any sequence
of calls (callers, targets, operations, requested levels) under policies that a reload
swaps, `TransitPlans.plan` returns what `plan_inter`/`plan_intra` return, and raises the
same coded refusal when they refuse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import MercuryError
from mercury_rt.core.identity import AcceptedAlgorithm, MintOptions, OperationHint, mint_eid
from mercury_rt.core.node.transit_plan import TransitPlan, TransitPlans, plan_inter, plan_intra
from policy.load import parse_policy
from policy.model import Policy
from tests.forgery_support import S_CID, S_KEY

POLICY = """
version: 1
levels: [public, secret]
entities:
  alice: {clearance: public}
  boss: {clearance: secret}
  svc:
    clearance: public
    endpoints:
      1:
        operations:
          2: {transit: secret}
transit:
  inter_cluster: {public: [1, 2], secret: [SECRET]}
  intra_cluster: {public: [1, 2], secret: [SECRET]}
"""
POLICIES = [parse_policy(POLICY.replace("SECRET", text), "p.yaml") for text in ("3", "", "3")]
TARGETS = [mint_eid(S_KEY, S_CID, b"svc"),
           mint_eid(S_KEY, S_CID, b"svc", options=MintOptions(),
                    hints=(OperationHint(1, 1, 1, 0),),
                    algorithms=(AcceptedAlgorithm(2, 0), AcceptedAlgorithm(3, 1)))]

calls = st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.sampled_from([b"alice", b"boss"]),
                           st.integers(0, 1), st.integers(1, 2), st.integers(1, 2),
                           st.sampled_from([None, 0, 1])), max_size=40)


def _outcome(plan: object, *args: object) -> TransitPlan | tuple[int, str]:
    try:
        result = plan(*args)  # type: ignore[operator]
    except MercuryError as exc:
        return int(exc.code), exc.message
    assert isinstance(result, TransitPlan)
    return result


@given(calls, st.integers(1, 8))
def test_kept_plans_are_the_plans_afresh(
        history: list[tuple[bool, int, bytes, int, int, int, int | None]], limit: int) -> None:
    kept = TransitPlans(limit)
    for inter, policy_at, caller, target_at, endpoint, operation, requested in history:
        policy: Policy = POLICIES[policy_at]
        target = TARGETS[target_at]
        args = (policy, caller, target, endpoint, operation, requested)
        fresh = _outcome(plan_inter if inter else plan_intra, *args)
        assert _outcome(kept.plan, inter, *args) == fresh
        assert len(kept) <= limit
