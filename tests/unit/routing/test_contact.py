"""The client-side contact machine: SRV failover, redirects, cluster-ID restarts, bounds."""

from __future__ import annotations

import random

import pytest

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.routing import (
    Answered,
    ClusterIdReplaced,
    Contact,
    ContactError,
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
    Outcome,
    Redirect,
    Succeeded,
    TryAddress,
)
from tests.routing_support import FakeClusterId, addr, supersedes

P1 = addr("192.0.2.1", priority=10)
P2 = addr("192.0.2.2", priority=20)
P3 = addr("192.0.2.3", priority=30)
ELSEWHERE = addr("198.51.100.9")
V1 = FakeClusterId(1, (P1, P2, P3))
UNLISTED_OK = ContactLimits(follow_unlisted_redirects=True)
"""A contact that follows redirects anywhere (not the default), to test redirect mechanics."""
RECORD = ForwardingRecord(b"\x01cluster-a", b"alice", b"new-eid", 1, b"sig")


def contact(cluster_id: FakeClusterId = V1, **kwargs: object) -> Contact:
    return Contact(cluster_id, random.Random(0), supersedes, **kwargs)  # type: ignore[arg-type]


def tried(actions: list[object]) -> object:
    [action] = [a for a in actions if isinstance(a, TryAddress)]
    return action.endpoint


def test_tries_in_priority_order_and_lists_everything_on_failure() -> None:
    """No answer anywhere: each address once, lowest priority first, then a clear failure."""
    c = contact()
    assert tried(c.start()) == P1
    assert tried(c.handle(NoAnswer())) == P2
    assert tried(c.handle(NodeLocalError(int(ErrorCode.OVERLOADED), "busy"))) == P3
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed)
    assert failed.code is ErrorCode.NO_NODE_ANSWERED
    assert [a.endpoint for a in failed.attempts] == [P1, P2, P3]
    assert "192.0.2.2:7000: node-local error (code 203 busy)" in failed.message
    assert c.state is ContactState.FAILED
    error = failed.to_error()
    assert isinstance(error, ContactError) and error.attempts == failed.attempts


def test_request_carries_held_cluster_id_version() -> None:
    """Each TryAddress says which cluster-ID version to put in the request."""
    [action] = contact(FakeClusterId(7, (P1,))).start()
    assert action == TryAddress(P1, 7)


def test_answer_is_success_and_machine_then_refuses_events() -> None:
    """An answer ends the contact; later events are a local bug, not silently ignored."""
    c = contact()
    c.start()
    [done] = c.handle(Answered("reply"))
    assert isinstance(done, Succeeded) and done.reply == "reply" and done.endpoint == P1
    assert c.state is ContactState.SUCCEEDED
    with pytest.raises(InvalidContactTransitionError):
        c.handle(NoAnswer())


def test_events_before_start_and_double_start_are_errors() -> None:
    """Only start() is valid in IDLE, and only once."""
    c = contact()
    with pytest.raises(InvalidContactTransitionError):
        c.handle(NoAnswer())
    c.start()
    with pytest.raises(InvalidContactTransitionError) as info:
        c.start()
    assert info.value.code is ErrorCode.INVALID_CONTACT_TRANSITION


def test_redirect_followed_then_priority_order_resumes() -> None:
    """A redirect target is tried next; if it fails we continue with P2, P3."""
    c = contact(limits=UNLISTED_OK)
    c.start()
    assert tried(c.handle(Redirect(ELSEWHERE))) == ELSEWHERE
    assert tried(c.handle(NoAnswer())) == P2
    [done] = c.handle(Answered(1))
    assert isinstance(done, Succeeded)
    assert [a.outcome for a in done.attempts] == [Outcome.REDIRECTED, Outcome.NO_ANSWER,
                                                  Outcome.ANSWERED]


def test_redirect_to_listed_address_is_not_tried_twice() -> None:
    """Redirect to P3 then continue: P3 is skipped later in the round."""
    c = contact()
    c.start()
    assert tried(c.handle(Redirect(P3))) == P3
    assert tried(c.handle(NoAnswer())) == P2
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and len(failed.attempts) == 3


