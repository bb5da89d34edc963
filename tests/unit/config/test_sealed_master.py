"""The encrypted master.key record: round trip, wrong passphrase, damage, bounded work."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.config import keyfiles
from mercury_rt.config.sealed_master import seal, unseal
from mercury_rt.core.identity import KeyFileError, master_from_phrase

MASTER = master_from_phrase("abandon abandon abandon abandon abandon abandon abandon abandon "
                            "abandon abandon abandon about")


@settings(max_examples=6, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
def test_only_the_right_passphrase_opens_the_record(right: bytes, other: bytes) -> None:
    record = seal(MASTER, right)
    assert unseal(record, right, "m") == MASTER
    if other != right:
        with pytest.raises(KeyFileError) as info:
            unseal(record, other, "m")
        assert info.value.code is ErrorCode.KEY_FILE_PASSPHRASE


def test_an_altered_chain_code_is_a_damaged_file(tmp_path: Path) -> None:
    record = seal(MASTER, b"pw")
    sealed = record["chain_code"]
    assert isinstance(sealed, bytes)
    record["chain_code"] = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(KeyFileError, match="chain code is damaged") as info:
        unseal(record, b"pw", "m")
    assert info.value.code is ErrorCode.KEY_FILE_INVALID


@pytest.mark.parametrize("params", [[b"s" * 16, 2**21, 8, 1], [b"s" * 16, 3, 8, 1],
                                    [b"s" * 16, 2**15, 8, 99], [b"s", "n", 8, 1]])
def test_absurd_stretch_parameters_are_refused_before_any_work(params: list[object]) -> None:
    """A planted record cannot make the CLI allocate gigabytes or spin for minutes."""
    record = {**seal(MASTER, b"pw"), "scrypt": params}
    with pytest.raises(KeyFileError) as info:
        unseal(record, b"pw", "m")
    assert info.value.code is ErrorCode.KEY_FILE_INVALID


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(KeyFileError) as info:
        seal(MASTER, b"")
    assert info.value.code is ErrorCode.KEY_FILE_PASSPHRASE


def test_file_round_trip_and_a_plain_file_needs_no_passphrase(tmp_path: Path) -> None:
    keyfiles.save_master(tmp_path, MASTER, b"pw")
    assert keyfiles.load_master(tmp_path, b"pw") == MASTER
    with pytest.raises(KeyFileError, match="is encrypted; give its passphrase"):
        keyfiles.load_master(tmp_path)
    keyfiles.save_master(tmp_path, MASTER)
    assert not keyfiles.master_is_encrypted(tmp_path)
    assert keyfiles.load_master(tmp_path, b"ignored") == MASTER
    kind = cbor.loads((tmp_path / keyfiles.MASTER_FILE).read_bytes())
    assert isinstance(kind, dict) and kind["kind"] == "mercury-rt master key v1"
