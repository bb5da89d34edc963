"""Issue 14's operator "done when", played end to end with the commands an operator types.

Three `mercury-rt node run` processes of one cluster from YAML on 127.0.13.x; `mercury-rt
call` (separate processes) through each node, as the cluster's own entity (`--as`) and as
a throwaway outsider; `mercury-rt node status` / `members` on each; /metrics scraped and
parsed with prometheus_client's parser, its request counters up after the calls; a bad
policy reloaded with SIGHUP (every node alive, the old policy still deciding, the error
logged at file:line); a good one reloaded (a call's outcome changes); `mercury-rt node
drain` of the busiest node while eight callers drive calls continuously (0 failed calls,
/readyz 503 while it drains, exit 0); the drained node restarted and serving again.
Every wait is on an event or a condition with a bounded deadline; every process is
reaped, every node stopped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import eid_to_text, mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, free_port, start_cluster
from tests.net.node_ops_support import INITIAL_RTO, OPEN_POLICY, NodeProcess
from tests.nodecfg_support import make_cluster

pytestmark = pytest.mark.net
NODES = (("n1", "127.0.13.1", 10), ("n2", "127.0.13.2", 20), ("n3", "127.0.13.3", 20))
"""n1 has the lowest SRV priority: callers from outside go to it first (it is drained)."""
SHARED = "carol, dave"
"""Mirrored by every node: carol for the policy change, dave for the load."""
CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
policy: policy.yaml
apps: [mercury_rt.apps.echo]
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [{mirrors}]
cluster:
  nodes:
{peers}
transport: {{initial_rto: {rto}, min_rto: 0.02, max_rto: 2.0}}
"""
BAD_POLICY = "version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: topsecret\n"
SECRET_CAROL = OPEN_POLICY + "entities:\n  carol:\n    classification: secret\n"
ECHO = "/demo/echo/v1"
CALLERS = 8
CLI_TIMEOUT = 30
TRANSPORT = TransportConfig(initial_rto=INITIAL_RTO, min_rto=0.02, max_rto=2.0)


def _write_cluster(tmp: Path) -> dict[str, Path]:
    """cluster/ (via `mercury-rt cluster new`), an open policy.yaml and one config per
    node: each mirrors carol, dave and an entity of its own (e1 on n1, ...)."""
    ports = {n: (free_port(h), free_port(h)) for n, h, _ in NODES}
    make_cluster(tmp / "cluster", *(f"{h}:{ports[n][0]}/{p}/10" for n, h, p in NODES))
    (tmp / "policy.yaml").write_text(OPEN_POLICY)
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/{p}/10', mirrors: [{SHARED}, e{n[1]}]}}"
                      for n, h, p in NODES)
    configs = {}
    for node, host, _ in NODES:
        configs[node] = tmp / f"{node}.yaml"
        configs[node].write_text(CONFIG.format(
            node=node, host=host, inter=ports[node][0], intra=ports[node][1],
            mirrors=f"{SHARED}, e{node[1]}", peers=peers, rto=INITIAL_RTO))
    return configs


def _eid(tmp: Path, entity: str) -> bytes:
    key, _ = keyfiles.load_cluster_key(tmp / "cluster")
    return mint_eid(key, keyfiles.load_cluster_ids(tmp / "cluster")[-1],
                    entity.encode()).encode()


