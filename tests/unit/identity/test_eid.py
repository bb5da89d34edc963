"""EIDs and cluster IDs: verification levels, rotation, supersession and every bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carbon import cbor
from carbon.cbor import CodecError
from carbon.error_codes import ErrorCode
from carbon.principal import Persona
from carbon.symbols import Symbol
from mercury_rt.core.identity import (
    FORM_FULL,
    FORM_MASTER_KEY,
    ClusterId,
    Eid,
    EidVerifier,
    IdentityError,
    KeyRef,
    KeyRing,
    KeysUnavailableError,
    Level,
    MintDefaults,
    MintOptions,
    OperationHint,
    Purpose,
    ServerAddress,
    change_addresses,
    check_supersedes,
    issue_cluster_id,
    mint_eid,
    public_bytes,
    rotate_cluster_key,
    sign,
    supersedes,
    verify_cluster_id,
)
from tests.identity_support import (
    ADDRESSES,
    ALGORITHMS,
    CLUSTER_KEY_1,
    CLUSTER_KEY_2,
    HINTS,
    MASTER,
    OTHER_MASTER,
    cluster_v1,
    full_eid,
    hashes_only_eid,
    key,
)


def code_of(excinfo: pytest.ExceptionInfo[IdentityError]) -> ErrorCode:
    return excinfo.value.code


def test_full_eid_reaches_master_and_repeat_is_cached() -> None:
    """A full-keys EID proves its principal; the second check does no signature work."""
    verifier = EidVerifier()
    data = full_eid().encode()
    first = verifier.verify(data)
    checks = verifier.signature_checks
    second = verifier.verify(data)
    assert first.level is Level.MASTER_MATCHES_HASH and first.fully_verified
    assert second is first and verifier.signature_checks == checks == 2
    assert first.principal.local == b"alice"
    assert first.principal.cluster == cluster_v1().master_hash


def test_hashes_only_needs_keys_then_verifies() -> None:
    """Only hashes: unverifiable until keys are supplied, then fully verified."""
    verifier = EidVerifier()
    data = hashes_only_eid().encode()
    result = verifier.verify(data)
    assert result.level is Level.UNVERIFIABLE_UNTIL_KEYS_FETCHED
    assert "cluster key" in result.missing
    cid = cluster_v1()
    assert cid.cert is not None
    verifier.add_keys(public_bytes(MASTER), public_bytes(CLUSTER_KEY_1), 1, cid.cert)
    assert verifier.verify(data).level is Level.MASTER_MATCHES_HASH


def test_principal_identical_across_forms() -> None:
    """Full-key and hashes-only EIDs of the same entity name the same principal."""
    full = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"bob", persona=None)
    hashed = hashes_only_eid(local=b"bob")
    assert full.principal() == hashed.principal()
    assert full.encode() != hashed.encode()


def test_without_cert_only_signature_level() -> None:
    """Full keys without the master certificate prove only the EID signature."""
    eid = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x", options=MintOptions(include_cert=False))
    result = EidVerifier().verify(eid.encode())
    assert result.level is Level.SIGNATURE_VALID and result.missing == "master certificate"


def test_hashes_only_key_known_but_master_unknown() -> None:
    """A cluster key with a cert but an unknown master stops at SIGNATURE_VALID."""
    eid = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x")
    unsigned = replace(eid, cluster_id=cluster_v1().project(FORM_FULL & ~FORM_MASTER_KEY))
    signed = replace(unsigned, signature=sign(CLUSTER_KEY_1, Purpose.EID,
                                              unsigned.signed_message()))
    result = EidVerifier().verify(signed.encode())
    assert result.level is Level.SIGNATURE_VALID and result.missing == "master key"


def test_defaults_apply_when_caller_does_not_say() -> None:
    """Cluster-wide defaults choose the form and the hints."""
    defaults = MintDefaults(full_keys=False, hints=HINTS, algorithms=ALGORITHMS)
    eid = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x", defaults=defaults)
    assert eid.cluster_id.master.key is None and eid.cluster_id.cert is None
    assert eid.hints == HINTS and eid.algorithms == ALGORITHMS
    explicit = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x", defaults=defaults,
                        options=MintOptions(full_keys=True, include_hints=False))
    assert explicit.cluster_id.master.key is not None and explicit.hints is None


def test_rotation_old_eids_stay_verifiable_new_carry_new_version() -> None:
    """After a rotation, old EIDs still verify and new ones carry the new version."""
    v1 = cluster_v1()
    v2 = rotate_cluster_key(v1, MASTER, CLUSTER_KEY_2)
    assert (v2.version, v2.key_version) == (2, 2)
    verifier = EidVerifier()
    verifier.add_cluster_id(v2)
    old = full_eid(v1)
    new = mint_eid(CLUSTER_KEY_2, v2, b"alice")
    assert verifier.verify(old.encode()).fully_verified
    assert verifier.verify(new.encode()).fully_verified
    assert new.cluster_id.version == 2 and old.principal().cluster == new.principal().cluster


def test_rotated_out_key_presented_as_current_is_rejected() -> None:
    """A stolen old cluster key cannot mint EIDs claiming versions after its rotation."""
    v1 = cluster_v1()
    v2 = rotate_cluster_key(v1, MASTER, CLUSTER_KEY_2)
    forged_cid = change_addresses(change_addresses(v1, CLUSTER_KEY_1, ADDRESSES[:1]),
                                  CLUSTER_KEY_1, ADDRESSES[:2])
    assert forged_cid.version == 3 and forged_cid.key_version == 1
    forged = mint_eid(CLUSTER_KEY_1, forged_cid, b"alice")
    naive = EidVerifier()
    assert naive.verify(forged.encode()).fully_verified  # without knowledge of v2
    informed = EidVerifier()
    informed.add_cluster_id(v2)
    with pytest.raises(IdentityError) as info:
        informed.verify(forged.encode())
    assert code_of(info) is ErrorCode.ROTATED_OUT_KEY
    with pytest.raises(IdentityError) as info2:
        informed.add_cluster_id(forged_cid)
    assert code_of(info2) is ErrorCode.ROTATED_OUT_KEY


def test_learning_a_rotation_invalidates_cached_passes() -> None:
    """A cached pass is dropped once a rotation makes it a rotated-out key."""
    forged_cid = change_addresses(cluster_v1(), CLUSTER_KEY_1, ())
    forged_cid = change_addresses(forged_cid, CLUSTER_KEY_1, ADDRESSES)
    data = mint_eid(CLUSTER_KEY_1, forged_cid, b"a").encode()
    verifier = EidVerifier()
    assert verifier.verify(data).fully_verified
    verifier.add_cluster_id(rotate_cluster_key(cluster_v1(), MASTER, CLUSTER_KEY_2))
    with pytest.raises(IdentityError) as info:
        verifier.verify(data)
    assert code_of(info) is ErrorCode.ROTATED_OUT_KEY


def test_address_change_needs_only_cluster_key_and_supersedes() -> None:
    """An address-only change is signed by the cluster key and supersedes the old ID."""
    v1 = cluster_v1()
    v2 = change_addresses(v1, CLUSTER_KEY_1, ADDRESSES[:1])
    assert (v2.version, v2.key_version, v2.cert) == (2, 1, v1.cert)
    assert supersedes(v2, v1, KeyRing())
    assert not supersedes(v1, v2, KeyRing())


def test_supersedes_errors_each_have_their_code() -> None:
    """Wrong master, downgrade, replay and bad signatures are told apart."""
    v1 = cluster_v1()
    v2 = rotate_cluster_key(v1, MASTER, CLUSTER_KEY_2)
    other = issue_cluster_id(OTHER_MASTER, CLUSTER_KEY_1, ADDRESSES, version=5)
    cases = [
        (other, v1, ErrorCode.MASTER_MISMATCH),
        (v1, v2, ErrorCode.VERSION_DOWNGRADE),
        (v2, v2, ErrorCode.VERSION_DOWNGRADE),
        (replace(v2, addresses=ADDRESSES[:1]), v1, ErrorCode.BAD_CLUSTER_ID_SIGNATURE),
        (replace(v2, version=7), v1, ErrorCode.BAD_CLUSTER_ID_SIGNATURE),
        (replace(v2, key_version=1), v1, ErrorCode.BAD_CLUSTER_KEY_CERT),
        (replace(v2, signature=None), v1, ErrorCode.CLUSTER_ID_UNSIGNED),
    ]
    for candidate, held, code in cases:
        with pytest.raises(IdentityError) as info:
            check_supersedes(candidate, held, KeyRing())
        assert code_of(info) is code, (candidate, held)


def test_cluster_key_signed_by_wrong_master() -> None:
    """A cluster key certified by another master fails the certificate check."""
    v1 = cluster_v1()
    bogus = issue_cluster_id(OTHER_MASTER, CLUSTER_KEY_1, ADDRESSES)
    forged = replace(v1, cert=bogus.cert)
    with pytest.raises(IdentityError) as info:
        verify_cluster_id(forged, KeyRing())
    assert code_of(info) is ErrorCode.BAD_CLUSTER_KEY_CERT
    eid = mint_eid(CLUSTER_KEY_1, forged, b"x")
    with pytest.raises(IdentityError) as info2:
        EidVerifier().verify(eid.encode())
    assert code_of(info2) is ErrorCode.BAD_CLUSTER_KEY_CERT


def test_supplied_keys_with_bad_cert_refused() -> None:
    """add_keys verifies before it caches."""
    with pytest.raises(IdentityError) as info:
        EidVerifier().add_keys(public_bytes(MASTER), public_bytes(CLUSTER_KEY_1), 2,
                               cluster_v1().cert or b"")
    assert code_of(info) is ErrorCode.BAD_CLUSTER_KEY_CERT


def test_supplied_keys_of_another_cluster_refused() -> None:
    """Keys fetched for an EID must belong to the EID's master hash."""
    other = issue_cluster_id(OTHER_MASTER, CLUSTER_KEY_1, ())
    assert other.cert is not None
    with pytest.raises(IdentityError) as info:
        EidVerifier().add_keys(public_bytes(OTHER_MASTER), public_bytes(CLUSTER_KEY_1), 1,
                               other.cert, expected_master_hash=cluster_v1().master_hash)
    assert code_of(info) is ErrorCode.MASTER_MISMATCH


