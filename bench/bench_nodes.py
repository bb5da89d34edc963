"""Node benchmark: requests per second through whole nodes, beside raw asyncio echo.

The target clusters run in one process (b1 mirrors carol; dave lives only on b2, so a call
to dave reaching b1 is forwarded over the intra-cluster path; in a remote-state cluster r1
runs calls for erin itself, fetching erin's state from m1 and committing each echo's record
there); the calling cluster (a1 with alice, a2 with bob) runs in another. Raw echo is
measured in the same run, in two processes, as in bench_transport.py. 64 calls
outstanding; uvloop; the demo echo operation.

For other-cluster calls (alice on a1 to carol on b1) it also measures, separately:
  - throughput at 64 outstanding and CPU µs per request in each process (the calling
    process from `time.process_time`, the serving one from /proc/<pid>/stat, both over the
    measured window), with the calling node's inter-cluster datagrams and bytes per call;
  - p50/p99 latency at 1 outstanding, with CPU µs per request per side;
  - the very first call to the fresh cluster (cold: EID checks, key fetches, transit key
    query, session establishment) before anything else reached it;
  - 64 calls starting at once from a node that holds no session with the target node
    (bob on a2 to carol: no call before them), which is how a node meets a burst;
  - where the node has transit sessions (`NodeRuntime.transit`), calls at 1 outstanding
    that each establish a new session (the caller forgets its sessions before each call),
    so establishment's cost is the difference from the in-session figures.
The script runs unchanged on commits without transit (those figures are then absent),
so a plaintext baseline can be measured with the same file.

`--inter-algorithms 3` lists only those transit algorithm ids in every cluster's
`transit.inter_cluster` table (all levels), to price the post-quantum hybrid (3) against
the default choice (the cheapest, 2) at node level.

    python bench/bench_nodes.py [--seconds 3] [--json] [--other-only] [--inter-algorithms 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_transport import measure

from carbon.types import dumps_typed
from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.core.routing import NotMirroredChoice, RoutingConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from mercury_rt.logs import configure_logging

AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.2.1", ("carol",), priority=10),
                            NodePlan("b2", "127.0.2.2", ("dave",), priority=20)),
                   routing=RoutingConfig())
REMOTE = ClusterPlan("rstate", (NodePlan("r1", "127.0.4.1", (), priority=10),
                                NodePlan("m1", "127.0.4.2", ("erin",), priority=20)),
                     routing=RoutingConfig(NotMirroredChoice.RUN_WITH_REMOTE_STATE),
                     record_state=True)
HOME = ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),
                            NodePlan("a2", "127.0.1.2", ("bob",))))
PAYLOAD = dumps_typed(str, "x" * 90)


def with_algorithms(plan: ClusterPlan, ids: str) -> ClusterPlan:
    """`plan` whose policy allows only algorithms `ids` (comma-separated) between clusters."""
    if not ids:
        return plan
    table = "{" + ", ".join(f"{level}: [{ids}]" for level in ("public",)) + "}"
    return replace(plan, policy=plan.policy + f"transit:\n  inter_cluster: {table}\n")


async def serve(ids: str) -> None:
    tune_gc()
    away = await start_cluster(with_algorithms(AWAY, ids))
    remote = await start_cluster(with_algorithms(REMOTE, ids))
    print(json.dumps({"carol": away.eid("carol").hex(), "dave": away.eid("dave").hex(),
                      "erin": remote.eid("erin").hex()}), flush=True)
    await asyncio.Event().wait()


async def rate(node: NodeRuntime, target: bytes, seconds: float) -> float:
    """Steady-state calls per second with 64 outstanding: one call first opens the
    transit session the 64 then share (see `herd` for 64 starting without one)."""
    await node.call(target, 1, 1, PAYLOAD, caller=b"alice")
    return await unwarmed_rate(node, target, seconds, b"alice")


async def unwarmed_rate(node: NodeRuntime, target: bytes, seconds: float,
                        caller: bytes) -> float:
    done, stop = 0, False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await node.call(target, 1, 1, PAYLOAD, caller=caller)
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(64)]
    await asyncio.sleep(0.5)
    begin, start = done, time.perf_counter()
    await asyncio.sleep(seconds)
    result = (done - begin) / (time.perf_counter() - start)
    stop = True
    await asyncio.gather(*workers)
    return result


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Window:
    """CPU per request on each side and the caller's inter-cluster datagrams, over one
    measured stretch of calls."""

    def __init__(self, node: NodeRuntime, server_pid: int) -> None:
        self.node, self.server_pid = node, server_pid
        assert node.inter is not None
        stats = node.inter.core.stats
        self.start = (time.process_time(), server_cpu(server_pid), stats.datagrams_out,
                      stats.bytes_out, stats.retransmissions)

    def per_call(self, calls: int) -> dict[str, float]:
        assert self.node.inter is not None
        stats = self.node.inter.core.stats
        end = (time.process_time(), server_cpu(self.server_pid), stats.datagrams_out,
               stats.bytes_out, stats.retransmissions)
        d = [b - a for a, b in zip(self.start, end, strict=True)]
        return {"client_cpu_us": d[0] / calls * 1e6, "server_cpu_us": d[1] / calls * 1e6,
                "datagrams_out": d[2] / calls, "bytes_out": d[3] / calls,
                "retransmissions": d[4]}


async def windowed_rate(node: NodeRuntime, target: bytes, seconds: float,
                        server_pid: int) -> dict[str, float]:
    """`rate`'s measurement with 64 outstanding, with CPU and datagrams per call."""
    done, stop = 0, False
    marks: dict[str, Any] = {}

    async def worker() -> None:
        nonlocal done
        while not stop:
            await node.call(target, 1, 1, PAYLOAD, caller=b"alice")
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(64)]
    await asyncio.sleep(0.5)
    begin, start, marks["w"] = done, time.perf_counter(), Window(node, server_pid)
    await asyncio.sleep(seconds)
    calls, elapsed = done - begin, time.perf_counter() - start
    result = {"req_per_s": calls / elapsed, **marks["w"].per_call(calls)}
    stop = True
    await asyncio.gather(*workers)
    return result


