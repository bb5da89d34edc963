"""Every request path beside raw asyncio echo, in one command: the issue-13 table.

Per path (raw asyncio echo; the transport; a node calling an entity on itself; on another
node of its cluster; on another cluster's node, transit-encrypted; and forwarded there to
the entity's only mirror) it measures throughput with 64 calls outstanding, p50/p99
latency with 1 outstanding, and CPU µs per request in each process (the calling process
by `time.process_time`, the serving one by /proc/<pid>/stat, over the measured window).
Serving side: one process holding the raw echo server, a transport echo endpoint and
the "away" cluster (b1 mirrors carol; dave lives only on b2, so a call to dave reaching
b1 is forwarded). Calling side: another process holding the "home" cluster (a1 calls
alice on itself and bob on a2, so those two paths have no separate server process: their
whole cost is in the caller's column). uvloop; the demo echo operation; 90-char text.

Each repetition runs every tree given (`--compare label=WORKTREE`, besides this one) in
turn, each on its own code (the child processes put that tree first on sys.path), so
before/after figures come from the same interleaved run; each figure is the median of the
repetitions and the ratios are against raw echo of the same tree and repetition.
With `--extras` it also measures grpc.aio unary echo the same way in the same run (an
insecure server in the serving process, generic handlers passing bytes through, a channel
in the calling process; the issue's target compares "node other cluster" with it) and
reports handler lookup among 10^6 entity-handler tuples (LMDB, built once under /tmp;
uncached, and through the Invoker's warm route cache) and memory per idle peer and per
cached EID (bench_memory.py).

    python bench/bench_paths.py [--seconds 2] [--reps 3] [--compare base=/work/wt/x]
                                [--extras] [--json] [--smoke] [--transport-only]

`--transport-only` measures raw echo and the transport alone (no clusters are started):
the quick A/B for work on the transport and its shell.
`--smoke` (about a second of measuring) only checks that every path runs and the table
prints; CI runs it. It is a benchmark, not a timed test: nothing is asserted on speed.
Wrap real measurements in `flock /tmp/mercury-suite.lock` (shared machines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
OTHER_CLUSTER, GRPC = "node other cluster (encrypted)", "grpc.aio unary"
PATHS = ("raw echo", "transport", "node local", "node same cluster", OTHER_CLUSTER,
         "node forwarded", GRPC)
GRPC_METHOD = "/mercury.bench.Echo/Echo"
IN_PROCESS = ("node local", "node same cluster")
ECHO_PAYLOAD = b"x" * 100
SERVER_HOST, CLIENT_HOST = "127.0.0.1", "127.0.0.2"


def _use_tree(tree: str) -> None:
    """Import mercury-rt from `tree` (the code a child measures)."""
    sys.path.insert(0, tree)


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----- serving process -----------------------------------------------------------------

async def serve(transport_only: bool = False, grpc_echo: bool = False) -> None:
    from mercury_rt.aio.endpoint import bind_socket, open_endpoint  # noqa: PLC0415
    from mercury_rt.aio.loop import tune_gc  # noqa: PLC0415
    from mercury_rt.localcluster import start_cluster  # noqa: PLC0415

    tune_gc()
    loop = asyncio.get_running_loop()

    class RawEcho(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.t.sendto(data, addr)

    raw, _ = await loop.create_datagram_endpoint(RawEcho, sock=bind_socket((SERVER_HOST, 0)))
    echo = await open_endpoint((SERVER_HOST, 0), on_request=lambda event: event.payload)
    ports = {"raw": raw.get_extra_info("sockname")[1], "transport": echo.local_address[1]}
    if grpc_echo:
        ports["grpc"] = await grpc_server()
    if not transport_only:
        away = await start_cluster(_plans()["away"])
        ports |= {"carol": away.eid("carol").hex(), "dave": away.eid("dave").hex()}
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


async def grpc_server() -> int:
    """A grpc.aio unary echo on SERVER_HOST (insecure; bytes in, the same bytes out: no
    protobuf, so what is measured is gRPC's own path): its port. It lives as long as the
    serving process."""
    import grpc  # noqa: PLC0415

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    service, method = GRPC_METHOD.strip("/").split("/")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(echo)}),))
    port = server.add_insecure_port(f"{SERVER_HOST}:0")
    await server.start()
    _KEEP.append(server)
    return port


_KEEP: list[Any] = []
"""The grpc server, referenced while the serving process runs."""


def _plans() -> dict[str, Any]:
    from mercury_rt.core.routing import RoutingConfig  # noqa: PLC0415
    from mercury_rt.localcluster import ClusterPlan, NodePlan  # noqa: PLC0415

    return {"away": ClusterPlan("away", (
        NodePlan("b1", "127.0.2.1", ("carol",), priority=10),
        NodePlan("b2", "127.0.2.2", ("dave",), priority=20)), routing=RoutingConfig()),
        "home": ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),
                                     NodePlan("a2", "127.0.1.2", ("bob",))))}


# ----- calling process -----------------------------------------------------------------

Call = Callable[[], Awaitable[Any]]


async def measure_path(call: Call, seconds: float, server_pid: int | None,
                       sequential: int) -> dict[str, float]:
    """64 outstanding for `seconds` (after a warm-up), then `sequential` calls one at a
    time: throughput, p50/p99, CPU per request per side in each stretch."""
    for _ in range(50):
        await call()
    done, stop = 0, False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await call()
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(64)]
    await asyncio.sleep(min(0.3, seconds))
    begin, cpu = done, _cpus(server_pid)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    calls, elapsed = done - begin, time.perf_counter() - start
    n64 = _per_call(cpu, _cpus(server_pid), calls)
    stop = True
    _, stuck = await asyncio.wait(workers, timeout=5.0)
    for task in stuck:  # a raw echo lost on the way: nothing will resolve it
        task.cancel()
    lat: list[float] = []
    cpu = _cpus(server_pid)
    for _ in range(sequential):
        t0 = time.perf_counter()
        await call()
        lat.append(time.perf_counter() - t0)
    n1 = _per_call(cpu, _cpus(server_pid), len(lat))
    lat.sort()
    return {"req_per_s": calls / elapsed, "cpu64_caller_us": n64[0], "cpu64_server_us": n64[1],
            "p50_us": lat[len(lat) // 2] * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
            "cpu1_caller_us": n1[0], "cpu1_server_us": n1[1]}


def _cpus(server_pid: int | None) -> tuple[float, float]:
    return time.process_time(), _cpu_of(server_pid) if server_pid is not None else 0.0


def _per_call(start: tuple[float, float], end: tuple[float, float],
              calls: int) -> tuple[float, float]:
    calls = max(calls, 1)
    return (end[0] - start[0]) / calls * 1e6, (end[1] - start[1]) / calls * 1e6


async def raw_caller(port: int) -> Call:
    """One raw datagram out, its echo back: the floor every path is compared with."""
    from mercury_rt.aio.endpoint import bind_socket  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[None]] = []

    class RawClient(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if waiting:
                future = waiting.pop(0)
                if not future.done():
                    future.set_result(None)

    udp, _ = await loop.create_datagram_endpoint(RawClient, sock=bind_socket((CLIENT_HOST, 0)))
    server = (SERVER_HOST, port)

    async def call() -> None:
        future = loop.create_future()
        waiting.append(future)
        udp.sendto(ECHO_PAYLOAD, server)
        await future

    return call


async def client(targets: dict[str, Any], seconds: float, server_pid: int,
                 sequential: int) -> dict[str, Any]:
    from carbon.types import dumps_typed  # noqa: PLC0415
    from mercury_rt.aio.endpoint import open_endpoint  # noqa: PLC0415
    from mercury_rt.aio.loop import tune_gc  # noqa: PLC0415
    from mercury_rt.localcluster import start_cluster  # noqa: PLC0415

    tune_gc()
    payload = dumps_typed(str, "x" * 90)
    grpc_path = {GRPC: (await grpc_caller(targets["grpc"], payload), server_pid)} \
        if "grpc" in targets else {}
    endpoint = await open_endpoint((CLIENT_HOST, 0))
    transport_server = (SERVER_HOST, targets["transport"])
    if "carol" not in targets:  # --transport-only
        out = {"raw echo": await measure_path(await raw_caller(targets["raw"]), seconds,
                                              server_pid, sequential),
               "transport": await measure_path(
                   lambda: endpoint.call(transport_server, ECHO_PAYLOAD), seconds,
                   server_pid, sequential)}
        out |= {name: await measure_path(call, seconds, pid, sequential)
                for name, (call, pid) in grpc_path.items()}
        endpoint.close()
        return out
    home = await start_cluster(_plans()["home"])
    a1 = home.nodes["a1"]

    def node_call(target: bytes) -> Call:
        return lambda: a1.call(target, 1, 1, payload, caller=b"alice")

    calls: dict[str, tuple[Call, int | None]] = {
        "raw echo": (await raw_caller(targets["raw"]), server_pid),
        "transport": (lambda: endpoint.call(transport_server, ECHO_PAYLOAD), server_pid),
        "node local": (node_call(home.eid("alice")), None),
        "node same cluster": (node_call(home.eid("bob")), None),
        "node other cluster (encrypted)": (node_call(bytes.fromhex(targets["carol"])),
                                           server_pid),
        "node forwarded": (node_call(bytes.fromhex(targets["dave"])), server_pid),
        **grpc_path,
    }
    out = {name: await measure_path(call, seconds, pid, sequential)
           for name, (call, pid) in calls.items()}
    endpoint.close()
    await home.stop()
    return out


async def grpc_caller(port: int, payload: bytes) -> Call:
    """A grpc.aio channel to the serving process's echo, one unary call per request."""
    import grpc  # noqa: PLC0415

    channel = grpc.aio.insecure_channel(f"{SERVER_HOST}:{port}")
    await channel.channel_ready()
    echo = channel.unary_unary(GRPC_METHOD)
    return lambda: echo(payload)


def one_run(tree: Path, seconds: float, sequential: int, transport_only: bool = False,
            grpc_echo: bool = False) -> dict[str, Any]:
    """One repetition on `tree`'s code: a serving and a calling process."""
    python = tree / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    server = subprocess.Popen([str(python), str(HERE), "_serve", str(tree),
                               *(["transport-only"] if transport_only else []),
                               *(["grpc"] if grpc_echo else [])],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        targets = server.stdout.readline().strip()
        out = subprocess.run([str(python), str(HERE), "_client", str(tree), targets,
                              str(seconds), str(server.pid), str(sequential)],
                             capture_output=True, text=True, check=True, timeout=900)
    finally:
        server.kill()
        server.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ----- extras: lookup among 10^6 tuples, memory ------------------------------------------

def extras(tree: Path) -> dict[str, float]:
    python = tree / ".venv" / "bin" / "python"
    out = subprocess.run([str(python if python.exists() else sys.executable), str(HERE),
                          "_extras", str(tree)], capture_output=True, text=True, check=True,
                         timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure_extras() -> dict[str, float]:
    import random  # noqa: PLC0415

    sys.path.insert(0, str(HERE.parent))
    import bench_entities as be  # noqa: PLC0415
    import bench_memory as bm  # noqa: PLC0415

    from carbon.protocol_spec import SpecRegistry  # noqa: PLC0415
    from lithium.dispatch import route  # noqa: PLC0415
    from tungsten.store import LmdbOptions, LmdbStore  # noqa: PLC0415

    entities, ops = 100_000, 10
    path = Path("/tmp/mercury-bench-lookup-1e6")
    path.mkdir(exist_ok=True)
    store = LmdbStore(path, LmdbOptions(map_size=4 << 30))
    if not (path / "built").exists():
        be.build(store, entities, ops)
        (path / "built").write_text(str(entities * ops))
    specs, rng = SpecRegistry([be.SPEC]), random.Random(1)
    calls = [be.call(rng.randrange(entities), rng.randrange(1, ops + 1)) for _ in range(20_000)]
    times: list[int] = []
    with store.reading() as view:
        for c in calls:
            t0 = time.perf_counter_ns()
            route(view, specs, c)
            times.append(time.perf_counter_ns() - t0)
    cached = _cached_lookups(store, specs, calls)
    store.close()
    times.sort()
    idle = bm.transport(2000, idle=True) + bm.transit(2000) + bm.node_tables(2000)
    return {"lookup_1e6_p50_us": times[len(times) // 2] / 1000,
            "lookup_1e6_p99_us": times[int(len(times) * 0.99)] / 1000,
            **cached,
            "idle_peer_bytes": idle, "cached_eid_bytes": bm.eids(2000, new_clusters=False)}


def _cached_lookups(store: Any, specs: Any, calls: list[Any]) -> dict[str, float]:
    """The same calls through the Invoker's route cache, once warm (a node's repeated
    calls); a tree without the cache reports nothing."""
    try:
        from lithium.dispatch import RouteCache  # noqa: PLC0415
    except ImportError:
        return {}
    routes, times = RouteCache(specs, max_entries=len(calls)), []
    snapshot = store.snapshot()
    try:
        for c in calls:
            routes.route(snapshot, c)
        for c in calls:
            t0 = time.perf_counter_ns()
            routes.route(snapshot, c)
            times.append(time.perf_counter_ns() - t0)
    finally:
        snapshot.close()
    times.sort()
    return {"lookup_cached_p50_us": times[len(times) // 2] / 1000,
            "lookup_cached_p99_us": times[int(len(times) * 0.99)] / 1000}


# ----- report --------------------------------------------------------------------------

def medians(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per path and figure, the median over repetitions; ratios against raw echo are
    taken per repetition first (raw echo moves with the machine's load)."""
    out: dict[str, dict[str, float]] = {}
    for name in [p for p in PATHS if p in runs[0]]:
        figures: dict[str, float] = {}
        for key in runs[0][name]:
            figures[key] = statistics.median(r[name][key] for r in runs)
        for key, raw_key in (("x_raw_req_per_s", "req_per_s"), ("x_raw_p50", "p50_us"),
                             ("x_raw_cpu64_caller", "cpu64_caller_us"),
                             ("x_raw_cpu64_server", "cpu64_server_us")):
            figures[key] = statistics.median(
                r[name][raw_key] / r["raw echo"][raw_key] if r["raw echo"][raw_key] else 0.0
                for r in runs)
        out[name] = figures
    return out


def print_table(label: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n[{label}] medians; x raw = ratio to raw asyncio echo in the same repetition")
    print(f"{'path':31s} {'req/s@64':>9s} {'x raw':>6s} {'p50@1':>7s} {'p99@1':>7s} "
          f"{'x raw':>6s} {'CPU us caller/server @64':>25s} {'@1':>13s}")
    for name, f in table.items():
        server64 = "  (in proc)" if name in IN_PROCESS else f"{f['cpu64_server_us']:11.1f}"
        server1 = "(in proc)" if name in IN_PROCESS else f"{f['cpu1_server_us']:6.1f}"
        print(f"{name:31s} {f['req_per_s']:9.0f} {f['x_raw_req_per_s']:6.3f} "
              f"{f['p50_us']:7.0f} {f['p99_us']:7.0f} {f['x_raw_p50']:6.2f} "
              f"{f['cpu64_caller_us']:13.1f} {server64} {f['cpu1_caller_us']:6.1f}/{server1}")


def print_ratios(tables: dict[str, dict[str, dict[str, float]]]) -> None:
    labels = list(tables)
    base = labels[0]
    for label in labels[1:]:
        print(f"\n{label} / {base} (medians): CPU per request @64 caller, server; "
              f"req/s@64; p50@1")
        for name in tables[base]:
            a, b = tables[base][name], tables[label][name]
            cells = [b[k] / a[k] if a[k] else 0.0 for k in
                     ("cpu64_caller_us", "cpu64_server_us", "req_per_s", "p50_us")]
            server = "   -  " if name in IN_PROCESS else f"{cells[1]:6.2f}"
            print(f"  {name:31s} {cells[0]:6.2f} {server} {cells[2]:6.2f} {cells[3]:6.2f}")


def print_grpc_ratios(table: dict[str, dict[str, float]]) -> None:
    """The issue's target (node other cluster >= 15x grpc.aio unary), per figure."""
    if GRPC not in table or OTHER_CLUSTER not in table:
        return
    node, grpc = table[OTHER_CLUSTER], table[GRPC]
    cells = [node["req_per_s"] / grpc["req_per_s"] if grpc["req_per_s"] else 0.0]
    cells += [grpc[k] / node[k] if node[k] else 0.0 for k in
              ("p50_us", "cpu64_caller_us", "cpu64_server_us")]
    print(f"{OTHER_CLUSTER} / {GRPC} (medians): req/s@64 {cells[0]:.2f}x; grpc's / node's "
          f"p50@1 {cells[1]:.2f}x, CPU per request @64 caller {cells[2]:.2f}x, "
          f"server {cells[3]:.2f}x")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1].startswith("_"):
        _use_tree(sys.argv[2])
        from mercury_rt.aio.loop import run  # noqa: PLC0415
        from mercury_rt.logs import configure_logging  # noqa: PLC0415

        configure_logging("warning")
        if sys.argv[1] == "_serve":
            run(serve("transport-only" in sys.argv[3:], "grpc" in sys.argv[3:]))
        elif sys.argv[1] == "_client":
            print(json.dumps(run(client(json.loads(sys.argv[3]), float(sys.argv[4]),
                                        int(sys.argv[5]), int(sys.argv[6])))))
        else:
            print(json.dumps(measure_extras()))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=2000,
                        help="calls made one at a time per path (p50/p99)")
    parser.add_argument("--compare", action="append", default=[],
                        help="label=WORKTREE measured in the same run, before this tree")
    parser.add_argument("--label", default="this", help="this tree's label")
    parser.add_argument("--extras", action="store_true",
                        help="also lookup among 10^6 tuples and memory per peer / EID")
    parser.add_argument("--smoke", action="store_true",
                        help="a second or so of measuring: checks the paths run")
    parser.add_argument("--transport-only", action="store_true",
                        help="only raw echo and the transport (no clusters started)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.reps, args.sequential = 0.1, 1, 20
    trees = [(spec.split("=", 1)[0], Path(spec.split("=", 1)[1]).resolve())
             for spec in args.compare] + [(args.label, HERE.parent.parent)]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
    for rep in range(args.reps):
        for label, tree in trees:
            runs[label].append(one_run(tree, args.seconds, args.sequential,
                                       args.transport_only, args.extras))
            print(f"repetition {rep + 1} {label} done", file=sys.stderr, flush=True)
    tables = {label: medians(r) for label, r in runs.items()}
    # the extras measure modules this tree's bench scripts import from here: this tree only
    more = {args.label: extras(HERE.parent.parent)} if args.extras else {}
    if args.json:
        print(json.dumps({"medians": tables, "extras": more, "runs": runs}))
        return
    for label, table in tables.items():
        print_table(label, table)
        if label in more:
            e = more[label]
            print(f"handler lookup among 10^6 tuples: p50 {e['lookup_1e6_p50_us']:.1f} us, "
                  f"p99 {e['lookup_1e6_p99_us']:.1f} us" + (
                      f" (through the route cache, warm: p50 {e['lookup_cached_p50_us']:.1f}"
                      f" us, p99 {e['lookup_cached_p99_us']:.1f} us)"
                      if "lookup_cached_p50_us" in e else "") + "; memory: idle peer "
                  f"{e['idle_peer_bytes']:.0f} B, cached EID {e['cached_eid_bytes']:.0f} B")
        print_grpc_ratios(table)
    if len(tables) > 1:
        print_ratios(tables)


if __name__ == "__main__":
    main()
