"""Intra-cluster heartbeat messages: fields, signed bytes and a bounded codec.

A heartbeat says "node N of cluster C, in its incarnation I, is alive (sequence S) and
serves inter-cluster MERCURY on these public addresses". The node signs it with its node
key; `node_cert` is that key certified by the cluster key. Both checks are injected (the
identity area owns the keys), so membership only ever sees heartbeats a verifier accepted.

Wire form: canonical CBOR (carbon.cbor) map {0: format 1, 1: cluster master hash, 2: node
id, 3: incarnation, 4: sequence, 5: [[host bytes (4 or 16), port, priority, weight], ...],
6: node certificate, 7: signature, 8 (optional): [host bytes, port], the intra-cluster
address the node sends from}. The signature covers the ASCII domain tag
`mercury-rt heartbeat v1`, a zero byte, and the same map without key 7. Key 8 binds the
heartbeat to its sender's address, so a captured heartbeat replayed from elsewhere cannot
move the node (receivers refuse one that arrives from another address).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Protocol

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import Endpoint, IPAddress

FORMAT = 1
DOMAIN_TAG = b"mercury-rt heartbeat v1\x00"
MAX_HEARTBEAT_BYTES = 4096
MAX_PUBLIC_ADDRESSES = 16
MAX_ID_BYTES = 64
MAX_CERT_BYTES = 2048
MAX_SIGNATURE_BYTES = 512


class HeartbeatError(MercuryError):
    """A heartbeat that is malformed, uncertified, stale or otherwise refused."""

    code = ErrorCode.BAD_HEARTBEAT


@dataclass(frozen=True, slots=True)
class PublicAddress(Endpoint):
    """An inter-cluster server address a node serves (same fields as identity's ServerAddress)."""

    priority: int
    weight: int

    def sort_key(self) -> tuple[int, int, int, int, int]:
        """Deterministic order for published lists."""
        return (self.priority, self.host.version, int(self.host), self.port, self.weight)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One node's liveness announcement."""

    cluster: bytes
    node_id: bytes
    incarnation: int
    seq: int
    public: tuple[PublicAddress, ...]
    node_cert: bytes
    signature: bytes = b""
    intra: tuple[IPAddress, int] | None = None
    """The intra-cluster address the node sends from, when it knows it (not a wildcard)."""

    def signed_bytes(self) -> bytes:
        """The exact bytes the node key signs."""
        return DOMAIN_TAG + cbor.dumps(self._fields())

    def with_signature(self, signature: bytes) -> Heartbeat:
        """The same heartbeat, signed (the shell signs; the core holds no key)."""
        return replace(self, signature=signature)

    def encode(self) -> bytes:
        """Wire form."""
        return cbor.dumps({**self._fields(), 7: self.signature})

    def _fields(self) -> dict[int, object]:
        fields: dict[int, object] = {
            0: FORMAT, 1: self.cluster, 2: self.node_id, 3: self.incarnation, 4: self.seq,
            5: [[a.host.packed, a.port, a.priority, a.weight] for a in self.public],
            6: self.node_cert}
        if self.intra is not None:
            fields[8] = [self.intra[0].packed, self.intra[1]]
        return fields


class HeartbeatVerifier(Protocol):
    """Checks node_cert against the cluster key and the signature against the node key."""

    def verify(self, heartbeat: Heartbeat) -> None: ...


def decode_heartbeat(data: bytes) -> Heartbeat:
    """Parse a peer's heartbeat within bounds; raises only HeartbeatError or CodecError."""
    if len(data) > MAX_HEARTBEAT_BYTES:
        raise HeartbeatError(f"heartbeat of {len(data)} bytes exceeds {MAX_HEARTBEAT_BYTES}")
    value = cbor.loads(data)
    if (not isinstance(value, dict) or set(value) - {8} != set(range(8))
            or value[0] != FORMAT):
        raise HeartbeatError("heartbeat must be a format-1 map with keys 0-7 and optional 8")
    try:
        heartbeat = Heartbeat(
            cluster=_bytes(value[1], MAX_ID_BYTES), node_id=_bytes(value[2], MAX_ID_BYTES),
            incarnation=_uint(value[3]), seq=_uint(value[4]),
            public=_addresses(value[5]), node_cert=_bytes(value[6], MAX_CERT_BYTES),
            signature=_bytes(value[7], MAX_SIGNATURE_BYTES),
            intra=None if 8 not in value else _intra(value[8]),
        )
    except (TypeError, ValueError) as exc:
        raise HeartbeatError(f"bad heartbeat field: {exc}") from None
    if not heartbeat.node_id:
        raise HeartbeatError("heartbeat node id is empty")
    return heartbeat


def _addresses(value: object) -> tuple[PublicAddress, ...]:
    if not isinstance(value, list) or len(value) > MAX_PUBLIC_ADDRESSES:
        raise ValueError(f"public addresses must be a list of at most {MAX_PUBLIC_ADDRESSES}")
    result = []
    for item in value:
        if not isinstance(item, list) or len(item) != 4:
            raise ValueError("each public address is [host, port, priority, weight]")
        packed = item[0]
        if not isinstance(packed, bytes) or len(packed) not in (4, 16):
            raise ValueError("host must be 4 or 16 bytes")
        port, priority, weight = (_uint(x) for x in item[1:])
        if not (1 <= port <= 65535 and priority <= 65535 and weight <= 65535):
            raise ValueError("port must be 1..65535, priority and weight 0..65535")
        result.append(PublicAddress(ipaddress.ip_address(packed), port, priority, weight))
    return tuple(result)


def _intra(value: object) -> tuple[IPAddress, int]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes)
            or len(value[0]) not in (4, 16)):
        raise ValueError("intra address must be [host (4 or 16 bytes), port]")
    port = _uint(value[1])
    if not 1 <= port <= 65535:
        raise ValueError("intra port must be 1..65535")
    return ipaddress.ip_address(value[0]), port


def _bytes(value: object, limit: int) -> bytes:
    if not isinstance(value, bytes) or len(value) > limit:
        raise TypeError(f"expected a byte string of at most {limit} bytes")
    return value


def _uint(value: object) -> int:
    if type(value) is not int or not 0 <= value < 2**63:
        raise ValueError("expected an integer in 0..2**63-1")
    assert isinstance(value, int)
    return value