async def sequential(node: NodeRuntime, target: bytes, seconds: float, server_pid: int,
                     before: Any = None, limit: int = 3000) -> dict[str, float]:
    """Calls one at a time for `seconds` (at most `limit`): p50/p99 and CPU per call.
    `before` runs ahead of each call, inside the measurement (a session reset)."""
    for _ in range(100):
        await node.call(target, 1, 1, PAYLOAD, caller=b"alice")
    lat: list[float] = []
    window, stop_at = Window(node, server_pid), time.perf_counter() + seconds
    while time.perf_counter() < stop_at and len(lat) < limit:
        start = time.perf_counter()
        if before is not None:
            before()
        await node.call(target, 1, 1, PAYLOAD, caller=b"alice")
        lat.append(time.perf_counter() - start)
    result = window.per_call(len(lat))
    lat.sort()
    return {"calls": len(lat), "p50_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[int(len(lat) * 0.99)] * 1e6, **result}


async def other_cluster(a1: NodeRuntime, carol: bytes, seconds: float,
                        server_pid: int) -> dict[str, Any]:
    """The other-cluster figures of the module docstring, cold call first."""
    start = time.perf_counter()
    await a1.call(carol, 1, 1, PAYLOAD, caller=b"alice")
    cold_ms = (time.perf_counter() - start) * 1e3
    out: dict[str, Any] = {"first_call_cold_ms": cold_ms,
                           "n64": await windowed_rate(a1, carol, seconds, server_pid),
                           "n1": await sequential(a1, carol, seconds, server_pid)}
    transit = getattr(a1, "transit", None)
    if transit is not None:
        out["algorithms"] = sorted({key[1] for key in transit.initiator._sessions})
        out["n1_new_session_each_call"] = await sequential(
            a1, carol, seconds, server_pid, before=_forget_all(transit.initiator))
    return out


def _forget_all(initiator: Any) -> Any:
    """Drop every session the caller holds, so its next call opens a new one (the
    verified transit keys stay cached, as they do for a node that restarted)."""
    def forget() -> None:
        for address in {key[0] for key in initiator._sessions}:
            initiator.forget(address)
    return forget


async def client(targets: dict[str, str], seconds: float, server_pid: int,
                 other_only: bool, ids: str) -> dict[str, Any]:
    tune_gc()
    home = await start_cluster(with_algorithms(HOME, ids))
    a1 = home.nodes["a1"]
    detail = await other_cluster(a1, bytes.fromhex(targets["carol"]), seconds, server_pid)
    detail["n64_herd_req_per_s"] = await unwarmed_rate(
        home.nodes["a2"], bytes.fromhex(targets["carol"]), seconds, b"bob")
    if other_only:
        await home.stop()
        return {"rates": {}, "other_cluster": detail}
    out = {
        "local entity (same node)": await rate(a1, home.eid("alice"), seconds),
        "same cluster, other node (intra path)": await rate(a1, home.eid("bob"), seconds),
        "other cluster": await rate(a1, bytes.fromhex(targets["carol"]), seconds),
        "other cluster, forwarded to a mirror": await rate(a1, bytes.fromhex(targets["dave"]),
                                                           seconds),
        "other cluster, remote state (fetch+commit)": await rate(
            a1, bytes.fromhex(targets["erin"]), seconds),
    }
    await home.stop()
    return {"rates": out, "other_cluster": detail}


async def failover() -> float:
    """Milliseconds from the first node's death to a call answered by the next one."""
    plan = ClusterPlan("fo", (NodePlan("f1", "127.0.3.1", ("carol",), priority=10),
                              NodePlan("f2", "127.0.3.2", ("carol",), priority=20)))
    away, home = await start_cluster(plan), await start_cluster(HOME)
    target = away.eid("carol")
    await home.nodes["a1"].call(target, 1, 1, PAYLOAD, caller=b"alice")
    await away.nodes["f1"].stop()
    start = time.perf_counter()
    await home.nodes["a1"].call(target, 1, 1, PAYLOAD, caller=b"alice")
    elapsed = (time.perf_counter() - start) * 1e3
    await away.stop()
    await home.stop()
    return elapsed


def main() -> None:
    configure_logging("warning")
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        run(serve(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        print(json.dumps(run(client(json.loads(sys.argv[2]), float(sys.argv[3]),
                                    int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]))))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--other-only", action="store_true",
                        help="only the other-cluster figures (and raw echo); no failover")
    parser.add_argument("--inter-algorithms", default="",
                        help="comma-separated transit algorithm ids allowed between clusters")
    args = parser.parse_args()
    raw = measure("raw", "raw", args.seconds, False)
    server = subprocess.Popen([sys.executable, __file__, "_serve", args.inter_algorithms],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        targets = server.stdout.readline().strip()
        out = subprocess.run([sys.executable, __file__, "_client", targets, str(args.seconds),
                              str(server.pid), "1" if args.other_only else "0",
                              args.inter_algorithms],
                             capture_output=True, text=True, check=True, timeout=600)
        measured: dict[str, Any] = json.loads(out.stdout)
    finally:
        server.kill()
        server.wait()
    fo = None if args.other_only else run(failover())
    if args.json:
        print(json.dumps({"raw": raw, **measured, "failover_ms": fo}))
        return
    print(f"raw asyncio echo (uvloop, 2 processes): {raw['req_per_s']:.0f} req/s")
    for name, value in measured["rates"].items():
        print(f"{name:44s} {value:8.0f} req/s   {value / raw['req_per_s']:.2f}x raw echo")
    if fo is not None:
        print(f"failover to the next node (initial RTO 0.5 s, answer timeout 1.0 s): "
              f"{fo:.0f} ms")
    print_other(measured["other_cluster"])


def print_other(detail: dict[str, Any]) -> None:
    """The other-cluster figures, one line per measurement."""
    print(f"other cluster, first call to the fresh cluster (cold): "
          f"{detail['first_call_cold_ms']:.1f} ms")
    if "algorithms" in detail:
        print(f"transit algorithm(s) of a1's sessions: {detail['algorithms']}")
    print(f"other cluster, 64 outstanding from a node without a session: "
          f"{detail['n64_herd_req_per_s']:.0f} req/s")
    for name, label in (("n64", "64 outstanding"), ("n1", "1 outstanding"),
                        ("n1_new_session_each_call", "1 outstanding, new session each call")):
        if name not in detail:
            continue
        r = detail[name]
        speed = f"{r['req_per_s']:8.0f} req/s" if "req_per_s" in r else \
            f"p50 {r['p50_us']:6.0f} us p99 {r['p99_us']:6.0f} us"
        print(f"other cluster, {label:38s} {speed}   CPU/call: caller {r['client_cpu_us']:5.0f}"
              f" us, server {r['server_cpu_us']:5.0f} us; caller sends {r['datagrams_out']:.2f}"
              f" datagrams, {r['bytes_out']:.0f} B; retransmissions {r['retransmissions']}")


if __name__ == "__main__":
    main()