async def _start(name: str, config: Path) -> NodeProcess:
    """`mercury-rt node run CONFIG`, waited for by its "node NAME listening" line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mercury_rt", "node", "run", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    node = NodeProcess(proc)
    try:
        await node.wait_for(f"node {name} listening", 30)
    except BaseException:
        await node.close()
        raise
    return node


async def mercury(*args: str) -> tuple[int, str, str]:
    """`mercury-rt ARGS` in its own process, as an operator runs it: (status, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mercury_rt", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _get(url: str) -> tuple[int, bytes] | None:
    """GET `url` (no proxy): status and body, or None when nothing listens there."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None


def _admin_url(tmp: Path, node: str) -> str:
    """The running node's admin URL, from the address file it keeps in state_dir."""
    url: str = json.loads((tmp / "state" / node / "admin.json").read_text())["url"]
    return url


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll an async condition until it holds, within `timeout` seconds (else fail)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"not in {timeout} s: {what}"
        await asyncio.sleep(0.05)  # the poll step of this bounded wait


async def _ready(url: str) -> bool:
    answer = await asyncio.to_thread(_get, url + "/readyz")
    return answer is not None and answer[0] == 200


async def _served_requests(url: str) -> float:
    """The node's mercury_requests_total answered with code 0, over every port."""
    answer = await asyncio.to_thread(_get, url + "/metrics")
    assert answer is not None and answer[0] == 200, answer
    families = {f.name: f for f in text_string_to_metric_families(answer[1].decode())}
    assert "mercury_request_duration_seconds" in families, sorted(families)
    return sum(s.value for s in families["mercury_requests"].samples
               if s.name == "mercury_requests_total" and s.labels.get("code") == "0")


async def _hup(procs: dict[str, NodeProcess], policy: Path, text: str) -> dict[str, int]:
    """Write the policy file, SIGHUP every node; each node's log position before it."""
    policy.write_text(text)
    marks = {n: len(p.lines) for n, p in procs.items()}
    for proc in procs.values():
        proc.proc.send_signal(signal.SIGHUP)
    return marks


class Load:
    """Callers driving echo calls at one entity continuously, until stopped."""

    def __init__(self, caller: NodeRuntime, target: bytes) -> None:
        self.caller, self.target = caller, target
        self.done = 0
        self.failures: list[int] = []
        self._stop = asyncio.Event()
        self._workers = [asyncio.ensure_future(self._work(w)) for w in range(CALLERS)]

    async def _work(self, w: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                await self.caller.call(self.target, 1, 1, dumps_typed(str, f"w{w}-{i}"),
                                       caller=b"load", timeout=5.0)
            except NodeCallError as exc:
                self.failures.append(exc.raw_code)
            self.done += 1

    async def reached(self, count: int) -> bool:
        """Whether `count` calls have finished (a condition for _until)."""
        return self.done >= count

    async def stop(self) -> None:
        """Stop the callers and wait for their last calls (bounded)."""
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._workers, return_exceptions=True), 15)


def test_an_operator_runs_calls_watches_reloads_drains_and_restarts_a_cluster(
        tmp_path: Path) -> None:
    configs = _write_cluster(tmp_path)
    carol = eid_to_text(_eid(tmp_path, "carol"))
    loads: list[Load] = []

    async def main() -> None:
        procs: dict[str, NodeProcess] = {}
        home = None
        try:
            started = await asyncio.gather(*(_start(n, c) for n, c in configs.items()),
                                           return_exceptions=True)
            procs.update({n: p for n, p in zip(configs, started, strict=True)
                          if isinstance(p, NodeProcess)})
            assert len(procs) == len(configs), started
            urls = {n: _admin_url(tmp_path, n) for n in configs}
            for name, url in urls.items():
                await _until(partial(_ready, url), 20, f"{name} ready")
            await _calls_status_and_metrics(procs, configs, urls, carol)
            await _reloads(procs, tmp_path / "policy.yaml", carol)
            home = await start_cluster(
                ClusterPlan("home", (NodePlan("h1", "127.0.13.9", ()),)), TRANSPORT)
            for proc in procs.values():
                await proc.wait_for("membership_settled", 20)  # so a drain unpublishes
            load = Load(home.nodes["h1"], _eid(tmp_path, "dave"))
            loads.append(load)
            try:
                await _drain_under_load(procs["n1"], configs["n1"], urls["n1"], load)
            finally:
                await load.stop()
            assert await _whoami(load) in ("n2", "n3")
            procs["n1"] = await _start("n1", configs["n1"])
            await _serves_again(tmp_path, configs)
        finally:
            for proc in procs.values():
                await proc.close()
            if home is not None:
                await home.stop()

    asyncio.run(asyncio.wait_for(main(), 120))
    (load,) = loads
    assert load.failures == [], \
        f"{len(load.failures)} of {load.done} calls failed: {sorted(set(load.failures))}"
    print(f"drain under load: {load.done} calls, 0 failed")


async def _whoami(load: Load) -> str:
    """The node that answers the load's target now."""
    reply = await load.caller.call(load.target, 1, 2, dumps_typed(None, None),
                                   caller=b"probe")
    answer = loads_typed(str, reply)
    assert isinstance(answer, str)
    return answer


