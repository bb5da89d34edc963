"""The transit negotiation decisions: each rule of the design, on small concrete tables."""

from __future__ import annotations

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import AcceptedAlgorithm, OperationHint
from mercury_rt.core.transit import (
    MAX_ALGORITHM_LIST,
    AlgorithmId,
    Allowed,
    Chosen,
    ClassifiedAboveTarget,
    GiveUp,
    NoCommonAlgorithm,
    TooWeak,
    TransitAccepted,
    TransitTable,
    accepted_algorithms,
    adequate,
    after_rejection,
    choose,
    clearance_of,
    eid_acceptable,
    hint_acceptable,
    inter_cluster_table,
    intra_check,
    intra_cluster_table,
    intra_protection,
    receiver_check,
)
from policy.access import Target
from policy.load import parse_policy
from policy.transit import sender_classification, transit_minimum
from tests.identity_support import full_eid

CHACHA, AES, HYBRID = (int(AlgorithmId.X25519_CHACHA20), int(AlgorithmId.X25519_AES256GCM),
                       int(AlgorithmId.MLKEM768_X25519_CHACHA20))
ALL = frozenset({CHACHA, AES, HYBRID})

POLICY = parse_policy("""\
version: 1
levels: [public, internal, confidential, secret]
entities:
  shop: {clearance: internal}
  vault: {clearance: secret}
transit:
  inter_cluster:
    public: [1]
    internal: [1, 2]
    secret: [3]
  intra_cluster:
    confidential: [2, 3]
""")
INTER = inter_cluster_table(POLICY)
INTRA = intra_cluster_table(POLICY)
EMPTY = TransitTable({}, 3, "transit.inter_cluster")


def test_clearance_is_the_highest_level_listing_the_algorithm() -> None:
    assert clearance_of(INTER, CHACHA) == 1
    assert clearance_of(INTER, AES) == 1
    assert clearance_of(INTER, HYBRID) == 3
    assert (INTER.rule, INTRA.rule) == ("transit.inter_cluster", "transit.intra_cluster")


def test_an_algorithm_listed_nowhere_is_never_usable() -> None:
    assert clearance_of(INTRA, CHACHA) is None
    assert CHACHA not in adequate(INTRA, 0)


def test_an_empty_table_lets_every_registered_algorithm_clear_every_level() -> None:
    assert all(clearance_of(EMPTY, a) == 3 for a in ALL)
    assert adequate(EMPTY, 3) == ALL
    empty_policy = parse_policy("version: 1\nlevels: [a, b]\n")
    assert adequate(inter_cluster_table(empty_policy), 1) == ALL
    assert adequate(intra_cluster_table(empty_policy), 1) == ALL


def test_unregistered_ids_have_no_clearance_even_when_listed() -> None:
    listed = TransitTable({0: (999, 1)}, 0, "t")
    assert clearance_of(listed, 999) is None
    assert clearance_of(EMPTY, 999) is None
    assert adequate(listed, 0) == {CHACHA}


def test_adequate_sets_shrink_as_the_level_rises() -> None:
    assert all(type(a) is int for a in adequate(INTER, 0))
    assert adequate(INTER, 0) == ALL
    assert adequate(INTER, 1) == ALL
    assert adequate(INTER, 2) == {HYBRID}
    assert adequate(INTER, 3) == {HYBRID}
    assert adequate(INTER, 4) == frozenset()


def test_accepted_algorithms_list_every_usable_one_cheapest_first() -> None:
    assert accepted_algorithms(INTER) == (AcceptedAlgorithm(AES, 1), AcceptedAlgorithm(CHACHA, 1),
                                          AcceptedAlgorithm(HYBRID, 3))
    assert accepted_algorithms(INTRA) == (AcceptedAlgorithm(AES, 2),
                                          AcceptedAlgorithm(HYBRID, 2))


def test_choose_takes_the_cheapest_in_the_intersection() -> None:
    assert choose(ALL, None) == Chosen(AES)
    assert choose(ALL, {CHACHA, HYBRID}) == Chosen(CHACHA)
    assert choose({HYBRID}, None) == Chosen(HYBRID)


