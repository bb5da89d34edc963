"""Test-only stand-ins for identity's ServerAddress and cluster ID, a supersede check, and
the cluster view the routing-decision tests share.

The identity area owns the real types. Routing reads only a few of their fields, and these
minimal dataclasses carry just those without the real types' checks, so a test can hand
routing what a valid cluster ID never holds (a negative weight, a forged version) and see
routing's own refusal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.routing import ClusterView, ForwardingRecord, NodeInfo, Path, RequestSummary

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FakeServerAddress:
    """Same fields as mercury_rt.core.identity.ServerAddress, without its range checks."""

    host: IPAddress
    port: int
    priority: int = 10
    weight: int = 10


def addr(text: str, port: int = 7000, priority: int = 10, weight: int = 10) -> FakeServerAddress:
    """FakeServerAddress from a textual IP address."""
    return FakeServerAddress(ipaddress.ip_address(text), port, priority, weight)


@dataclass(frozen=True, slots=True)
class FakeClusterId:
    """A cluster ID with what routing reads, plus a `genuine` flag standing for its signature."""

    version: int
    addresses: tuple[FakeServerAddress, ...]
    master_hash: bytes = b"\x01cluster-a"
    genuine: bool = field(default=True)


def supersedes(held: FakeClusterId, candidate: FakeClusterId) -> bool:
    """The rule identity implements: same cluster, properly signed, strictly newer."""
    if candidate.version <= held.version:
        return False
    if not candidate.genuine or candidate.master_hash != held.master_hash:
        raise MercuryError("cluster ID signature does not verify", ErrorCode.CLUSTER_ID_REJECTED)
    return True


# ----- decisions: a three-node view from node A (B has a public address, C is internal)

A, B, C = b"node-a", b"node-b", b"node-c"
PUB_B = addr("192.0.2.2")
RECORD = ForwardingRecord(b"\x01c", b"gone", b"new-eid", 5, b"sig")


def view(alive_b: bool = True, public_b: bool = True, alive_c: bool = True) -> ClusterView:
    """A's view: who mirrors here/there/internal/both, and `gone` moved away (RECORD)."""
    return ClusterView(
        local_node=A,
        cluster_id_version=3,
        nodes={A: NodeInfo(A, True, addr("192.0.2.1")),
               B: NodeInfo(B, alive_b, PUB_B if public_b else None),
               C: NodeInfo(C, alive_c, None)},
        mirrors={b"here": frozenset({A, B}), b"there": frozenset({B}),
                 b"internal": frozenset({C}), b"both": frozenset({B, C})},
        moved={b"gone": RECORD},
    )


def req(entity: bytes, version: int | None = 3, via: Path = Path.INTER_CLUSTER,
        hops: int = 0, rid: bytes = b"r1") -> RequestSummary:
    """A request for `entity` as the decision sees it."""
    return RequestSummary(entity, rid, version, via, hops)
