"""Loss benchmark (issue 17 item 8): calls between two clusters under 20 % loss each way,
5 % duplication and 5 % reordering. Do they all complete within their deadline, and does
each run exactly once?

Two runs, both with the node defaults (`TransportConfig()`, answer timeout 2 x initial RTO):

- `sim`: the deterministic simulation (mercury_rt/testing/lossy.py): h1 of the home cluster
  calls carol (mirrored on w1 and w2 of the away cluster) and dave (only on w3, forwarded
  to), 100 calls a second, every call in a transit session, every link lossy. Latency is
  simulated time.
- `loopback`: real node runtimes on 127.0.x.y, the away cluster's three published
  addresses each behind a lossy UDP relay (tests/net/udp_relay.py with hooks that drop,
  duplicate and hold back datagrams, each way), the same entities, `--concurrency` callers
  at once, each echo's handler counting its runs. Intra-cluster traffic is not lossy.

Printed per run: calls, completed, failed (by code), completed after the deadline,
duplicate executions (handler runs beyond one per call), p50/p99/max latency, and
retransmissions (all nodes' transports, both ports).

    python bench/bench_loss.py [--calls 10000] [--seed 1] [--only sim|loopback] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan, start_cluster
from mercury_rt.logs import configure_logging
from mercury_rt.testing.lossy import run_lossy_calls
from tests.net.udp_relay import DOWN, UP, Hook, UdpRelay

LOSS, DUPLICATE, REORDER = 0.2, 0.05, 0.05
TIMEOUT = 30.0
HOME = ClusterPlan("home", (NodePlan("h1", "127.0.31.1", ("alice",)),))
AWAY = ClusterPlan("away", (NodePlan("w1", "127.0.32.1", ("carol",), priority=10),
                            NodePlan("w2", "127.0.32.2", ("carol",), priority=10),
                            NodePlan("w3", "127.0.32.3", ("dave",), priority=20)))
RELAY_HOSTS = {"w1": "127.0.33.1", "w2": "127.0.33.2", "w3": "127.0.33.3"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def report(name: str, calls: int, latencies: list[float], failures: Counter[int],
           runs: dict[str, int], retransmissions: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {"run": name, "calls": calls, "completed": calls - sum(failures.values()),
            "failed": dict(failures), "late": sum(t > TIMEOUT for t in latencies),
            "duplicate_executions": sum(n - 1 for n in runs.values() if n > 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "max_ms": round(max(latencies, default=0.0) * 1000, 2),
            "retransmissions": retransmissions, **extra}


def run_sim(calls: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    run = run_lossy_calls(seed, calls, rate=100.0, timeout=TIMEOUT)
    failures = Counter(code for code, _ in run.failures.values())
    failures.update({0: len(run.wrong_replies)} if run.wrong_replies else {})
    runs = {text: len(nodes) for text, nodes in run.executions.runs.items()}
    return report("sim", calls, list(run.latencies.values()), failures, runs,
                  run.retransmissions, {"seed": seed, "datagrams_dropped":
                                        run.datagrams_dropped,
                                        "wall_s": round(time.perf_counter() - started, 1)})


class LossyLink:
    """One relay's hooks: drop `LOSS` of the datagrams in each direction, duplicate
    `DUPLICATE` of the rest, and hold back `REORDER` of them until the next datagram to
    the same client in the same direction through this relay has gone (so they arrive
    after it)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.held: dict[tuple[str, tuple[str, int]], list[bytes]] = {}
        self.dropped = 0

    def hook(self, direction: str) -> Hook:
        def lossy(data: bytes, client: tuple[str, int]) -> list[bytes]:
            rng = self.rng
            if rng.random() < LOSS:
                self.dropped += 1
                return []
            out = [data, data] if rng.random() < DUPLICATE else [data]
            key = (direction, client)
            if rng.random() < REORDER and key not in self.held:
                self.held[key] = out
                return []
            return out + self.held.pop(key, [])
        return lossy


def count_runs(node: NodeRuntime, node_id: str, runs: dict[str, int]) -> None:
    """Replace the node's echo handler by one that also counts its runs per text."""
    registry = node.spec.registry
    registry.unregister("demo.echo")

    def echo(ctx: object, text: str) -> str:
        runs[text] += 1
        return text
    registry.register("demo.echo", echo)


async def run_loopback(calls: int, seed: int, concurrency: int) -> dict[str, Any]:
    rng = random.Random(seed)
    links = {n: LossyLink(rng) for n in RELAY_HOSTS}  # a relay's held datagram goes on
    relays = {n: UdpRelay(h, on_up=links[n].hook(UP), on_down=links[n].hook(DOWN))
              for n, h in RELAY_HOSTS.items()}  # through that relay only
    away_plan = replace(AWAY, nodes=tuple(replace(n, public=relays[n.node_id].address)
                                          for n in AWAY.nodes))
    home = await start_cluster(HOME, seed=seed)
    away = await start_cluster(away_plan, seed=seed + 100)
    runs: defaultdict[str, int] = defaultdict(int)
    try:
        for node_id, relay in relays.items():
            relay.upstream = away.nodes[node_id].addresses[0]
            count_runs(away.nodes[node_id], node_id, runs)
        h1, targets = home.nodes["h1"], [away.eid("carol"), away.eid("dave")]
        latencies, failures = await _call_all(h1, targets, calls, concurrency,
                                              lambda: [r.captured.clear()
                                                       for r in relays.values()])
        retransmissions = _retransmissions([h1, *away.nodes.values()])
    finally:
        await _stop(home, away, relays)
    return report("loopback", calls, latencies, failures, runs, retransmissions,
                  {"seed": seed, "concurrency": concurrency,
                   "datagrams_dropped": sum(link.dropped for link in links.values())})


async def _call_all(h1: NodeRuntime, targets: list[bytes], calls: int, concurrency: int,
                    housekeeping: Callable[[], object]) -> tuple[list[float], Counter[int]]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures: Counter[int] = Counter()
    queue = iter(range(calls))

    async def caller() -> None:
        for i in queue:
            text = f"call-{i}"
            started = loop.time()
            try:
                reply = await h1.call(targets[i % 2], 1, 1, dumps_typed(str, text),
                                      caller=b"alice", timeout=TIMEOUT)
                if loads_typed(str, reply) != text:
                    failures[0] += 1
            except NodeCallError as exc:
                failures[exc.raw_code] += 1
                if os.environ.get("BENCH_LOSS_VERBOSE"):
                    print(f"{text}: {exc.raw_code} {exc.message}", file=sys.stderr)
            latencies.append(loop.time() - started)
            if i % 500 == 0:
                housekeeping()  # the relays' captures are not needed here
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, failures


def _retransmissions(nodes: list[NodeRuntime]) -> int:
    return sum(endpoint.core.stats.retransmissions for node in nodes
               for endpoint in (node.inter, node.intra) if endpoint is not None)


async def _stop(home: LocalCluster, away: LocalCluster, relays: dict[str, UdpRelay]) -> None:
    for relay in relays.values():
        relay.close()
    await home.stop()
    await away.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="loopback: calls outstanding at once")
    parser.add_argument("--only", choices=("sim", "loopback"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("warning")
    results = []
    if args.only in (None, "sim"):
        results.append(run_sim(args.calls, args.seed))
    if args.only in (None, "loopback"):
        results.append(asyncio.run(run_loopback(args.calls, args.seed, args.concurrency)))
    for result in results:
        print(json.dumps(result) if args.json else
              "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
