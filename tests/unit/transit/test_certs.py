"""Transit certificates: a caller encrypts only to a key its called cluster certified (8.3)."""

from __future__ import annotations

import pytest

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import Kem, TransitError
from mercury_rt.core.transit.certs import TransitCert, TransitCertVerifier, issue_cert, key_id
from mercury_rt.core.transit.kem import SEED_SIZE, key_pair_from_seed
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.wire import Init, decode_request
from tests.identity_support import key
from tests.transit_steps_support import initiator, prepared, responder
from tests.transit_support import (
    CALLER_CLUSTER_KEY,
    CALLER_HASH,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    NOW,
    lookup_for,
    seeded,
)

NOT_AFTER = int(NOW) + 1000
PAIRS = {kem: key_pair_from_seed(kem, bytes(range(SEED_SIZE[kem]))) for kem in Kem}


def genuine(kem: Kem = Kem.X25519, not_after: int = NOT_AFTER) -> bytes:
    """A certificate of the called cluster for a transit key."""
    return issue_cert(NODE_CLUSTER_KEY, NODE_HASH, kem, PAIRS[kem].public, not_after).encode()


def verifier() -> TransitCertVerifier:
    """A caller that has verified both clusters' keys."""
    return TransitCertVerifier(lookup_for({NODE_HASH: NODE_CLUSTER_KEY,
                                           CALLER_HASH: CALLER_CLUSTER_KEY}))


def refused(data: bytes, master: bytes = NODE_HASH, now: float = NOW,
            checker: TransitCertVerifier | None = None) -> None:
    with pytest.raises(TransitError) as err:
        (checker or verifier()).verify(master, data, now)
    assert err.value.code is ErrorCode.TRANSIT_CERT_INVALID


@pytest.mark.parametrize("kem", list(Kem))
def test_a_genuine_certificate_verifies_to_its_key(kem: Kem) -> None:
    verified = verifier().verify(NODE_HASH, genuine(kem), NOW)
    assert verified.kem is kem and verified.master_hash == NODE_HASH
    assert verified.key_id == key_id(PAIRS[kem].public)
    assert verified.not_after == NOT_AFTER
    assert TransitCert.decode(genuine(kem)).encode() == genuine(kem)


def test_an_expired_certificate_is_refused_even_when_cached() -> None:
    checker = verifier()
    checker.verify(NODE_HASH, genuine(), NOT_AFTER - 1)
    refused(genuine(), now=NOT_AFTER, checker=checker)
    refused(genuine(), now=NOT_AFTER + 1)


def test_a_certificate_of_another_cluster_key_is_refused() -> None:
    forged = issue_cert(key(88), NODE_HASH, Kem.X25519, PAIRS[Kem.X25519].public, NOT_AFTER)
    refused(forged.encode())
    claims_genuine_key = TransitCert(TransitCert.decode(genuine()).cluster_key_hash,
                                     Kem.X25519, PAIRS[Kem.X25519].public, NOT_AFTER,
                                     forged.signature)
    refused(claims_genuine_key.encode())


def test_a_certificate_for_another_master_hash_is_refused() -> None:
    other_cluster = issue_cert(CALLER_CLUSTER_KEY, CALLER_HASH, Kem.X25519,
                               PAIRS[Kem.X25519].public, NOT_AFTER).encode()
    verifier().verify(CALLER_HASH, other_cluster, NOW)
    refused(other_cluster, master=NODE_HASH)
    both = TransitCertVerifier(lambda master, key_hash: NODE_CLUSTER_KEY.public_key())
    wrong_master = issue_cert(NODE_CLUSTER_KEY, CALLER_HASH, Kem.X25519,
                              PAIRS[Kem.X25519].public, NOT_AFTER).encode()
    refused(wrong_master, master=NODE_HASH, checker=both)