def test_choose_never_picks_an_unknown_id_and_fails_with_709() -> None:
    got = choose({CHACHA}, {AES, 4242})
    assert isinstance(got, NoCommonAlgorithm)
    assert got.code == ErrorCode.NO_COMMON_ALGORITHM == 709
    assert isinstance(choose({4242}, {4242}), NoCommonAlgorithm)
    assert isinstance(choose({4242}, None), NoCommonAlgorithm)


def test_hint_levels_map_through_the_eids_algorithm_list() -> None:
    hints = (OperationHint(1, 2, 3, 0), OperationHint(1, 5, 0, 0))
    listed = (AcceptedAlgorithm(AES, 1), AcceptedAlgorithm(CHACHA, 1),
              AcceptedAlgorithm(HYBRID, 3), AcceptedAlgorithm(4242, 9))
    assert hint_acceptable(hints, listed, 1, 2) == {HYBRID, 4242}
    assert hint_acceptable(hints, listed, 1, 5) == {AES, CHACHA, HYBRID, 4242}


def test_no_hint_for_the_operation_means_no_constraint() -> None:
    hints = (OperationHint(1, 2, 3, 0),)
    listed = (AcceptedAlgorithm(AES, 1),)
    assert hint_acceptable(hints, listed, 1, 3) is None
    assert hint_acceptable(None, None, 1, 2) is None
    assert hint_acceptable(hints, None, 1, 2) is None


def test_repeated_hints_and_algorithms_count_at_their_highest() -> None:
    hints = (OperationHint(1, 2, 1, 0), OperationHint(1, 2, 3, 0))
    listed = (AcceptedAlgorithm(AES, 1), AcceptedAlgorithm(AES, 3), AcceptedAlgorithm(CHACHA, 2))
    assert hint_acceptable(hints, listed, 1, 2) == {AES}


def test_overlong_lists_are_ignored_not_scanned() -> None:
    hints = (OperationHint(1, 2, 0, 0),)
    too_many = tuple(AcceptedAlgorithm(i, 5) for i in range(MAX_ALGORITHM_LIST + 1))
    assert hint_acceptable(hints, too_many, 1, 2) is None


def test_eid_acceptable_reads_the_eids_parts_5_and_6() -> None:
    eid = full_eid()  # hint (0, 1) at level 2; algorithms 1 at 2, 2 at 3
    assert eid_acceptable(eid, 0, 1) == {CHACHA, AES}
    assert eid_acceptable(eid, 0, 9) is None


def test_receiver_accepts_an_algorithm_that_clears_the_minimum() -> None:
    assert receiver_check(INTER, HYBRID, 2) == TransitAccepted(HYBRID, 3)
    assert receiver_check(INTER, AES, 1) == TransitAccepted(AES, 1)


def test_receiver_rejects_a_weak_algorithm_with_its_acceptable_list_by_cost() -> None:
    got = receiver_check(INTER, AES, 2)
    assert got == TooWeak(AES, 2, (HYBRID,))
    assert got.code == ErrorCode.ALGORITHM_TOO_WEAK == 707
    assert receiver_check(INTER, CHACHA, 4) == TooWeak(CHACHA, 4, ())
    assert receiver_check(INTER, 4242, 0) == TooWeak(4242, 0, (AES, CHACHA, HYBRID))


def test_receiver_never_rejects_for_exceeding_the_entitys_clearance() -> None:
    # shop's clearance is internal (1); a message protected at secret (3) is accepted and
    # classified at secret: the receiver checks only the operation's minimum.
    assert receiver_check(INTER, HYBRID, 0) == TransitAccepted(HYBRID, 3)


def test_after_a_rejection_the_sender_retries_once_with_the_cheapest_common() -> None:
    assert after_rejection(AES, (HYBRID, CHACHA), ALL, False) == Chosen(CHACHA)
    assert after_rejection(AES, (AES, HYBRID), ALL, False) == Chosen(HYBRID)
    assert isinstance(after_rejection(AES, (HYBRID,), ALL, True), GiveUp)


def test_after_rejection_fails_709_when_nothing_is_common() -> None:
    got = after_rejection(AES, (HYBRID, 4242), {AES, CHACHA}, False)
    assert isinstance(got, NoCommonAlgorithm)
    assert isinstance(after_rejection(AES, (), ALL, False), NoCommonAlgorithm)


