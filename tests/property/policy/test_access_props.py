"""The MAC/DAC checks the gate runs without explanations and the decisions that explain
are one implementation (issue 13): for random policies, callers, targets, our cluster and
ACLs, the values the explanations name are the ranks the checks compare, and each check
passes exactly when its decision grants."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.principal import Principal
from policy.access import (
    PolicyAcls,
    Refused,
    Target,
    TargetAcls,
    _classification,
    _clearance_rank,
    caller_clearance,
    dac_decision,
    dac_passes,
    mac_decision,
    mac_passes,
    required_classification,
)
from tests.gate_support import LOCAL, PARTNER
from tests.property.gate.test_decision_cache_props import (
    CALLERS,
    TARGETS,
    WHO,
    compiled,
    policies,
    target_acls,
)

CASES = (st.sampled_from(CALLERS).flatmap(policies), st.sampled_from(WHO), TARGETS,
         st.sampled_from([LOCAL, PARTNER]), target_acls)


@settings(max_examples=500, deadline=None)
@given(*CASES)
def test_the_checks_and_the_decisions_agree(
        doc: dict[str, Any], who: Principal, target: tuple[str, int, int], local: bytes,
        labels: TargetAcls | None) -> None:
    policy = compiled(doc)
    tgt = Target(target[0].encode(), target[1], target[2])
    assert _classification(policy, tgt)[0] == required_classification(policy, tgt).value
    has = caller_clearance(policy, who, local)
    rank = _clearance_rank(policy, who, local)
    assert rank == (None if isinstance(has, Refused) else has.value)
    mac = mac_decision(policy, who, tgt, local)
    assert mac_passes(policy, who, tgt, local) is not isinstance(mac, Refused)
    acls = labels if labels is not None else PolicyAcls(policy).acls_for(tgt)
    dac = dac_decision(policy, acls, who, tgt, local)
    assert dac_passes(policy, acls, who, local) is not isinstance(dac, Refused)
