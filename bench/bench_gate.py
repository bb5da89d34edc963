"""Gate cost per request (warm caches) and bad-stamp rejections per second, beside raw UDP echo.

Run: /work/main/.venv/bin/python bench/bench_gate.py
The raw echo figure (blocking UDP echo over 127.0.0.1, server in another process, one
request outstanding) is measured in the same run so the gate's cost can be read as a
fraction of the cheapest possible round trip on this machine.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carbon.principal import Principal
from mercury_rt.core.gate import (
    GateRequest,
    GateState,
    MemorySpentStore,
    PaymentStamp,
    RemoteSource,
    SignatureCache,
    VerifiedSource,
    evaluate,
    hashcash_payment,
    issue_certificate,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from policy.access import Target
from policy.load import load_policy
from tests.gate_support import LOCAL, NOW, CountingVerifier, SessionOf, cluster_key, fake_eid

POLICY = load_policy(Path(__file__).resolve().parents[1] / "conf" / "policy.example.yaml")
PARTNER_HASH = next(iter(POLICY.clusters))  # "partner" in the example policy
CALLER = Principal(PARTNER_HASH, b"shop-frontend")
ECHO_ROUNDS = 20_000


class CachedVerifier:
    """What identity provides: verified EIDs cached by their bytes (warm in this bench)."""

    def __init__(self) -> None:
        self.inner = CountingVerifier(clusters={PARTNER_HASH})
        self.cache: dict[bytes, VerifiedSource] = {}

    def verify(self, eid: bytes) -> VerifiedSource:
        hit = self.cache.get(eid)
        if hit is None:
            hit = self.cache[eid] = self.inner.verify(eid)
        return hit

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> object:
        return self.inner.cluster_key(master_hash, key_hash)


def p50_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def bench_allowed(target: Target, bits: int, n: int) -> float:
    """p50 µs of a full allowed decision (remote source, cached EID, fresh stamps if costed)."""
    verifier = CachedVerifier()
    state = GateState(LOCAL, verifier, MemorySpentStore(n + 10))
    eid = fake_eid(CALLER)
    tag = target_tag(Principal(LOCAL, target.entity))
    requests = []
    for i in range(n):
        digest = request_digest(i.to_bytes(4, "big"))
        payments: tuple[PaymentStamp, ...] = ()
        if bits:
            resource = stamp_resource(tag, target.endpoint, target.operation, digest)
            payments = (hashcash_payment(mint_stamp(resource, bits, NOW, os.urandom(12))),)
        requests.append(GateRequest(target, RemoteSource(eid, SessionOf(PARTNER_HASH)), digest,
                                    payments))
    verifier.verify(eid)  # warm
    samples = []
    for req in requests:
        t0 = time.perf_counter_ns()
        decision = evaluate(req, POLICY, state, NOW)
        samples.append(time.perf_counter_ns() - t0)
        assert decision.__class__.__name__ == "Allow", decision
    return p50_us(samples)


def bench_delegated(n: int) -> float:
    """p50 µs of an allowed request carrying one certificate (EID and signature caches warm)."""
    verifier = CachedVerifier()
    state = GateState(LOCAL, verifier, MemorySpentStore(), signatures=SignatureCache())
    agent = Principal(PARTNER_HASH, b"agent")
    cert = issue_certificate(agent, fake_eid(CALLER), int(NOW) + 3600, cluster_key(PARTNER_HASH))
    source = RemoteSource(fake_eid(agent), SessionOf(PARTNER_HASH))
    req = GateRequest(Target(b"billing", 2, 0), source, request_digest(b""), delegation=(cert,))
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        decision = evaluate(req, POLICY, state, NOW)
        samples.append(time.perf_counter_ns() - t0)
        assert decision.__class__.__name__ == "Allow", decision
    return p50_us(samples)


def bench_bad_stamps(n: int) -> tuple[float, int]:
    """Rejections per second for requests whose stamps are missing, junk or too weak."""
    verifier = CountingVerifier(clusters={PARTNER_HASH})
    state = GateState(LOCAL, verifier, MemorySpentStore())
    target = Target(b"billing", 1, 3)
    digest = request_digest(b"x")
    tag = target_tag(Principal(LOCAL, target.entity))
    good = mint_stamp(stamp_resource(tag, 1, 3, digest), 10, NOW, os.urandom(12))
    bad = [(), (PaymentStamp(1, b"garbage"),),
           (PaymentStamp(1, good.replace(":10:", ":9:", 1).encode()),),
           (PaymentStamp(1, (good[:-2] + "zz").encode()),)]
    pool = [GateRequest(target, RemoteSource(fake_eid(CALLER), SessionOf(PARTNER_HASH)), digest, p)
            for p in bad]
    t0 = time.perf_counter()
    for i in range(n):
        evaluate(pool[i & 3], POLICY, state, NOW)
    elapsed = time.perf_counter() - t0
    return n / elapsed, verifier.calls


def _echo_server(port_out: multiprocessing.connection.Connection) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port_out.send(sock.getsockname()[1])
    while True:
        data, addr = sock.recvfrom(2048)
        if data == b"stop":
            return
        sock.sendto(data, addr)


def bench_raw_echo() -> tuple[float, float]:
    """(p50 µs, requests/s) of a blocking 100-byte UDP echo, one outstanding."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_echo_server, args=(child,), daemon=True)
    server.start()
    port = parent.recv()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    payload = bytes(100)
    samples = []
    t0 = time.perf_counter()
    for _ in range(ECHO_ROUNDS):
        t = time.perf_counter_ns()
        sock.sendto(payload, ("127.0.0.1", port))
        sock.recvfrom(2048)
        samples.append(time.perf_counter_ns() - t)
    rate = ECHO_ROUNDS / (time.perf_counter() - t0)
    sock.sendto(b"stop", ("127.0.0.1", port))
    server.join(2)
    return p50_us(samples), rate


def main() -> None:
    echo_p50, echo_rate = bench_raw_echo()
    free = bench_allowed(Target(b"billing", 2, 0), 0, 50_000)
    costed = bench_allowed(Target(b"billing", 1, 3), 10, 3_000)
    delegated = bench_delegated(20_000)
    rate, calls = bench_bad_stamps(200_000)
    print(f"raw UDP echo (blocking, 127.0.0.1, N=1): p50 {echo_p50:.1f} µs, "
          f"{echo_rate:,.0f} req/s")
    print(f"gate, allowed, no cost, remote source (cached EID): p50 {free:.2f} µs "
          f"({100 * free / echo_p50:.1f}% of an echo round trip)")
    print(f"gate, allowed, 10-bit stamp checked + spent, remote source: p50 {costed:.2f} µs "
          f"({100 * costed / echo_p50:.1f}% of an echo round trip)")
    print(f"gate, allowed, one delegation certificate (signature cache warm): p50 "
          f"{delegated:.2f} µs ({100 * delegated / echo_p50:.1f}% of an echo round trip)")
    print(f"bad-stamp rejections: {rate:,.0f} /s ({1e6 / rate:.2f} µs each), "
          f"signature verifications: {calls}")


if __name__ == "__main__":
    main()
