"""The shapes routing needs from identity, as structural protocols.

Routing decides where to send a request; identity owns what a cluster ID is. To keep the
two areas independent, routing code depends only on these protocols. The identity area's
`mercury_rt.core.cluster_id.ServerAddress(host, port, priority, weight)` and its cluster-ID
type satisfy them structurally, so no adapter is needed at merge.

Endpoints are compared by (host, port) only: the same node listed twice with a different
priority or weight is still the same node to contact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointLike(Protocol):
    """Anything with a host and a UDP port: a place a request can be sent."""

    @property
    def host(self) -> IPAddress: ...

    @property
    def port(self) -> int: ...


class AddressLike(EndpointLike, Protocol):
    """A published inter-cluster server address, SRV-style (RFC 2782)."""

    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


class ClusterIdLike(Protocol):
    """What routing reads from a cluster ID: its version, server list and owner."""

    @property
    def version(self) -> int: ...

    @property
    def addresses(self) -> Sequence[AddressLike]: ...

    @property
    def master_hash(self) -> bytes: ...


SupersedeCheck = Callable[[ClusterIdLike, ClusterIdLike], bool]
"""(held, candidate) -> True if the candidate is properly signed by the same cluster and
newer; False if it is merely not newer (stale but harmless); raises a MercuryError if it
claims to be newer but fails verification (forged or from another cluster)."""

EndpointKey = tuple[IPAddress, int]


def endpoint_key(endpoint: EndpointLike) -> EndpointKey:
    """The identity of a contact point: host and port, ignoring priority and weight."""
    return (endpoint.host, endpoint.port)


def format_endpoint(endpoint: EndpointLike) -> str:
    """Human form for errors and logs: 192.0.2.1:7000 or [2001:db8::1]:7000."""
    if isinstance(endpoint.host, ipaddress.IPv6Address):
        return f"[{endpoint.host}]:{endpoint.port}"
    return f"{endpoint.host}:{endpoint.port}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A bare host and port, e.g. a redirect target (no priority or weight)."""

    host: IPAddress
    port: int
