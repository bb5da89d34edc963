"""Real node processes (`mercury-rt node run`) with a `replication:` section on a 3-member
etcd: under load through the cluster, kill -9 of the node serving the calls; the other
mirror goes on serving, and the shared state holds every acknowledged write."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError
from mercury_rt.apps.echo import RAN
from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, free_port, start_cluster
from tests.etcd_support import EtcdCluster, etcd_cluster
from tungsten.etcd_store import EtcdState
from tungsten.keys import decode_key, decode_stored

__all__ = ["etcd_cluster"]
pytestmark = pytest.mark.net
NODES = (("r1", "127.0.93.1", 10), ("r2", "127.0.93.2", 20))
CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
apps: [mercury_rt.apps.echo, counting_app]
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [carol]
cluster:
  nodes:
{peers}
transport: {{initial_rto: 0.2, min_rto: 0.02, max_rto: 2.0}}
replication: {{endpoints: [{endpoints}], prefix: nodes/}}
"""


COUNTING_APP = """\
from carbon.protocol_spec import Interface, request


COUNTING = Interface("/test/counting/v1", ops=[request(1, "bump", str, int)])
KV = Interface("/test/kv/v1", ops=[request(1, "put", str, str), request(2, "get", str, str),
                                   request(3, "count", int, str)])


def setup(app):
    @app.registry.handler("t.bump")
    def bump(ctx, worker):
        now = ctx.state.get("/test/counting", (worker,))
        total = (0 if now is None else now[0]) + 1
        ctx.state.put("/test/counting", (worker,), (total,))
        return total

    app.attach_to_mirrors(COUNTING, endpoint=2, handlers={"bump": "t.bump"})

    @app.registry.handler("t.put")
    def put(ctx, text):
        key, value = text.split("=", 1)
        ctx.state.put("/test/kv", (key,), (value,))
        return app.node_id

    @app.registry.handler("t.get")
    def get(ctx, key):
        now = ctx.state.get("/test/kv", (key,))
        return app.node_id + ":" + ("" if now is None else now[0])

    @app.registry.handler("t.count")
    def count(ctx, n):
        held = sum(ctx.state.get("/test/kv", (f"k{i}",)) == (f"v{i}",) for i in range(n))
        return f"{app.node_id}:{held}"

    app.attach_to_mirrors(KV, endpoint=3, handlers={"put": "t.put", "get": "t.get",
                                                    "count": "t.count"})
"""


def node_configs(tmp: Path, cluster: EtcdCluster,
                 nodes: tuple[tuple[str, str, int], ...] = NODES) -> dict[str, Path]:
    """Configs (under `tmp`) of `nodes` (name, host, priority), all mirrors of `carol`,
    with replication on `cluster`; the counting app beside them."""
    (tmp / "counting_app.py").write_text(COUNTING_APP)
    ports = {n: (free_port(h), free_port(h)) for n, h, _ in nodes}
    addresses = [f"--address={h}:{ports[n][0]}/{p}/10" for n, h, p in nodes]
    made = CliRunner().invoke(cli, ["cluster", "new", "--dir", str(tmp / "cluster"),
                                    "--seed-phrase-out", str(tmp / "words.txt"), *addresses])
    assert made.exit_code == 0, made.output
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/{p}/10', mirrors: [carol]}}"
                      for n, h, p in nodes)
    endpoints = ", ".join(f"'{m.host}:{m.client_port}'" for m in cluster.members)
    out = {}
    for node, host, _ in nodes:
        out[node] = tmp / f"{node}.yaml"
        out[node].write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                           intra=ports[node][1], peers=peers,
                                           endpoints=endpoints))
    return out


