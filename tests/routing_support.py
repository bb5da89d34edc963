"""Test-only stand-ins for identity's ServerAddress and cluster ID, and a supersede check.

The identity area owns the real types. Routing reads only a few of their fields, and these
minimal dataclasses carry just those without the real types' checks, so a test can hand
routing what a valid cluster ID never holds (a negative weight, a forged version) and see
routing's own refusal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode, MercuryError

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