def test_hashes_only_cluster_id_needs_keys() -> None:
    """A standalone hashes-only cluster ID cannot be checked without keys."""
    with pytest.raises(KeysUnavailableError):
        verify_cluster_id(cluster_v1().project(0), KeyRing())
    ring = KeyRing()
    ring.learn_cluster_id(cluster_v1())
    assert verify_cluster_id(cluster_v1().project(8), ring).key_version == 1


def test_altered_eid_signature_rejected() -> None:
    """A changed local part breaks the EID signature."""
    eid = full_eid()
    with pytest.raises(IdentityError) as info:
        EidVerifier().verify(replace(eid, local=b"mallory"))
    assert code_of(info) is ErrorCode.BAD_EID_SIGNATURE


def _with_field(eid: Eid, index: int, value: cbor.Value) -> bytes:
    fields = cbor.loads(eid.encode())
    assert isinstance(fields, list)
    fields[index] = value
    return cbor.dumps(fields)


def _with_cid_field(index: int, value: cbor.Value) -> bytes:
    eid = full_eid()
    cid = eid.cluster_id.to_value()
    cid[index] = value
    return _with_field(eid, 1, cid)


@pytest.mark.parametrize(("data", "code"), [
    (_with_field(full_eid(), 0, 2), ErrorCode.UNSUPPORTED_EID_VERSION),
    (_with_field(full_eid(), 6, b"\x00" * 63), ErrorCode.BAD_FIELD_LENGTH),
    (_with_field(full_eid(), 2, b""), ErrorCode.BAD_FIELD_LENGTH),
    (_with_field(full_eid(), 2, b"x" * 256), ErrorCode.FIELD_TOO_LARGE),
    (_with_field(full_eid(), 5, None), ErrorCode.HINTS_WITHOUT_ALGORITHMS),
    (_with_field(full_eid(), 4, []), ErrorCode.BAD_FIELD_LENGTH),
    (_with_field(full_eid(), 3, ["NotASymbol", 1]), ErrorCode.IDENTITY_MALFORMED),
    (_with_cid_field(0, b"\x07" + b"\x00" * 32), ErrorCode.UNKNOWN_HASH_ALGORITHM),
    (_with_cid_field(0, b"\x01" + b"\x00" * 31), ErrorCode.BAD_FIELD_LENGTH),
    (_with_cid_field(2, b"\x00" + b"\x00" * 31), ErrorCode.BAD_FIELD_LENGTH),
    (_with_cid_field(3, 5), ErrorCode.IDENTITY_MALFORMED),
    (_with_cid_field(5, [[b"\x01\x02\x03", 1, 1, 1]]), ErrorCode.BAD_SERVER_ADDRESS),
    (_with_cid_field(5, [[b"\x01\x02\x03\x04", 0, 1, 1]]), ErrorCode.IDENTITY_MALFORMED),
    (_with_cid_field(5, [[b"\x01\x02\x03\x04", 1, 1, 1]] * 33), ErrorCode.FIELD_TOO_LARGE),
    (_with_cid_field(4, b"\x00" * 65), ErrorCode.BAD_FIELD_LENGTH),
    (_with_cid_field(1, 2**32), ErrorCode.FIELD_TOO_LARGE),
], ids=lambda x: x.name if isinstance(x, ErrorCode) else "")
def test_malformed_fields_have_specific_codes(data: bytes, code: ErrorCode) -> None:
    """Truncated, oversized or unknown fields each get their own code."""
    with pytest.raises(IdentityError) as info:
        EidVerifier().verify(data)
    assert code_of(info) is code


