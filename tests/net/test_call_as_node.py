"""`mercury-rt call --as CONFIG` and `mercury-rt name ...` against node processes from YAML.

Two real nodes (`mercury-rt node run`) on 127.0.9.x serve the echo app and the naming
app; an operator publishes names into a (stopped) node's state, withdraws one, lists
them, starts the nodes, resolves a name and calls through it as the cluster's own entities
(`--as`, over the intra-cluster path); a throwaway identity from outside is refused by the
policy, with its code. Bounded in time; every process is reaped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import eid_to_text, mint_eid
from mercury_rt.localcluster import free_port

pytestmark = pytest.mark.net
NODES = (("b1", "127.0.9.1", "[carol, names]"), ("b2", "127.0.9.2", "[carol]"))
CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
apps: [mercury_rt.apps.echo, mercury_rt.apps.naming]
policy: policy.yaml
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: {mirrors}
cluster:
  nodes:
{peers}
transport: {{initial_rto: 0.2, min_rto: 0.02, max_rto: 2.0}}
"""

POLICY = "version: 1\nlevels: [public]\n"
"""Callers from clusters the policy does not list are refused (no unknown_cluster_clearance)."""


def _configs(tmp: Path) -> dict[str, Path]:
    ports = {n: (free_port(h), free_port(h)) for n, h, _ in NODES}
    addresses = [f"--address={h}:{ports[n][0]}/10/10" for n, h, _ in NODES]
    made = CliRunner().invoke(cli, ["cluster", "new", "--dir", str(tmp / "cluster"),
                                    "--seed-phrase-out", str(tmp / "words.txt"), *addresses])
    assert made.exit_code == 0, made.output
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/10/10', mirrors: {m}}}" for n, h, m in NODES)
    (tmp / "policy.yaml").write_text(POLICY)
    paths = {}
    for node, host, mirrors in NODES:
        paths[node] = tmp / f"{node}.yaml"
        paths[node].write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                             intra=ports[node][1], mirrors=mirrors,
                                             peers=peers))
    return paths


@contextmanager
def running(configs: dict[str, Path]) -> Iterator[None]:
    """Both nodes running (each waited for by its `listening` line), stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for path in configs.values():
            proc = subprocess.Popen([sys.executable, "-m", "mercury_rt", "node", "run",
                                     str(path)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            procs.append(proc)
            assert proc.stderr is not None
            line = proc.stderr.readline()  # the node prints it once bound, or exits
            assert b"listening" in line, line + proc.stderr.read()
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                assert proc.wait(15) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
                assert proc.stderr is not None
                proc.stderr.close()


def mercury(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mercury_rt", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def _eid(cluster_dir: Path, entity: bytes) -> str:
    key, _ = keyfiles.load_cluster_key(cluster_dir)
    return eid_to_text(mint_eid(key, keyfiles.load_cluster_ids(cluster_dir)[-1], entity))


def test_published_names_resolve_and_route_calls_as_outsider_and_as_the_cluster(
        tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    carol, names = _eid(tmp_path / "cluster", b"carol"), _eid(tmp_path / "cluster", b"names")
    for name in ("carol@prod", "old@prod"):
        published = mercury("name", "publish", str(configs["b1"]), name, carol)
        assert published.returncode == 0, published.stderr
    withdrawn = mercury("name", "withdraw", str(configs["b1"]), "old@prod")
    assert withdrawn.returncode == 0, withdrawn.stderr
    listed = mercury("name", "list", str(configs["b1"]))
    assert listed.stdout.splitlines() == [f"carol@prod {carol}"], listed.stderr
    with running(configs):
        _calls(configs, carol, names)


def _calls(configs: dict[str, Path], carol: str, names: str) -> None:
    as_b1 = ("--as", str(configs["b1"]))
    resolved = mercury("name", "resolve", "carol@prod", "--naming", names, *as_b1)
    assert resolved.stdout.strip() == carol, resolved.stderr

    by_name = mercury("call", "carol@prod", "/demo/echo/v1", "echo", "by name", "--naming",
                      names, *as_b1, "--json")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout)["reply"] == "by name"

    inside = mercury("call", "--as", str(configs["b2"]), "--entity", "alice", carol,
                     "/demo/echo/v1", "whoami", "--json")
    assert inside.returncode == 0, inside.stderr
    answer = json.loads(inside.stdout)
    assert answer["reply"] in ("b1", "b2")
    assert answer["node"].startswith(f"node {answer['reply']} (127.0.9."), answer

    outsider = mercury("call", carol, "/demo/echo/v1", "echo", "let me in")
    assert outsider.returncode == 1, outsider.stderr
    assert outsider.stderr.startswith("refused: error 651 MAC_UNKNOWN_CLUSTER: "), \
        outsider.stderr

    gone = mercury("name", "resolve", "old@prod", "--naming", names, *as_b1)
    assert gone.returncode == 1
    assert gone.stderr.startswith("refused: error 415 NAME_NOT_FOUND"), gone.stderr