@pytest.mark.parametrize("field, value", [
    ("signature", bytes(64)),
    ("not_after", NOT_AFTER + 1),
    ("public", PAIRS[Kem.X25519].public[:-1] + b"\x00"),
    ("kem", Kem.MLKEM768_X25519),
])
def test_a_certificate_altered_after_signing_is_refused(field: str, value: object) -> None:
    cert = TransitCert.decode(genuine())
    fields = {"cluster_key_hash": cert.cluster_key_hash, "kem": cert.kem,
              "public": cert.public, "not_after": cert.not_after,
              "signature": cert.signature}
    fields[field] = value
    if field == "kem":
        fields["public"] = PAIRS[Kem.MLKEM768_X25519].public
    refused(TransitCert(**fields).encode())  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    b"",
    b"garbage",
    genuine() + b"\x00",
    genuine()[:-1],
    cbor.dumps([2, b"h" * 33, 32, PAIRS[Kem.X25519].public, NOT_AFTER, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 99, PAIRS[Kem.X25519].public, NOT_AFTER, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 32, PAIRS[Kem.X25519].public[:31], NOT_AFTER, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 32, PAIRS[Kem.MLKEM768_X25519].public, NOT_AFTER, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 32, PAIRS[Kem.X25519].public, -1, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 32, PAIRS[Kem.X25519].public, NOT_AFTER, bytes(63)]),
    cbor.dumps([1, b"h", 32, PAIRS[Kem.X25519].public, NOT_AFTER, bytes(64)]),
    cbor.dumps([1, b"h" * 33, 32, PAIRS[Kem.X25519].public, NOT_AFTER]),
    cbor.dumps({1: 2}),
    cbor.dumps([1, b"h" * 33, 32, bytes(1400), NOT_AFTER, bytes(64)]),
    bytes(2000),
])
def test_garbage_is_refused_as_711(data: bytes) -> None:
    refused(data)


def test_the_verified_cache_is_bounded_and_never_caches_a_failure() -> None:
    calls: list[bytes] = []
    known = lookup_for({NODE_HASH: NODE_CLUSTER_KEY})

    def counting(master: bytes, key_hash: bytes):  # type: ignore[no-untyped-def]
        calls.append(key_hash)
        return known(master, key_hash)

    checker = TransitCertVerifier(counting, limit=2)
    certs = [genuine(not_after=NOT_AFTER + n) for n in range(3)]
    for cert in certs:
        checker.verify(NODE_HASH, cert, NOW)
    checker.verify(NODE_HASH, certs[2], NOW)
    assert len(calls) == 3
    checker.verify(NODE_HASH, certs[0], NOW)
    assert len(calls) == 4
    forged = issue_cert(key(88), NODE_HASH, Kem.X25519, PAIRS[Kem.X25519].public,
                        NOT_AFTER).encode()
    for _ in range(2):
        refused(forged, checker=checker)
    assert len(calls) == 6


def test_node_keys_rotate_and_first_datagrams_name_the_certified_key() -> None:
    keys = NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, seeded(5), NOW, lifetime=100,
                           grace=10)
    old = {kem: keys.current(kem) for kem in Kem}
    assert not keys.due(NOW + 99) and keys.due(NOW + 100)
    keys.rotate(NOW + 100)
    for kem in Kem:
        assert keys.current(kem).cert.key_id != old[kem].cert.key_id
        assert keys.key(old[kem].cert.key_id, NOW + 109) is old[kem]
        assert keys.key(old[kem].cert.key_id, NOW + 110) is None
        verifier().verify(NODE_HASH, keys.current(kem).cert_bytes, NOW + 100)
    keys.rotate(NOW + 200)
    assert all(keys.key(old[kem].cert.key_id, NOW + 105) is None for kem in Kem)
    node = responder(NOW, 1)
    step = prepared(initiator(3), node, b"x", NOW)
    init = decode_request(step.datagram)
    assert isinstance(init, Init)
    assert init.key_id == node.keys.current(Kem.X25519).cert.key_id
