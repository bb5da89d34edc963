"""The admin interface of nodes built from YAML, on loopback: /metrics parsed with
prometheus_client's parser, /healthz, /readyz following membership, token auth, and
`mercury-rt node status|members` against in-process nodes and a `node run` process.
Bounded in time; every node and process is stopped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio import admin_http
from mercury_rt.aio.drain import DrainReport, DrainSettings
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import build_node_spec, keyfiles, load_node_config
from mercury_rt.core.identity import mint_eid
from mercury_rt.localcluster import free_port
from tests.nodecfg_support import make_cluster, run

pytestmark = pytest.mark.net
NODES = (("b1", "127.0.10.1"), ("b2", "127.0.10.2"))
TOKEN = "s3cret-admin-token-0123456789abcdef"

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
transport: {{initial_rto: 0.2, min_rto: 0.02, max_rto: 2.0}}
{admin}"""


def _write_cluster(tmp: Path, admin: dict[str, str],
                   nodes: tuple[tuple[str, str], ...] = NODES) -> dict[str, Path]:
    ports = {n: (free_port(h), free_port(h)) for n, h in nodes}
    make_cluster(tmp / "cluster", *(f"{h}:{ports[n][0]}/10/10" for n, h in nodes))
    mirrors = {"b1": "", "b2": "carol"} if len(nodes) > 1 else {"b1": "carol"}
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/10/10', mirrors: [{mirrors[n]}]}}"
                      for n, h in nodes)
    configs = {}
    for node, host in nodes:
        path = tmp / f"{node}.yaml"
        path.write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                      intra=ports[node][1], mirrors=mirrors[node],
                                      peers=peers, admin=admin.get(node, "")))
        configs[node] = path
    return configs


def _token_file(tmp: Path) -> Path:
    path = tmp / "admin.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def _fetch(url: str, token: str | None = None) -> tuple[int, bytes]:
    return await asyncio.to_thread(_get, url, token)


async def _until_ready(url: str, token: str | None, seconds: float) -> dict[str, bool]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status, body = await _fetch(url + "/readyz", token)
        if status == 200:
            ready: dict[str, bool] = json.loads(body)
            return ready
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)  # poll the condition until the bounded deadline


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_health_readiness_auth_and_status_of_nodes_from_yaml(tmp_path: Path) -> None:
    token_file = _token_file(tmp_path)
    configs = _write_cluster(tmp_path, {"b1": f"admin: {{token_file: {token_file}}}\n"})
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1],
                     b"carol").encode()

    async def main() -> None:
        b1 = NodeRuntime(build_node_spec(load_node_config(configs["b1"])))
        b2 = NodeRuntime(build_node_spec(load_node_config(configs["b2"])))
        await b1.start()
        try:
            assert b1.admin is not None
            url = b1.admin.url
            assert url.startswith("http://127.0.0.1:")
            recorded = json.loads((tmp_path / "state" / "b1" / "admin.json").read_text())
            assert recorded == {"url": url, "pid": os.getpid()}

            assert (await _fetch(url + "/healthz"))[0] == 401
            assert (await _fetch(url + "/healthz", "wrong-token-0123456789"))[0] == 401
            assert await _fetch(url + "/healthz", TOKEN) == (200, b"ok\n")
            status, body = await _fetch(url + "/readyz", TOKEN)
            assert status == 503, "b2 is configured and has not been heard from yet"
            assert json.loads(body) == {"ready": False, "keys_loaded": True,
                                        "sockets_bound": True, "membership_settled": False,
                                        "not_draining": True}

            await b2.start()
            await _until_ready(url, TOKEN, 10)
            assert b2.admin is not None
            await _until_ready(b2.admin.url, None, 10)
            for i in range(5):
                reply = await b1.call(carol, 1, 1, dumps_typed(str, f"m{i}"), caller=b"ops")
                assert loads_typed(str, reply) == f"m{i}"

            status, body = await _fetch(b2.admin.url + "/metrics")
            assert status == 200
            samples = _samples(body.decode())
            ok = samples[("mercury_requests_total", (("code", "0"), ("port", "intra")))]
            assert ok >= 5
            duration = (("port", "intra"),)
            assert samples[("mercury_request_duration_seconds_count", duration)] == ok
            assert samples[("mercury_request_duration_seconds_bucket",
                            (("le", "+Inf"), ("port", "intra")))] == ok
            allowed = [v for (name, labels), v in samples.items()
                       if name == "mercury_gate_decisions_total"
                       and ("outcome", "allow") in labels]
            assert sum(allowed) >= 5
            assert ("mercury_transport_retransmissions_total", (("port", "inter"),)) in samples
            assert samples[("mercury_transit_sessions", (("port", "intra"),))] >= 1
            assert samples[("mercury_held_messages", ())] == 0
            assert ("mercury_cache_entries", (("cache", "eid_verifications"),)) in samples
            assert samples[("mercury_ready", (("check", "ready"),))] == 1
            assert samples[("mercury_membership_peers", ())] == 1

            status, body = await _fetch(url + "/status", TOKEN)
            assert status == 200
            doc = json.loads(body)
            assert doc["node_id"] == "b1" and doc["cluster_id_version"] >= 1
            assert [(m["node_id"], m["liveness"]) for m in doc["members"]] == \
                [("b1", "self"), ("b2", "alive")]
            assert b1.membership is not None and b2.membership is not None
            assert [m["incarnation"] for m in doc["members"]] == \
                [b1.membership.adapter.incarnation, b2.membership.adapter.incarnation]

            shown = await asyncio.to_thread(run, "node", "status", str(configs["b1"]))
            assert shown.exit_code == 0, shown.output
            assert "node b1 of cluster" in shown.output and "ready: yes" in shown.output
            members = await asyncio.to_thread(run, "node", "members", str(configs["b2"]),
                                              "--json")
            assert members.exit_code == 0, members.output
            listed = json.loads(members.output)
            assert [(m["node_id"], m["liveness"], m["routed"]) for m in listed] == \
                [("b2", "self", True), ("b1", "alive", True)]
            assert (await _fetch(url + "/nothing", TOKEN))[0] == 404
        finally:
            await b2.stop()
            await b1.stop()
        assert not (tmp_path / "state" / "b1" / "admin.json").exists()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_blocked_event_loop_fails_healthz(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_http, "LOOP_TIMEOUT", 0.2)
    configs = _write_cluster(tmp_path, {})
    answers: list[tuple[int, bytes]] = []

    async def main() -> None:
        node = NodeRuntime(build_node_spec(load_node_config(configs["b1"])))
        await node.start()
        try:
            assert node.admin is not None
            url = node.admin.url + "/healthz"
            probed = threading.Event()

            def probe() -> None:
                answers.append(_get(url))
                probed.set()

            threading.Thread(target=probe, daemon=True).start()
            probed.wait(10)  # blocks the loop until the probe has its answer
            answers.append(await _fetch(url))
        finally:
            await node.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert answers[0][0] == 503 and b"did not answer" in answers[0][1]
    assert answers[1] == (200, b"ok\n")


