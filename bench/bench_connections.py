"""Connection benchmark: requests per second on an open connection beside plain calls to
the same entity, in the same run.

Two clusters in one process on loopback (alice on a1 calls carol on b1, another cluster,
in transit sessions). Rounds alternate between plain calls (carol's published demo echo,
endpoint 1 operation 1) and requests on one open connection (the TALK interface carol
offers on it, operation `say`, same text), each with `--outstanding` calls in flight, so
load from other processes falls on both alike. Prints the median of each and the ratio.

    python bench/bench_connections.py [--seconds 2] [--rounds 5] [--outstanding 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from carbon.types import dumps_typed
from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from mercury_rt.logs import configure_logging
from tests.net.connection_apps import Runs, serve_chat

HOME = ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),))
AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.2.1", ("carol",)),))
PAYLOAD = dumps_typed(str, "x" * 90)


async def rate(call: Callable[[], Awaitable[bytes]], seconds: float, outstanding: int) -> float:
    """Completed calls per second with `outstanding` in flight for `seconds`."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(outstanding)))
    return done / (time.perf_counter() - start)


async def main(seconds: float, rounds: int, outstanding: int) -> None:
    configure_logging("warning")
    tune_gc()
    home = await start_cluster(HOME, TransportConfig())
    away = await start_cluster(AWAY, TransportConfig())
    try:
        a1, carol = home.nodes["a1"], away.eid("carol")
        serve_chat(away.nodes["b1"], "b1", b"carol", Runs(record=False))
        conn = await a1.connections.open(carol, 2, 1, dumps_typed(str, "bench"),
                                         caller=b"alice")

        async def plain() -> bytes:
            return await a1.call(carol, 1, 1, PAYLOAD, caller=b"alice")

        async def on_connection() -> bytes:
            return await conn.request(1, 1, PAYLOAD)

        await rate(plain, 0.3, outstanding)  # warm both paths: sessions, caches
        await rate(on_connection, 0.3, outstanding)
        plains, conns = [], []
        for _ in range(rounds):
            plains.append(await rate(plain, seconds, outstanding))
            conns.append(await rate(on_connection, seconds, outstanding))
        p, c = statistics.median(plains), statistics.median(conns)
        print(f"plain calls to carol      {p:9.0f} req/s  (rounds: "
              f"{', '.join(f'{x:.0f}' for x in plains)})")
        print(f"requests on a connection  {c:9.0f} req/s  (rounds: "
              f"{', '.join(f'{x:.0f}' for x in conns)})")
        print(f"connection / plain        {c / p:9.2f}   ({outstanding} outstanding, "
              f"{rounds} interleaved rounds of {seconds} s)")
        print(f"connection counters       {conn.counters}")
        await conn.close()
    finally:
        await home.stop()
        await away.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outstanding", type=int, default=32)
    args = parser.parse_args()
    run(main(args.seconds, args.rounds, args.outstanding))
