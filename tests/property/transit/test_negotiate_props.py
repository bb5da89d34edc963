"""Properties of the transit negotiation (issue 11, items 7 and 8).

A whole negotiation is driven here as the runtime drives it: the sender chooses from its
adequate set and the EID hint, the receiver checks the algorithm actually used, the sender
retries once from the rejection list. (1) On an honest network it ends in the cheapest
mutually adequate algorithm or a coded failure, never below either side's minimum, and an
honest hint avoids the rejection. (2) A man in the middle that strips, rewrites or forges
the hint and every rejection (even turning an acceptance into a rejection) causes no
downgrade: each message the receiver accepts travelled on an algorithm adequate for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import AcceptedAlgorithm, OperationHint
from mercury_rt.core.transit import (
    MAX_ALGORITHM_LIST,
    REGISTRY,
    Chosen,
    TooWeak,
    TransitAccepted,
    TransitTable,
    accepted_algorithms,
    adequate,
    after_rejection,
    by_cost,
    choose,
    clearance_of,
    hint_acceptable,
    receiver_check,
)

IDS = st.sampled_from([0, 1, 2, 3, 4242])
"""Registered ids 1-3 and two this version does not know."""
ENDPOINT, OPERATION = 7, 9
FAILURES = {ErrorCode.NO_COMMON_ALGORITHM, ErrorCode.ALGORITHM_TOO_WEAK}


@st.composite
def tables(draw: st.DrawFn) -> TransitTable:
    """A cluster's table: its own number of levels, empty or listing ids at some levels."""
    top = draw(st.integers(0, 4))
    levels = draw(st.one_of(
        st.just({}),
        st.dictionaries(st.integers(0, top), st.lists(IDS, max_size=4).map(tuple),
                        max_size=top + 1)))
    return TransitTable(levels, top, "transit.inter_cluster")


@dataclass(frozen=True)
class Side:
    table: TransitTable
    level: int


@st.composite
def sides(draw: st.DrawFn) -> Side:
    """A table and a level on it (possibly above its top: then nothing is adequate)."""
    table = draw(tables())
    return Side(table, draw(st.integers(0, table.top + 1)))


def honest_hint(receiver: Side) -> frozenset[int] | None:
    """What the receiver's own EID says: its accepted list and the operation's minimum."""
    hints = (OperationHint(ENDPOINT, OPERATION, receiver.level, 0),)
    listed = accepted_algorithms(receiver.table)
    return hint_acceptable(hints, listed or None, ENDPOINT, OPERATION)


forged_hints = st.one_of(
    st.none(),
    st.frozensets(st.integers(0, 70_000), max_size=8),
    st.builds(lambda hints, listed: hint_acceptable(hints, listed, ENDPOINT, OPERATION),
              st.lists(st.builds(OperationHint, st.sampled_from([ENDPOINT, 1]),
                                 st.sampled_from([OPERATION, 2]), st.integers(0, 6),
                                 st.just(0)), max_size=4),
              st.lists(st.builds(AcceptedAlgorithm, IDS, st.integers(0, 6)), min_size=1,
                       max_size=6)))


@dataclass
class Outcome:
    """How a call ended, and every algorithm the receiver accepted a message on."""

    algorithm: int | None = None
    code: ErrorCode | None = None
    rejections: int = 0
    accepted: list[int] = field(default_factory=list)


Rewrite = Callable[[int, tuple[int, ...] | None], tuple[int, ...] | None]
"""The network between receiver and sender: (used, rejection list or None for an
acceptance) -> what the sender sees (None = acceptance)."""