async def _drain_under_load(n1: NodeProcess, config: Path, url: str, load: Load) -> None:
    """`mercury-rt node drain` of n1, the node the load goes to, watching its /readyz:
    503 (draining) until it exits 0; the load goes on elsewhere."""
    assert await _whoami(load) == "n1", "n1 has the lowest SRV priority"
    await _until(partial(load.reached, 50), 20, "load under way")
    before = load.done
    readyz: list[tuple[int, bytes] | None] = []
    drain = asyncio.ensure_future(mercury("node", "drain", str(config)))
    while not drain.done():
        readyz.append(await asyncio.to_thread(_get, url + "/readyz"))
        await asyncio.sleep(0.05)  # the poll step; the drain command bounds the loop
    status, out, err = await drain
    assert status == 0, (out, err)
    assert "drained, exit status 0" in out, out
    assert await asyncio.wait_for(n1.proc.wait(), 10) == 0
    line = await n1.wait_for("node_draining", 5)
    assert "unpublished=True" in line, line
    refused = [json.loads(a[1]) for a in readyz if a is not None and a[0] == 503]
    assert refused, f"/readyz never said draining: {readyz}"
    assert all(r["not_draining"] is False for r in refused), refused
    await _until(partial(load.reached, load.done + 100), 30, "calls after the drain")
    assert load.done - before >= 100


async def _calls_status_and_metrics(procs: dict[str, NodeProcess], configs: dict[str, Path],
                                    urls: dict[str, str], carol: str) -> None:
    """`mercury-rt call` through each node and from outside; the nodes' request counters
    went up; `node status` and `node members` on each."""
    before = {n: await _served_requests(u) for n, u in urls.items()}
    own = [mercury("call", "--as", str(configs[n]), "--entity", "ops",
                   eid_to_text(_eid(configs[n].parent, f"e{n[1]}")), ECHO, "whoami", "--json")
           for n in configs]
    outsider = mercury("call", carol, ECHO, "echo", "hello from outside", "--json")
    results = await asyncio.gather(*own, outsider)
    for name, (status, out, err) in zip(configs, results, strict=False):
        assert status == 0, err
        answer = json.loads(out)
        assert answer["reply"] == name, answer
        assert answer["node"].startswith(f"node {name} (127.0.13.{name[1]}:"), answer
    status, out, err = results[-1]
    assert status == 0, err
    assert json.loads(out)["reply"] == "hello from outside"
    assert json.loads(out)["node"].startswith("127.0.13.1:"), out  # n1, by SRV priority
    for name, url in urls.items():
        after = await _served_requests(url)
        assert after >= before[name] + 2, (name, before[name], after)  # endpoint 0 + whoami

    shown = await asyncio.gather(*(mercury("node", "status", str(c)) for c in configs.values()))
    for name, (status, out, err) in zip(configs, shown, strict=True):
        assert status == 0, err
        assert out.startswith(f"node {name} of cluster "), out
        assert "ready: yes" in out and "members: 3 (3 routed)" in out, out
    status, out, err = await mercury("node", "members", str(configs["n2"]), "--json")
    assert status == 0, err
    assert [(m["node_id"], m["liveness"]) for m in json.loads(out)] == \
        [("n2", "self"), ("n1", "alive"), ("n3", "alive")]
    assert all(p.proc.returncode is None for p in procs.values())


async def _reloads(procs: dict[str, NodeProcess], policy: Path, carol: str) -> None:
    """SIGHUP with a bad policy (kept the old one, logged file:line), then a good one
    (applied: the outsider's call to carol is now refused)."""
    marks = await _hup(procs, policy, BAD_POLICY)
    for name, proc in procs.items():
        line = await proc.wait_for(f"{policy}:3:", 10, after=marks[name])
        assert "reload_problem" in line and "topsecret" in line, line
        await proc.wait_for("reload_rejected", 10, after=marks[name])
    assert all(p.proc.returncode is None for p in procs.values()), "SIGHUP killed a node"
    status, out, err = await mercury("call", carol, ECHO, "echo", "still open")
    assert (status, json.loads(out)) == (0, "still open"), err

    marks = await _hup(procs, policy, SECRET_CAROL)
    for name, proc in procs.items():
        await proc.wait_for("reload_applied", 10, after=marks[name])
    status, out, err = await mercury("call", carol, ECHO, "echo", "now secret")
    assert (status, out) == (1, ""), err
    assert err.startswith("refused: error 6"), err
    assert "MAC_INSUFFICIENT_CLEARANCE" in err, err


async def _serves_again(tmp: Path, configs: dict[str, Path]) -> None:
    """The restarted n1 is ready and answers for e1, which only it mirrors."""
    url = _admin_url(tmp, "n1")
    await _until(lambda: _ready(url), 20, "restarted n1 ready")
    status, out, err = await mercury("call", "--as", str(configs["n2"]), "--entity", "ops",
                                     eid_to_text(_eid(tmp, "e1")), ECHO, "whoami", "--json")
    assert status == 0, err
    assert json.loads(out)["reply"] == "n1"