def test_a_rejection_that_offers_only_the_rejected_algorithm_gives_up_707() -> None:
    got = after_rejection(AES, (AES,), ALL, False)
    assert isinstance(got, GiveUp)
    assert got.code == ErrorCode.ALGORITHM_TOO_WEAK


def test_an_overlong_rejection_list_gives_up_without_scanning() -> None:
    got = after_rejection(AES, tuple(range(10_000)), ALL, False)
    assert isinstance(got, GiveUp)
    assert "at most" in got.detail


def test_intra_cluster_never_sends_above_the_targets_clearance() -> None:
    assert intra_check(POLICY, Target(b"shop", 1, 2), 1) == Allowed(1, 1,
                                                                    "entities.shop.clearance")
    got = intra_check(POLICY, Target(b"shop", 1, 2), 2)
    assert got == ClassifiedAboveTarget(2, 1, "entities.shop.clearance")
    assert got.code == ErrorCode.CLASSIFIED_ABOVE_TARGET == 710
    assert isinstance(intra_check(POLICY, Target(b"vault", 0, 0), 3), Allowed)
    assert isinstance(intra_check(POLICY, Target(b"nobody", 0, 0), 1), ClassifiedAboveTarget)


def test_intra_protection_is_the_cheapest_algorithm_clearing_the_level() -> None:
    assert intra_protection(INTRA, 2) == Chosen(AES)
    got = intra_protection(INTRA, 3)
    assert isinstance(got, NoCommonAlgorithm)
    assert "transit.intra_cluster" in got.detail
    assert intra_protection(TransitTable({}, 3, "transit.intra_cluster"), 3) == Chosen(AES)


SENDER = parse_policy("""\
version: 1
levels: [open, restricted, vital]
entities:
  alice: {clearance: restricted}
transit:
  inter_cluster: {restricted: [1, 2], vital: [3]}
""")
RECEIVER = parse_policy("""\
version: 1
levels: [public, internal, confidential, secret]
entities:
  shop:
    classification: public
    clearance: public
    endpoints:
      1:
        operations:
          5: {transit: secret}
transit:
  inter_cluster: {confidential: [2], secret: [3]}
""")


def test_two_clusters_agree_through_the_eid_hint_without_a_rejection() -> None:
    """Each side in its own numbering: the sender's `restricted` and the receiver's
    `secret` meet at algorithm 3, the only one both trust that far."""
    ours = adequate(inter_cluster_table(SENDER),
                    sender_classification(SENDER, b"alice").value)
    assert ours == {CHACHA, AES, HYBRID}
    receiver_table = inter_cluster_table(RECEIVER)
    minimum = transit_minimum(RECEIVER, Target(b"shop", 1, 5))
    hint = (OperationHint(1, 5, minimum.value, 0),)
    acceptable = hint_acceptable(hint, accepted_algorithms(receiver_table), 1, 5)
    chosen = choose(ours, acceptable)
    assert chosen == Chosen(HYBRID)
    # shop's clearance is public, yet the secret-classified message is accepted.
    assert receiver_check(receiver_table, HYBRID, minimum.value) == TransitAccepted(HYBRID, 3)


def test_without_a_hint_one_rejection_leads_to_the_cheapest_mutual_algorithm() -> None:
    ours = adequate(inter_cluster_table(SENDER), sender_classification(SENDER, b"alice").value)
    receiver_table = inter_cluster_table(RECEIVER)
    minimum = transit_minimum(RECEIVER, Target(b"shop", 1, 5)).value
    first = choose(ours, None)
    assert first == Chosen(AES)
    rejected = receiver_check(receiver_table, AES, minimum)
    assert rejected == TooWeak(AES, 3, (HYBRID,))
    retry = after_rejection(AES, rejected.acceptable, ours, already_retried=False)
    assert retry == Chosen(HYBRID)
    assert isinstance(receiver_check(receiver_table, HYBRID, minimum), TransitAccepted)
    # A sender cleared only for `open` under a table that omits 3 at that level cannot
    # reach the operation: the call fails with 709 rather than going out weaker.
    weak = adequate(TransitTable({0: (1, 2)}, 2, "transit.inter_cluster"), 0)
    assert isinstance(after_rejection(AES, rejected.acceptable, weak, False), NoCommonAlgorithm)
