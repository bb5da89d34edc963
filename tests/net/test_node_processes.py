"""Real node processes (`mercury-rt node run`) on 127.0.8.x: kill -9 the highest-priority
node under load; traffic moves to the next node quickly and no request runs twice.
SIGTERM drains and exits 0. Bounded in time; every process is reaped."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
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
from tungsten.store import LmdbStore

pytestmark = pytest.mark.net
INITIAL_RTO = 0.2
NODES = (("b1", "127.0.8.1", 10), ("b2", "127.0.8.2", 20))

CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
apps: [mercury_rt.apps.echo]
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [{mirrors}]
cluster:
  nodes:
{peers}
{routing}transport: {{initial_rto: {rto}, min_rto: 0.02, max_rto: 2.0}}
"""


def _write_cluster(tmp: Path, mirrors: dict[str, str] | None = None,
                   routing: str = "") -> dict[str, Path]:
    mirrors = mirrors or {n: "carol" for n, _, _ in NODES}
    ports = {n: (free_port(h), free_port(h)) for n, h, _ in NODES}
    addresses = [f"--address={h}:{ports[n][0]}/{p}/10" for n, h, p in NODES]
    result = CliRunner().invoke(cli, ["cluster", "new", "--dir", str(tmp / "cluster"),
                                      "--seed-phrase-out", str(tmp / "words.txt"), *addresses])
    assert result.exit_code == 0, result.output
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/{p}/10', mirrors: [{mirrors[n]}]}}"
                      for n, h, p in NODES)
    configs = {}
    for node, host, _ in NODES:
        path = tmp / f"{node}.yaml"
        path.write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                      intra=ports[node][1], peers=peers, rto=INITIAL_RTO,
                                      mirrors=mirrors[node], routing=routing))
        configs[node] = path
    return configs


async def _start(config: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mercury_rt", "node", "run", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 20)
    assert b"listening" in line, line
    return proc


def _ran(state_dir: Path) -> list[str]:
    return list(_ran_by(state_dir))


def _ran_by(state_dir: Path) -> dict[str, str]:
    """Each echo text recorded in carol's state there, with the node that ran it."""
    store = LmdbStore(state_dir)
    try:
        with store.reading() as view:
            return {str(key[0]): str(value[0])
                    for key, value in view.scan(b"carol", Symbol(RAN), limit=1 << 20)}
    finally:
        store.close()


def test_killing_the_first_node_moves_traffic_fast_and_runs_nothing_twice(tmp_path: Path) -> None:
    configs = _write_cluster(tmp_path)
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()
    outcomes: dict[str, tuple[float, int | None]] = {}

    async def main() -> None:
        procs = {n: await _start(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.9.1", ()),)),
                                   TransportConfig(initial_rto=INITIAL_RTO, min_rto=0.02,
                                                   max_rto=2.0))
        caller = home.nodes["h1"]
        stop = asyncio.Event()
        progress = asyncio.Condition()

        async def record(text: str, code: int | None) -> None:
            outcomes[text] = (time.monotonic(), code)
            async with progress:
                progress.notify_all()

        async def reached(count: int) -> None:
            async with progress:
                await progress.wait_for(lambda: len(outcomes) >= count)

        async def worker(w: int) -> None:
            for i in range(10_000):
                if stop.is_set():
                    return
                text = f"w{w}-{i}"
                try:
                    await caller.call(carol, 1, 1, dumps_typed(str, text), caller=b"load",
                                      timeout=3.0)
                except NodeCallError as exc:
                    await record(text, exc.raw_code)
                else:
                    await record(text, None)

        try:
            workers = [asyncio.ensure_future(worker(w)) for w in range(16)]
            await reached(300)
            procs["b1"].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await procs["b1"].wait()
            probe = await caller.call(carol, 1, 2, dumps_typed(None, None), caller=b"probe")
            failover = time.monotonic() - killed
            assert loads_typed(str, probe) == "b2"
            assert failover < 3 * INITIAL_RTO, f"failover took {failover:.3f} s"
            print(f"failover after kill -9: {failover * 1e3:.0f} ms "
                  f"(bound {3 * INITIAL_RTO * 1e3:.0f} ms)")
            await reached(len(outcomes) + 300)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 10)
            procs["b2"].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(procs["b2"].wait(), 10) == 0
            assert procs["b2"].stderr is not None
            tail = await procs["b2"].stderr.read()
            assert b"stopped" in tail
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
    ran_b1 = _ran(tmp_path / "state" / "b1")
    ran_b2 = _ran(tmp_path / "state" / "b2")
    assert not set(ran_b1) & set(ran_b2), "a request ran on both nodes"
    ok = {t for t, (_, code) in outcomes.items() if code is None}
    assert ok <= set(ran_b1) | set(ran_b2), "a success was never recorded"
    failed = [code for _, code in outcomes.values() if code is not None]
    assert len(failed) <= 16, f"only calls in flight at the kill may fail: {failed}"
    assert len(ran_b2) >= 300
    print(f"{len(ok)} calls succeeded, {len(failed)} failed with codes {sorted(set(failed))}; "
          f"ran on b1: {len(ran_b1)}, on b2: {len(ran_b2)}, on both: 0")


def test_remote_state_nodes_from_yaml_run_calls_with_state_on_the_mirror(tmp_path: Path) -> None:
    """routing.not_mirrored: remote-state between real processes on LMDB: b1 mirrors
    nothing and runs the calls; each record lands in carol's state on b2, durably."""
    configs = _write_cluster(tmp_path, {"b1": "", "b2": "carol"},
                             "  routing: {not_mirrored: remote-state}\n")
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()

    async def main() -> None:
        procs = {n: await _start(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.9.2", ()),)))
        try:
            caller = home.nodes["h1"]
            for i in range(20):
                echoed = await caller.call(carol, 1, 1, dumps_typed(str, f"r{i}"),
                                           caller=b"load", timeout=5.0)
                assert loads_typed(str, echoed) == f"r{i}"
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert _ran_by(tmp_path / "state" / "b2") == {f"r{i}": "b1" for i in range(20)}
    assert _ran_by(tmp_path / "state" / "b1") == {}
