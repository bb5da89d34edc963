"""The node remembers the transit minimum of admitted targets only (issue 13): the level is
the policy's, a policy reload forgets every level, a refused request (a forged target, a
denial) adds nothing, and at its bound nothing more is kept and nothing pushed out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.node import Invoke
from mercury_rt.core.node.minimums import TransitMinimums
from policy.access import Target
from policy.load import parse_policy
from policy.transit import transit_minimum
from tests.unit.node.test_gate_decision_cache import CLOSED, free_core
from tests.unit.node.test_gate_order import TARGET, altered_signature, handle, request

LEVELS = parse_policy("""\
version: 1
levels: [public, internal, secret]
unknown_cluster_clearance: secret
entities:
  svc:
    clearance: internal
    classification: public
    endpoints:
      1:
        transit: internal
        operations:
          2: {transit: secret}
  low:
    clearance: internal
    classification: public
    transit_floor: public
""", "levels.yaml")
OTHER = parse_policy("version: 1\nlevels: [public, internal, secret]\n", "other.yaml")
TARGETS = st.builds(Target, st.sampled_from([b"svc", b"low", b"new"]), st.integers(0, 3),
                    st.integers(0, 3))


@given(st.lists(TARGETS, max_size=8), TARGETS)
def test_a_level_is_the_policy_s_whether_kept_or_not(kept: list[Target],
                                                     asked: Target) -> None:
    minimums = TransitMinimums()
    for target in kept:
        minimums.keep(LEVELS, target, minimums.level(LEVELS, target))
    assert minimums.level(LEVELS, asked) == transit_minimum(LEVELS, asked).value
    assert minimums.level(OTHER, asked) == transit_minimum(OTHER, asked).value
    assert len(minimums) == 0, "another policy forgets every level"


def test_at_its_bound_nothing_more_is_kept_and_nothing_pushed_out() -> None:
    minimums = TransitMinimums(limit=2)
    for operation in range(4):
        target = Target(b"svc", 1, operation)
        minimums.keep(LEVELS, target, minimums.level(LEVELS, target))
    assert len(minimums) == 2
    assert minimums._levels == {Target(b"svc", 1, 0): 1, Target(b"svc", 1, 1): 1}


def test_a_level_from_an_older_policy_is_not_kept() -> None:
    minimums = TransitMinimums()
    target = Target(b"svc", 1, 2)
    level = minimums.level(LEVELS, target)
    minimums.level(OTHER, target)  # the policy changed meanwhile
    minimums.keep(LEVELS, target, level)
    assert len(minimums) == 0


def test_only_admitted_requests_leave_their_target_s_level() -> None:
    node = free_core()
    assert not isinstance(handle(node, request(altered_signature(TARGET))), Invoke)
    assert len(node.minimums) == 0, "a forged target adds nothing"
    assert isinstance(handle(node, request(TARGET)), Invoke)
    assert list(node.minimums._levels) == [Target(b"svc", 1, 1)]
    node.state.policy = CLOSED
    assert not isinstance(handle(node, request(TARGET)), Invoke)
    assert len(node.minimums) == 0, "a reload forgets; a denied request adds nothing"
