"""Membership benchmarks: what one heartbeat costs to send and to receive, per peer.

Run: /work/main/.venv/bin/python bench/bench_membership.py
A node sends one heartbeat per interval (sign once, seal once, send to every peer) and
receives one from every peer (open, decode, verify: one Ed25519 verification once the
peer's certificate is cached). The figures give the CPU share membership takes for a
cluster of N nodes at interval T: about N x receive / T.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import (
    EidVerifier,
    ServerAddress,
    issue_cluster_id,
    private_key_from_bytes,
)
from mercury_rt.core.membership import MembershipConfig, NodeIdentity, encode_heartbeat_message
from mercury_rt.core.node import (
    IntraSeal,
    MembershipSettings,
    NodeCore,
    NodeMembership,
    NodeState,
    derive_intra_key,
)
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from policy.load import parse_policy

MASTER = private_key_from_bytes(bytes([1]) * 32)
CLUSTER = private_key_from_bytes(bytes([2]) * 32)
POLICY = parse_policy("version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n",
                      "bench.yaml")
CID = issue_cluster_id(MASTER, CLUSTER, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10),
                                         ServerAddress(ip_address("192.0.2.2"), 7000, 10, 10)])


def node(name: bytes, inter: str) -> NodeMembership:
    nodes = {n: NodeInfo(n, True, None) for n in (b"a", b"b")}
    state = NodeState(CID, POLICY, ClusterView(name, 1, nodes, {}, {}),
                      {b"a": ("10.0.0.1", 7100), b"b": ("10.0.0.2", 7100)})
    core = NodeCore(state, routing=RoutingConfig(), verifier=EidVerifier(),
                    spent=MemorySpentStore(10), seal=IntraSeal(derive_intra_key(CLUSTER),
                                                               random.randbytes(4)))
    ident = NodeIdentity.issue(name, Ed25519PrivateKey.generate(), CLUSTER, CID.master_hash)
    return NodeMembership(core, ident, CLUSTER, inter_address=(inter, 7000),
                          settings=MembershipSettings(MembershipConfig()), incarnation=1, now=0.0)


def per_op_us(func: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Best of `repeat` runs of the mean time per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        runs.append((time.perf_counter() - start) / number * 1e6)
    return min(runs)


def main() -> None:
    a, b = node(b"a", "192.0.2.1"), node(b"b", "192.0.2.2")
    seq = iter(range(1, 10**9))

    def send() -> object:
        return a.heartbeat()

    def receive() -> object:
        beat = a.identity.heartbeat(CID.master_hash, 1, next(seq), a.own_public)
        sealed = a.core.seal.seal(encode_heartbeat_message(beat.encode()))
        return b.receive(sealed, ("10.0.0.1", 7100), 1.0)

    def build_only() -> object:
        beat = a.identity.heartbeat(CID.master_hash, 1, next(seq), a.own_public)
        return a.core.seal.seal(encode_heartbeat_message(beat.encode()))

    send_us = per_op_us(send, 300)
    build_us = per_op_us(build_only, 300)
    receive_us = per_op_us(receive, 300) - build_us
    print(f"heartbeat send (sign + seal, one peer): {send_us:8.1f} us")
    print(f"heartbeat receive (open + decode + verify + apply): {receive_us:8.1f} us")
    for peers, interval in ((8, 1.0), (64, 1.0), (255, 1.0)):
        share = (send_us + peers * receive_us) / (interval * 1e6) * 100
        print(f"  cluster of {peers + 1:3d} nodes at {interval:.0f} s: {share:5.2f} % of one core")


if __name__ == "__main__":
    main()
