"""Forwarding records: what an entity leaves behind when it migrates to another cluster.

An entity can move to another cluster and keep its contacts (related-systems notes): the
old cluster keeps a record mapping the entity's old cluster-local part to its new EID,
signed with the old cluster's key, and answers callers of the old EID with a redirect that
carries the record. The caller verifies the signature against the cluster ID it already
holds for the old EID, so a node cannot send callers elsewhere without the old cluster's
key, then contacts the new EID.

Signed bytes: the ASCII domain tag `mercury-rt forwarding v1` and a zero byte, followed by
the canonical CBOR (carbon.cbor) of the map {0: old cluster master hash, 1: old local part,
2: new EID bytes, 3: issued_at (integer seconds since the Unix epoch)}. The wire form is the
same map with key 4: signature. Signing and verification are injected, so this module holds
no key and does no cryptography itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError

DOMAIN_TAG = b"mercury-rt forwarding v1\x00"
MAX_HASH_BYTES = 65
MAX_LOCAL_BYTES = 1024
MAX_EID_BYTES = 8192
MAX_SIGNATURE_BYTES = 512
MAX_RECORD_BYTES = 10_240


class ForwardingError(MercuryError):
    """A forwarding record that is malformed, wrongly signed or about another entity."""

    code = ErrorCode.BAD_FORWARDING_RECORD


class Signer(Protocol):
    """Signs with the (old) cluster's key."""

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks a signature by the (old) cluster's key; raises any exception if it is wrong."""

    def verify(self, signature: bytes, message: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class ForwardingRecord:
    """Old (cluster, local part) -> new EID, with the old cluster's signature."""

    old_cluster: bytes
    old_local: bytes
    new_eid: bytes
    issued_at: int
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return _signed_bytes(self.old_cluster, self.old_local, self.new_eid, self.issued_at)

    def encode(self) -> bytes:
        """Canonical wire form (carbon.cbor map, keys 0-4)."""
        return cbor.dumps({0: self.old_cluster, 1: self.old_local, 2: self.new_eid,
                           3: self.issued_at, 4: self.signature})


def make_forwarding_record(old_cluster: bytes, old_local: bytes, new_eid: bytes,
                           issued_at: int, signer: Signer) -> ForwardingRecord:
    """Create and sign a record; the caller supplies the time (the core has no clock)."""
    _check_fields(old_cluster, old_local, new_eid, issued_at, b"")
    signature = signer.sign(_signed_bytes(old_cluster, old_local, new_eid, issued_at))
    record = ForwardingRecord(old_cluster, old_local, new_eid, issued_at, signature)
    _check_fields(old_cluster, old_local, new_eid, issued_at, signature)
    return record


def decode_forwarding_record(data: bytes) -> ForwardingRecord:
    """Parse a peer's record, bounded; raises ForwardingError (or CodecError) only."""
    if len(data) > MAX_RECORD_BYTES:
        raise ForwardingError(f"forwarding record of {len(data)} bytes exceeds "
                              f"{MAX_RECORD_BYTES}")
    value = cbor.loads(data)
    if not isinstance(value, dict) or set(value) != {0, 1, 2, 3, 4}:
        raise ForwardingError("forwarding record must be a map with exactly keys 0-4")
    old_cluster, old_local, new_eid = value[0], value[1], value[2]
    issued_at, signature = value[3], value[4]
    if not all(isinstance(v, bytes) for v in (old_cluster, old_local, new_eid, signature)):
        raise ForwardingError("forwarding record keys 0, 1, 2 and 4 must be byte strings")
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise ForwardingError("forwarding record key 3 (issued_at) must be an integer")
    assert isinstance(old_cluster, bytes) and isinstance(old_local, bytes)
    assert isinstance(new_eid, bytes) and isinstance(signature, bytes)
    _check_fields(old_cluster, old_local, new_eid, issued_at, signature)
    return ForwardingRecord(old_cluster, old_local, new_eid, issued_at, signature)


def verify_forwarding_record(record: ForwardingRecord, verifier: Verifier,
                             expected_cluster: bytes, expected_local: bytes) -> None:
    """Accept a record only if it is about the EID we called and signed by its old cluster."""
    if record.old_cluster != expected_cluster or record.old_local != expected_local:
        raise ForwardingError("forwarding record is about another entity than the one "
                              "contacted", ErrorCode.FORWARDING_RECORD_MISMATCH)
    try:
        verifier.verify(record.signature, record.signed_bytes())
    except Exception as exc:
        raise ForwardingError(f"forwarding record signature is not valid for the old "
                              f"cluster's key ({type(exc).__name__})",
                              ErrorCode.FORWARDING_SIGNATURE_INVALID) from None


def _signed_bytes(old_cluster: bytes, old_local: bytes, new_eid: bytes, issued_at: int) -> bytes:
    return DOMAIN_TAG + cbor.dumps({0: old_cluster, 1: old_local, 2: new_eid, 3: issued_at})


def _check_fields(old_cluster: bytes, old_local: bytes, new_eid: bytes, issued_at: int,
                  signature: bytes) -> None:
    for name, value, limit in (("old cluster hash", old_cluster, MAX_HASH_BYTES),
                               ("old local part", old_local, MAX_LOCAL_BYTES),
                               ("new EID", new_eid, MAX_EID_BYTES),
                               ("signature", signature, MAX_SIGNATURE_BYTES)):
        if len(value) > limit:
            raise ForwardingError(f"{name} of {len(value)} bytes exceeds {limit}")
    if not old_cluster or not new_eid:
        raise ForwardingError("old cluster hash and new EID must not be empty")
    if not 0 <= issued_at < 2**63:
        raise ForwardingError(f"issued_at {issued_at} is outside 0..2**63-1")
