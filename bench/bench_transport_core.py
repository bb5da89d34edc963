"""CPU per request/reply exchange in the sans-IO transport core: no sockets, no event loop.

Two `Transport`s in one process, a 100-byte request and its reply per exchange, the time
(`time.process_time`) split between the caller's work (call, reading the reply) and the
server's (reading the request, replying). Why beside bench_paths: on a loaded machine the
socket paths' figures move by tens of percent from run to run; this one isolates what a
change to the core (such as the C envelope codec) costs or saves, per side.

    python bench/bench_transport_core.py [--reps 3] [--exchanges 20000] TREE [TREE ...]

Each tree (e.g. a build with the C accelerator and a pure copy) runs in its own child
process with that tree first on sys.path, the trees interleaved per repetition; each
figure is the median over the repetitions.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time

SERVER, CLIENT = ("10.0.0.2", 2000), ("10.0.0.1", 1000)


def measure(exchanges: int) -> dict[str, float | str]:
    """µs per exchange on each side, and which codec the tree in use runs."""
    from mercury_rt.core.transport import (  # noqa: PLC0415
        ReplyReceived,
        RequestReceived,
        Transport,
        TransportConfig,
        fastwire,
    )

    client = Transport(TransportConfig(), rng=random.Random(1))
    server = Transport(TransportConfig(), rng=random.Random(2))
    client.validate_address(SERVER, 1.0)
    server.validate_address(CLIENT, 1.0)
    now, caller, serving, replies = 1.0, 0.0, 0.0, 0
    for _ in range(exchanges):
        now += 0.0001
        start = time.process_time()
        client.call(SERVER, b"x" * 100, now, timeout=5.0)
        requests = client.datagrams_to_send()
        sent = time.process_time()
        for data, _ in requests:
            server.receive_datagram(data, CLIENT, now)
        while (event := server.next_event()) is not None:
            if isinstance(event, RequestReceived):
                server.reply(CLIENT, event.request_id, event.payload, now)
        answers = server.datagrams_to_send()
        answered = time.process_time()
        for data, _ in answers:
            client.receive_datagram(data, SERVER, now)
        while (event := client.next_event()) is not None:
            replies += isinstance(event, ReplyReceived)
        caller += sent - start + time.process_time() - answered
        serving += answered - sent
    assert replies == exchanges, f"{replies} replies to {exchanges} calls"
    return {"codec": "C" if fastwire.native else "pure",
            "caller": caller / exchanges * 1e6, "server": serving / exchanges * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--exchanges", type=int, default=20000)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float | str]]] = {tree: [] for tree in args.trees}
    for _ in range(args.reps):
        for tree in args.trees:
            child = subprocess.run(
                [sys.executable, __file__, "_child", tree, str(args.exchanges)],
                capture_output=True, text=True, check=True)
            runs[tree].append(json.loads(child.stdout))
    print("tree                                 codec  caller us  server us  (per exchange)")
    for tree, results in runs.items():
        caller = statistics.median(float(r["caller"]) for r in results)
        server = statistics.median(float(r["server"]) for r in results)
        print(f"{tree:36s} {results[0]['codec']:5s} {caller:9.1f}  {server:9.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_child"]:
        sys.path.insert(0, sys.argv[2])
        measure(2000)  # warm-up
        print(json.dumps(measure(int(sys.argv[3]))))
    else:
        main()
