"""Contact machine over random event sequences: bounded, loop-free, honest about success."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import endpoint_key
from mercury_rt.core.routing import (
    Answered,
    ClusterIdReplaced,
    Contact,
    ContactEvent,
    ContactLimits,
    ContactState,
    EntityMoved,
    ErrorWithClusterId,
    Failed,
    ForwardingRecord,
    InvalidContactTransitionError,
    Migrated,
    NoAnswer,
    NodeLocalError,
    Redirect,
    Succeeded,
    TryAddress,
)
from tests.routing_support import FakeClusterId, FakeServerAddress, addr, supersedes

POOL = [addr(f"10.0.0.{i}", priority=i % 3, weight=i % 4) for i in range(1, 9)]
RECORD = ForwardingRecord(b"\x01c", b"x", b"new", 0, b"s")

cluster_ids = st.builds(
    FakeClusterId,
    st.integers(0, 8),
    st.lists(st.sampled_from(POOL), max_size=6).map(tuple),
    st.just(b"\x01cluster-a"),
    st.booleans(),
)
events: st.SearchStrategy[ContactEvent] = st.one_of(
    st.builds(Answered, st.integers(), st.none() | cluster_ids),
    st.just(NoAnswer()),
    st.builds(NodeLocalError, st.integers(500, 599)),
    st.builds(Redirect, st.sampled_from(POOL), st.none() | cluster_ids),
    st.builds(ErrorWithClusterId, st.integers(500, 599), cluster_ids),
    st.just(EntityMoved(RECORD)),
)
limits = st.builds(ContactLimits, st.integers(1, 12), st.integers(0, 5), st.integers(0, 3),
                   st.booleans())


def verify_move_sometimes(accept: bool):  # type: ignore[no-untyped-def]
    def check(record: ForwardingRecord) -> None:
        if not accept:
            raise MercuryError("forged", ErrorCode.FORWARDING_SIGNATURE_INVALID)
    return check


@given(cluster_ids, limits, st.lists(events, max_size=40), st.integers(0, 2**32),
       st.booleans())
def test_random_event_sequences_keep_invariants(
        start: FakeClusterId, lim: ContactLimits, script: list[ContactEvent], seed: int,
        accept_moves: bool) -> None:
    """Bounded attempts, no address twice per round, success only after Answered."""
    c = Contact(start, random.Random(seed), supersedes,  # type: ignore[arg-type]
                verify_move=verify_move_sometimes(accept_moves), limits=lim)
    actions = c.start()
    seen_this_round: set[tuple[object, int]] = set()
    tries = 0
    version = start.version
    events_fed = 0
    last_event: ContactEvent | None = None
    script_iter = iter(script)
    while True:
        for action in actions:
            if isinstance(action, ClusterIdReplaced):
                assert action.cluster_id.version > version  # only ever forward
                version = action.cluster_id.version
                if not isinstance(last_event, Answered):
                    seen_this_round.clear()  # a genuine restart begins a new round
            elif isinstance(action, TryAddress):
                key = endpoint_key(action.endpoint)
                assert key not in seen_this_round, "address tried twice in one round"
                seen_this_round.add(key)
                assert action.cluster_id_version == version
                tries += 1
                assert tries <= lim.max_attempts
            elif isinstance(action, Succeeded):
                assert isinstance(last_event, Answered)
            elif isinstance(action, Migrated):
                assert isinstance(last_event, EntityMoved) and accept_moves
            else:
                assert isinstance(action, Failed)
                assert len(action.attempts) <= lim.max_attempts
                assert action.code.name in action.message
        if c.state is not ContactState.AWAITING:
            break
        last_event = next(script_iter, NoAnswer())
        events_fed += 1
        actions = c.handle(last_event)
    # Each event consumes at most one attempt; so the machine ends within the bound.
    assert events_fed <= lim.max_attempts
    assert len(c.attempts) == events_fed
    with pytest.raises(InvalidContactTransitionError):
        c.handle(NoAnswer())


@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=8, unique=True),
       st.integers(0, 2**32))
def test_silence_everywhere_tries_each_listed_address_once(addrs: list[FakeServerAddress],
                                                           seed: int) -> None:
    """With no answers at all, every listed node is tried exactly once, then a failure."""
    c = Contact(FakeClusterId(1, tuple(addrs)), random.Random(seed),
                supersedes)  # type: ignore[arg-type]
    actions = c.start()
    tried = []
    while not isinstance(actions[-1], Failed):
        assert isinstance(actions[-1], TryAddress)
        tried.append(actions[-1].endpoint)
        actions = c.handle(NoAnswer())
    assert sorted(tried, key=str) == sorted(addrs, key=str)
    assert actions[-1].code is ErrorCode.NO_NODE_ANSWERED


@given(cluster_ids, st.lists(events, max_size=40), st.integers(0, 2**32))
def test_by_default_only_addresses_of_the_held_verified_cluster_id_are_tried(
        start: FakeClusterId, script: list[ContactEvent], seed: int) -> None:
    """With default limits, whatever redirects and bundled cluster IDs peers send, every
    address tried is listed by the cluster ID held at that moment: the starting one or a
    genuine superseding one the machine adopted. A redirect elsewhere, or to an address
    listed only by a forged cluster ID, is never tried."""
    c = Contact(start, random.Random(seed), supersedes)  # type: ignore[arg-type]
    held = start
    actions = c.start()
    script_iter = iter(script)
    while True:
        for action in actions:
            if isinstance(action, ClusterIdReplaced):
                assert action.cluster_id.genuine
                held = action.cluster_id
            elif isinstance(action, TryAddress):
                listed = {endpoint_key(a) for a in held.addresses}
                assert endpoint_key(action.endpoint) in listed
        if c.state is not ContactState.AWAITING:
            break
        actions = c.handle(next(script_iter, NoAnswer()))
