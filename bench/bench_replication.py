"""Mirrored commits on etcd beside the same handler on local LMDB (issue 12).

Starts its own 3-member etcd on 127.0.94.x (`--net`) (stopped by PID, data deleted), then runs the
counter handler of tests/replication/mirror_support.py through the real Invoker:
  * `lmdb`: state in the node's own LMDB (group commit with fsync), no replication;
  * `etcd`: ReplicatedElsewhere as a node runs it, i.e. one linearizable read of the entity
    at a revision (answered from the node's read cache when its head is unchanged), run,
    one CAS-guarded transaction with the request record;
sequentially (latency p50/p99) and with `--concurrency` callers on distinct entities
(throughput). Then kill -9 of the etcd leader under the concurrent load: the longest gap
between acknowledgements (the write pause) and acknowledged writes lost.

    flock /tmp/mercury-suite.lock .venv/bin/python bench/bench_replication.py
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carbon.principal import Principal
from carbon.types import dumps_typed
from lithium import IncomingCall, attach
from mercury_rt.aio.replicated_state import ReplicatedElsewhere
from mercury_rt.etcd_dev import (
    Member,
    leader_index,
    start_cluster,
    stop_cluster_members,
    stop_member,
)
from tests.replication.mirror_support import COUNTER, HANDLERS, Mirror
from tungsten.etcd_store import EtcdSettings

CALLER = Principal(b"\x01" + bytes(32), b"bench")


async def _call(mirror: Mirror, entity: bytes, replicated: bool) -> bool:
    op = COUNTER.named("add")
    loop = asyncio.get_running_loop()
    call = IncomingCall(entity, 1, op.number, op.kind, dumps_typed(int, 1), CALLER,
                        deadline=loop.time() + 30)
    elsewhere = ReplicatedElsewhere(mirror.etcd, mirror.store, entity, None,
                                      cache=mirror.watch) \
        if replicated else None
    return (await mirror.invoker.invoke(call, elsewhere)).ok


def _bind(mirror: Mirror, entities: list[bytes]) -> None:
    with mirror.store.writing() as txn:
        for entity in entities:
            attach(txn, entity, COUNTER, endpoint=1, specs=mirror.specs, handlers=HANDLERS)


async def latency(mirror: Mirror, replicated: bool, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        assert await _call(mirror, b"acct", replicated)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.99)] * 1e3


async def throughput(mirror: Mirror, replicated: bool, count: int, workers: int) -> float:
    per = count // workers

    async def worker(w: int) -> None:
        for _ in range(per):
            assert await _call(mirror, b"e%d" % w, replicated)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return per * workers / (time.perf_counter() - started)


async def leader_kill(mirror: Mirror, members: list[Member],
                      workers: int) -> tuple[float, int, int]:
    acks: list[float] = []
    failures = 0
    stop = asyncio.Event()

    async def worker(w: int) -> None:
        nonlocal failures
        while not stop.is_set():
            if await _call(mirror, b"e%d" % w, True):
                acks.append(time.monotonic())
            else:
                failures += 1

    tasks = [asyncio.ensure_future(worker(w)) for w in range(workers)]
    await asyncio.sleep(1.0)
    index = leader_index(members)
    assert index is not None
    killed = time.monotonic()
    await asyncio.to_thread(stop_member, members[index], signal.SIGKILL)
    await asyncio.sleep(4.0)
    stop.set()
    await asyncio.gather(*tasks)
    times = [killed, *sorted(t for t in acks if t >= killed)]
    pause = max(b - a for a, b in itertools.pairwise(times))
    return pause * 1e3, len(acks), failures


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-etcd-"))
    hosts = tuple(f"{args.net}.{i}" for i in (1, 2, 3))
    members = start_cluster(work / "etcd", hosts)
    try:
        settings = EtcdSettings(tuple((m.host, m.client_port) for m in members),
                                prefix=b"bench/", timeout=10.0)
        mirror = Mirror(work / "node", settings)
        _bind(mirror, [b"e%d" % w for w in range(args.concurrency)])
        await mirror.ready()
        try:
            for name, replicated in (("lmdb", False), ("etcd", True)):
                p50, p99 = await latency(mirror, replicated, args.count)
                rate = await throughput(mirror, replicated, args.count, args.concurrency)
                print(f"{name}: commit p50 {p50:.2f} ms, p99 {p99:.2f} ms (sequential, "
                      f"{args.count}); {rate:,.0f} commits/s with {args.concurrency} callers")
            pause, acked, failures = await leader_kill(mirror, members, args.concurrency)
            print(f"etcd leader kill -9 under {args.concurrency} callers: longest write pause "
                  f"{pause:.0f} ms; {acked} acknowledged, {failures} refused")
        finally:
            await mirror.close()
    finally:
        stop_cluster_members(members)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--net", default="127.0.94", help="etcd members on NET.1-3")
    asyncio.run(main(parser.parse_args()))