async def start_node(config: Path) -> asyncio.subprocess.Process:
    """`mercury-rt node run CONFIG`, returned once it says it is listening."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mercury_rt", "node", "run", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert b"listening" in line, line
    return proc


async def kill_all(procs: Iterable[asyncio.subprocess.Process]) -> None:
    """kill -9 of every node process still running (also one left frozen by SIGSTOP)."""
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            await proc.wait()


async def _shared(cluster: EtcdCluster, section: str) -> dict[str, object]:
    state = EtcdState(cluster.settings(b"nodes/"))
    try:
        read = await state.read_entity(b"carol")
    finally:
        await state.close()
    return {str(decode_key(raw)[2][0]): decode_stored(value)[0]
            for raw, value in read.records.items() if decode_key(raw)[1] == Symbol(section)}


async def _shared_ran(cluster: EtcdCluster) -> dict[str, str]:
    state = EtcdState(cluster.settings(b"nodes/"))
    try:
        read = await state.read_entity(b"carol")
    finally:
        await state.close()
    out = {}
    for raw, value in read.records.items():
        _, section, key = decode_key(raw)
        if section == Symbol(RAN):
            out[str(key[0])] = str(decode_stored(value)[0])
    return out


def test_kill_9_of_the_serving_node_loses_no_acknowledged_write(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    configs = node_configs(tmp_path, etcd_cluster)
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()
    acked: list[str] = []
    failed: list[int | None] = []

    async def main() -> str:
        procs = {n: await start_node(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.93.9", ()),)),
                                   TransportConfig(initial_rto=0.2, min_rto=0.02, max_rto=2.0))
        caller = home.nodes["h1"]
        stop = asyncio.Event()

        async def worker(w: int) -> None:
            for i in range(10_000):
                if stop.is_set():
                    return
                text = f"w{w}-{i}"
                try:
                    await caller.call(carol, 1, 1, dumps_typed(str, text), caller=b"load",
                                      timeout=5.0)
                except NodeCallError as exc:
                    failed.append(exc.raw_code)
                else:
                    acked.append(text)

        async def until(count: int) -> None:
            while len(acked) < count:
                await asyncio.sleep(0.01)

        try:
            workers = [asyncio.ensure_future(worker(w)) for w in range(8)]
            await asyncio.wait_for(until(150), 60)
            procs["r1"].send_signal(signal.SIGKILL)
            await procs["r1"].wait()
            await asyncio.wait_for(until(len(acked) + 150), 60)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 20)
            who = await caller.call(carol, 1, 2, dumps_typed(None, None), caller=b"probe")
            return str(loads_typed(str, who))
        finally:
            await kill_all(procs.values())
            await home.stop()

    survivor = asyncio.run(asyncio.wait_for(main(), 150))
    assert survivor == "r2"
    shared = asyncio.run(_shared_ran(etcd_cluster))
    missing = [t for t in acked if t not in shared]
    assert not missing, f"{len(missing)} acknowledged writes missing from the shared state"
    assert {"r1", "r2"} <= set(shared.values())
    assert len(failed) <= 8, f"only calls in flight at the kill may fail: {failed}"
    print(f"kill -9 of r1 under 8 callers: {len(acked)} acknowledged, all in the shared "
          f"state ({len(shared)} records), {len(failed)} failed {sorted(set(failed))}")


def test_callers_failing_over_from_a_frozen_node_run_nothing_twice(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    """SIGSTOP of the serving node for 1 s under load: callers retry at the other mirror
    with the same request id, the frozen node then resumes its handlers, and each
    worker's counter (one increment per call) counts every call once."""
    asyncio.run(_clear(etcd_cluster))
    configs = node_configs(tmp_path, etcd_cluster)
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()
    acked: dict[str, int] = {}
    failed: dict[str, int] = {}

    async def main() -> None:
        procs = {n: await start_node(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.93.8", ()),)),
                                   TransportConfig(initial_rto=0.2, min_rto=0.02, max_rto=2.0))
        caller = home.nodes["h1"]
        stop = asyncio.Event()

        async def worker(name: str) -> None:
            acked[name] = failed[name] = 0
            while not stop.is_set():
                try:
                    await caller.call(carol, 2, 1, dumps_typed(str, name), caller=b"load",
                                      timeout=5.0)
                except NodeCallError:
                    failed[name] += 1
                else:
                    acked[name] += 1

        async def until(count: int) -> None:
            while sum(acked.values()) < count:
                await asyncio.sleep(0.01)

        try:
            workers = [asyncio.ensure_future(worker(f"w{w}")) for w in range(8)]
            await asyncio.wait_for(until(100), 60)
            procs["r1"].send_signal(signal.SIGSTOP)
            await asyncio.sleep(1.0)
            procs["r1"].send_signal(signal.SIGCONT)
            await asyncio.wait_for(until(sum(acked.values()) + 100), 60)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 20)
        finally:
            await kill_all(procs.values())
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 150))
    counts = asyncio.run(_shared(etcd_cluster, "/test/counting"))
    for name, count in acked.items():
        ran = int(str(counts.get(name, 0)))
        assert count <= ran <= count + failed[name], (name, count, failed[name], ran)
    print(f"SIGSTOP 1 s of r1 under 8 callers: {sum(acked.values())} acknowledged, "
          f"{sum(failed.values())} failed, every worker's counter = its calls that ran once")


