"""Property tests: EID and cluster-ID codecs, text forms, tamper detection, storage form,
seed determinism and the supersedes decision."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.cbor import CodecError, Value
from carbon.error_codes import MercuryError
from carbon.principal import Persona
from carbon.symbols import Symbol
from mercury_rt.core.identity import (
    FORM_FULL,
    AcceptedAlgorithm,
    ClusterId,
    Eid,
    EidTextError,
    EidVerifier,
    IdentityError,
    KeyRing,
    Level,
    MintOptions,
    OperationHint,
    ServerAddress,
    change_addresses,
    cluster_id_from_text,
    cluster_id_to_text,
    eid_from_text,
    eid_to_text,
    issue_cluster_id,
    master_from_phrase,
    mint_eid,
    new_phrase,
    rebuild_eid,
    rotate_cluster_key,
    signed_message_of,
    strip_cluster_id,
    supersedes,
)
from tests.identity_support import CLUSTER_KEY_1, MASTER, cluster_v1, full_eid, key

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
addresses = st.builds(
    ServerAddress,
    st.one_of(st.builds(IPv4Address, st.integers(0, 2**32 - 1)),
              st.builds(IPv6Address, st.integers(0, 2**128 - 1))),
    st.integers(1, 2**16 - 1), u16, u16)
values: st.SearchStrategy[Value] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
              st.binary(max_size=16), st.text(max_size=16)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
symbols = st.lists(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,8}", fullmatch=True),
                   min_size=1, max_size=3).map(lambda parts: Symbol("/" + "/".join(parts)))
personas = st.one_of(st.none(), st.builds(Persona, symbols, values))
hints = st.lists(st.builds(OperationHint, u32, u32, u32, st.integers(0, 64),
                           st.dictionaries(st.one_of(st.text(max_size=6), u16), values,
                                           max_size=3)), min_size=1, max_size=4)
algorithms = st.lists(st.builds(AcceptedAlgorithm, u32, u32), min_size=1, max_size=4)
options = st.builds(MintOptions, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@st.composite
def cluster_ids(draw: st.DrawFn) -> ClusterId:
    version = draw(st.integers(1, 2**32 - 1))
    key_version = draw(st.integers(0, version))
    return issue_cluster_id(MASTER, CLUSTER_KEY_1, draw(st.lists(addresses, max_size=5)),
                            version, key_version)


@st.composite
def eids(draw: st.DrawFn) -> Eid:
    with_hints = draw(st.booleans())
    return mint_eid(CLUSTER_KEY_1, draw(cluster_ids()), draw(st.binary(min_size=1, max_size=255)),
                    persona=draw(personas), hints=draw(hints) if with_hints else None,
                    algorithms=draw(algorithms) if with_hints or draw(st.booleans()) else None,
                    options=draw(options))


@given(eids())
def test_eid_round_trips_binary_and_text(eid: Eid) -> None:
    """Binary and text forms give back the same EID, and it verifies once keys are known."""
    data = eid.encode()
    assert Eid.decode(data) == eid
    assert signed_message_of(data) == eid.signed_message()
    assert eid_from_text(eid_to_text(data)) == data
    verifier = EidVerifier()
    verifier.add_cluster_id(_full_cluster_id(eid))
    result = verifier.verify(data)
    assert result.fully_verified and result.principal == eid.principal()


def _full_cluster_id(eid: Eid) -> ClusterId:
    cid = eid.cluster_id
    return issue_cluster_id(MASTER, CLUSTER_KEY_1, cid.addresses, cid.version, cid.key_version)


@given(cluster_ids(), st.integers(0, FORM_FULL))
def test_cluster_id_round_trips_in_every_form(cid: ClusterId, form: int) -> None:
    """Every projection round-trips through bytes and text and keeps the master hash."""
    projected = cid.project(form)
    assert ClusterId.decode(projected.encode()) == projected
    assert cluster_id_from_text(cluster_id_to_text(projected)) == projected
    assert projected.master_hash == cid.master_hash


FULL = full_eid().encode()
HASHED = mint_eid(CLUSTER_KEY_1, cluster_v1(), b"alice",
                  options=MintOptions(full_keys=False, include_cert=False)).encode()


@settings(max_examples=300)
@given(st.data())
def test_any_bit_flip_fails_verification(data: st.DataObject) -> None:
    """Flipping any single bit of an EID (either form) never yields a verified EID."""
    original = data.draw(st.sampled_from([FULL, HASHED]))
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    verifier = EidVerifier()
    verifier.add_cluster_id(cluster_v1())
    try:
        result = verifier.verify(bytes(flipped))
    except MercuryError:
        return
    assert result.level < Level.SIGNATURE_VALID


@given(eids())
def test_strip_and_rebuild_is_exact(eid: Eid) -> None:
    """Storage form + the referenced full cluster ID rebuild the exact bytes."""
    data = eid.encode()
    stored, cid = strip_cluster_id(data)
    assert (stored.cluster_ref.master_hash, stored.cluster_ref.version) == (
        cid.master_hash, cid.version)
    assert rebuild_eid(stored, _full_cluster_id(eid)) == data
    assert rebuild_eid(stored, cid) == data


@settings(max_examples=25)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=1, max_size=32), personas)
def test_same_seed_phrase_same_eids(entropy: bytes, local: bytes, persona: Persona | None) -> None:
    """Two restorations from the same words mint byte-identical EIDs."""
    phrase = new_phrase(entropy)
    minted = []
    for _ in range(2):
        master = master_from_phrase(phrase)
        cid = issue_cluster_id(master.signing_key(), master.cluster_key(1), [])
        minted.append(mint_eid(master.cluster_key(1), cid, local, persona=persona).encode())
    assert minted[0] == minted[1]


@given(st.binary(max_size=400))
def test_decoder_raises_only_typed_errors(data: bytes) -> None:
    """Arbitrary bytes never raise anything but CodecError or IdentityError."""
    with contextlib.suppress(CodecError, IdentityError):
        Eid.decode(data)


@given(values)
def test_from_value_raises_only_identity_errors(value: Value) -> None:
    """Any decoded CBOR value of the wrong shape is an IdentityError."""
    for parse in (Eid.from_value, ClusterId.from_value):
        with contextlib.suppress(IdentityError):
            parse(value)


@given(st.text(max_size=300))
def test_text_decoder_raises_only_text_errors(text: str) -> None:
    """Arbitrary pasted text gives an EidTextError, never a crash."""
    with contextlib.suppress(EidTextError):
        eid_from_text("meid1" + text)


@settings(max_examples=40)
@given(st.lists(st.booleans(), min_size=1, max_size=5))
def test_later_versions_supersede_earlier_never_the_reverse(rotations: list[bool]) -> None:
    """Along any history of rotations and address changes, only newer supersedes older."""
    history = [cluster_v1()]
    current_key = CLUSTER_KEY_1
    for n, rotate in enumerate(rotations):
        if rotate:
            current_key = key(100 + n)
            history.append(rotate_cluster_key(history[-1], MASTER, current_key))
        else:
            history.append(change_addresses(history[-1], current_key, history[-1].addresses[:n]))
    for i, older in enumerate(history):
        for newer in history[i + 1:]:
            assert supersedes(newer, older, KeyRing())
            assert not supersedes(older, newer, KeyRing())


@settings(max_examples=60)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4, unique=False), st.data())
def test_rotated_out_rule(gaps: list[int], data: st.DataObject) -> None:
    """A key presented at version V passes iff no other known key was introduced in
    (its key version, V]; EIDs from before a rotation keep verifying."""
    key_versions = [1]
    for gap in gaps:
        key_versions.append(key_versions[-1] + gap)
    verifier = EidVerifier()
    for n, kv in enumerate(key_versions):
        verifier.add_cluster_id(issue_cluster_id(MASTER, key(120 + n), (), kv, kv))
    index = data.draw(st.integers(0, len(key_versions) - 1))
    presented = data.draw(st.integers(key_versions[index], key_versions[-1] + 3))
    cid = issue_cluster_id(MASTER, key(120 + index), (), presented, key_versions[index])
    eid = mint_eid(key(120 + index), cid, b"e").encode()
    rotated_out = any(key_versions[index] < kv <= presented for kv in key_versions)
    try:
        result = verifier.verify(eid)
    except IdentityError as exc:
        assert rotated_out and exc.code.name == "ROTATED_OUT_KEY"
        return
    assert not rotated_out and result.fully_verified


@given(addresses)
def test_server_address_text_round_trip(address: ServerAddress) -> None:
    """The CLI text of an address parses back to the same address."""
    assert ServerAddress.parse(str(address)) == address


@given(st.binary(min_size=1, max_size=300), st.data())
def test_text_form_detects_any_single_character_change(payload: bytes,
                                                       data: st.DataObject) -> None:
    """Changing any one character of a text form is reported, never silently accepted."""
    text = eid_to_text(payload)
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
    changed = text[:position] + replacement + text[position + 1:]
    if changed == text:
        return
    with pytest.raises(EidTextError):
        eid_from_text(changed)


V2 = change_addresses(cluster_v1(), CLUSTER_KEY_1, ())
V2_BYTES = V2.encode()


@settings(max_examples=300)
@given(st.integers(0, len(V2_BYTES) * 8 - 1))
def test_any_bit_flip_of_a_cluster_id_never_supersedes(bit: int) -> None:
    """An altered newer cluster ID is either undecodable or refused as a successor."""
    flipped = bytearray(V2_BYTES)
    flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        candidate = ClusterId.decode(bytes(flipped))
    except MercuryError:
        return
    assert not supersedes(candidate, cluster_v1(), KeyRing())


@given(st.binary(min_size=1, max_size=64), personas, st.integers(0, FORM_FULL))
def test_principal_is_the_same_in_every_form(local: bytes, persona: Persona | None,
                                             form: int) -> None:
    """Full-key, hashes-only and partial forms of one entity name one principal."""
    full = mint_eid(CLUSTER_KEY_1, cluster_v1(), local, persona=persona)
    other = Eid(cluster_v1().project(form), local, persona, None, None, full.signature)
    assert other.principal() == full.principal()
    assert Eid.decode(other.encode()).principal() == full.principal()
