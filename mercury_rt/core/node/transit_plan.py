"""Which transit algorithm a call's message travels under (the sender's half of 8.7).

The message's classification is the calling entity's transit floor (its clearance unless
the administrator lowered it). Between clusters the sender picks the cheapest algorithm
its own `transit.inter_cluster` table trusts at that level that the target EID's hints
accept; after an authenticated 707 it retries once within its own adequate set. Within
the cluster a message classified above the target entity's clearance is never sent, and
it travels under the cheapest algorithm `transit.intra_cluster` trusts at the higher of
its classification and the operation's minimum. The sender never goes below its own
adequate set, whatever lists a peer or a man in the middle shows it.

`TransitPlans` keeps the plans of a node's calls by call shape (issue 13): the same
caller, target, endpoint, operation and requested level under the same policy always get
the same plan, and working it out reads the policy's tables and the target's hints.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon.bounded import keep_newest
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import Eid
from mercury_rt.core.transit import (
    ClassifiedAboveTarget,
    GiveUp,
    NoCommonAlgorithm,
    adequate,
    after_rejection,
    choose,
    eid_acceptable,
    inter_cluster_table,
    intra_check,
    intra_cluster_table,
    intra_protection,
)
from policy.access import Target
from policy.model import Policy
from policy.transit import sender_classification, transit_minimum


@dataclass(frozen=True, slots=True)
class TransitPlan:
    """The algorithm to use now, and the sender's adequate set for a retry."""

    algorithm: int
    adequate: frozenset[int]
    retried: bool = False


def plan_inter(policy: Policy, caller: bytes, target: Eid, endpoint: int,
               operation: int, requested: int | None = None) -> TransitPlan:
    """The algorithm for a call to another cluster; raises MercuryError 709."""
    level = sender_classification(policy, caller, requested).value
    ours = adequate(inter_cluster_table(policy), level)
    picked = choose(ours, eid_acceptable(target, endpoint, operation))
    if isinstance(picked, NoCommonAlgorithm):
        raise MercuryError(picked.detail, ErrorCode.NO_COMMON_ALGORITHM)
    return TransitPlan(picked.algorithm, ours)


def plan_intra(policy: Policy, caller: bytes, target: Eid, endpoint: int,
               operation: int, requested: int | None = None) -> TransitPlan:
    """The algorithm for a call within the cluster; raises MercuryError 710 or 709."""
    level = sender_classification(policy, caller, requested).value
    checked = intra_check(policy, Target(target.local, endpoint, operation), level)
    if isinstance(checked, ClassifiedAboveTarget):
        raise MercuryError(
            f"the message is classified {checked.classification}, above the target's "
            f"clearance {checked.clearance} ({checked.rule}); lower the caller's "
            "transit_floor if it may talk to less cleared entities",
            ErrorCode.CLASSIFIED_ABOVE_TARGET)
    protect = max(level, transit_minimum(policy, Target(target.local, endpoint,
                                                         operation)).value)
    table = intra_cluster_table(policy)
    picked = intra_protection(table, protect)
    if isinstance(picked, NoCommonAlgorithm):
        raise MercuryError(picked.detail, ErrorCode.NO_COMMON_ALGORITHM)
    return TransitPlan(picked.algorithm, adequate(table, protect))


MAX_PLANS = 1024
PlanKey = tuple[bool, int, bytes, int, int, int | None]
"""(to another cluster, id of the target EID, caller, endpoint, operation, requested)."""


class TransitPlans:
    """`plan_inter` and `plan_intra` remembered, bounded (the oldest goes when full).

    A plan is reused only for the very policy object (a reload installs a new one) and
    target EID object it was made for, both held by the entry so neither id is reused
    while it is kept; a refusal is never kept (the general path raises it every time)."""

    def __init__(self, limit: int = MAX_PLANS) -> None:
        self.limit = limit
        self._plans: dict[PlanKey, tuple[Policy, Eid, TransitPlan]] = {}

    def __len__(self) -> int:
        return len(self._plans)

    def plan(self, inter: bool, policy: Policy, caller: bytes, target: Eid, endpoint: int,
             operation: int, requested: int | None = None) -> TransitPlan:
        """Exactly `plan_inter(...)` (`inter`) or `plan_intra(...)`; raises as they do."""
        key = (inter, id(target), caller, endpoint, operation, requested)
        hit = self._plans.get(key)
        if hit is not None and hit[0] is policy and hit[1] is target:
            return hit[2]
        plan = (plan_inter if inter else plan_intra)(policy, caller, target, endpoint,
                                                     operation, requested)
        keep_newest(self._plans, key, (policy, target, plan), self.limit)
        return plan


def replan(plan: TransitPlan, acceptable: tuple[int, ...]) -> TransitPlan:
    """The plan after an authenticated 707 naming `acceptable`; raises MercuryError when
    the call must end (second rejection, no common algorithm)."""
    picked = after_rejection(plan.algorithm, acceptable, plan.adequate, plan.retried)
    if isinstance(picked, NoCommonAlgorithm):
        raise MercuryError(picked.detail, ErrorCode.NO_COMMON_ALGORITHM)
    if isinstance(picked, GiveUp):
        raise MercuryError(picked.detail, ErrorCode.ALGORITHM_TOO_WEAK)
    return TransitPlan(picked.algorithm, plan.adequate, retried=True)
