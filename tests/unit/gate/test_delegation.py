"""Delegation certificates: valid chains act as the final entity; bad ones say why."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.gate import (
    DelegationError,
    SignatureCache,
    decode_certificate,
    decode_principal,
    encode_principal,
    issue_certificate,
    verify_chain,
)
from tests.gate_support import (
    ALICE,
    BOB,
    CAROL,
    LOCAL,
    NOW,
    PARTNER,
    STRANGER,
    CountingVerifier,
    cluster_key,
    fake_eid,
)


def cert(delegate: Principal, delegator: Principal, expires: float = NOW + 60,
         signer: bytes | None = None) -> bytes:
    key = cluster_key(signer if signer is not None else delegator.cluster)
    return issue_certificate(delegate, fake_eid(delegator), int(expires), key)


def fails(originator: Principal, certs: list[bytes], max_chain: int = 4) -> ErrorCode:
    with pytest.raises(DelegationError) as info:
        verify_chain(originator, tuple(certs), CountingVerifier(), NOW, max_chain)
    return info.value.code


def test_valid_chain_acts_as_the_final_entity() -> None:
    chain = verify_chain(ALICE, (cert(ALICE, BOB), cert(BOB, CAROL)), CountingVerifier(),
                         NOW, 4)
    assert chain.originator == ALICE
    assert chain.principals == (BOB, CAROL) and chain.acting_as == CAROL


def test_expired_certificates_are_refused_before_any_verification() -> None:
    verifier = CountingVerifier()
    with pytest.raises(DelegationError) as info:
        verify_chain(ALICE, (cert(ALICE, BOB), cert(BOB, CAROL, expires=NOW)), verifier,
                     NOW, 4)
    assert info.value.code is ErrorCode.DELEGATION_EXPIRED and verifier.calls == 0


def test_over_long_chains_are_refused_before_decoding() -> None:
    assert fails(ALICE, [b"junk"] * 3, max_chain=2) is ErrorCode.DELEGATION_TOO_LONG
    assert fails(ALICE, [cert(ALICE, BOB)], max_chain=0) is ErrorCode.DELEGATION_TOO_LONG


def test_broken_links_loops_and_forgeries() -> None:
    assert fails(ALICE, [cert(CAROL, BOB)]) is ErrorCode.DELEGATION_BROKEN
    assert fails(ALICE, [cert(ALICE, BOB), cert(ALICE, CAROL)]) is ErrorCode.DELEGATION_BROKEN
    assert fails(ALICE, [cert(ALICE, BOB), cert(BOB, ALICE)]) is ErrorCode.DELEGATION_LOOP
    assert fails(ALICE, [cert(ALICE, ALICE)]) is ErrorCode.DELEGATION_LOOP
    assert fails(ALICE, [cert(ALICE, BOB, signer=LOCAL)]) is ErrorCode.DELEGATION_BAD_SIGNATURE
    unknown = Principal(b"\x01unknown", b"x")
    assert fails(ALICE, [cert(ALICE, unknown)]) is ErrorCode.DELEGATION_UNVERIFIED_DELEGATOR


def test_a_persona_is_part_of_the_delegate() -> None:
    plain_bob = Principal(PARTNER, b"bob")
    assert fails(plain_bob, [cert(BOB, CAROL)]) is ErrorCode.DELEGATION_BROKEN
    assert verify_chain(BOB, (cert(BOB, CAROL),), CountingVerifier(), NOW, 4).acting_as == CAROL


def test_certificate_round_trips() -> None:
    raw = cert(BOB, Principal(STRANGER, b"s"), expires=NOW + 5)
    parsed = decode_certificate(raw)
    assert parsed.delegate == BOB and parsed.expires == int(NOW + 5)
    assert decode_principal(encode_principal(BOB)) == BOB


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\x84\x00\x00\x00\x00",
                                 b"\x84\x83\x40\x40\xf6\x40\x00\x58\x40" + bytes(64)])
def test_malformed_certificates_are_typed_errors(raw: bytes) -> None:
    assert fails(ALICE, [raw]) is ErrorCode.DELEGATION_MALFORMED




def test_signature_cache_skips_only_exact_repeats() -> None:
    cache = SignatureCache(limit=2)
    good = cert(ALICE, BOB)
    for _ in range(2):
        assert verify_chain(ALICE, (good,), CountingVerifier(), NOW, 4,
                            cache=cache).acting_as == BOB
    assert len(cache._seen) == 1
    forged = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(DelegationError) as info:
        verify_chain(ALICE, (forged,), CountingVerifier(), NOW, 4, cache=cache)
    assert info.value.code is ErrorCode.DELEGATION_BAD_SIGNATURE


def test_signature_cache_is_bounded() -> None:
    cache = SignatureCache(limit=2)
    for key in (b"a", b"b", b"c"):
        cache.add(key)
    assert b"a" not in cache and b"b" in cache and b"c" in cache