def test_redirect_loop_is_not_followed() -> None:
    """P2 redirecting back to P1 (already tried) is refused; failure says REDIRECT_LOOP."""
    c = contact()
    c.start()
    c.handle(NoAnswer())
    assert tried(c.handle(Redirect(P1))) == P3
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and failed.code is ErrorCode.REDIRECT_LOOP
    assert failed.attempts[1].outcome is Outcome.REDIRECT_LOOP


def test_redirect_limit() -> None:
    """After max_redirects, further redirects are refused and the list continues."""
    c = contact(limits=ContactLimits(max_redirects=1, follow_unlisted_redirects=True))
    c.start()
    assert tried(c.handle(Redirect(ELSEWHERE))) == ELSEWHERE
    assert tried(c.handle(Redirect(addr("198.51.100.10")))) == P2
    assert c.attempts[-1].outcome is Outcome.REDIRECT_LIMIT


def test_unlisted_redirect_is_not_followed_by_default() -> None:
    """By default only the cluster ID's own addresses are followed: a redirect elsewhere is
    ignored and the round goes on in priority order."""
    c = contact()
    c.start()
    assert tried(c.handle(Redirect(ELSEWHERE))) == P2
    assert tried(c.handle(Redirect(P3))) == P3
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed)
    assert failed.attempts[0].outcome is Outcome.REDIRECT_NOT_LISTED


def test_error_with_newer_cluster_id_restarts_with_new_list() -> None:
    """A newer, genuine cluster ID replaces ours and the search restarts from its list."""
    new_node = addr("203.0.113.1", priority=1)
    v2 = FakeClusterId(2, (new_node, P1))
    c = contact()
    c.start()
    actions = c.handle(ErrorWithClusterId(int(ErrorCode.NODE_LOCAL_ERROR), v2))
    assert actions == [ClusterIdReplaced(v2), TryAddress(new_node, 2)]
    assert tried(c.handle(NoAnswer())) == P1  # P1 may be tried again: new round
    assert c.cluster_id is v2


def test_forged_or_older_cluster_id_is_not_adopted() -> None:
    """A forged 'newer' ID and an older ID both leave ours in place; failure says why."""
    c = contact()
    c.start()
    forged = FakeClusterId(9, (ELSEWHERE,), genuine=False)
    assert tried(c.handle(ErrorWithClusterId(510, forged))) == P2
    assert c.cluster_id is V1
    assert tried(c.handle(ErrorWithClusterId(510, FakeClusterId(0, ())))) == P3
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and failed.code is ErrorCode.CLUSTER_ID_NOT_NEWER
    assert failed.attempts[0].outcome is Outcome.CLUSTER_ID_REJECTED
    assert "signature does not verify" in failed.message


def test_redirect_with_newer_cluster_id_tries_target_then_new_list() -> None:
    """Design: try the redirect; if it fails, start again from the new list's beginning."""
    v2 = FakeClusterId(2, (P2, P1, ELSEWHERE))
    c = contact()
    c.start()
    actions = c.handle(Redirect(ELSEWHERE, v2))
    assert actions == [ClusterIdReplaced(v2), TryAddress(ELSEWHERE, 2)]
    assert tried(c.handle(NoAnswer())) in (P1, P2)
    assert tried(c.handle(NoAnswer())) in (P1, P2)
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and len(failed.attempts) == 4


def test_redirect_with_forged_cluster_id_is_not_followed() -> None:
    """A reply carrying a forged cluster ID is untrustworthy: its redirect is ignored."""
    c = contact()
    c.start()
    bad = FakeClusterId(5, (ELSEWHERE,), genuine=False)
    assert tried(c.handle(Redirect(ELSEWHERE, bad))) == P2
    assert c.cluster_id is V1


def test_redirect_with_stale_cluster_id_is_a_plain_redirect() -> None:
    """An old cluster ID on a redirect is ignored; the redirect itself is followed."""
    c = contact()
    c.start()
    assert tried(c.handle(Redirect(P3, FakeClusterId(1, ())))) == P3
    assert c.cluster_id is V1


def test_restart_bound() -> None:
    """An endless supply of newer cluster IDs cannot keep us searching."""
    c = contact(limits=ContactLimits(max_restarts=2))
    c.start()
    c.handle(ErrorWithClusterId(510, FakeClusterId(2, (P1,))))
    c.handle(ErrorWithClusterId(510, FakeClusterId(3, (P1,))))
    [failed] = c.handle(ErrorWithClusterId(510, FakeClusterId(4, (P1,))))
    assert isinstance(failed, Failed) and failed.code is ErrorCode.TOO_MANY_CLUSTER_ID_RESTARTS


