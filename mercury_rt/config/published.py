"""Cluster-ID versions the nodes published, on disk: written by nodes, read by the tools.

A node records the cluster ID it holds whenever it changes (it published a new version or
adopted one; docs/protocol.md 6.7.3), and once at start:

  STATE_DIR/cluster-id.cbor               the node's own record: a restart resumes from it,
                                          so the node never issues a number it used before
  CLUSTER_DIR/published/NODE_ID.cbor      the same record where the operator's tools look
                                          (`cluster show`, `eid mint`, `set-addresses`,
                                          `rotate-key`); skipped, with one warning, when
                                          the cluster directory is not writable

Each file is written atomically (temporary file, fsync, rename, fsync of the directory),
mode 0644: cluster IDs are public. A record is a CBOR map {"kind", "node_id", "at" (unix
seconds), "cluster_id" (bytes)}. Readers never trust a record: mercury_rt.core.identity.live
verifies each one under the cluster's key chain and ignores forged, foreign or damaged ones.

`VersionSink` (core/identity/live.py) is what the node's membership calls; `FileVersionSink`
is the one for a cluster without replication. Another store (etcd) can implement the same protocol.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from carbon import cbor
from carbon.cbor import CodecError
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import ClusterId, KeyFileError
from mercury_rt.core.identity.live import Candidate, Ignored, LiveVersion, live_version

__all__ = ["FileVersionSink", "Seen", "load_live", "read_candidates", "record_name"]

PUBLISHED_DIR = "published"
STATE_FILE = "cluster-id.cbor"
RECORD_KIND = "mercury-rt published cluster ID v1"
MAX_RECORD = 64 * 1024
MAX_FILES = 256
"""Records read from one published/ directory (a node count far above any cluster's)."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_log = structlog.get_logger("mercury_rt.published")


def record_name(node_id: str) -> str:
    """The node's file name in published/: its id when that is a safe file name, else hex."""
    name = node_id if _SAFE_NAME.fullmatch(node_id) and not node_id.startswith(".") \
        else node_id.encode().hex()[:120]
    return f"{name}.cbor"


def encode_record(node_id: str, cluster_id: ClusterId, at: int) -> bytes:
    """One record's bytes."""
    return cbor.dumps({"kind": RECORD_KIND, "node_id": node_id, "at": at,
                       "cluster_id": cluster_id.encode()})


@dataclass(frozen=True, slots=True)
class Record:
    """A record as read: who wrote it, when (their clock), and the cluster ID."""

    node_id: str
    at: int
    cluster_id: ClusterId


def decode_record(data: bytes) -> Record:
    """A record from its bytes; a damaged one is a KeyFileError (322) saying why."""
    try:
        value = cbor.loads(data)
        if type(value) is not dict or value.get("kind") != RECORD_KIND:
            raise KeyFileError("not a published cluster-ID record")
        node_id, at, raw = value.get("node_id"), value.get("at"), value.get("cluster_id")
        if type(node_id) is not str or type(at) is not int or type(raw) is not bytes:
            raise KeyFileError("damaged published cluster-ID record")
        return Record(node_id, at, ClusterId.decode(raw))
    except (CodecError, MercuryError) as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"damaged published cluster-ID record ({exc.message})") from None


class FileVersionSink:
    """Records a node's cluster ID in its state directory and the cluster directory."""

    def __init__(self, node_id: str, state_dir: Path, cluster_dir: Path) -> None:
        self.node_id = node_id
        self.state_path = state_dir / STATE_FILE
        self.published_path = cluster_dir / PUBLISHED_DIR / record_name(node_id)
        self._last: ClusterId | None = None
        self._warned = False

    def record(self, cluster_id: ClusterId) -> None:
        """Write both files unless this is what was last written or an older version.
        A failure to write the state record raises KeyFileError (326); one to write the
        cluster directory is logged once (the tools then need `--node CONFIG`)."""
        last = self._last
        if last is not None and (cluster_id == last or cluster_id.version < last.version):
            return
        data = encode_record(self.node_id, cluster_id, int(time.time()))
        _write_durably(self.state_path, data)
        self._last = cluster_id
        try:
            _write_durably(self.published_path, data)
        except KeyFileError as exc:
            if not self._warned:
                self._warned = True
                _log.warning("published_version_not_shared", reason=exc.message,
                             effect="the operator's tools see this node's versions only "
                                    "with --node CONFIG")


def _write_durably(path: Path, data: bytes) -> None:
    keyfiles.write_public(path, data)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a crash
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeyFileError(f"{path.parent}: cannot sync: {exc.strerror or exc}",
                           ErrorCode.KEY_FILE_UNWRITABLE) from None


def read_candidates(cluster_dir: Path, state_dirs: tuple[Path, ...] = (),
                    ) -> tuple[list[Candidate], list[Ignored]]:
    """Every record in `cluster_dir`/published/ and each state dir's own record, as
    candidates for live_version, with the files that could not be read."""
    paths = _published_files(cluster_dir / PUBLISHED_DIR)
    paths += [d / STATE_FILE for d in state_dirs if (d / STATE_FILE).is_file()]
    found: list[Candidate] = []
    ignored: list[Ignored] = []
    for path in paths:
        try:
            record = _read_record(path)
        except KeyFileError as exc:
            ignored.append(Ignored(str(path), exc.code, exc.message))
            continue
        found.append(Candidate(f"{path} (node {record.node_id})", record.cluster_id))
    return found, ignored


def _published_files(directory: Path) -> list[Path]:
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith(".cbor") and not n.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        _log.warning("published_dir_unreadable", dir=str(directory), reason=exc.strerror)
        return []
    return [directory / n for n in names[:MAX_FILES]]


def _read_record(path: Path) -> Record:
    """A record from a regular file of at most MAX_RECORD bytes: whoever may write the
    directory chooses what is there, so a FIFO or device (which would block or never
    end) is refused without waiting on it."""
    try:
        data = keyfiles.read_regular(path, MAX_RECORD)
    except OSError as exc:
        raise KeyFileError(f"cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise KeyFileError(f"not a regular file of at most {MAX_RECORD} bytes; not a "
                           "published record") from None
    return decode_record(data)


@dataclass(frozen=True, slots=True)
class Seen:
    """The live version as the tools and a starting node see it, and how much they saw."""

    live: LiveVersion
    records: tuple[Candidate, ...]
    """The node records that verified (none: no node's version is visible where we
    looked; a forged record does not count as seeing a node)."""


def load_live(cluster_dir: Path, state_dirs: tuple[Path, ...] = (),
              extra: tuple[Candidate, ...] = (), unread: tuple[Ignored, ...] = ()) -> Seen:
    """The cluster directory's history combined with every node record in reach and the
    `extra` candidates (etcd's live value), verified alike; `unread` lists sources that
    could not be read."""
    history = keyfiles.load_cluster_ids(cluster_dir)
    found, unreadable = read_candidates(cluster_dir, state_dirs)
    found, unreadable = [*found, *extra], [*unread, *unreadable]
    live = live_version(history, found)
    return Seen(replace(live, ignored=(*unreadable, *live.ignored)), live.verified)
