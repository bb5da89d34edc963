"""Property tests: what a node does with etcd's cluster-ID value (publication.decide), and
that nodes racing to publish through compare-and-swap never issue one number twice."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.identity import ClusterId, ServerAddress
from mercury_rt.core.node.publication import Adopt, Bump, InSync, Put, Won, decide
from tests.identity_support import cluster_v1

V1 = cluster_v1()
LISTS = tuple((ServerAddress(IPv4Address(f"192.0.2.{n}"), 7400, 10, 10),) for n in range(1, 5))


def version(number: int, addresses: int) -> ClusterId:
    """A cluster ID with `number` and one of four lists (decide does not verify: the
    adapter does that before, and passes `rejected` for what fails)."""
    return replace(V1, version=number, addresses=LISTS[addresses])


versions = st.builds(version, st.integers(1, 8), st.integers(0, 3))


@given(held=versions, proposal=st.none() | st.integers(0, 3), bump=st.integers(0, 3),
       live=st.none() | versions, rejected=st.booleans())
@settings(max_examples=400)
def test_decide_never_adopts_unverified_or_older_and_puts_above_all_it_saw(
        held: ClusterId, proposal: int | None, bump: int, live: ClusterId | None,
        rejected: bool) -> None:
    proposed = None if proposal is None else version(held.version + 1 + bump, proposal)
    decision = decide(held, proposed, live, rejected)
    trusted = live if live is not None and not rejected else None
    if isinstance(decision, Adopt):
        assert trusted is not None and decision.cluster_id == trusted
        assert trusted.version > held.version
    if isinstance(decision, Won):
        assert trusted is not None and trusted == proposed
    if isinstance(decision, Put):
        assert decision.cluster_id in (proposed, held)
        if trusted is not None:
            assert decision.cluster_id.version > trusted.version or (
                decision.cluster_id == held and trusted.version < held.version)
            assert trusted.version <= held.version
    if isinstance(decision, InSync):
        assert trusted == held and proposed is None
    if isinstance(decision, Bump):
        assert trusted is not None and trusted.version == held.version and trusted != held
    if trusted is None:  # nothing verified in etcd: put ours (proposal or held)
        assert decision == Put(proposed if proposed is not None else held)


@given(held=versions, live=versions)
def test_a_proposal_overtaken_by_an_adopted_version_is_dropped(held: ClusterId,
                                                               live: ClusterId) -> None:
    stale = version(held.version, 1)  # numbered at or below what the node holds now
    assert decide(held, stale, live) == decide(held, None, live)


class Register:
    """etcd's cluster-ID key: a value and its version; CAS on the version."""

    def __init__(self) -> None:
        self.value: ClusterId | None = None
        self.key_version = 0
        self.history: list[ClusterId] = []

    def cas(self, value: ClusterId, seen: int) -> bool:
        if seen != self.key_version:
            return False
        self.value, self.key_version = value, self.key_version + 1
        self.history.append(value)
        return True


class Node:
    """A node that wants its own address list published (every node sees a different
    node dead, so they keep racing)."""

    def __init__(self, wants: int) -> None:
        self.held = V1
        self.wants = wants
        self.proposed: ClusterId | None = None
        self.seen = 0

    def step(self, etcd: Register) -> None:
        if self.proposed is None:
            if self.held.addresses == LISTS[self.wants]:
                return
            self.proposed = replace(self.held, version=self.held.version + 1,
                                    addresses=LISTS[self.wants])
        if etcd.cas(self.proposed, self.seen):
            self.held, self.proposed, self.seen = self.proposed, None, etcd.key_version
            return
        self.seen = etcd.key_version  # the re-read
        decision = decide(self.held, self.proposed, etcd.value)
        if isinstance(decision, Adopt):
            self.held, self.proposed = decision.cluster_id, None
        elif isinstance(decision, Won):
            self.held, self.proposed = etcd.value or self.held, None
        elif isinstance(decision, Put):
            self.proposed = decision.cluster_id if decision.cluster_id != self.held else None
        else:
            self.proposed = None


@given(order=st.lists(st.integers(0, 3), min_size=1, max_size=60))
@settings(max_examples=300)
def test_nodes_racing_through_cas_issue_each_number_once(order: list[int]) -> None:
    etcd = Register()
    nodes = [Node(wants) for wants in range(4)]
    for turn in order:
        nodes[turn].step(etcd)
    numbers = [c.version for c in etcd.history]
    assert numbers == sorted(set(numbers)), "a number was issued twice or went down"
    for node in nodes:
        assert node.held == V1 or node.held in etcd.history
