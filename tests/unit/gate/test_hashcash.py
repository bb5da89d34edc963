"""Hashcash v1 stamps: exact bit counting, request binding, expiry, double-spend, payments."""

from __future__ import annotations

import hashlib

import hashcash
import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.gate import (
    MAX_PAYMENTS,
    MemorySpentStore,
    PaymentStamp,
    SpendResult,
    StampError,
    check_stamp,
    decode_payments,
    encode_payments,
    hashcash_payment,
    leading_zero_bits,
    mint_stamp,
    parse_stamp,
    request_digest,
    stamp_resource,
    stamp_time,
    target_tag,
)
from tests.gate_support import LOCAL, NOW, RESOURCE, WINDOW, check


def code_of(text: str, required: int = 8, now: float = NOW, resource: str = RESOURCE) -> int:
    with pytest.raises(StampError) as info:
        check_stamp(text, resource, required, now, **WINDOW)
    return info.value.code




def test_resource_uses_only_characters_both_tools_accept() -> None:
    assert RESOURCE.startswith("mrt1.")
    assert set(RESOURCE) <= set("0123456789abcdef.mrt")
    other = stamp_resource(target_tag(Principal(LOCAL, b"shop")), 1, 3, request_digest(b"x"))
    assert other != RESOURCE




def _stamp_with_exact_bits(claim: int, exact: int) -> str:
    """A stamp claiming `claim` bits whose hash has exactly `exact` leading zero bits."""
    counter = 0
    while True:
        text = f"1:{claim}:270115103000:{RESOURCE}::salt:{counter:x}"
        if leading_zero_bits(hashlib.sha1(text.encode()).digest()) == exact:
            return text
        counter += 1


def test_bits_are_counted_exactly_unlike_hashcash_0_1_2() -> None:
    stamp = _stamp_with_exact_bits(claim=11, exact=8)
    # The PyPI package rounds 11 down to 8 bits and accepts; we must not.
    assert hashcash.check(stamp, RESOURCE, bits=11) is True
    assert code_of(stamp, required=11, now=1_800_000_000) == ErrorCode.HASHCASH_INSUFFICIENT


def test_claiming_fewer_bits_than_required_is_refused_before_hashing() -> None:
    stamp = mint_stamp(RESOURCE, 4, NOW, bytes(12))
    assert code_of(stamp, required=8) == ErrorCode.HASHCASH_INSUFFICIENT


def test_stamp_for_another_request_is_refused() -> None:
    stamp = mint_stamp(RESOURCE, 8, NOW, bytes(12))
    other = stamp_resource(target_tag(Principal(LOCAL, b"shop")), 1, 4, request_digest(b"body"))
    assert code_of(stamp, resource=other) == ErrorCode.HASHCASH_WRONG_RESOURCE


def test_expiry_and_future_window() -> None:
    stamp = mint_stamp(RESOURCE, 8, NOW, bytes(12))
    assert check(stamp, now=NOW + 3600) == check(stamp)
    assert code_of(stamp, now=NOW + 3601) == ErrorCode.HASHCASH_EXPIRED
    assert code_of(stamp, now=NOW - 301) == ErrorCode.HASHCASH_FUTURE
    assert check(stamp, now=NOW - 300) >= 8


def test_date_granularities_are_periods_in_utc() -> None:
    day, period = stamp_time("270115")
    assert (day, period) == (1_799_971_200, 86400)  # 2027-01-15T00:00:00Z
    assert stamp_time("2701151030") == (day + 37800, 60)
    assert stamp_time("270115103005") == (day + 37805, 1)


@pytest.mark.parametrize("text", [
    "", "1:8", "0:270115:foo:x", "2:8:270115:r::s:c", "1:x:270115:r::s:c",
    "1:8:2701:r::s:c", "1:0:271315:r::s:c", "1:8:270115:r::s:c:extra",
    "1:8:270115:r::s:" + "c" * 300, "1:8:270115:r\u00e9::s:c",
])
def test_malformed_stamps_are_refused_with_their_code(text: str) -> None:
    assert code_of(text, required=0, resource="r") == ErrorCode.HASHCASH_MALFORMED




def test_parse_keeps_the_claim_and_resource() -> None:
    stamp = parse_stamp(f"1:12:270115:{RESOURCE}:ext=1:salt:0")
    assert (stamp.claimed_bits, stamp.resource, stamp.date) == (12, RESOURCE, "270115")


def test_payments_slot_round_trips_and_is_bounded() -> None:
    slot = (hashcash_payment("1:8:270115:r::s:c"), PaymentStamp(77, b"aurum"))
    assert decode_payments(encode_payments(slot)) == slot
    assert decode_payments([]) == ()
    for bad in (None, [[1, b"x"]] * (MAX_PAYMENTS + 1), [[1, "text"]], [[True, b""]], [[1]],
                {"1": b""}, [[-1, b""]], [[1, b"x" * 513]]):
        with pytest.raises(StampError) as info:
            decode_payments(bad)  # type: ignore[arg-type]
        assert info.value.code is ErrorCode.PAYMENT_MALFORMED


def test_spent_store_refuses_replays_expires_and_is_bounded() -> None:
    store = MemorySpentStore(limit=2)
    assert store.add_if_absent(b"a", 100, 0) is SpendResult.ADDED
    assert store.add_if_absent(b"a", 100, 1) is SpendResult.ALREADY_SPENT
    assert store.add_if_absent(b"b", 200, 2) is SpendResult.ADDED
    assert store.add_if_absent(b"c", 200, 3) is SpendResult.FULL
    assert store.add_if_absent(b"c", 200, 100) is SpendResult.ADDED
    assert len(store) == 2
    assert store.add_if_absent(b"d", 300, 150) is SpendResult.FULL
    assert store.add_if_absent(b"a", 300, 200) is SpendResult.ADDED


def test_minting_refuses_absurd_costs() -> None:
    with pytest.raises(StampError):
        mint_stamp(RESOURCE, 33, NOW, bytes(12))

