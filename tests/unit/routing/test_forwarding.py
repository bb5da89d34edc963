"""Forwarding records: canonical encoding, bounded decoding, signature and subject checks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.core.routing import (
    DOMAIN_TAG,
    ForwardingError,
    ForwardingRecord,
    decode_forwarding_record,
    make_forwarding_record,
    verify_forwarding_record,
)

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


class Ed25519Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> None:
        self.key.public_key().verify(signature, message)


def record() -> ForwardingRecord:
    return make_forwarding_record(b"\x01old", b"alice", b"new-eid-bytes", 1_700_000_000,
                                  Ed25519Signer(KEY))


def test_round_trip_and_verify() -> None:
    """A record survives the wire and verifies against the old cluster's key."""
    rec = record()
    decoded = decode_forwarding_record(rec.encode())
    assert decoded == rec
    verify_forwarding_record(decoded, Ed25519Signer(KEY), b"\x01old", b"alice")


def test_signed_bytes_are_domain_tagged_canonical_cbor() -> None:
    """The signature covers the tag plus the canonical map of keys 0-3 (docs/protocol.md 6)."""
    rec = record()
    assert rec.signed_bytes() == DOMAIN_TAG + cbor.dumps(
        {0: b"\x01old", 1: b"alice", 2: b"new-eid-bytes", 3: 1_700_000_000})


def test_wrong_key_and_tampering_are_rejected() -> None:
    """Another key, or a changed target EID, fails with FORWARDING_SIGNATURE_INVALID."""
    rec = record()
    with pytest.raises(ForwardingError) as info:
        verify_forwarding_record(rec, Ed25519Signer(OTHER), b"\x01old", b"alice")
    assert info.value.code is ErrorCode.FORWARDING_SIGNATURE_INVALID
    tampered = ForwardingRecord(rec.old_cluster, rec.old_local, b"evil-eid", rec.issued_at,
                                rec.signature)
    with pytest.raises(ForwardingError):
        verify_forwarding_record(tampered, Ed25519Signer(KEY), b"\x01old", b"alice")


def test_record_about_another_entity_is_rejected() -> None:
    """A genuine record for bob cannot redirect callers of alice."""
    with pytest.raises(ForwardingError) as info:
        verify_forwarding_record(record(), Ed25519Signer(KEY), b"\x01old", b"bob")
    assert info.value.code is ErrorCode.FORWARDING_RECORD_MISMATCH


@pytest.mark.parametrize("value", [
    [1, 2],
    {0: b"a", 1: b"b", 2: b"c", 3: 1},
    {0: b"a", 1: b"b", 2: b"c", 3: 1, 4: b"s", 5: 0},
    {0: "a", 1: b"b", 2: b"c", 3: 1, 4: b"s"},
    {0: b"a", 1: b"b", 2: b"c", 3: True, 4: b"s"},
    {0: b"a", 1: b"b", 2: b"c", 3: -1, 4: b"s"},
    {0: b"", 1: b"b", 2: b"c", 3: 1, 4: b"s"},
    {0: b"a" * 66, 1: b"b", 2: b"c", 3: 1, 4: b"s"},
])
def test_malformed_records_rejected(value: object) -> None:
    """Wrong shapes, types, ranges and oversize fields are typed errors."""
    with pytest.raises(ForwardingError):
        decode_forwarding_record(cbor.dumps(value))


def test_oversize_input_rejected_before_decoding() -> None:
    """A huge blob is refused by length alone."""
    with pytest.raises(ForwardingError, match="exceeds"):
        decode_forwarding_record(b"\x00" * 20_000)




