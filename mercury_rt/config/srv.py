"""The cluster's server list from DNS SRV records (`_mercury._udp.<domain>`), with dnspython.

A cluster ID lists its public nodes SRV-style (host, port, priority, weight: RFC 2782), so an
operator who already publishes the nodes in DNS need not type them again:
`mercury-rt cluster set-addresses --from-srv example.net` reads `_mercury._udp.example.net`
and each target's A and AAAA records, and signs that list. Callers never look DNS up: the
signed cluster ID stays the only source of addresses they trust (DNS answers are not
authenticated; the operator checks the printed list before copying it to the nodes).

Shell-side and blocking (a CLI verb's one lookup); bounded: at most MAX_ADDRESSES records
and addresses, each query within `lifetime` seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import IdentityError, ServerAddress
from mercury_rt.core.identity.cluster_id import MAX_ADDRESSES

SRV_PREFIX = "_mercury._udp."
LIFETIME = 5.0


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer, typed (dnspython's rdata classes are not, to mypy)."""

    priority: int
    weight: int
    port: int
    target: dns.name.Name


def srv_name(name: str) -> str:
    """`name` as an SRV owner name: `_mercury._udp.` is put in front of a bare domain."""
    return name if name.startswith("_") else SRV_PREFIX + name


def lookup_srv_addresses(name: str, resolver: dns.resolver.Resolver | None = None,
                         lifetime: float = LIFETIME) -> list[ServerAddress]:
    """The server list published at `name` (see srv_name), lowest priority first; an
    IdentityError (328 SRV_LOOKUP_FAILED) says what DNS answered instead."""
    resolver = resolver or dns.resolver.Resolver()
    owner = srv_name(name)
    records = sorted((SrvRecord(r.priority, r.weight, r.port, r.target)
                      for r in _query(resolver, owner, "SRV", lifetime) if isinstance(r, SRV)),
                     key=lambda r: (r.priority, -r.weight, str(r.target), r.port))
    if any(r.target == dns.name.root for r in records):
        raise _failed(f"{owner}: the SRV record says the service is not offered here (\".\")")
    if len(records) > MAX_ADDRESSES:
        raise _failed(f"{owner}: {len(records)} SRV records; a cluster ID lists at most "
                      f"{MAX_ADDRESSES}")
    found: dict[tuple[str, int], ServerAddress] = {}
    for record in records:
        for host in _hosts(resolver, record.target, lifetime):
            address = ServerAddress(host, record.port, record.priority, record.weight)
            found.setdefault((str(host), record.port), address)
    if len(found) > MAX_ADDRESSES:
        raise _failed(f"{owner}: its targets have {len(found)} addresses; a cluster ID "
                      f"lists at most {MAX_ADDRESSES}")
    return list(found.values())


def _hosts(resolver: dns.resolver.Resolver, target: dns.name.Name,
           lifetime: float) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    hosts = [ipaddress.ip_address(r.address)
             for kind in ("A", "AAAA")
             for r in _query(resolver, target.to_text(), kind, lifetime, missing_ok=True)
             if isinstance(r, A | AAAA)]
    if not hosts:
        raise _failed(f"SRV target {target} has no A or AAAA record")
    return hosts


def _query(resolver: dns.resolver.Resolver, name: str, kind: str, lifetime: float,
           missing_ok: bool = False) -> list[dns.rdata.Rdata]:
    try:
        return list(resolver.resolve(name, dns.rdatatype.from_text(kind), lifetime=lifetime,
                                     search=False))
    except dns.resolver.NoAnswer:
        if missing_ok:
            return []
        raise _failed(f"{name}: no {kind} records") from None
    except dns.resolver.NXDOMAIN:
        raise _failed(f"{name}: no such name in DNS") from None
    except dns.exception.DNSException as exc:
        raise _failed(f"{name}: {kind} lookup failed: {exc}") from None


def _failed(message: str) -> IdentityError:
    return IdentityError(message, ErrorCode.SRV_LOOKUP_FAILED)


def resolver_for(nameserver: str | None) -> dns.resolver.Resolver:
    """The system's resolver, or one asking only `nameserver` (`host` or `host:port`,
    IPv6 in brackets): to read a zone from its primary before it has propagated."""
    if nameserver is None:
        return dns.resolver.Resolver()
    host, port = nameserver, 53
    if nameserver.startswith("["):
        host, _, rest = nameserver[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif nameserver.count(":") == 1:
        host, _, port_text = nameserver.partition(":")
        port = int(port_text)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [str(ipaddress.ip_address(host))]
    resolver.port = port
    return resolver
