"""The design's transit negotiation as pure decisions with typed results (no I/O).

Between clusters levels are opaque numbers, so each cluster states a level as the list of
algorithm ids it trusts at that level (design, "Between clusters"). A cluster's table
(`transit.inter_cluster`, and `transit.intra_cluster` inside the cluster) maps a level to
ids; an algorithm's clearance is the highest level whose list holds it. The sender picks
the cheapest algorithm adequate for its own classification and acceptable to the target
(the EID's hint); the receiver accepts it if it clears the operation's minimum, else
rejects with its acceptable list; the sender retries once from that list.

Why no man in the middle can downgrade: the sender only ever uses an algorithm from its
own adequate set, and the receiver decides on the algorithm actually used (which the
session authenticates), never on a list it was sent. Forged hints and rejection lists can
make a call fail, never make it weaker than either side requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.eid import MAX_HINTS, AcceptedAlgorithm, Eid, OperationHint
from mercury_rt.core.transit.algorithms import MAX_ALGORITHM_LIST, REGISTRY, by_cost, cheapest
from policy.access import Ruled, Target
from policy.model import Policy
from policy.transit import entity_clearance


@dataclass(frozen=True, slots=True)
class TransitTable:
    """One cluster's algorithm table by level rank, the policy's top rank, and its key.

    `levels` empty means the administrator set no table: every registered algorithm then
    clears every level, so policies written before transit security keep working."""

    levels: Mapping[int, tuple[int, ...]]
    top: int
    rule: str


def inter_cluster_table(policy: Policy) -> TransitTable:
    """The table for messages to and from other clusters (`transit.inter_cluster`)."""
    return TransitTable(policy.transit_inter, len(policy.levels) - 1, "transit.inter_cluster")


def intra_cluster_table(policy: Policy) -> TransitTable:
    """The table for messages inside the cluster (`transit.intra_cluster`)."""
    return TransitTable(policy.transit_intra, len(policy.levels) - 1, "transit.intra_cluster")


def clearance_of(table: TransitTable, algorithm_id: int) -> int | None:
    """The highest level whose list holds the algorithm; None = never usable.

    An id this version has not registered has no clearance whatever a table says; an empty
    table gives every registered algorithm the top level."""
    if algorithm_id not in REGISTRY:
        return None
    if not table.levels:
        return table.top
    return max((level for level, ids in table.levels.items() if algorithm_id in ids),
               default=None)


def adequate(table: TransitTable, level: int) -> frozenset[int]:
    """The registered algorithms whose clearance in `table` is at least `level` (plain ints,
    as they go on the wire)."""
    return frozenset(int(a) for a in REGISTRY if _clears(clearance_of(table, a), level))


def _clears(clearance: int | None, level: int) -> bool:
    return clearance is not None and clearance >= level


def accepted_algorithms(table: TransitTable) -> tuple[AcceptedAlgorithm, ...]:
    """The EID's accepted-algorithm list (part 6) for this table: every usable registered
    algorithm with its clearance, cheapest first, so hints (part 5) can be mapped."""
    found = []
    for a in by_cost(REGISTRY):
        clearance = clearance_of(table, a)
        if clearance is not None:
            found.append(AcceptedAlgorithm(a, clearance))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Chosen:
    """Use this algorithm."""

    algorithm: int


@dataclass(frozen=True, slots=True)
class NoCommonAlgorithm:
    """No algorithm is both adequate for us and acceptable to the other side (709)."""

    detail: str
    code: ClassVar[ErrorCode] = ErrorCode.NO_COMMON_ALGORITHM


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The receiver rejected again, or its rejection offers nothing new: the call fails 707."""

    detail: str
    code: ClassVar[ErrorCode] = ErrorCode.ALGORITHM_TOO_WEAK


def hint_acceptable(hints: Sequence[OperationHint] | None,
                    algorithms: Sequence[AcceptedAlgorithm] | None,
                    endpoint: int, operation: int) -> frozenset[int] | None:
    """The algorithms a target's EID hint accepts for an operation; None = no constraint.

    A hint's level is in the target's numbering; its accepted-algorithm list maps it: the
    ids whose listed clearance is at least the hinted level (an id listed twice counts at
    its highest clearance; several hints for one operation count at the highest level).
    No hint for the operation, no list to map it, or lists over their bounds: no
    constraint, since the receiver's own check still decides."""
    if not hints or algorithms is None:
        return None
    if len(hints) > MAX_HINTS or len(algorithms) > MAX_ALGORITHM_LIST:
        return None
    levels = [h.transit_classification for h in hints
              if h.endpoint == endpoint and h.operation == operation]
    if not levels:
        return None
    level = max(levels)
    clearance: dict[int, int] = {}
    for entry in algorithms:
        clearance[entry.algorithm] = max(entry.clearance, clearance.get(entry.algorithm, -1))
    return frozenset(a for a, c in clearance.items() if c >= level)


