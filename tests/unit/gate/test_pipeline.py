"""The gate: checks in the design's order, typed denials that say what would pass."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.gate import (
    Allow,
    Deny,
    GateRequest,
    LocalSource,
    PaymentStamp,
    RemoteSource,
    evaluate,
    hashcash_payment,
    issue_certificate,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from policy.access import Target
from tests.gate_support import (
    LOCAL,
    NOW,
    PARTNER,
    POLICY,
    SHOP0,
    STRANGER,
    CountingVerifier,
    SessionOf,
    cluster_key,
    fake_eid,
    remote,
    state,
)

BOSS = Principal(LOCAL, b"boss")
VISITOR = Principal(PARTNER, b"visitor")


def stamp_for(target: Target, digest: bytes, bits: int = 8, now: float = NOW) -> PaymentStamp:
    resource = stamp_resource(target_tag(Principal(LOCAL, target.entity)), target.endpoint,
                              target.operation, digest)
    return hashcash_payment(mint_stamp(resource, bits, now, digest[:12]))


def request(target: Target = SHOP0, who: Principal = VISITOR, body: bytes = b"b",
            stamp: bool = True, **kw: object) -> GateRequest:
    digest = request_digest(body)
    source = LocalSource(who) if who.cluster == LOCAL else remote(who)
    payments = (stamp_for(target, digest),) if stamp else ()
    return GateRequest(target, source, digest, payments, **kw)  # type: ignore[arg-type]




def test_allowed_request_names_both_checks() -> None:
    decision = evaluate(request(), POLICY, state(), NOW)
    assert isinstance(decision, Allow)
    assert decision.principal == decision.originator == VISITOR and decision.stamp_bits >= 8
    assert "mac:" in decision.rule and "dac: no ACL set" in decision.rule


def test_hashcash_is_checked_before_any_signature_verification() -> None:
    verifier = CountingVerifier()
    bad_source = GateRequest(SHOP0, RemoteSource(b"forged"), request_digest(b"b"))
    decision = evaluate(bad_source, POLICY, state(verifier), NOW)
    assert isinstance(decision, Deny) and decision.code is ErrorCode.HASHCASH_REQUIRED
    assert decision.required_bits == 8 and "8-bit hashcash stamp" in decision.message
    assert decision.rule == "entities.shop.hashcash_bits" and verifier.calls == 0


def test_source_is_verified_after_the_stamp() -> None:
    digest = request_digest(b"b")
    forged = GateRequest(SHOP0, RemoteSource(b"forged"), digest, (stamp_for(SHOP0, digest),))
    decision = evaluate(forged, POLICY, state(), NOW)
    assert isinstance(decision, Deny) and decision.code is ErrorCode.SOURCE_UNVERIFIED


def test_a_stamp_is_spent_once_and_bound_to_its_request() -> None:
    st_ = state()
    first = request()
    assert isinstance(evaluate(first, POLICY, st_, NOW), Allow)
    again = evaluate(first, POLICY, st_, NOW)
    assert isinstance(again, Deny) and again.code is ErrorCode.HASHCASH_DOUBLE_SPENT
    moved = GateRequest(SHOP0, first.source, request_digest(b"other"), first.payments)
    wrong = evaluate(moved, POLICY, st_, NOW)
    assert isinstance(wrong, Deny) and wrong.code is ErrorCode.HASHCASH_WRONG_RESOURCE
    assert "mrt1." in wrong.message


def test_full_spent_store_refuses_rather_than_forgets() -> None:
    st_ = state(limit=1)
    assert isinstance(evaluate(request(body=b"1"), POLICY, st_, NOW), Allow)
    full = evaluate(request(body=b"2"), POLICY, st_, NOW)
    assert isinstance(full, Deny) and full.code is ErrorCode.HASHCASH_SPENT_STORE_FULL


def test_unknown_payment_kinds_are_ignored_and_junk_stamps_refused() -> None:
    base = request()
    extra = GateRequest(SHOP0, base.source, base.request_digest,
                        (PaymentStamp(99, b"aurum"), *base.payments))
    assert isinstance(evaluate(extra, POLICY, state(), NOW), Allow)
    junk = GateRequest(SHOP0, base.source, base.request_digest, (PaymentStamp(1, b"\xff"),))
    decision = evaluate(junk, POLICY, state(), NOW)
    assert isinstance(decision, Deny) and decision.code is ErrorCode.HASHCASH_MALFORMED


def test_free_targets_ignore_stamps() -> None:
    st_ = state()
    free = request(Target(b"free", 0, 0), stamp=False)
    assert isinstance(evaluate(free, POLICY, st_, NOW), Allow)
    assert isinstance(evaluate(free, POLICY, st_, NOW), Allow)


def test_mac_then_dac_denials_say_what_would_pass() -> None:
    target = Target(b"shop", 1, 0)
    mac = evaluate(request(target), POLICY, state(), NOW)
    assert isinstance(mac, Deny) and mac.code is ErrorCode.MAC_INSUFFICIENT_CLEARANCE
    assert "needs clearance 'secret'" in mac.message and mac.stage == "mac"
    dac = evaluate(request(target, Principal(LOCAL, b"agent")), POLICY, state(), NOW)
    assert isinstance(dac, Deny) and dac.code is ErrorCode.DAC_NOT_ON_ALLOW_LIST
    assert dac.rule == "entities.shop.endpoints.1.acl.allow" and "boss" in dac.message


def test_delegation_acts_as_the_final_entity_and_keeps_the_originator() -> None:
    cert = issue_certificate(VISITOR, fake_eid(BOSS), int(NOW) + 60, cluster_key(LOCAL))
    decision = evaluate(request(Target(b"shop", 1, 0), delegation=(cert,)), POLICY, state(), NOW)
    assert isinstance(decision, Allow)
    assert decision.principal == BOSS and decision.originator == VISITOR
    assert decision.chain == (BOSS,)


def test_delegation_failures_are_typed_denials() -> None:
    expired = issue_certificate(VISITOR, fake_eid(BOSS), int(NOW), cluster_key(LOCAL))
    decision = evaluate(request(delegation=(expired,)), POLICY, state(), NOW)
    assert isinstance(decision, Deny) and decision.code is ErrorCode.DELEGATION_EXPIRED
    assert decision.originator == VISITOR
    long = evaluate(request(delegation=(b"x", b"y", b"z")), POLICY, state(), NOW)
    assert isinstance(long, Deny) and long.rule == "delegation.max_chain"


def test_a_flood_of_bad_stamps_costs_no_signature_verification() -> None:
    verifier = CountingVerifier()
    st_ = state(verifier)
    digest = request_digest(b"b")
    good = stamp_for(SHOP0, digest).data.decode()
    bad_stamps: list[tuple[PaymentStamp, ...]] = [
        (), (PaymentStamp(1, b""),), (PaymentStamp(1, b"\x00\xff"),),
        (PaymentStamp(1, good.replace(":8:", ":7:", 1).encode()),),
        (PaymentStamp(1, good.replace("mrt1.", "mrt2.").encode()),),
        (PaymentStamp(1, (good[:-1] + "z").encode()),),
        (PaymentStamp(1, b"1:8:991399:x::y:z"),), (PaymentStamp(5, good.encode()),),
    ]
    pool = [GateRequest(SHOP0, RemoteSource(fake_eid(VISITOR) + bytes([i % 7])), digest, p)
            for i, p in enumerate(bad_stamps * 16)]
    denied = 0
    for i in range(100_000):
        decision = evaluate(pool[i % len(pool)], POLICY, st_, NOW)
        denied += isinstance(decision, Deny) and decision.stage == "hashcash"
    assert denied == 100_000
    assert verifier.calls == 0




@pytest.mark.parametrize("who", [BOSS, VISITOR])
def test_decisions_are_deterministic(who: Principal) -> None:
    req = request(Target(b"free", 0, 0), who, stamp=False)
    assert evaluate(req, POLICY, state(), NOW) == evaluate(req, POLICY, state(), NOW)


def test_a_source_eid_without_its_clusters_session_is_refused_as_unproven() -> None:
    """An EID is public: carrying VISITOR's EID proves nothing unless the session was
    opened by a node of VISITOR's cluster (the impersonation the outside tester ran)."""
    state_ = state()
    for proof in (None, SessionOf(LOCAL), SessionOf(STRANGER)):
        request = GateRequest(Target(b"free", 0, 0), RemoteSource(fake_eid(VISITOR), proof),
                              request_digest(b"b"))
        decision = evaluate(request, POLICY, state_, NOW)
        assert isinstance(decision, Deny) and decision.code == ErrorCode.SOURCE_NOT_PROVEN
        assert decision.stage == "source"
    proven = evaluate(GateRequest(Target(b"free", 0, 0), remote(VISITOR), request_digest(b"b")),
                      POLICY, state_, NOW)
    assert not (isinstance(proven, Deny) and proven.stage == "source")
