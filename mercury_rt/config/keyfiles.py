"""Key files: the only module that reads or writes identity keys on disk.

A cluster directory holds:
  master.key        the master node (private key + SLIP-0010 chain code); may live offline,
                    and may be encrypted with a passphrase (mercury_rt.config.sealed_master)
  cluster.key       the current cluster private key and the version that introduced it
  cluster-ids.cbor  every cluster-ID version issued, oldest first (public)
  mint-defaults.yaml  optional, public: the cluster's EID mint defaults (config.mint_defaults)
Secret files are created 0600 (atomically, via a temporary file and rename) and refused
when group or others can read them, with the chmod to run, because a world-readable
master key is a compromised cluster.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon import cbor
from carbon.cbor import CodecError
from carbon.error_codes import ErrorCode
from mercury_rt.config.sealed_master import SEALED_KIND, seal, unseal
from mercury_rt.core.identity import (
    ClusterId,
    IdentityError,
    KeyFileError,
    MasterSecret,
    private_bytes,
    private_key_from_bytes,
)

MASTER_FILE = "master.key"
CLUSTER_KEY_FILE = "cluster.key"
CLUSTER_IDS_FILE = "cluster-ids.cbor"
_MASTER_KIND = "mercury-rt master key v1"
_CLUSTER_KIND = "mercury-rt cluster key v1"
_MAX_FILE = 1024 * 1024


def write_secret(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, replacing it atomically; a directory it
    needs is created (mode 0700). Failure is a KeyFileError (326) naming `path`, never
    the temporary file it goes through."""
    _write_atomic(path, data, 0o600, parent_mode=0o700)


def _write_atomic(path: Path, data: bytes, mode: int, parent_mode: int = 0o777) -> None:
    """Write a temporary file created with `mode` (less the umask), sync it, rename it;
    an OSError becomes KeyFileError (326) about `path` itself."""
    try:
        path.parent.mkdir(mode=parent_mode, parents=True, exist_ok=True)
        _write_temp_then_rename(path, data, mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write: {exc.strerror or exc}",
                           ErrorCode.KEY_FILE_UNWRITABLE) from None


def _write_temp_then_rename(path: Path, data: bytes, mode: int) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.unlink(missing_ok=True)
    with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as file:
        file.write(data)  # a buffered write writes all of it (os.write may stop short)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def read_secret(path: Path) -> bytes:
    """Read a secret file, refusing it if group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file", ErrorCode.KEY_FILE_MISSING) from None
    exposed = exposed_secret(path, mode)
    if exposed is not None:
        raise KeyFileError(exposed, ErrorCode.KEY_FILE_PERMISSIONS)
    return _read(path)


def exposed_secret(path: Path, mode: int) -> str | None:
    """Why a secret file with `mode` is refused (group or others may read or write it),
    with the chmod to run; None if only its owner may."""
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (f"{path} is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
            f"refusing to use it. Run: chmod 600 {path}")


def write_public(path: Path, data: bytes) -> None:
    """Write a public file atomically (default permissions)."""
    _write_atomic(path, data, 0o666)


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file, or OSError/ValueError. Whoever can write
    the directory chooses what is there, so a FIFO or device (which would block or never
    end) is refused without waiting on it, and a larger file is refused, not truncated."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_FILE:
            raise KeyFileError(f"{path} is larger than {_MAX_FILE} bytes; not a key file")
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file", ErrorCode.KEY_FILE_MISSING) from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None


def _load_record(path: Path, *kinds: str) -> dict[str, object]:
    try:
        record = cbor.loads(read_secret(path))
    except CodecError as exc:
        raise KeyFileError(f"{path}: not a key file ({exc.message})") from None
    if type(record) is not dict or record.get("kind") not in kinds:
        raise KeyFileError(f"{path}: not a {kinds[0]!r} file")
    return {str(k): v for k, v in record.items()}


def save_master(directory: Path, master: MasterSecret, passphrase: bytes | None = None) -> None:
    """Write master.key (0600), encrypted when a passphrase is given."""
    record = ({"kind": _MASTER_KIND, "private": master.private, "chain_code": master.chain_code}
              if passphrase is None else seal(master, passphrase))
    write_secret(directory / MASTER_FILE, cbor.dumps(record))


def master_is_encrypted(directory: Path) -> bool:
    """Whether master.key needs a passphrase (so the CLI asks for one only then)."""
    path = directory / MASTER_FILE
    return _load_record(path, _MASTER_KIND, SEALED_KIND)["kind"] == SEALED_KIND


def load_master(directory: Path, passphrase: bytes | None = None) -> MasterSecret:
    """Read master.key (refused if not 0600-like); an encrypted one needs `passphrase`
    (327 KEY_FILE_PASSPHRASE when it is missing or wrong)."""
    path = directory / MASTER_FILE
    record = _load_record(path, _MASTER_KIND, SEALED_KIND)
    if record["kind"] == SEALED_KIND:
        if passphrase is None:
            raise KeyFileError(f"{path} is encrypted; give its passphrase (--passphrase-file "
                               "or MERCURY_PASSPHRASE)", ErrorCode.KEY_FILE_PASSPHRASE)
        master = unseal(record, passphrase, str(path))
    else:
        private, chain_code = record.get("private"), record.get("chain_code")
        if type(private) is not bytes or type(chain_code) is not bytes:
            raise KeyFileError(f"{path}: damaged master key record")
        master = MasterSecret(private, chain_code)
    if len(master.chain_code) != 32:
        raise KeyFileError(f"{path}: damaged master key record")
    try:
        master.signing_key()
    except IdentityError as exc:
        raise KeyFileError(f"{path}: {exc.message}") from None
    return master


def save_cluster_key(directory: Path, key: Ed25519PrivateKey, key_version: int) -> None:
    """Write cluster.key (0600)."""
    write_secret(directory / CLUSTER_KEY_FILE, cbor.dumps(
        {"kind": _CLUSTER_KIND, "private": private_bytes(key), "key_version": key_version}))


def load_cluster_key(directory: Path) -> tuple[Ed25519PrivateKey, int]:
    """Read cluster.key: (private key, the cluster-ID version that introduced it)."""
    path = directory / CLUSTER_KEY_FILE
    record = _load_record(path, _CLUSTER_KIND)
    private, key_version = record.get("private"), record.get("key_version")
    if type(private) is not bytes or type(key_version) is not int:
        raise KeyFileError(f"{path}: damaged cluster key record")
    try:
        return private_key_from_bytes(private), key_version
    except IdentityError as exc:
        raise KeyFileError(f"{path}: {exc.message}") from None


def save_cluster_ids(directory: Path, history: list[ClusterId]) -> None:
    """Write every cluster-ID version, oldest first."""
    write_public(directory / CLUSTER_IDS_FILE, cbor.dumps([c.encode() for c in history]))


def load_cluster_ids(directory: Path) -> list[ClusterId]:
    """Read the cluster-ID history (last = current); at least one version."""
    path = directory / CLUSTER_IDS_FILE
    try:
        items = cbor.loads(_read(path))
        if type(items) is not list or not items or not all(type(i) is bytes for i in items):
            raise KeyFileError(f"{path}: expected a non-empty list of cluster IDs")
        return [ClusterId.decode(item) for item in items if type(item) is bytes]
    except (CodecError, IdentityError) as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"{path}: damaged cluster-ID history ({exc.message})") from None
