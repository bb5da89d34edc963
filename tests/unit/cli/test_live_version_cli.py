"""`cluster show`, `eid mint`, `set-addresses` and `rotate-key` see the versions the nodes
recorded (cluster dir published/, or a node's state_dir via --node), never a forged one,
and never issue a number a node used; without any node's record they refuse unless
--force."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.config.published import PUBLISHED_DIR, STATE_FILE, FileVersionSink, encode_record
from mercury_rt.core.identity import ClusterId, Eid, ServerAddress, change_addresses, eid_from_text
from tests.nodecfg_support import make_cluster

NODE_ADDRESS = ServerAddress(IPv4Address("192.0.2.20"), 7401, 10, 10)
CONFIG = """\
node_id: node-a
cluster_dir: cluster
state_dir: state
listen: {host: 127.0.0.1, inter_port: 7401, intra_port: 7501}
cluster:
  nodes:
    - {node_id: node-a, intra: '127.0.0.1:7501', public: '192.0.2.10:7401/10/50'}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return make_cluster(tmp_path / "cluster", "192.0.2.10:7401/10/50")


def published(cluster: Path, number: int, node: str = "node-a",
              state: Path | None = None) -> ClusterId:
    """A node publishing version `number` (a node died: its list is NODE_ADDRESS only)."""
    current = keyfiles.load_cluster_ids(cluster)[-1]
    cluster_key, _ = keyfiles.load_cluster_key(cluster)
    cid = change_addresses(replace(current, version=number - 1), cluster_key, (NODE_ADDRESS,))
    FileVersionSink(node, state or cluster.parent / f"state-{node}", cluster).record(cid)
    return cid


def test_show_prints_the_version_a_node_published_and_where_it_is(cluster: Path) -> None:
    published(cluster, 5)
    shown = run("cluster", "show", "--dir", str(cluster))
    assert shown.exit_code == 0, shown.output
    record = cluster / PUBLISHED_DIR / "node-a.cbor"
    assert f"live version 5, from {record} (node node-a)" in shown.output
    assert "version: 5" in shown.output and "192.0.2.10" not in shown.output
    assert shown.output.strip().splitlines()[-1].startswith("mcid1")


def test_mint_lists_the_live_addresses_not_the_dead_node(cluster: Path) -> None:
    published(cluster, 5)
    minted = run("eid", "mint", "--dir", str(cluster), "carol")
    assert minted.exit_code == 0, minted.output
    eid = Eid.decode(eid_from_text(minted.output.strip().splitlines()[-1]))
    assert eid.cluster_id.version == 5 and eid.cluster_id.addresses == (NODE_ADDRESS,)
    assert run("eid", "verify", minted.output.strip(), "--dir", str(cluster)).exit_code == 0


def test_set_addresses_numbers_above_every_recorded_version(cluster: Path) -> None:
    published(cluster, 5, "node-a")
    published(cluster, 7, "node-b")
    issued = run("cluster", "set-addresses", "--dir", str(cluster), "192.0.2.30:7401/10/10")
    assert issued.exit_code == 0, issued.output
    assert "cluster ID version 8 " in issued.output
    assert [c.version for c in keyfiles.load_cluster_ids(cluster)] == [1, 7, 8]
    assert "live version 8" in run("cluster", "show", "--dir", str(cluster)).output


def test_rotate_key_numbers_above_the_live_version_and_mints_with_the_new_key(
        cluster: Path) -> None:
    published(cluster, 4)
    rotated = run("cluster", "rotate-key", "--dir", str(cluster))
    assert rotated.exit_code == 0, rotated.output
    current = keyfiles.load_cluster_ids(cluster)[-1]
    assert (current.version, current.key_version) == (5, 5)
    assert current.addresses == (NODE_ADDRESS,)
    assert keyfiles.load_cluster_key(cluster)[1] == 5
    assert run("eid", "mint", "--dir", str(cluster), "carol").exit_code == 0


@pytest.mark.parametrize("verb", [("set-addresses", "192.0.2.30:7401/10/10"), ("rotate-key",)])
def test_without_any_node_record_issuing_is_refused_unless_forced(cluster: Path,
                                                                   verb: tuple[str, ...]) -> None:
    before = (cluster / keyfiles.CLUSTER_IDS_FILE).read_bytes()
    refused = run("cluster", verb[0], "--dir", str(cluster), *verb[1:])
    assert refused.exit_code == 1
    assert "cannot see which cluster-ID versions the nodes use" in refused.output
    assert "--node CONFIG" in refused.output and "--force" in refused.output
    assert (cluster / keyfiles.CLUSTER_IDS_FILE).read_bytes() == before
    forced = run("cluster", verb[0], "--dir", str(cluster), "--force", *verb[1:])
    assert forced.exit_code == 0, forced.output
    assert "warning: --force" in forced.output and "cluster ID version 2 " in forced.output


def test_a_forged_record_is_named_ignored_and_does_not_count_as_seeing_a_node(
        cluster: Path) -> None:
    genuine = published(cluster, 3)
    forged = replace(genuine, version=900)  # its signature no longer matches
    (cluster / PUBLISHED_DIR / "node-a.cbor").write_bytes(encode_record("node-a", forged, 0))
    shown = run("cluster", "show", "--dir", str(cluster))
    assert "live version 1" in shown.output
    assert "warning: ignored" in shown.output and "BAD_CLUSTER_ID_SIGNATURE" in shown.output
    refused = run("cluster", "set-addresses", "--dir", str(cluster), "192.0.2.30:7401/10/10")
    assert refused.exit_code == 1 and "cannot see" in refused.output


def test_a_node_config_supplies_the_nodes_record_when_the_cluster_dir_has_none(
        cluster: Path) -> None:
    base = cluster.parent
    (base / "node-a.yaml").write_text(CONFIG)
    published(cluster, 6, state=base / "state")
    (cluster / PUBLISHED_DIR / "node-a.cbor").unlink()  # as if the nodes could not write it
    assert (base / "state" / STATE_FILE).is_file()
    shown = run("cluster", "show", "--dir", str(cluster), "--node", str(base / "node-a.yaml"))
    assert "live version 6" in shown.output, shown.output
    issued = run("cluster", "set-addresses", "--dir", str(cluster), "--node",
                 str(base / "node-a.yaml"), "192.0.2.30:7401/10/10")
    assert issued.exit_code == 0, issued.output
    assert "cluster ID version 7 " in issued.output
