"""Node benchmark: requests per second through whole nodes, beside raw asyncio echo.

The target clusters run in one process (b1 mirrors carol; dave lives only on b2, so a call
to dave reaching b1 is forwarded over the intra-cluster path; in a remote-state cluster r1
runs calls for erin itself, fetching erin's state from m1 and committing each echo's record
there); the calling cluster (a1 with alice, a2 with bob) runs in another. Raw echo is
measured in the same run, in two processes, as in bench_transport.py. 64 calls
outstanding; uvloop; the demo echo operation.

    python bench/bench_nodes.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
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


async def serve() -> None:
    tune_gc()
    away, remote = await start_cluster(AWAY), await start_cluster(REMOTE)
    print(json.dumps({"carol": away.eid("carol").hex(), "dave": away.eid("dave").hex(),
                      "erin": remote.eid("erin").hex()}), flush=True)
    await asyncio.Event().wait()


async def rate(node: NodeRuntime, target: bytes, seconds: float) -> float:
    done, stop = 0, False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await node.call(target, 1, 1, PAYLOAD, caller=b"alice")
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(64)]
    await asyncio.sleep(0.5)
    begin, start = done, time.perf_counter()
    await asyncio.sleep(seconds)
    result = (done - begin) / (time.perf_counter() - start)
    stop = True
    await asyncio.gather(*workers)
    return result


async def client(targets: dict[str, str], seconds: float) -> dict[str, float]:
    tune_gc()
    home = await start_cluster(HOME)
    a1 = home.nodes["a1"]
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
    return out


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
        run(serve())
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        print(json.dumps(run(client(json.loads(sys.argv[2]), float(sys.argv[3])))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    raw = measure("raw", "raw", args.seconds, False)
    server = subprocess.Popen([sys.executable, __file__, "_serve"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        targets = server.stdout.readline().strip()
        out = subprocess.run([sys.executable, __file__, "_client", targets, str(args.seconds)],
                             capture_output=True, text=True, check=True, timeout=600)
        rates: dict[str, Any] = json.loads(out.stdout)
    finally:
        server.kill()
        server.wait()
    fo = run(failover())
    print(f"raw asyncio echo (uvloop, 2 processes): {raw['req_per_s']:.0f} req/s")
    for name, value in rates.items():
        print(f"{name:44s} {value:8.0f} req/s   {value / raw['req_per_s']:.2f}x raw echo")
    print(f"failover to the next node (initial RTO 0.5 s, answer timeout 1.0 s): {fo:.0f} ms")


if __name__ == "__main__":
    main()
