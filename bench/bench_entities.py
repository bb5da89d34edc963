"""Benchmark: handler lookup with 1,000,000 entity-handler tuples, and invocations/second.

Run: /work/main/.venv/bin/python bench/bench_entities.py [--entities 100000] [--ops 10]
         [--calls 20000] [--concurrency 64] [--dir DIR]
Builds an LMDB store with entities x ops handler tuples (default 1,000,000) in a temp dir
(or reuses DIR if it was built before), then measures:
  - lookup: route() and full dispatch() (route + registry + payload type check) latency
  - invoke: calls/s of a trivial handler through Invoker, including its transaction,
    read-only and writing (group commit on: writes are acknowledged after fsync)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carbon.principal import Principal
from carbon.protocol_spec import Interface, OperationKind, SpecRegistry, request
from carbon.types import INT, NULL, dumps_typed
from lithium import HandlerRegistry, IncomingCall, Invoker
from lithium.api import attach
from lithium.dispatch import dispatch, route
from tungsten.store import LmdbOptions, LmdbStore

SPEC = Interface("/bench/trivial/v1",
                 ops=[request(n, f"op{n}", NULL if n > 1 else INT, INT) for n in range(1, 33)])
CALLER = Principal(b"\x01bench", b"caller")


def entity_id(i: int) -> bytes:
    return b"entity-%08d" % i


def build(store: LmdbStore, entities: int, ops: int) -> float:
    start = time.perf_counter()
    names = {f"op{n}": f"bench.op{n}" for n in range(1, ops + 1)}
    batch = 5000
    for first in range(0, entities, batch):
        with store.writing() as txn:
            for i in range(first, min(first + batch, entities)):
                attach(txn, entity_id(i), SPEC, endpoint=1, handlers=names)
    store.sync()
    return time.perf_counter() - start


def registry(ops: int) -> HandlerRegistry:
    handlers = HandlerRegistry()
    for n in range(1, ops + 1):
        handlers.register(f"bench.op{n}", lambda ctx, msg: 0)
    return handlers


def call(entity: int, op: int) -> IncomingCall:
    payload = dumps_typed(INT, 7) if op == 1 else dumps_typed(NULL, None)
    return IncomingCall(entity_id(entity), 1, op, OperationKind.REQUEST, payload, CALLER)


def percentiles(samples: list[int]) -> str:
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return f"p50 {p50:.1f} us  p99 {p99:.1f} us  mean {statistics.fmean(samples) / 1000:.1f} us"


def bench_lookup(store: LmdbStore, entities: int, ops: int, n: int) -> None:
    specs, handlers = SpecRegistry([SPEC]), registry(ops)
    rng = random.Random(1)
    calls = [call(rng.randrange(entities), rng.randrange(1, ops + 1)) for _ in range(n)]
    for label, fn in (("route   ", lambda v, c: route(v, specs, c)),
                      ("dispatch", lambda v, c: dispatch(v, specs, handlers, c))):
        times: list[int] = []
        with store.reading() as view:
            for c in calls:
                t0 = time.perf_counter_ns()
                fn(view, c)
                times.append(time.perf_counter_ns() - t0)
        print(f"lookup {label} ({n} random calls, one snapshot): {percentiles(times)}")
    times = []
    for c in calls[: n // 4]:
        t0 = time.perf_counter_ns()
        with store.reading() as view:
            route(view, specs, c)
        times.append(time.perf_counter_ns() - t0)
    print(f"lookup route incl. snapshot open/close: {percentiles(times)}")


async def run_calls(invoker: Invoker, calls: list[IncomingCall], concurrency: int) -> float:
    queue = iter(calls)

    async def worker() -> None:
        for c in queue:
            reply = await invoker.invoke(c)
            assert reply.ok, reply

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


def bench_invoke(store: LmdbStore, entities: int, n: int, concurrency: int) -> None:
    handlers = HandlerRegistry()

    @handlers.handler("bench.read")
    def read(ctx: Any, msg: int) -> int:
        found = ctx.state.get("/bench/data", ("k",))
        return 0 if found is None else 1

    @handlers.handler("bench.write")
    def write(ctx: Any, msg: int) -> int:
        ctx.state.put("/bench/data", ("k",), (msg,))
        return msg

    specs = SpecRegistry([SPEC])
    for variant in ("read", "write"):
        with store.writing() as txn:
            for i in range(min(entities, 1000)):
                attach(txn, entity_id(i), SPEC, endpoint=1, handlers={"op1": f"bench.{variant}"})
        invoker = Invoker(store, handlers, specs)
        rng = random.Random(2)
        calls = [call(rng.randrange(min(entities, 1000)), 1) for _ in range(n)]
        commits_before = store.commit_seq
        elapsed = asyncio.run(run_calls(invoker, calls, concurrency))
        stats = invoker.statistics()
        invoker.close()
        print(f"invoke {variant:5}: {n / elapsed:,.0f} calls/s ({n} calls, {concurrency} "
              f"concurrent; commits {store.commit_seq - commits_before}, "
              f"fsync batches {stats['syncs']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, as the node uses
        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dir or Path(tmp)
        store = LmdbStore(path, LmdbOptions(map_size=4 << 30))
        tuples = args.entities * args.ops
        if not (path / "built").exists():
            took = build(store, args.entities, args.ops)
            (path / "built").write_text(str(tuples))
            print(f"built {tuples:,} entity-handler tuples for {args.entities:,} entities in "
                  f"{took:.1f} s; data file {os.path.getsize(path / 'data.mdb') / 2**20:.0f} MiB")
        print(f"python {sys.version.split()[0]}, loop {loop_name}, lmdb group commit on")
        bench_lookup(store, args.entities, args.ops, n=20_000)
        bench_invoke(store, args.entities, args.calls, args.concurrency)
        store.close()


if __name__ == "__main__":
    main()