def test_codec_faults_surface_as_codec_errors() -> None:
    """Trailing bytes and truncation are rejected by the strict decoder."""
    data = full_eid().encode()
    with pytest.raises(CodecError):
        Eid.decode(data + b"\x00")
    with pytest.raises(CodecError):
        Eid.decode(data[:-1])


def test_minting_checks_its_inputs() -> None:
    """Wrong key, hints without algorithms and hashes-only projection limits are caught."""
    with pytest.raises(IdentityError) as info:
        mint_eid(CLUSTER_KEY_2, cluster_v1(), b"x")
    assert code_of(info) is ErrorCode.CLUSTER_KEY_MISMATCH
    with pytest.raises(IdentityError) as info2:
        mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x", hints=HINTS)
    assert code_of(info2) is ErrorCode.HINTS_WITHOUT_ALGORITHMS
    with pytest.raises(KeysUnavailableError):
        mint_eid(CLUSTER_KEY_1, cluster_v1().project(0), b"x")
    with pytest.raises(IdentityError):
        OperationHint(0, 0, 0, 65)
    big = Persona(Symbol("/p"), "x" * 2000)
    with pytest.raises(IdentityError, match="cannot mint") as info5:
        mint_eid(CLUSTER_KEY_1, cluster_v1(), b"x", persona=big)
    assert code_of(info5) is ErrorCode.FIELD_TOO_LARGE
    with pytest.raises(IdentityError) as info3:
        rotate_cluster_key(cluster_v1(), OTHER_MASTER, key(40))
    assert code_of(info3) is ErrorCode.MASTER_MISMATCH
    with pytest.raises(IdentityError) as info4:
        change_addresses(cluster_v1(), CLUSTER_KEY_2, ())
    assert code_of(info4) is ErrorCode.CLUSTER_KEY_MISMATCH


