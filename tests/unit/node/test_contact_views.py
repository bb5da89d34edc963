"""The caller's contact view of a cluster and its explicit invalidation (issue 13): kept
while the cluster ID and the proximity rule are the same, replaced by a newer cluster ID,
passed over for the general order while a listed node is suspect (a call's silence makes
it so), and bounded."""

from __future__ import annotations

import random

from carbon.error_codes import ErrorCode
from carbon.types import dumps_typed
from mercury_rt.core.node import CallPlanner, CallRequest, OutgoingCall, SendInterStep
from mercury_rt.core.node.contact_views import ContactViews
from mercury_rt.core.node.planner import SUSPECT_FOR
from mercury_rt.core.routing import TryAddress
from mercury_rt.core.transport import Addr
from tests.contact_view_support import NEAR, TARGET, V1, V2, drained, planner
from tests.forgery_support import C_CID


def _order(contact_actions: list[object]) -> list[Addr]:
    return [(str(a.endpoint.host), a.endpoint.port) for a in contact_actions
            if isinstance(a, TryAddress)]


def _first_seed_order(made: CallPlanner, now: float = 0.0) -> list[Addr]:
    made.rng = random.Random(3)
    return _order(drained(made.contact(made.newest(V1), TARGET, now)))


def test_the_view_is_kept_for_the_same_cluster_id_and_rule() -> None:
    made = planner()
    view = made.views.of(V1, None)
    assert made.views.of(V1, None) is view, "a hit: nothing worked out again"
    assert made.views.of(V1, NEAR) is not view, "another proximity rule: rebuilt"
    assert len(made.views) == 1


def test_a_newer_cluster_id_replaces_the_view_and_its_list() -> None:
    made = planner()
    before = _first_seed_order(made)
    assert ("10.2.0.1", 7000) in before and len(made.views) == 1
    assert made.learn(V2)
    assert len(made.views) == 0, "learning a newer version drops the view"
    after = _first_seed_order(made)
    assert set(after) == {(str(a.host), a.port) for a in V2.addresses}
    assert made.views.of(V2, None).cluster_id is V2


def test_a_suspect_node_is_tried_last_until_it_answers_or_time_passes() -> None:
    made = planner()
    usual = _first_seed_order(made)
    first = usual[0]
    made.mark_silent(first, 0.0)
    suspect = _first_seed_order(made, now=1.0)
    assert suspect[-1] == first, "the suspect goes after every other address"
    assert _first_seed_order(made, now=SUSPECT_FOR + 1.0) == usual, "suspicion expired"
    made.mark_silent(first, 0.0)
    made.mark_answered(first)
    assert _first_seed_order(made, now=1.0) == usual, "it answered: the kept order again"


def test_a_calls_silence_makes_the_next_call_try_that_node_last() -> None:
    made = planner()
    request = CallRequest(TARGET, 1, 1, dumps_typed(str, "hi"), b"alice", b"key")
    made.rng = random.Random(5)
    call = OutgoingCall(made, request, 0.0)
    step = call.start()
    assert isinstance(step, SendInterStep)
    silent = step.address
    assert isinstance(call.on_failure(int(ErrorCode.NO_ANSWER), "silence", 0.0),
                      SendInterStep)
    for seed in range(20):
        made.rng = random.Random(seed)
        order = _order(drained(made.contact(made.newest(V1), TARGET, 1.0)))
        assert order[-1] == silent


def test_views_are_bounded() -> None:
    views = ContactViews(limit=1)
    views.of(V1, None)
    views.of(V2, None)
    assert len(views) == 1, "one cluster, one view: the newer version replaced it"
    views.of(C_CID, None)
    assert len(views) == 1, "full: the oldest cluster's view went"
    views.forget(C_CID.master_hash)
    assert len(views) == 0
