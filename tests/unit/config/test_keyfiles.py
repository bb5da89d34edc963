"""Key files: 0600 on write, refused when group/others can read them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import KeyFileError, master_from_phrase, public_bytes
from tests.identity_support import CLUSTER_KEY_1, cluster_v1

WORDS = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon " \
        "abandon about"


def test_secret_files_are_0600_and_round_trip(tmp_path: Path) -> None:
    """Master and cluster keys are written 0600 and read back identically."""
    master = master_from_phrase(WORDS)
    keyfiles.save_master(tmp_path, master)
    keyfiles.save_cluster_key(tmp_path, CLUSTER_KEY_1, 1)
    for name in (keyfiles.MASTER_FILE, keyfiles.CLUSTER_KEY_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert keyfiles.load_master(tmp_path) == master
    key, version = keyfiles.load_cluster_key(tmp_path)
    assert public_bytes(key) == public_bytes(CLUSTER_KEY_1) and version == 1


def test_readable_by_others_is_refused_with_the_chmod_to_run(tmp_path: Path) -> None:
    """A group/world-readable key file is refused and the fix is named."""
    keyfiles.save_master(tmp_path, master_from_phrase(WORDS))
    path = tmp_path / keyfiles.MASTER_FILE
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match=f"chmod 600 {path}") as info:
        keyfiles.load_master(tmp_path)
    assert info.value.code is ErrorCode.KEY_FILE_PERMISSIONS


def test_missing_and_damaged_files(tmp_path: Path) -> None:
    """Missing and garbage files get distinct, clear errors."""
    with pytest.raises(KeyFileError) as info:
        keyfiles.load_cluster_key(tmp_path)
    assert info.value.code is ErrorCode.KEY_FILE_MISSING
    keyfiles.write_secret(tmp_path / keyfiles.CLUSTER_KEY_FILE, b"\xff\x00garbage")
    with pytest.raises(KeyFileError) as info2:
        keyfiles.load_cluster_key(tmp_path)
    assert info2.value.code is ErrorCode.KEY_FILE_INVALID
    keyfiles.save_cluster_key(tmp_path, CLUSTER_KEY_1, 1)
    (tmp_path / keyfiles.MASTER_FILE).write_bytes((tmp_path / "cluster.key").read_bytes())
    (tmp_path / keyfiles.MASTER_FILE).chmod(0o600)
    with pytest.raises(KeyFileError, match="not a 'mercury-rt master key v1' file"):
        keyfiles.load_master(tmp_path)
    (tmp_path / keyfiles.CLUSTER_IDS_FILE).write_bytes(b"\x80")
    with pytest.raises(KeyFileError, match="non-empty list"):
        keyfiles.load_cluster_ids(tmp_path)


def test_cluster_id_history_round_trip(tmp_path: Path) -> None:
    """The public cluster-ID history is kept in order."""
    keyfiles.save_cluster_ids(tmp_path, [cluster_v1()])
    assert keyfiles.load_cluster_ids(tmp_path) == [cluster_v1()]
