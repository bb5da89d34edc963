"""Where a node is reached: an IP host and UDP port, and the server addresses a cluster ID lists.

An `Endpoint` is a place a request can be sent (a redirect target, the source of a
heartbeat). A `ServerAddress` is an endpoint a cluster ID publishes, with the SRV-style
priority and weight (RFC 2782) a caller orders its tries by. Endpoints are compared by
(host, port) only (`endpoint_key`): the same node listed twice with a different priority
or weight is still the same node to contact.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.errors import IdentityError
from mercury_rt.core.identity.fields import U16_MAX, expect_bytes, expect_int, expect_list

IPAddress = IPv4Address | IPv6Address
EndpointKey = tuple[IPAddress, int]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A host and a UDP port: a place a request can be sent."""

    host: IPAddress
    port: int


def endpoint_key(endpoint: Endpoint) -> EndpointKey:
    """The identity of a contact point: host and port, ignoring priority and weight."""
    return (endpoint.host, endpoint.port)


def format_endpoint(endpoint: Endpoint) -> str:
    """Human form for errors and logs: 192.0.2.1:7000 or [2001:db8::1]:7000."""
    if isinstance(endpoint.host, IPv6Address):
        return f"[{endpoint.host}]:{endpoint.port}"
    return f"{endpoint.host}:{endpoint.port}"


@dataclass(frozen=True, slots=True)
class ServerAddress(Endpoint):
    """One inter-cluster server node, ordered SRV-style (lower priority first, then weight)."""

    priority: int
    weight: int

    def __post_init__(self) -> None:
        if not isinstance(self.host, IPAddress):
            raise IdentityError("server host must be an IPv4Address or IPv6Address",
                                ErrorCode.BAD_SERVER_ADDRESS)
        for name, low in (("port", 1), ("priority", 0), ("weight", 0)):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= U16_MAX:
                raise IdentityError(f"server {name} {value!r} must be {low}..{U16_MAX}",
                                    ErrorCode.BAD_SERVER_ADDRESS)

    def to_value(self) -> list[Value]:
        """[host bytes (4 or 16), port, priority, weight]."""
        return [self.host.packed, self.port, self.priority, self.weight]

    @classmethod
    def from_value(cls, value: Value) -> ServerAddress:
        """Decode one address; the host length (4 or 16) selects IPv4 or IPv6."""
        items = expect_list(value, "server address", length=4)
        host_raw = expect_bytes(items[0], "server address host", max_size=16)
        if len(host_raw) not in (4, 16):
            raise IdentityError(f"server host is {len(host_raw)} bytes; IPv4 is 4, IPv6 16",
                                ErrorCode.BAD_SERVER_ADDRESS)
        host = IPv4Address(host_raw) if len(host_raw) == 4 else IPv6Address(host_raw)
        return cls(host, expect_int(items[1], "server port", 1, U16_MAX),
                   expect_int(items[2], "server priority", 0, U16_MAX),
                   expect_int(items[3], "server weight", 0, U16_MAX))

    @classmethod
    def parse(cls, text: str) -> ServerAddress:
        """Parse `host:port/priority/weight`; IPv6 hosts in brackets: `[::1]:7000/10/5`."""
        hostport, sep, rest = text.partition("/")
        priority_text, sep2, weight_text = rest.partition("/")
        if not sep or not sep2:
            raise IdentityError(f"address {text!r}: expected host:port/priority/weight, "
                                "e.g. 192.0.2.1:7000/10/5 or [2001:db8::1]:7000/10/5",
                                ErrorCode.BAD_SERVER_ADDRESS)
        host_text, _, port_text = hostport.rpartition(":")
        if host_text.startswith("[") and host_text.endswith("]"):
            host_text = host_text[1:-1]
        elif ":" in host_text:
            raise IdentityError(f"address {text!r}: put an IPv6 host in brackets, "
                                "e.g. [2001:db8::1]:7000/10/5", ErrorCode.BAD_SERVER_ADDRESS)
        try:
            host = ipaddress.ip_address(host_text)
            numbers = [int(port_text), int(priority_text), int(weight_text)]
        except ValueError as exc:
            raise IdentityError(f"address {text!r}: {exc}", ErrorCode.BAD_SERVER_ADDRESS) from None
        return cls(host, *numbers)

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.host.version == 6 else str(self.host)
        return f"{host}:{self.port}/{self.priority}/{self.weight}"
