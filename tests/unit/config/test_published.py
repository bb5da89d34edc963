"""Published cluster-ID records on disk: a node writes them atomically where the tools
read them, a restarted node resumes from the highest verified one, and files that are
damaged, oversized, forged or another cluster's are ignored, never trusted."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mercury_rt.config import build_node_spec, keyfiles, parse_node_config
from mercury_rt.config.published import (
    MAX_RECORD,
    PUBLISHED_DIR,
    STATE_FILE,
    FileVersionSink,
    decode_record,
    encode_record,
    load_live,
    record_name,
)
from mercury_rt.core.identity import (
    ClusterId,
    KeyFileError,
    ServerAddress,
    change_addresses,
    issue_cluster_id,
)
from mercury_rt.core.identity.live import HISTORY
from tests.identity_support import OTHER_MASTER, key
from tests.nodecfg_support import make_cluster

ADDRESS = ServerAddress(IPv4Address("192.0.2.20"), 7401, 10, 10)
CONFIG = """\
node_id: node-a
cluster_dir: cluster
state_dir: state
listen: {host: 127.0.0.1, inter_port: 7401, intra_port: 7501}
cluster:
  nodes:
    - {node_id: node-a, intra: '127.0.0.1:7501', public: '192.0.2.10:7401/10/50'}
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return make_cluster(tmp_path / "cluster", "192.0.2.10:7401/10/50")


def version(cluster: Path, number: int) -> ClusterId:
    """A genuine version `number`, as a publishing node signs it with the cluster key."""
    current = keyfiles.load_cluster_ids(cluster)[-1]
    cluster_key, _ = keyfiles.load_cluster_key(cluster)
    return change_addresses(replace(current, version=number - 1), cluster_key, (ADDRESS,))


def test_a_node_records_in_its_state_dir_and_in_the_cluster_dir(cluster: Path,
                                                                tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    sink = FileVersionSink("node-a", tmp_path / "state", cluster)
    sink.record(version(cluster, 4))
    for path in (tmp_path / "state" / STATE_FILE, cluster / PUBLISHED_DIR / "node-a.cbor"):
        record = decode_record(path.read_bytes())
        assert (record.node_id, record.cluster_id.version) == ("node-a", 4)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # public, like a 0644
    assert not list((cluster / PUBLISHED_DIR).glob(".*")), "no temporary file is left"
    sink.record(version(cluster, 3))  # an older version never overwrites a newer one
    assert load_live(cluster).live.cluster_id.version == 4


def test_a_cluster_dir_the_node_cannot_write_still_leaves_its_own_record(
        cluster: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "readonly-cluster"
    not_a_dir.write_text("")
    sink = FileVersionSink("node-a", tmp_path / "state", not_a_dir)
    sink.record(version(cluster, 2))
    sink.record(version(cluster, 3))
    assert decode_record((tmp_path / "state" / STATE_FILE).read_bytes()).cluster_id.version == 3


def test_a_state_dir_that_cannot_be_written_is_a_coded_error(cluster: Path,
                                                             tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("")
    with pytest.raises(KeyFileError) as caught:
        FileVersionSink("node-a", blocked, cluster).record(version(cluster, 2))
    assert caught.value.code.name == "KEY_FILE_UNWRITABLE"


def test_bad_files_are_ignored_with_their_reason(cluster: Path) -> None:
    published = cluster / PUBLISHED_DIR
    published.mkdir()
    (published / "garbage.cbor").write_bytes(b"\xff not cbor")
    (published / "huge.cbor").write_bytes(b"\x00" * (MAX_RECORD + 1))
    (published / ".node-x.cbor.tmp").write_bytes(b"half written")
    (published / "notes.txt").write_text("not a record")
    os.mkfifo(published / "fifo.cbor")  # would block a reader that waited on it
    (published / "dir.cbor").mkdir()
    tampered = replace(version(cluster, 9), addresses=())
    (published / "forged.cbor").write_bytes(encode_record("forged", tampered, 0))
    other = issue_cluster_id(OTHER_MASTER, key(12), (ADDRESS,), 50)
    (published / "other.cbor").write_bytes(encode_record("other", other, 0))
    (published / "good.cbor").write_bytes(encode_record("good", version(cluster, 3), 0))
    seen = load_live(cluster)
    assert seen.live.cluster_id.version == 3
    assert [c.source for c in seen.records] == [f"{published / 'good.cbor'} (node good)"]
    codes = {Path(i.source.split(" ")[0]).name: i.code.name for i in seen.live.ignored}
    assert codes == {"garbage.cbor": "KEY_FILE_INVALID", "huge.cbor": "KEY_FILE_INVALID",
                     "fifo.cbor": "KEY_FILE_INVALID", "dir.cbor": "KEY_FILE_INVALID",
                     "forged.cbor": "BAD_CLUSTER_ID_SIGNATURE", "other.cbor": "MASTER_MISMATCH"}


def test_a_restarted_node_resumes_from_the_highest_recorded_version(cluster: Path) -> None:
    base = cluster.parent
    FileVersionSink("node-a", base / "state", cluster).record(version(cluster, 5))
    spec = build_node_spec(parse_node_config(CONFIG, base))
    try:
        assert [c.version for c in spec.cluster_ids] == [1, 5]
        assert spec.view.cluster_id_version == 5
    finally:
        spec.store.close()


def test_without_records_a_node_starts_from_the_cluster_dir(cluster: Path) -> None:
    spec = build_node_spec(parse_node_config(CONFIG, cluster.parent))
    try:
        assert [c.version for c in spec.cluster_ids] == [1]
        assert load_live(cluster).live.source == HISTORY
    finally:
        spec.store.close()


@pytest.mark.parametrize(("node_id", "name"), [("node-a", "node-a.cbor"),
                                               ("../evil", "2e2e2f6576696c.cbor"),
                                               (".hidden", "2e68696464656e.cbor")])
def test_record_names_stay_inside_the_published_dir(node_id: str, name: str) -> None:
    assert record_name(node_id) == name
