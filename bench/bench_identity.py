"""Identity benchmarks: cached vs cold EID verification, and encoded sizes.

Run: /work/main/.venv/bin/python bench/bench_identity.py
Cold costs are reported next to the raw Ed25519 verify cost times the number of
signature checks each path needs, so the overhead of our code is visible.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mercury_rt.core.identity import (
    AcceptedAlgorithm,
    EidVerifier,
    KeyRing,
    MintOptions,
    OperationHint,
    Purpose,
    ServerAddress,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
    sign,
    verify,
)

MASTER = private_key_from_bytes(bytes([1]) * 32)
CLUSTER = private_key_from_bytes(bytes([2]) * 32)
ADDRESSES = [ServerAddress(IPv4Address("192.0.2.10"), 7400, 10, 60),
             ServerAddress(IPv4Address("192.0.2.11"), 7400, 10, 40),
             ServerAddress(IPv6Address("2001:db8::7"), 7401, 20, 0)]


def per_op_us(func: Callable[[], object], number: int, repeat: int = 9) -> float:
    """Best of `repeat` runs of the mean time per call, in microseconds (the minimum is
    the least disturbed by other processes on a shared 2-core machine)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        runs.append((time.perf_counter() - start) / number * 1e6)
    return min(runs)


def main() -> None:
    cid = issue_cluster_id(MASTER, CLUSTER, ADDRESSES)
    full = mint_eid(CLUSTER, cid, b"alice").encode()
    full_hints = mint_eid(CLUSTER, cid, b"alice", hints=[OperationHint(0, 1, 2, 12)],
                          algorithms=[AcceptedAlgorithm(1, 2)]).encode()
    hashed = mint_eid(CLUSTER, cid, b"alice",
                      options=MintOptions(full_keys=False, include_hints=False)).encode()

    public = CLUSTER.public_key()
    signature = sign(CLUSTER, Purpose.EID, b"x" * 200)
    ed_verify = per_op_us(lambda: verify(public, Purpose.EID, b"x" * 200, signature), 300)

    cached = EidVerifier()
    cached.verify(full)
    hit = per_op_us(lambda: cached.verify(full), 100_000)

    cold_full = per_op_us(lambda: EidVerifier().verify(full), 200)
    ring = KeyRing()
    ring.learn_cluster_id(cid)
    warm_keys_full = per_op_us(lambda: EidVerifier(ring, cache_size=0).verify(full), 300)
    warm_keys_hashed = per_op_us(lambda: EidVerifier(ring, cache_size=0).verify(hashed), 300)

    print(f"Ed25519 verify (raw, 200 B)                          {ed_verify:8.1f} us")
    print(f"cached verification (same bytes again)               {hit:8.2f} us   target <= 5")
    print(f"cold, full keys, empty key ring (2 verifies)         {cold_full:8.1f} us   "
          f"= {cold_full / ed_verify:.2f} x raw verify")
    print(f"cold, full keys, key ring warm (1 verify)            {warm_keys_full:8.1f} us   "
          f"= {warm_keys_full / ed_verify:.2f} x raw verify")
    print(f"cold, hashes only, key ring warm (1 verify)          {warm_keys_hashed:8.1f} us   "
          f"= {warm_keys_hashed / ed_verify:.2f} x raw verify")
    print(f"size: hashes-only EID, 3 addresses, no hints/cert    {len(hashed):5d} bytes")
    print(f"size: full-keys EID, 3 addresses, cert               {len(full):5d} bytes")
    print(f"size: full-keys EID, 3 addresses, cert, 1 hint + alg {len(full_hints):5d} bytes")
    print(f"size: standalone cluster ID (full, signed)           {len(cid.encode()):5d} bytes")


if __name__ == "__main__":
    main()
