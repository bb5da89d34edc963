"""The caller's kept contact view (issue 13) gives every call the decisions the general
path gives: for any sequence of suspicions, answers, new cluster-ID versions and calls,
a contact from the planner tries the same addresses in the same order, makes the same
random draws and gives up the same way as one working everything out afresh."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.contact_view_support import (
    ALL_ADDRS,
    NEAR,
    TARGET,
    V2,
    drained,
    fresh_contact,
    planner,
)

events = st.lists(st.one_of(
    st.tuples(st.just("silent"), st.sampled_from(ALL_ADDRS), st.floats(0, 100)),
    st.tuples(st.just("answered"), st.sampled_from(ALL_ADDRS), st.just(0.0)),
    st.tuples(st.just("newer"), st.just(("", 0)), st.just(0.0)),
    st.tuples(st.just("call"), st.just(("", 0)), st.floats(0, 200)),
), max_size=30)


@given(events, st.integers(0, 2**32), st.booleans())
def test_a_kept_view_decides_as_the_general_path(
        history: list[tuple[str, tuple[str, int], float]], seed: int, near: bool) -> None:
    made = planner(NEAR if near else None)
    for n, (kind, address, when) in enumerate(history):
        if kind == "silent":
            made.mark_silent(address, when)
        elif kind == "answered":
            made.mark_answered(address)
        elif kind == "newer":
            made.learn(V2)
        else:
            cluster_id = made.newest(TARGET.cluster_id)
            made.rng = random.Random(seed + n)
            kept = drained(made.contact(cluster_id, TARGET, when))
            fresh = random.Random(seed + n)
            general = drained(fresh_contact(made, cluster_id, fresh, when))
            assert kept == general
            assert made.rng.getstate() == fresh.getstate(), "the same draws"
