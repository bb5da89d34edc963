"""Transit micro-benchmark: the pure core (no sockets, no event loop), per algorithm id.

For each registered algorithm (1 X25519+ChaCha20-Poly1305, 2 X25519+AES-256-GCM,
3 ML-KEM-768+X25519 hybrid with ChaCha20-Poly1305) it measures, in CPU µs per operation
(`time.process_time_ns` over a batch, so time other processes take on a shared machine is
not counted):

  - establishing a session (the first datagram): caller `prepare`, node `open`, the gate's
    once-per-session proof check (`PeerProof.check`: two Ed25519 verifications), node
    `seal`, caller `finish`, summed per side;
  - one request in an established session: the same four steps;
  - once per node address and KEM: the key query (caller prepares it, node answers,
    caller verifies the certificate in `learn_key`);

and the datagram sizes (transport payload bytes) of the first datagram, its reply, a
session message and its reply, for a 100-byte payload each way. Rounds interleave the
algorithms (1, 2, 3, 1, 2, 3, ...) and each figure is the median over the rounds.

The ends are built as tests/transit_support.py builds them (two clusters' fixed keys,
as bench_gate.py reuses tests/gate_support.py), but with os.urandom as the node does.

    python bench/bench_transit.py [--rounds 3] [--batch 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mercury_rt.core.transit.algorithms import REGISTRY
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import (
    Finished,
    NeedKey,
    Prepared,
    TransitInitiator,
)
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.responder import Answered, Opened, TransitResponder
from tests.transit_support import (
    CALLER_ADDR,
    CALLER_CLUSTER_KEY,
    CALLER_HASH,
    NODE_ADDR,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    NOW,
    credential,
    lookup_for,
)

PAYLOAD = b"x" * 100
REPLY = b"y" * 100
T = TypeVar("T")
R = TypeVar("R")


class Ends:
    """One caller and one node of another cluster, with a clock that moves 1 ms a step
    (so the node's 2,000 first datagrams per second never ask for a retry token)."""

    def __init__(self) -> None:
        self.now = NOW
        keys = NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, os.urandom, NOW)
        self.node = TransitResponder(keys, NODE_HASH, token_secret=os.urandom(32),
                                     boot_ms=int(NOW * 1000) - 1000, random_bytes=os.urandom)
        self.lookup = lookup_for({NODE_HASH: NODE_CLUSTER_KEY})
        self.caller_lookup = lookup_for({CALLER_HASH: CALLER_CLUSTER_KEY})
        self.caller = TransitInitiator(credential(), TransitCertVerifier(self.lookup),
                                       os.urandom)

    def tick(self) -> float:
        self.now += 0.001
        return self.now


def timed(items: list[T], fn: Callable[[T], R]) -> tuple[list[R], float]:
    """fn over every item; the results and CPU µs per item."""
    start = time.process_time_ns()
    out = [fn(item) for item in items]
    return out, (time.process_time_ns() - start) / 1e3 / len(items)


def key_query(ends: Ends, alg: int, batch: int) -> dict[str, float]:
    """A key query's cost: caller prepare + learn_key (certificate verified), node answer.

    The verifier caches verified certificates, so each round uses a fresh verifier: the
    first learn_key for a node is the one that pays."""
    times = [ends.tick() for _ in range(batch)]
    steps, prep_us = timed(times, lambda now: ends.caller.prepare(NODE_ADDR, NODE_HASH, alg,
                                                                  PAYLOAD, now))
    queries = [s.query for s in steps if isinstance(s, NeedKey)]
    assert len(queries) == batch
    answers, node_us = timed(queries, lambda q: ends.node.open(q, CALLER_ADDR, ends.now))
    raw = [a.reply for a in answers if isinstance(a, Answered)]
    assert len(raw) == batch
    learners = [TransitInitiator(credential(), TransitCertVerifier(ends.lookup), os.urandom)
                for _ in range(batch)]
    pairs = list(zip(learners, raw, strict=True))
    _, learn_us = timed(pairs, lambda p: p[0].learn_key(NODE_ADDR, NODE_HASH, p[1], ends.now))
    ends.caller.learn_key(NODE_ADDR, NODE_HASH, raw[0], ends.now)
    return {"caller": prep_us + learn_us, "node": node_us, "query_bytes": len(queries[0]),
            "answer_bytes": len(raw[0])}


def first_datagrams(ends: Ends, alg: int, batch: int) -> dict[str, float]:
    """Establishing `batch` sessions, each step timed over the whole batch."""
    times = [ends.tick() for _ in range(batch)]
    steps, prepare_us = timed(times, lambda now: ends.caller.prepare(
        NODE_ADDR, NODE_HASH, alg, PAYLOAD, now))
    prepared = [s for s in steps if isinstance(s, Prepared)]
    assert len(prepared) == batch
    outcomes, open_us = timed(prepared, lambda p: ends.node.open(p.datagram, CALLER_ADDR,
                                                                 ends.tick()))
    opened = [o for o in outcomes if isinstance(o, Opened)]
    assert len(opened) == batch, outcomes[0]
    _, proof_us = timed(opened, lambda o: o.channel.session.proof.check(
        o.channel.session.proof.master_hash, ends.caller_lookup))
    assert all(o.channel.session.proof.proven for o in opened)
    replies, seal_us = timed(opened, lambda o: ends.node.seal(o.channel, REPLY))
    pairs = list(zip(prepared, replies, strict=True))
    results, finish_us = timed(pairs, lambda p: ends.caller.finish(p[0].pending, p[1],
                                                                   ends.tick()))
    assert all(isinstance(r, Finished) and r.reply == REPLY for r in results)
    return {"caller_prepare": prepare_us, "node_open": open_us, "node_proof": proof_us,
            "node_seal": seal_us, "caller_finish": finish_us,
            "caller": prepare_us + finish_us, "node": open_us + proof_us + seal_us,
            "request_bytes": len(prepared[0].datagram), "reply_bytes": len(replies[0])}


