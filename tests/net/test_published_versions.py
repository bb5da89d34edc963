"""Real node processes on 127.0.42.x, no etcd: after `kill -9` of one node the cluster
publishes a new cluster-ID version, the nodes record it in the cluster directory, and the
operator's tools see it: `cluster show` prints it, `eid mint` lists no dead node, and
`cluster set-addresses` numbers its version above it; the surviving nodes, killed and
restarted, resume from that version rather than from the cluster directory's. Bounded
in time; every process is reaped."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mercury_rt.cli.main import cli
from mercury_rt.config.published import PUBLISHED_DIR, STATE_FILE, load_live
from mercury_rt.core.identity import Eid, eid_from_text
from mercury_rt.localcluster import free_port

pytestmark = pytest.mark.net
NODES = (("n1", "127.0.42.1"), ("n2", "127.0.42.2"), ("n3", "127.0.42.3"))
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
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def write_cluster(tmp: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Three node configs sharing one cluster directory; their public addresses."""
    ports = {n: (free_port(h), free_port(h)) for n, h in NODES}
    public = {n: f"{h}:{ports[n][0]}/10/10" for n, h in NODES}
    made = run("cluster", "new", "--dir", str(tmp / "cluster"), "--seed-phrase-out",
               str(tmp / "words.txt"), *(f"--address={public[n]}" for n, _ in NODES))
    assert made.exit_code == 0, made.output
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{public[n]}', mirrors: [carol]}}" for n, h in NODES)
    configs = {}
    for node, host in NODES:
        path = tmp / f"{node}.yaml"
        path.write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                      intra=ports[node][1], peers=peers))
        configs[node] = path
    return configs, public


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `seconds` saying what never happened."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def test_a_version_published_after_a_kill_is_what_the_tools_see(tmp_path: Path) -> None:
    configs, public = write_cluster(tmp_path)
    cluster = tmp_path / "cluster"
    logs = {n: (tmp_path / f"{n}.log").open("wb") for n in configs}
    procs = {n: subprocess.Popen([sys.executable, "-m", "mercury_rt", "node", "run", str(c)],
                                 stdout=logs[n], stderr=logs[n])
             for n, c in configs.items()}
    try:
        records = cluster / PUBLISHED_DIR
        wait_for(lambda: len(list(records.glob("*.cbor"))) == 3, 30,
                 "every node records its cluster ID at start")
        assert (tmp_path / "state" / "n1" / STATE_FILE).is_file()
        assert load_live(cluster).live.cluster_id.version == 1
        procs["n3"].send_signal(signal.SIGKILL)
        procs["n3"].wait(10)
        dead = public["n3"].rsplit("/", 2)[0]

        def published_without_n3() -> bool:
            live = load_live(cluster).live.cluster_id
            return live.version > 1 and dead not in {f"{a.host}:{a.port}"
                                                      for a in live.addresses}
        wait_for(published_without_n3, 40, "the cluster publishes a version without n3")
        live = load_live(cluster).live.cluster_id

        for node in ("n1", "n2"):  # the whole surviving cluster restarts
            procs[node].send_signal(signal.SIGKILL)
            procs[node].wait(10)
            procs[node] = subprocess.Popen(
                [sys.executable, "-m", "mercury_rt", "node", "run", str(configs[node])],
                stdout=logs[node], stderr=logs[node])
        for node in ("n1", "n2"):  # logged (to stdout: before logging is set up) at start
            log = tmp_path / f"{node}.log"
            resumed = rf"cluster_id_resumed .*version={live.version}\b"
            wait_for(lambda log=log, resumed=resumed: re.search(  # type: ignore[misc]
                resumed, log.read_text(errors="replace")) is not None,
                30, f"{node} restarts from version {live.version}, not from version 1")

        shown = run("cluster", "show", "--dir", str(cluster))
        assert shown.exit_code == 0, shown.output
        assert f"live version {live.version}, from {records}" in shown.output
        assert f"version: {live.version}" in shown.output and dead not in shown.output

        minted = run("eid", "mint", "--dir", str(cluster), "carol")
        assert minted.exit_code == 0, minted.output
        eid = Eid.decode(eid_from_text(minted.output.strip().splitlines()[-1]))
        assert eid.cluster_id.version == live.version
        assert dead not in {f"{a.host}:{a.port}" for a in eid.cluster_id.addresses}

        issued = run("cluster", "set-addresses", "--dir", str(cluster), public["n1"],
                     public["n2"])
        assert issued.exit_code == 0, issued.output
        assert f"cluster ID version {live.version + 1} " in issued.output
        assert load_live(cluster).live.cluster_id.version == live.version + 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for log in logs.values():
            log.close()