def test_domain_separation_blocks_cross_purpose_replay() -> None:
    """A cluster-ID signature placed as an EID signature does not verify."""
    eid = full_eid()
    forged = replace(eid, signature=sign(CLUSTER_KEY_1, Purpose.CLUSTER_ID,
                                         eid.signed_message()))
    with pytest.raises(IdentityError) as info:
        EidVerifier().verify(forged)
    assert code_of(info) is ErrorCode.BAD_EID_SIGNATURE


def test_result_cache_is_bounded() -> None:
    """The verified-result cache never grows past its size."""
    verifier = EidVerifier(cache_size=3)
    for n in range(6):
        verifier.verify(mint_eid(CLUSTER_KEY_1, cluster_v1(), f"e{n}".encode()).encode())
    assert verifier.statistics()["cache_size"] == 3
    assert verifier.statistics()["cache_misses"] == 6


def test_result_cache_is_bounded_in_bytes() -> None:
    """EIDs packed with small items (~75 KB each once decoded) cannot grow the cache past
    its memory budget, whatever its entry count allows."""
    verifier = EidVerifier(cache_bytes=300_000)
    heavy = Persona(Symbol("/acme/packed"), [{} for _ in range(1000)])
    for n in range(10):
        verifier.verify(mint_eid(CLUSTER_KEY_1, cluster_v1(), f"e{n}".encode(),
                                 persona=heavy).encode())
    stats = verifier.statistics()
    assert stats["cache_cost"] <= 300_000
    assert stats["cache_size"] == 3


def test_keyring_is_bounded() -> None:
    """The key ring evicts least-recently-used clusters."""
    ring = KeyRing(max_clusters=2)
    for n in range(4):
        ring.learn_cluster_id(issue_cluster_id(key(50 + n), key(60 + n), ()))
    assert ring.statistics()["clusters"] == 2


def test_server_address_parse_and_errors() -> None:
    """host:port/priority/weight, IPv6 in brackets, clear errors otherwise."""
    assert str(ServerAddress.parse("[2001:db8::1]:7000/1/2")) == "[2001:db8::1]:7000/1/2"
    assert ServerAddress.parse("10.0.0.1:80/0/0").port == 80
    for bad in ("10.0.0.1:80", "2001:db8::1:80/1/1", "10.0.0.1:x/1/1", "host:80/1/1",
                "10.0.0.1:70000/1/1", "10.0.0.1:80/-1/1"):
        with pytest.raises(IdentityError) as info:
            ServerAddress.parse(bad)
        assert code_of(info) is ErrorCode.BAD_SERVER_ADDRESS, bad


def test_keyref_decode() -> None:
    """Inline keys and tagged hashes decode to the same cluster identity."""
    cid = cluster_v1()
    assert KeyRef.decode(cid.master.encode(), "m").hash == KeyRef.decode(
        cid.master.hashed().encode(), "m").hash
    assert ClusterId.decode(cid.encode()) == cid


def test_other_clusters_keys_do_not_flush_cached_results() -> None:
    """Learning keys of unrelated clusters keeps our cached results (no flush attack)."""
    verifier = EidVerifier()
    data = full_eid().encode()
    verifier.verify(data)
    for n in range(5):
        other = issue_cluster_id(key(70 + n), key(80 + n), ())
        verifier.verify(mint_eid(key(80 + n), other, b"spam").encode())
    checks = verifier.signature_checks
    verifier.verify(data)
    assert verifier.signature_checks == checks and verifier.hits == 1