def test_attempt_bound() -> None:
    """A long redirect chain stops at max_attempts with a clear code."""
    c = contact(limits=ContactLimits(max_attempts=3, max_redirects=10,
                                     follow_unlisted_redirects=True))
    c.start()
    c.handle(Redirect(addr("198.51.100.1")))
    c.handle(Redirect(addr("198.51.100.2")))
    [failed] = c.handle(Redirect(addr("198.51.100.3")))
    assert isinstance(failed, Failed) and failed.code is ErrorCode.CONTACT_ATTEMPTS_EXHAUSTED
    assert len(failed.attempts) == 3


def test_redirect_listed_only_in_a_newer_verified_cluster_id_is_followed() -> None:
    """A redirect to an address our cluster ID does not list is followed when it comes with
    a newer cluster ID that verifies and lists it; with a forged one it is not."""
    v2 = FakeClusterId(2, (ELSEWHERE, P1))
    c = contact()
    c.start()
    assert c.handle(Redirect(ELSEWHERE, v2)) == [ClusterIdReplaced(v2), TryAddress(ELSEWHERE, 2)]
    forged = FakeClusterId(2, (ELSEWHERE, P1), genuine=False)
    c = contact()
    c.start()
    assert tried(c.handle(Redirect(ELSEWHERE, forged))) == P2


def test_answer_bundling_newer_cluster_id_updates_it() -> None:
    """A reply to an outdated caller bundles the new cluster ID; we store it."""
    v2 = FakeClusterId(2, (P1,))
    c = contact()
    c.start()
    actions = c.handle(Answered("ok", v2))
    assert actions[0] == ClusterIdReplaced(v2)
    assert isinstance(actions[1], Succeeded)


def test_answer_with_forged_cluster_id_still_succeeds_without_adopting_it() -> None:
    """The answer stands; the forged cluster ID is dropped and noted."""
    c = contact()
    c.start()
    [done] = c.handle(Answered("ok", FakeClusterId(2, (), genuine=False)))
    assert isinstance(done, Succeeded) and c.cluster_id is V1
    assert "rejected" in done.attempts[0].detail


def test_entity_moved_verified_and_rejected() -> None:
    """A verified forwarding record ends the contact with Migrated; a bad one is skipped."""
    c = contact(verify_move=lambda record: None)
    c.start()
    [migrated] = c.handle(EntityMoved(RECORD))
    assert isinstance(migrated, Migrated) and migrated.record == RECORD
    assert c.state is ContactState.MIGRATED

    def refuse(record: ForwardingRecord) -> None:
        raise MercuryError("bad signature", ErrorCode.FORWARDING_SIGNATURE_INVALID)

    c = contact(verify_move=refuse)
    c.start()
    assert tried(c.handle(EntityMoved(RECORD))) == P2
    c.handle(NoAnswer())
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and failed.code is ErrorCode.FORWARDING_SIGNATURE_INVALID


def test_default_rejects_moves() -> None:
    """Without a verifier no forwarding record is believed."""
    c = contact()
    c.start()
    assert tried(c.handle(EntityMoved(RECORD))) == P2


def test_empty_address_list_fails_at_once() -> None:
    """A cluster ID with no addresses cannot be contacted; say so immediately."""
    [failed] = contact(FakeClusterId(1, ())).start()
    assert isinstance(failed, Failed) and failed.code is ErrorCode.NO_NODE_ANSWERED
    assert "lists no addresses" in failed.message


def test_duplicate_listing_tried_once() -> None:
    """The same host:port listed twice (different priority) is one node."""
    dup = addr("192.0.2.1", priority=40)
    c = contact(FakeClusterId(1, (P1, dup)))
    c.start()
    [failed] = c.handle(NoAnswer())
    assert isinstance(failed, Failed) and len(failed.attempts) == 1


def test_limits_validate() -> None:
    """Nonsense limits are refused at construction."""
    with pytest.raises(ValueError):
        ContactLimits(max_attempts=0)


def test_unknown_event_type_is_a_typed_error() -> None:
    """Anything outside the transition table is refused with a typed error."""
    c = contact()
    c.start()
    with pytest.raises(InvalidContactTransitionError, match="str is not allowed"):
        c.handle("answered")  # type: ignore[arg-type]