KV_NODES = (("k1", "127.0.93.4", 10), ("k2", "127.0.93.5", 10))
"""Two mirrors of equal priority and weight: a caller's calls go to either, at random."""


def test_a_write_through_one_node_process_is_read_through_the_other_1000_of_1000(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    """Issue 12's first test as a user runs it: two `mercury-rt node run` processes mirror
    one entity on a 3-member etcd; each write (answered by the node that ran it) is read
    through the other node, 1,000 times; then kill -9 of one node, and the survivor reads
    every acknowledged write (one call reading all 1,000 keys)."""
    configs = node_configs(tmp_path, etcd_cluster, KV_NODES)
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()
    trials: list[tuple[str, str, bool]] = []
    after_kill: list[str] = []

    async def main() -> None:
        procs = {n: await start_node(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.93.7", ()),)),
                                   TransportConfig(initial_rto=0.2, min_rto=0.02, max_rto=2.0))

        async def call(operation: int, text: str) -> str:
            reply = await home.nodes["h1"].call(carol, 3, operation, dumps_typed(str, text),
                                                caller=b"probe", timeout=10.0)
            return str(loads_typed(str, reply))

        async def read_elsewhere(key: str, writer: str) -> tuple[str, str]:
            for _ in range(60):  # each call picks either node: another in 60 is certain
                reader, value = (await call(2, key)).split(":", 1)
                if reader != writer:
                    return reader, value
            raise AssertionError(f"no read of {key} reached the node that did not write it")

        async def trial(keys: range) -> None:
            for i in keys:
                writer = await call(1, f"k{i}=v{i}")
                reader, value = await read_elsewhere(f"k{i}", writer)
                trials.append((writer, reader, value == f"v{i}"))

        try:  # 8 callers, each on its own keys: every trial is a write, then its reads
            await asyncio.gather(*(trial(range(w, 1000, 8)) for w in range(8)))
            procs["k1"].send_signal(signal.SIGKILL)
            await procs["k1"].wait()
            reply = await home.nodes["h1"].call(carol, 3, 3, dumps_typed(int, 1000),
                                                caller=b"probe", timeout=10.0)
            after_kill.append(str(loads_typed(str, reply)))
        finally:
            await kill_all(procs.values())
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 240))
    assert sum(seen for _, _, seen in trials) == 1000
    writers = {writer for writer, _, _ in trials}
    assert writers == {"k1", "k2"}, "both nodes wrote: each was read through the other"
    assert after_kill == ["k2:1000"], "the survivor read every acknowledged write"
    print(f"1000 of 1000 writes read through the other node process "
          f"({sum(w == 'k1' for w, _, _ in trials)} written by k1); after kill -9 of k1, "
          f"k2 read all 1000")


async def _clear(cluster: EtcdCluster) -> None:
    """Nothing from an earlier test in the shared counters."""
    state = EtcdState(cluster.settings(b"nodes/"))
    try:
        read = await state.read_entity(b"carol")
        if read.records:
            await state.commit(b"carol", read.revision,
                               [(k, None) for k in read.records][:100], b"clear", b"")
    finally:
        await state.close()
