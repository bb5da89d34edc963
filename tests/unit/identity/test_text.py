"""Text forms, the readable dump and the storage form."""

from __future__ import annotations

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import (
    Eid,
    EidTextError,
    IdentityError,
    change_addresses,
    cluster_id_from_text,
    cluster_id_to_text,
    dump_eid,
    eid_from_text,
    eid_to_text,
    rebuild_eid,
    strip_cluster_id,
)
from tests.identity_support import CLUSTER_KEY_1, cluster_v1, full_eid, hashes_only_eid


def test_text_round_trip_tolerates_wrapping_and_case() -> None:
    """Pasted text with line breaks or in upper case still decodes."""
    data = full_eid().encode()
    text = eid_to_text(data)
    assert text.startswith("meid1") and text == text.lower() and "=" not in text
    wrapped = "\n".join(text[i:i + 60] for i in range(0, len(text), 60)).upper()
    assert eid_from_text(wrapped) == data
    assert cluster_id_from_text(cluster_id_to_text(cluster_v1())) == cluster_v1()


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda t: "meid2" + t[5:], ErrorCode.BAD_EID_TEXT_PREFIX),
    (lambda t: "mcid1" + t[5:], ErrorCode.BAD_EID_TEXT_PREFIX),
    (lambda t: t[:20] + "1" + t[21:], ErrorCode.BAD_EID_TEXT_CHARACTER),
    (lambda t: t[:20] + ("a" if t[20] != "a" else "b") + t[21:], ErrorCode.BAD_EID_TEXT_CHECKSUM),
    (lambda t: t[:-8], ErrorCode.BAD_EID_TEXT_CHECKSUM),
    (lambda t: "meid1", ErrorCode.BAD_EID_TEXT_CHECKSUM),
    (lambda t: t + "a" * 40000, ErrorCode.FIELD_TOO_LARGE),
])
def test_text_errors(mutate: object, code: ErrorCode) -> None:
    """Bad prefix, bad character, bad checksum and oversize each have a code."""
    text = eid_to_text(full_eid())
    with pytest.raises(EidTextError) as info:
        eid_from_text(mutate(text))  # type: ignore[operator]
    assert info.value.code is code


def test_bad_character_error_gives_position() -> None:
    """The operator is told where the bad character is."""
    text = eid_to_text(full_eid())
    with pytest.raises(EidTextError, match="position 11"):
        eid_from_text(text[:10] + "0" + text[11:])


def test_dump_names_every_part() -> None:
    """The readable dump shows keys, version, addresses, persona, hints and principal."""
    dump = dump_eid(full_eid())
    for needle in ("master: key", "version: 1", "[2001:db8::7]:7401/20/0", "/example/personas/work",
                   "hashcash 12 bits", "1@2, 2@3", "principal:", "local part: 'alice'"):
        assert needle in dump
    assert "hash only" in dump_eid(hashes_only_eid())


def test_storage_form_rebuilds_exactly_and_checks_the_ref() -> None:
    """Stripped EIDs rebuild byte-identically; a wrong cluster ID is refused."""
    for eid in (full_eid(), hashes_only_eid()):
        data = eid.encode()
        stored, cid = strip_cluster_id(data)
        assert len(stored.rest) < len(data)
        assert rebuild_eid(stored, cluster_v1()) == data
        assert rebuild_eid(stored, cid) == data
    stored, _ = strip_cluster_id(full_eid())
    newer = change_addresses(cluster_v1(), CLUSTER_KEY_1, ())
    with pytest.raises(IdentityError) as info:
        rebuild_eid(stored, newer)
    assert info.value.code is ErrorCode.STORAGE_MISMATCH
    with pytest.raises(IdentityError) as info2:
        rebuild_eid(stored, cluster_v1().project(0))
    assert info2.value.code is ErrorCode.STORAGE_MISMATCH
    assert Eid.decode(rebuild_eid(stored, cluster_v1())) == full_eid()


def test_stray_bits_in_last_character_are_rejected() -> None:
    """Base32 decoders ignore the unused low bits of the last character; we do not."""
    text = eid_to_text(b"ab")  # 6 bytes with checksum: 10 characters, 2 unused bits
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    altered = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    with pytest.raises(EidTextError, match="last character"):
        eid_from_text(altered)