def eid_acceptable(eid: Eid, endpoint: int, operation: int) -> frozenset[int] | None:
    """hint_acceptable for the target EID's parts 5 and 6."""
    return hint_acceptable(eid.hints, eid.algorithms, endpoint, operation)


def choose(sender_adequate: Iterable[int],
           acceptable: Iterable[int] | None) -> Chosen | NoCommonAlgorithm:
    """The cheapest registered algorithm adequate for the sender and acceptable to the target
    (`acceptable` None = the EID sets no constraint)."""
    ours = frozenset(sender_adequate)
    both = ours if acceptable is None else ours & frozenset(acceptable)
    picked = cheapest(both)
    if picked is None:
        return NoCommonAlgorithm(
            f"no algorithm is adequate for us ({list(by_cost(ours))}) and acceptable to the "
            f"target ({'any' if acceptable is None else sorted(frozenset(acceptable))})")
    return Chosen(picked)


@dataclass(frozen=True, slots=True)
class TransitAccepted:
    """The algorithm clears the operation's minimum; `classification` is the message's
    classification in the receiver's numbering (the algorithm's clearance), which the
    handler sees."""

    algorithm: int
    classification: int


@dataclass(frozen=True, slots=True)
class TooWeak:
    """The algorithm does not clear `minimum` (707); `acceptable` are the algorithms that
    would, cheapest first, for the sender to retry with."""

    algorithm: int
    minimum: int
    acceptable: tuple[int, ...]
    code: ClassVar[ErrorCode] = ErrorCode.ALGORITHM_TOO_WEAK


def receiver_check(table: TransitTable, algorithm_id: int,
                   minimum: int) -> TransitAccepted | TooWeak:
    """The receiver's decision on the algorithm a message actually used.

    Only the operation's minimum is checked: a message from another cluster is never
    rejected for being classified above the target entity's clearance (design: the
    sender checks that)."""
    clearance = clearance_of(table, algorithm_id)
    if clearance is not None and clearance >= minimum:
        return TransitAccepted(algorithm_id, clearance)
    return TooWeak(algorithm_id, minimum, by_cost(adequate(table, minimum)))


def after_rejection(used: int, rejection_list: Sequence[int], sender_adequate: Iterable[int],
                    already_retried: bool) -> Chosen | NoCommonAlgorithm | GiveUp:
    """What the sender does after a TooWeak naming `rejection_list`: retry once with the
    cheapest algorithm in that list and in its own adequate set, other than the one used.

    A second rejection, an over-long list, or a list whose only common algorithm is the
    one just rejected (a receiver contradicting itself, or a forged list) ends the call."""
    if already_retried:
        return GiveUp(f"the receiver rejected algorithm {used} after the retry")
    if len(rejection_list) > MAX_ALGORITHM_LIST:
        return GiveUp(f"the rejection lists {len(rejection_list)} algorithms; at most "
                      f"{MAX_ALGORITHM_LIST}")
    ours = frozenset(sender_adequate)
    common = ours.intersection(rejection_list)
    picked = cheapest(common - {used})
    if picked is not None:
        return Chosen(picked)
    if used in common:
        return GiveUp(f"the receiver rejected algorithm {used} yet lists it as acceptable")
    return NoCommonAlgorithm(
        f"the receiver accepts {sorted(set(rejection_list))}; we accept "
        f"{list(by_cost(ours))} for this message")


@dataclass(frozen=True, slots=True)
class Allowed:
    """The message may be sent to the target entity; `rule` names the clearance used."""

    classification: int
    clearance: int
    rule: str


@dataclass(frozen=True, slots=True)
class ClassifiedAboveTarget:
    """The message is classified above the target entity's clearance (710): not sent."""

    classification: int
    clearance: int
    rule: str
    code: ClassVar[ErrorCode] = ErrorCode.CLASSIFIED_ABOVE_TARGET


def intra_check(policy: Policy, target: Target,
                classification: int) -> Allowed | ClassifiedAboveTarget:
    """Within the cluster, never send a message classified above the target's clearance
    (design, "Within the cluster"); the shared policy gives that clearance."""
    clearance: Ruled = entity_clearance(policy, target.entity)
    if classification > clearance.value:
        return ClassifiedAboveTarget(classification, clearance.value, clearance.rule)
    return Allowed(classification, clearance.value, clearance.rule)


def intra_protection(table: TransitTable, classification: int) -> Chosen | NoCommonAlgorithm:
    """The cheapest algorithm that protects `classification` inside the cluster, by
    `transit.intra_cluster` under the same rules as between clusters."""
    picked = cheapest(adequate(table, classification))
    if picked is None:
        return NoCommonAlgorithm(f"no algorithm in {table.rule} clears level {classification}")
    return Chosen(picked)
