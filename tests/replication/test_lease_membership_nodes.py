"""Real node processes (127.0.103.1x) with a replication: section on a real 3-member etcd
(127.0.104.7-9): each node keeps its liveness key on a lease; after `kill -9` of one node
its lease runs out, the others see it dead (silence alone would not kill it: with etcd
only the lease does), one of them publishes a version without it by compare-and-swap, the
other learns it by watching etcd, etcd holds one version per number, and `cluster show
--node` prints the live version from etcd. Bounded in time; every process is reaped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mercury_rt.aio.etcd_versions import CLUSTER_ID_KEY
from mercury_rt.cli.live_etcd import read_live
from mercury_rt.cli.main import cli
from mercury_rt.config.published import STATE_FILE, decode_record
from mercury_rt.core.identity import ClusterId
from mercury_rt.localcluster import free_port
from tests.etcd_support import EtcdCluster
from tests.replication.own_etcd import own_cluster
from tungsten.etcd_store import EtcdState, EtcdWatch, EventKind, read_range

pytestmark = pytest.mark.net
NODES = (("n1", "127.0.103.11"), ("n2", "127.0.103.12"), ("n3", "127.0.103.13"))
CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [carol]
cluster:
  nodes:
{peers}
transport: {{initial_rto: 0.2, min_rto: 0.02, max_rto: 2.0}}
replication: {{endpoints: [{endpoints}], prefix: live/, member_ttl: 2}}
"""


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    yield from own_cluster(tmp_path_factory.mktemp("etcd-n"),
                           ("127.0.104.7", "127.0.104.8", "127.0.104.9"))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def write_cluster(tmp: Path, etcd: EtcdCluster) -> tuple[dict[str, Path], dict[str, str]]:
    ports = {n: (free_port(h), free_port(h)) for n, h in NODES}
    public = {n: f"{h}:{ports[n][0]}/10/10" for n, h in NODES}
    made = run("cluster", "new", "--dir", str(tmp / "cluster"), "--seed-phrase-out",
               str(tmp / "words.txt"), *(f"--address={public[n]}" for n, _ in NODES))
    assert made.exit_code == 0, made.output
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{public[n]}', mirrors: [carol]}}" for n, h in NODES)
    endpoints = ", ".join(f"'{m.host}:{m.client_port}'" for m in etcd.members)
    configs = {}
    for node, host in NODES:
        configs[node] = tmp / f"{node}.yaml"
        configs[node].write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                               intra=ports[node][1], peers=peers,
                                               endpoints=endpoints))
    return configs, public


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` (another process's state) until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def held_by(tmp: Path, node: str) -> ClusterId | None:
    path = tmp / "state" / node / STATE_FILE
    return decode_record(path.read_bytes()).cluster_id if path.is_file() else None


def etcd_history(etcd: EtcdCluster) -> list[int]:
    """The version number of every value ever put on the cluster-ID key."""
    async def run() -> list[int]:
        state = EtcdState(etcd.settings(b"live/"))
        try:
            now = (await read_range(state, CLUSTER_ID_KEY)).revision
            numbers = []
            async with EtcdWatch(state, CLUSTER_ID_KEY, 1) as watch:
                while True:
                    event = await asyncio.wait_for(anext(watch), 10)
                    if event.kind is EventKind.PUT:
                        numbers.append(ClusterId.decode(event.value).version)
                    if event.mod_revision >= now:
                        return numbers
        finally:
            await state.close()

    return asyncio.run(run())


def members(etcd: EtcdCluster) -> set[str]:
    async def run() -> set[str]:
        state = EtcdState(etcd.settings(b"live/"))
        try:
            found = await read_range(state, b"m/", prefix=True)
        finally:
            await state.close()
        return {e.key[2:].decode() for e in found.entries}

    return asyncio.run(run())


def test_a_killed_nodes_lease_runs_out_and_the_others_publish_and_learn_a_version(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    configs, public = write_cluster(tmp_path, etcd)
    settings = etcd.settings(b"live/")
    logs = {n: (tmp_path / f"{n}.log").open("wb") for n in configs}
    procs = {n: subprocess.Popen([sys.executable, "-m", "mercury_rt", "node", "run", str(c)],
                                 stdout=logs[n], stderr=logs[n])
             for n, c in configs.items()}
    try:
        wait_for(lambda: members(etcd) == {"n1", "n2", "n3"}, 30,
                 "every node puts its liveness key on a lease")
        wait_for(lambda: read_live(settings).published is not None, 30,
                 "the nodes put version 1 into etcd")
        procs["n3"].send_signal(signal.SIGKILL)
        procs["n3"].wait(10)
        killed = time.monotonic()
        wait_for(lambda: "n3" not in members(etcd), 10, "n3's lease runs out")
        gone = time.monotonic() - killed
        dead = public["n3"].rsplit("/", 2)[0]

        def published_without_n3() -> bool:
            live = read_live(settings).published
            if live is None:
                return False
            cid = ClusterId.decode(live.signed)
            return cid.version > 1 and dead not in {f"{a.host}:{a.port}"
                                                     for a in cid.addresses}

        wait_for(published_without_n3, 30, "a version without n3 is published on etcd")
        live = read_live(settings).published
        assert live is not None
        version = ClusterId.decode(live.signed)
        for node in ("n1", "n2"):
            wait_for(lambda node=node: held_by(tmp_path, node) == version, 15,  # type: ignore[misc]
                     f"{node} holds the published version")
        numbers = etcd_history(etcd)
        assert numbers == sorted(set(numbers)) and numbers[-1] == version.version, numbers
        assert gone < 5, f"n3's key took {gone:.1f} s to vanish with a 2 s lease"

        shown = run("cluster", "show", "--dir", str(tmp_path / "cluster"),
                    "--node", str(configs["n1"]))
        assert shown.exit_code == 0, shown.output
        source = read_live(settings).source
        assert f"live version {version.version}, from {source}" in shown.output, shown.output
        assert dead not in shown.output
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for log in logs.values():
            log.close()