def in_session(ends: Ends, alg: int, batch: int) -> dict[str, float]:
    """`batch` requests in the session the last first datagram established."""
    times = [ends.tick() for _ in range(batch)]
    steps, prepare_us = timed(times, lambda now: ends.caller.prepare(
        NODE_ADDR, NODE_HASH, alg, PAYLOAD, now))
    prepared = [s for s in steps if isinstance(s, Prepared)]
    assert len(prepared) == batch
    outcomes, open_us = timed(prepared, lambda p: ends.node.open(p.datagram, CALLER_ADDR,
                                                                 ends.now))
    opened = [o for o in outcomes if isinstance(o, Opened)]
    assert len(opened) == batch and not opened[0].channel.first
    replies, seal_us = timed(opened, lambda o: ends.node.seal(o.channel, REPLY))
    pairs = list(zip(prepared, replies, strict=True))
    results, finish_us = timed(pairs, lambda p: ends.caller.finish(p[0].pending, p[1],
                                                                   ends.now))
    assert all(isinstance(r, Finished) and r.reply == REPLY for r in results)
    return {"caller_prepare": prepare_us, "node_open": open_us, "node_seal": seal_us,
            "caller_finish": finish_us, "caller": prepare_us + finish_us,
            "node": open_us + seal_us, "request_bytes": len(prepared[0].datagram),
            "reply_bytes": len(replies[0])}


def one_round(alg: int, batch: int) -> dict[str, dict[str, float]]:
    ends = Ends()
    keys = key_query(ends, alg, max(batch // 4, 20))
    first = first_datagrams(ends, alg, batch)
    session = in_session(ends, alg, batch * 5)
    return {"key_query": keys, "first": first, "session": session}


def median_of(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {part: {name: statistics.median(r[part][name] for r in rounds)
                   for name in rounds[0][part]} for part in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ids = sorted(REGISTRY)
    one_round(ids[0], 20)  # warm up imports, OpenSSL and the caches of each code path
    runs: dict[int, list[dict[str, dict[str, float]]]] = {i: [] for i in ids}
    for _ in range(args.rounds):
        for alg in ids:
            runs[alg].append(one_round(alg, args.batch))
    result = {alg: median_of(r) for alg, r in runs.items()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report(result)


def report(result: dict[int, dict[str, dict[str, float]]]) -> None:
    print("CPU µs per operation (median of rounds); sizes are transport payload bytes "
          f"for a {len(PAYLOAD)}-byte request and a {len(REPLY)}-byte reply")
    print(f"{'alg':>3} {'':38s} {'prepare':>8} {'open':>7} {'proof':>7} {'seal':>6} "
          f"{'finish':>7} {'caller':>7} {'node':>7} {'req B':>6} {'rep B':>6}")
    for alg, parts in result.items():
        name = REGISTRY[alg].name
        f, s, k = parts["first"], parts["session"], parts["key_query"]
        print(f"{alg:>3} {'first datagram (establishes)':38s} {f['caller_prepare']:8.1f} "
              f"{f['node_open']:7.1f} {f['node_proof']:7.1f} {f['node_seal']:6.1f} "
              f"{f['caller_finish']:7.1f} {f['caller']:7.1f} {f['node']:7.1f} "
              f"{f['request_bytes']:6.0f} {f['reply_bytes']:6.0f}")
        print(f"{'':>3} {'in-session request':38s} {s['caller_prepare']:8.1f} "
              f"{s['node_open']:7.1f} {'':>7} {s['node_seal']:6.1f} {s['caller_finish']:7.1f} "
              f"{s['caller']:7.1f} {s['node']:7.1f} {s['request_bytes']:6.0f} "
              f"{s['reply_bytes']:6.0f}")
        print(f"{'':>3} {'key query (once per node and KEM)':38s} {'':>8} {'':>7} {'':>7} "
              f"{'':>6} {'':>7} {k['caller']:7.1f} {k['node']:7.1f} "
              f"{k['query_bytes']:6.0f} {k['answer_bytes']:6.0f}")
        print(f"{'':>3}   ({name})")
    base = result[1]["first"]
    for alg in result:
        f = result[alg]["first"]
        print(f"alg {alg} establishment / alg 1: caller {f['caller'] / base['caller']:.2f}x  "
              f"node {f['node'] / base['node']:.2f}x   establishment / in-session: caller "
              f"{f['caller'] / result[alg]['session']['caller']:.1f}x  node "
              f"{f['node'] / result[alg]['session']['node']:.1f}x")


if __name__ == "__main__":
    main()
