"""Transport benchmark over loopback UDP, each side in its own process, uvloop by default.

Measures, side by side in one run:
  - raw asyncio DatagramProtocol echo (the baseline),
  - the mercury-rt transport on its bare-DatagramProtocol shell,
  - the transport driven through asyncio-dgram (to price that convenience),
for request/reply throughput with 64 outstanding, latency with 1 outstanding (p50/p99),
and 1 MiB request transfer rate at the default fragment size.

    python bench/bench_transport.py [--seconds 3] [--stock-loop] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mercury_rt.aio.endpoint import TransportEndpoint, bind_socket, open_endpoint
from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.core.transport import RequestReceived, Transport
from mercury_rt.logs import configure_logging

PAYLOAD = b"x" * 100
SERVER = ("127.0.0.1", 0)
CLIENT = ("127.0.0.2", 0)


# ----- servers (run in a child process) ----------------------------------------------------

class RawEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.t.sendto(data, addr)


async def serve(kind: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "raw":
        t, _ = await loop.create_datagram_endpoint(RawEcho, sock=bind_socket(SERVER))
        port = t.get_extra_info("sockname")[1]
    elif kind == "transport":
        ep = await open_endpoint(SERVER, on_request=_echo)
        port = ep.local_address[1]
    else:
        port = await _serve_dgram()
    print(port, flush=True)
    await asyncio.Event().wait()


def _echo(event: RequestReceived) -> bytes:
    return event.payload if len(event.payload) < 2000 else b""


async def _serve_dgram() -> int:
    import asyncio_dgram  # noqa: PLC0415

    stream = await asyncio_dgram.from_socket(bind_socket(SERVER))
    core = Transport(rng=random.Random())
    loop = asyncio.get_running_loop()

    async def pump() -> None:
        while True:
            timeout = core.get_timer()
            try:
                wait = None if timeout is None else max(timeout - loop.time(), 0)
                data, addr = await asyncio.wait_for(stream.recv(), wait)
                core.receive_datagram(data, addr[:2], loop.time())
            except TimeoutError:
                core.handle_timer(loop.time())
            while (event := core.next_event()) is not None:
                if isinstance(event, RequestReceived):
                    core.reply(event.peer, event.request_id, _echo(event), loop.time())
            for out, dest in core.datagrams_to_send():
                await stream.send(out, dest)

    asyncio.get_running_loop().create_task(pump())
    return int(stream.sockname[1])


# ----- clients (run in another child process) ----------------------------------------------

class RawClient(asyncio.DatagramProtocol):
    """Callback client keeping `window` requests outstanding; the strongest baseline."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server, self.count, self.waiter = server, 0, None
        self.latencies: list[float] = []

    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        elif self.window_mode:
            self.t.sendto(PAYLOAD, self.server)

    window_mode = False


async def raw_client(port: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    server = ("127.0.0.1", port)
    t, proto = await loop.create_datagram_endpoint(lambda: RawClient(server),
                                                   sock=bind_socket(CLIENT))
    lat = []
    for i in range(3000):
        proto.waiter = loop.create_future()
        start = time.perf_counter()
        t.sendto(PAYLOAD, server)
        await proto.waiter
        if i >= 500:
            lat.append(time.perf_counter() - start)
    proto.waiter = None
    proto.window_mode = True
    proto.count = 0
    for _ in range(64):
        t.sendto(PAYLOAD, server)
    await asyncio.sleep(0.5)
    begin, start = proto.count, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (proto.count - begin) / (time.perf_counter() - start)
    t.close()
    return {"req_per_s": rate, **_percentiles(lat)}


async def transport_client(port: int, seconds: float) -> dict[str, float]:
    ep = await open_endpoint(CLIENT)
    server = ("127.0.0.1", port)
    lat = []
    for i in range(3000):
        start = time.perf_counter()
        await ep.call(server, PAYLOAD)
        if i >= 500:
            lat.append(time.perf_counter() - start)
    done = 0
    stop = False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await ep.call(server, PAYLOAD)
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(64)]
    await asyncio.sleep(0.5)
    begin, start = done, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (done - begin) / (time.perf_counter() - start)
    stop = True
    await asyncio.gather(*workers)
    mib = await _mib_rate(ep, server)
    ep.close()
    return {"req_per_s": rate, **_percentiles(lat), "mib_MB_per_s": mib,
            "retransmissions": ep.core.stats.retransmissions}


async def _mib_rate(ep: TransportEndpoint, server: tuple[str, int]) -> float:
    blob = os.urandom(1 << 20)
    await ep.call(server, blob, timeout=30)
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        await ep.call(server, blob, timeout=30)
    return rounds * len(blob) / (time.perf_counter() - start) / 1e6


def _percentiles(lat: list[float]) -> dict[str, float]:
    lat.sort()
    return {"p50_us": statistics.median(lat) * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6}


# ----- orchestration -----------------------------------------------------------------------

def measure(server_kind: str, client_kind: str, seconds: float, stock: bool) -> dict[str, Any]:
    flags = ["--stock-loop"] if stock else []
    server = subprocess.Popen([sys.executable, __file__, "_serve", server_kind, *flags],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        out = subprocess.run([sys.executable, __file__, "_client", client_kind, port,
                              str(seconds), *flags], capture_output=True, text=True,
                             check=True, timeout=300)
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    finally:
        server.kill()
        server.wait()


def main() -> None:
    configure_logging("warning")
    if len(sys.argv) > 1 and sys.argv[1] in ("_serve", "_client"):
        tune_gc()  # as `mercury-rt node run` does; applied to raw and transport alike
        stock = "--stock-loop" in sys.argv
        if sys.argv[1] == "_serve":
            run(serve(sys.argv[2]), use_uvloop=not stock)
        else:
            fn = raw_client if sys.argv[2] == "raw" else transport_client
            result = run(fn(int(sys.argv[3]), float(sys.argv[4])), use_uvloop=not stock)
            print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--stock-loop", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    raw = measure("raw", "raw", args.seconds, args.stock_loop)
    tr = measure("transport", "transport", args.seconds, args.stock_loop)
    dg = measure("dgram", "transport", args.seconds, args.stock_loop)
    report = {"loop": "stock" if args.stock_loop else "uvloop", "raw_echo": raw,
              "transport": tr, "transport_server_on_asyncio_dgram": dg,
              "ratio_req_per_s": tr["req_per_s"] / raw["req_per_s"],
              "ratio_p50": tr["p50_us"] / raw["p50_us"]}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"loop: {report['loop']}")
    for name in ("raw_echo", "transport", "transport_server_on_asyncio_dgram"):
        r = report[name]
        extra = f"  1MiB {r['mib_MB_per_s']:.1f} MB/s" if "mib_MB_per_s" in r else ""
        print(f"{name:36s} {r['req_per_s']:9.0f} req/s (64 outstanding)  "
              f"p50 {r['p50_us']:6.0f} us  p99 {r['p99_us']:6.0f} us (1 outstanding){extra}")
    print(f"transport / raw echo: throughput {report['ratio_req_per_s']:.2f}x  "
          f"p50 latency {report['ratio_p50']:.2f}x")


if __name__ == "__main__":
    main()