def honest(_used: int, verdict: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return verdict


def negotiate(sender: Side, acceptable: frozenset[int] | None, receiver: Side,
              network: Rewrite = honest) -> Outcome:
    """One call: choose, receiver check on the algorithm used, at most one retry."""
    ours = adequate(sender.table, sender.level)
    out = Outcome()
    step = choose(ours, acceptable)
    retried = False
    while isinstance(step, Chosen):
        assert step.algorithm in ours, "the sender only ever uses its own adequate algorithms"
        verdict = receiver_check(receiver.table, step.algorithm, receiver.level)
        if isinstance(verdict, TransitAccepted):
            out.accepted.append(step.algorithm)
        seen = network(step.algorithm,
                       verdict.acceptable if isinstance(verdict, TooWeak) else None)
        if seen is None:
            out.algorithm = step.algorithm
            return out
        out.rejections += 1
        step = after_rejection(step.algorithm, seen, ours, retried)
        retried = True
    out.code = step.code
    return out


def mutual(sender: Side, receiver: Side) -> frozenset[int]:
    return adequate(sender.table, sender.level) & adequate(receiver.table, receiver.level)


def cheapest_reference(ids: frozenset[int]) -> int:
    """The reference "least expensive option": lowest registry cost, then lowest id."""
    return min(ids, key=lambda a: (REGISTRY[a].cost, a))


def clears(table: TransitTable, algorithm_id: int, level: int) -> bool:
    clearance = clearance_of(table, algorithm_id)
    return clearance is not None and clearance >= level


@settings(max_examples=400)
@given(sides(), sides(), st.booleans())
def test_honest_negotiation_ends_in_the_cheapest_mutual_algorithm_or_709(
        sender: Side, receiver: Side, with_hint: bool) -> None:
    hint = honest_hint(receiver) if with_hint else None
    out = negotiate(sender, hint, receiver)
    both = mutual(sender, receiver)
    if both:
        assert out.algorithm == cheapest_reference(both)
        assert clears(sender.table, out.algorithm, sender.level)
        assert clears(receiver.table, out.algorithm, receiver.level)
        assert out.rejections <= 1
        if with_hint:
            assert out.rejections == 0, "an honest EID hint avoids the first rejection"
    else:
        assert out.algorithm is None
        assert out.code == ErrorCode.NO_COMMON_ALGORITHM
    assert out.accepted == ([] if out.algorithm is None else [out.algorithm])


@settings(max_examples=400)
@given(sides(), sides(), forged_hints)
def test_any_hint_never_yields_an_algorithm_below_either_minimum(
        sender: Side, receiver: Side, hint: frozenset[int] | None) -> None:
    out = negotiate(sender, hint, receiver)
    both = mutual(sender, receiver)
    if out.algorithm is None:
        assert out.code in FAILURES
    else:
        assert out.algorithm in both
        ours_and_hint = adequate(sender.table, sender.level) & (
            frozenset(REGISTRY) if hint is None else hint)
        first = cheapest_reference(ours_and_hint)
        # Accepted at once (the hint was right), or retried to the cheapest mutual one.
        assert out.algorithm in (first, cheapest_reference(both))
    if both and hint is None:
        assert out.algorithm == cheapest_reference(both)


rejection_lists = st.one_of(
    st.lists(st.integers(0, 70_000), max_size=6).map(tuple),
    st.lists(IDS, max_size=6).map(tuple),
    st.integers(MAX_ALGORITHM_LIST + 1, 5000).map(lambda n: tuple(range(n))),
)


@settings(max_examples=500)
@given(sides(), sides(), forged_hints, st.data())
def test_a_man_in_the_middle_causes_no_downgrade(
        sender: Side, receiver: Side, hint: frozenset[int] | None, data: st.DataObject) -> None:
    def mitm(used: int, verdict: tuple[int, ...] | None) -> tuple[int, ...] | None:
        action = data.draw(st.sampled_from(["pass", "strip", "rewrite", "forge"]))
        if action == "pass":
            return verdict
        if action == "strip":
            return () if verdict is not None else None
        if action == "rewrite" and verdict is not None:
            return data.draw(rejection_lists)
        if action == "forge":
            return data.draw(rejection_lists)  # a rejection even of an accepted message
        return verdict

    out = negotiate(sender, hint, receiver, mitm)
    downgrades = [a for a in out.accepted
                  if not (clears(sender.table, a, sender.level)
                          and clears(receiver.table, a, receiver.level))]
    assert downgrades == []
    assert len(out.accepted) <= 2 and out.rejections <= 2
    if out.algorithm is None:
        assert out.code in FAILURES
    else:
        assert out.algorithm in out.accepted
        assert out.algorithm in mutual(sender, receiver)


@given(tables(), st.integers(0, 6))
def test_clearance_rules(table: TransitTable, level: int) -> None:
    got = adequate(table, level)
    assert got <= adequate(table, max(level - 1, 0))
    assert got <= frozenset(REGISTRY)
    if not table.levels:
        assert got == (frozenset(REGISTRY) if level <= table.top else frozenset())
    for a in REGISTRY:
        listed = [lv for lv, ids in table.levels.items() if a in ids]
        expected = table.top if not table.levels else max(listed, default=None)
        assert clearance_of(table, a) == expected
    assert clearance_of(table, 4242) is None


@given(tables(), IDS, st.integers(0, 6))
def test_receiver_accepts_exactly_what_clears_the_minimum(
        table: TransitTable, algorithm_id: int, minimum: int) -> None:
    verdict = receiver_check(table, algorithm_id, minimum)
    if algorithm_id in adequate(table, minimum):
        assert verdict == TransitAccepted(algorithm_id, clearance_of(table, algorithm_id))
    else:
        assert isinstance(verdict, TooWeak)
        assert verdict.acceptable == by_cost(adequate(table, minimum))
        assert algorithm_id not in verdict.acceptable
