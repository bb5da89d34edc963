"""Test-only stand-ins for identity's ServerAddress and cluster ID, and a supersede check.

The identity area owns the real types; routing codes against structural protocols, and
these minimal dataclasses satisfy them the same way the real ones will.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode, MercuryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Addr:
    """Same fields as mercury_rt.core.cluster_id.ServerAddress."""

    host: IPAddress
    port: int
    priority: int = 10
    weight: int = 10


def addr(text: str, port: int = 7000, priority: int = 10, weight: int = 10) -> Addr:
    """Addr from a textual IP address."""
    return Addr(ipaddress.ip_address(text), port, priority, weight)


@dataclass(frozen=True, slots=True)
class FakeClusterId:
    """A cluster ID with what routing reads, plus a `genuine` flag standing for its signature."""

    version: int
    addresses: tuple[Addr, ...]
    master_hash: bytes = b"\x01cluster-a"
    genuine: bool = field(default=True)


def supersedes(held: FakeClusterId, candidate: FakeClusterId) -> bool:
    """The rule identity implements: same cluster, properly signed, strictly newer."""
    if candidate.version <= held.version:
        return False
    if not candidate.genuine or candidate.master_hash != held.master_hash:
        raise MercuryError("cluster ID signature does not verify", ErrorCode.CLUSTER_ID_REJECTED)
    return True
