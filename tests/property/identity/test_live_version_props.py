"""Property tests: which cluster-ID version is live and which number comes next, from a
trusted history and candidate files that may be forged, tampered, lower or foreign."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.identity import ClusterId, ServerAddress, change_addresses, issue_cluster_id
from mercury_rt.core.identity.live import HISTORY, Candidate, live_version, next_version
from tests.identity_support import (
    CLUSTER_KEY_1,
    CLUSTER_KEY_2,
    MASTER,
    OTHER_MASTER,
    cluster_v1,
    key,
)

V1 = cluster_v1()
LISTS = tuple((ServerAddress(IPv4Address(f"192.0.2.{n}"), 7400, 10, 10),) for n in range(1, 4))


def genuine(version: int, addresses: int) -> ClusterId:
    """A version the cluster key really signed (what a publishing node writes)."""
    return change_addresses(replace(V1, version=version - 1), CLUSTER_KEY_1, LISTS[addresses])


def forged(version: int, how: int) -> ClusterId:
    """A version nobody holding the cluster's keys signed, in one of four ways."""
    if how == 0:  # a signature that is not the cluster key's
        return replace(genuine(version, 0), signature=bytes(64))
    if how == 1:  # a genuine version with its address list altered afterwards
        return replace(genuine(version, 0), addresses=LISTS[1])
    if how == 2:  # another cluster's (own master, own valid signatures)
        return issue_cluster_id(OTHER_MASTER, key(10), LISTS[2], version)
    forger = key(11)  # a self-certified cluster key under our master's public key
    other = issue_cluster_id(forger, forger, LISTS[2], version)
    return replace(other, master=V1.master)


candidates = st.lists(
    st.tuples(st.booleans(), st.integers(2, 40), st.integers(0, 3)), max_size=6)


def build(specs: list[tuple[bool, int, int]]) -> tuple[list[Candidate], set[int]]:
    """Candidates from (genuine?, version, variant) and the versions that are genuine."""
    out, real = [], set()
    for index, (is_real, version, variant) in enumerate(specs):
        cid = genuine(version, variant % 3) if is_real else forged(version, variant)
        if is_real:
            real.add(version)
        out.append(Candidate(f"file{index}", cid))
    return out, real


@settings(max_examples=60, deadline=None)
@given(candidates)
def test_live_is_the_highest_genuine_version_and_forgeries_never_count(
        specs: list[tuple[bool, int, int]]) -> None:
    cands, real = build(specs)
    live = live_version([V1], cands)
    assert live.cluster_id.version == max(real | {1})
    assert live.used == frozenset(real | {1})
    assert len(live.ignored) == sum(1 for is_real, _, _ in specs if not is_real)
    assert next_version(live) == max(real | {1}) + 1
    assert live.source == HISTORY or live.cluster_id in {c.cluster_id for c in cands}
    assert live.history[-1] == live.cluster_id


@settings(max_examples=40, deadline=None)
@given(candidates, candidates)
def test_more_candidates_never_lower_the_live_version_or_the_next_number(
        first: list[tuple[bool, int, int]], more: list[tuple[bool, int, int]]) -> None:
    some, _ = build(first)
    extra, _ = build(more)
    before, after = live_version([V1], some), live_version([V1], some + extra)
    assert after.cluster_id.version >= before.cluster_id.version
    assert next_version(after) >= next_version(before)
    assert next_version(after) not in after.used


@settings(max_examples=40, deadline=None)
@given(candidates, st.randoms(use_true_random=False))
def test_the_order_files_are_read_in_does_not_matter(specs: list[tuple[bool, int, int]],
                                                     rng: object) -> None:
    cands, _ = build(specs)
    shuffled = list(cands)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    one, two = live_version([V1], cands), live_version([V1], shuffled)
    assert one.cluster_id == two.cluster_id
    assert one.used == two.used and one.conflicts == two.conflicts


def test_a_lower_candidate_leaves_the_history_version_live() -> None:
    history = [V1, genuine(2, 0), genuine(3, 1)]
    live = live_version(history, [Candidate("old", genuine(2, 2)), Candidate("same",
                                                                              genuine(3, 1))])
    assert live.cluster_id == history[-1] and live.source == HISTORY
    assert live.conflicts == (2,), "a node's list under a number the tool also issued"
    assert next_version(live) == 4


def test_two_lists_under_one_number_pick_the_same_one_and_are_reported() -> None:
    a, b = genuine(5, 0), genuine(5, 1)
    one = live_version([V1], [Candidate("a", a), Candidate("b", b)])
    two = live_version([V1], [Candidate("b", b), Candidate("a", a)])
    assert one.cluster_id == two.cluster_id and one.conflicts == (5,)
    assert next_version(one) == 6


def test_a_rotated_out_key_is_refused_whatever_order_the_files_come_in() -> None:
    rotated = issue_cluster_id(MASTER, CLUSTER_KEY_2, LISTS[0], 4, 4)
    stale_key = genuine(6, 1)  # the old key used after the rotation at version 4
    for order in ([rotated, stale_key], [stale_key, rotated]):
        live = live_version([V1], [Candidate(str(i), c) for i, c in enumerate(order)])
        assert live.cluster_id == rotated
        assert [i.code.name for i in live.ignored] == ["ROTATED_OUT_KEY"]


def test_an_empty_history_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        live_version([], [])