def test_node_status_of_a_node_process_and_after_it_stopped(tmp_path: Path) -> None:
    admin_port = free_port("127.0.0.1")
    configs = _write_cluster(tmp_path, {"b1": f"admin: {{port: {admin_port}}}\n"},
                             NODES[:1])
    proc = subprocess.Popen([sys.executable, "-m", "mercury_rt", "node", "run",
                             str(configs["b1"])], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(2)]
        assert b"admin_listening" in lines[0] and f":{admin_port}".encode() in lines[0]
        assert b"node b1 listening" in lines[1], lines
        shown = run("node", "status", str(configs["b1"]))
        assert shown.exit_code == 0, shown.output
        assert "ready: yes" in shown.output, shown.output
        as_json = run("node", "status", str(configs["b1"]), "--json")
        assert as_json.exit_code == 0, as_json.output
        doc = json.loads(as_json.output)
        assert doc["node_id"] == "b1" and doc["ready"]["ready"] is True
        assert doc["held_pending"] == 0 and doc["entities"] == 1
        status, body = _get(f"http://127.0.0.1:{admin_port}/metrics")
        assert status == 200 and b"mercury_node_info" in body
        members = run("node", "members", str(configs["b1"]))
        assert members.exit_code == 0, members.output
        assert members.output.splitlines()[0].split()[:2] == ["NODE", "LIVENESS"]
        assert members.output.splitlines()[1].split()[:3] == ["b1", "self", "yes"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    gone = run("node", "status", str(configs["b1"]))
    assert gone.exit_code == 4
    assert "not running" in gone.output


def test_an_admin_port_in_use_stops_the_node_with_exit_3(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        configs = _write_cluster(tmp_path, {"b1": f"admin: {{port: {port}}}\n"}, NODES[:1])
        done = subprocess.run([sys.executable, "-m", "mercury_rt", "node", "run",
                               str(configs["b1"])], capture_output=True, timeout=30,
                              check=False)
    assert done.returncode == 3, done.stderr
    assert f"admin interface 127.0.0.1 port {port}".encode() in done.stderr


def test_readyz_reports_a_draining_node_as_not_ready_until_it_exits(tmp_path: Path) -> None:
    configs = _write_cluster(tmp_path, {})

    async def main() -> None:
        b1, b2 = (NodeRuntime(build_node_spec(load_node_config(configs[n])))
                  for n in ("b1", "b2"))
        await b1.start()
        await b2.start()
        drain: asyncio.Future[DrainReport] | None = None
        try:
            assert b1.admin is not None and b2.admin is not None
            url = b1.admin.url
            await _until_ready(url, None, 10)
            drain = asyncio.ensure_future(b1.drain(DrainSettings(linger=2.0)))
            deadline = asyncio.get_running_loop().time() + 10
            while (answer := await _fetch(url + "/readyz"))[0] == 200:
                assert asyncio.get_running_loop().time() < deadline, "still ready"
            assert answer[0] == 503
            assert json.loads(answer[1]) == {"ready": False, "keys_loaded": True,
                                             "sockets_bound": True,
                                             "membership_settled": True,
                                             "not_draining": False}
            assert (await _fetch(b2.admin.url + "/readyz"))[0] == 200, "b2 stays ready"
            report = await asyncio.wait_for(drain, 20)
            assert report.held_pending == 0
            assert b1.admin is None, "the admin interface closed with the node"
        finally:
            if drain is None or not drain.done():
                if drain is not None:
                    drain.cancel()
                    await asyncio.gather(drain, return_exceptions=True)
                await b1.stop()
            await b2.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
