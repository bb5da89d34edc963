"""The operator's tools with a --node config whose replication: section names a real etcd
(127.0.104.x): `cluster show` and `eid mint` use the version etcd holds, `set-addresses`
and `rotate-key` number above it and publish by compare-and-swap; a forged value in etcd
is named and ignored; a version published in between is 466 and nothing is written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.etcd_versions import CLUSTER_ID_KEY, EtcdVersionStore
from mercury_rt.cli.identity import _append_version
from mercury_rt.cli.live_etcd import publish, read_live
from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import ClusterId, Eid, ServerAddress, change_addresses, eid_from_text
from tests.etcd_support import EtcdCluster
from tests.nodecfg_support import make_cluster
from tests.replication.own_etcd import own_cluster
from tungsten.etcd_store import EtcdSettings, EtcdState

pytestmark = pytest.mark.net
NODE_ADDRESS = ServerAddress(IPv4Address("192.0.2.20"), 7401, 10, 10)
CONFIG = """\
node_id: node-a
cluster_dir: cluster
state_dir: state
listen: {{host: 127.0.0.1, inter_port: 7401, intra_port: 7501}}
cluster:
  nodes:
    - {{node_id: node-a, intra: '127.0.0.1:7501', public: '192.0.2.10:7401/10/50'}}
replication: {{endpoints: [{endpoints}], prefix: {prefix}}}
"""


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    yield from own_cluster(tmp_path_factory.mktemp("etcd-t"),
                           ("127.0.104.4", "127.0.104.5", "127.0.104.6"))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def setup(tmp: Path, etcd: EtcdCluster, prefix: str) -> tuple[Path, Path, EtcdSettings]:
    cluster = make_cluster(tmp / "cluster", "192.0.2.10:7401/10/50")
    endpoints = ", ".join(f"'{m.host}:{m.client_port}'" for m in etcd.members)
    config = tmp / "node-a.yaml"
    config.write_text(CONFIG.format(endpoints=endpoints, prefix=prefix))
    return cluster, config, etcd.settings(prefix.encode())


def node_publishes(cluster: Path, settings: EtcdSettings, number: int) -> ClusterId:
    """What a node does when another died: version `number` listing NODE_ADDRESS, by CAS."""
    current = keyfiles.load_cluster_ids(cluster)[-1]
    key, _ = keyfiles.load_cluster_key(cluster)
    cid = change_addresses(replace(current, version=number - 1), key, (NODE_ADDRESS,))
    put(settings, cid.encode())
    return cid


def put(settings: EtcdSettings, value: bytes) -> None:
    async def run() -> None:
        state = EtcdState(settings)
        try:
            store = EtcdVersionStore(state)
            assert await store.publish(value, await store.current())
        finally:
            await state.close()

    asyncio.run(run())


def test_show_and_mint_use_the_version_in_etcd(tmp_path: Path, etcd: EtcdCluster) -> None:
    cluster, config, settings = setup(tmp_path, etcd, "tools1/")
    node_publishes(cluster, settings, 5)
    shown = run("cluster", "show", "--dir", str(cluster), "--node", str(config))
    assert shown.exit_code == 0, shown.output
    source = read_live(settings).source
    assert f"live version 5, from {source}" in shown.output
    assert "tools1/cluster-id" in source and "192.0.2.10" not in shown.output
    minted = run("eid", "mint", "--dir", str(cluster), "--node", str(config), "carol")
    assert minted.exit_code == 0, minted.output
    eid = Eid.decode(eid_from_text(minted.output.strip().splitlines()[-1]))
    assert eid.cluster_id.version == 5 and eid.cluster_id.addresses == (NODE_ADDRESS,)


def test_set_addresses_and_rotate_key_publish_above_etcds_version_by_cas(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    cluster, config, settings = setup(tmp_path, etcd, "tools2/")
    node_publishes(cluster, settings, 3)
    issued = run("cluster", "set-addresses", "--dir", str(cluster), "--node", str(config),
                 "192.0.2.30:7401/10/10")
    assert issued.exit_code == 0, issued.output
    assert "cluster ID version 4 " in issued.output and "published on etcd" in issued.output
    live = read_live(settings).published
    assert live is not None and ClusterId.decode(live.signed).version == 4
    assert keyfiles.load_cluster_ids(cluster)[-1] == ClusterId.decode(live.signed)
    rotated = run("cluster", "rotate-key", "--dir", str(cluster), "--node", str(config))
    assert rotated.exit_code == 0, rotated.output
    live = read_live(settings).published
    assert live is not None
    new = ClusterId.decode(live.signed)
    assert new.version == 5 and new.key_version == 5
    assert keyfiles.load_cluster_key(cluster)[1] == 5


def test_a_forged_value_in_etcd_is_named_and_ignored(tmp_path: Path, etcd: EtcdCluster) -> None:
    cluster, config, settings = setup(tmp_path, etcd, "tools3/")
    key, _ = keyfiles.load_cluster_key(cluster)
    signed = change_addresses(keyfiles.load_cluster_ids(cluster)[-1], key, (NODE_ADDRESS,))
    forged = replace(signed, version=9, signature=bytes(64))
    put(settings, forged.encode())
    shown = run("cluster", "show", "--dir", str(cluster), "--node", str(config))
    assert shown.exit_code == 0, shown.output
    assert "live version 1" in shown.output
    assert "warning: ignored etcd" in shown.output
    refused = run("cluster", "set-addresses", "--dir", str(cluster), "--node", str(config),
                  "192.0.2.30:7401/10/10")
    assert refused.exit_code == 1 and "holds no verified cluster ID" in refused.output
    issued = run("cluster", "set-addresses", "--dir", str(cluster), "--node", str(config),
                 "--force", "192.0.2.30:7401/10/10")
    assert issued.exit_code == 0, issued.output
    assert "cluster ID version 2 " in issued.output  # the forged 9 does not push the number
    live = read_live(settings).published
    assert live is not None and ClusterId.decode(live.signed).version == 2  # CAS over it


def test_a_version_published_in_between_is_466_and_nothing_is_written(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    cluster, _, settings = setup(tmp_path, etcd, "tools4/")
    node_publishes(cluster, settings, 2)
    read = read_live(settings)  # the tool reads version 2 ...
    meanwhile = node_publishes(cluster, settings, 3)  # ... a node publishes 3 ...
    key, _ = keyfiles.load_cluster_key(cluster)
    history = keyfiles.load_cluster_ids(cluster)
    assert read.published is not None
    mine = change_addresses(ClusterId.decode(read.published.signed), key, (NODE_ADDRESS,))
    with pytest.raises(MercuryError) as caught:  # ... and the tool's CAS on 2 loses
        _append_version(cluster, history, mine, read)
    assert caught.value.code is ErrorCode.CLUSTER_ID_PUBLISHED_MEANWHILE
    assert "version 3" in caught.value.message
    assert keyfiles.load_cluster_ids(cluster) == history
    now = read_live(settings).published
    assert now is not None and ClusterId.decode(now.signed) == meanwhile
    with pytest.raises(MercuryError):
        publish(read, mine)
    assert (settings.prefix + CLUSTER_ID_KEY).endswith(b"cluster-id")
