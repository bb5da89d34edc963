"""The routing reply body (docs/protocol.md 6.4) and its mapping to contact events.

Redirects, errors carrying a cluster ID and entity-moved replies share one small map, so
a node builds them from a routing decision and a client turns them into exactly one
contact event. Decoding is bounded and raises only typed errors; the mapping to events
never raises for peer input (a reply that cannot be understood becomes a node-local
problem, so the client moves on rather than trusting it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import ClusterId, Endpoint
from mercury_rt.core.routing.contact_events import (
    Answered,
    ContactEvent,
    EntityMoved,
    ErrorWithClusterId,
    NodeLocalError,
    Redirect,
)
from mercury_rt.core.routing.decide import NODE_LOCAL_CODES, RedirectMoved, RedirectTo, Refuse
from mercury_rt.core.routing.forwarding import decode_forwarding_record

MAX_REPLY_BYTES = 16_384
MAX_MESSAGE_BYTES = 256
MAX_CLUSTER_ID_BYTES = 8192


class RoutingReplyError(MercuryError):
    """A routing reply body that does not follow docs/protocol.md 6.4."""

    code = ErrorCode.MALFORMED


@dataclass(frozen=True, slots=True)
class RoutingReply:
    """Code, optional explanation, optional cluster ID, and the code's own payload."""

    code: int
    message: str = ""
    cluster_id: bytes | None = None
    target: Endpoint | None = None
    forwarding: bytes | None = None

    def __post_init__(self) -> None:
        if (self.target is not None) != (self.code == ErrorCode.REDIRECT):
            raise RoutingReplyError("a redirect target goes with code 515 and only with it")
        if (self.forwarding is not None) != (self.code == ErrorCode.ENTITY_MOVED):
            raise RoutingReplyError("a forwarding record goes with code 512 and only with it")
        if len(self.message.encode()) > MAX_MESSAGE_BYTES:
            raise RoutingReplyError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
        if self.cluster_id is not None and len(self.cluster_id) > MAX_CLUSTER_ID_BYTES:
            raise RoutingReplyError(f"cluster ID longer than {MAX_CLUSTER_ID_BYTES} bytes")
        if self.target is not None and not 1 <= self.target.port <= 65535:
            raise RoutingReplyError("redirect port must be 1..65535")

    def encode(self) -> bytes:
        """Wire form: canonical CBOR map, absent optional keys omitted."""
        body: dict[int, Any] = {0: int(self.code)}
        if self.message:
            body[1] = self.message
        if self.cluster_id is not None:
            body[2] = self.cluster_id
        if self.target is not None:
            body[3] = [self.target.host.packed, self.target.port]
        if self.forwarding is not None:
            body[4] = self.forwarding
        return cbor.dumps(body)


def decode_routing_reply(data: bytes) -> RoutingReply:
    """Parse a peer's routing reply; raises RoutingReplyError or CodecError only."""
    if len(data) > MAX_REPLY_BYTES:
        raise RoutingReplyError(f"routing reply of {len(data)} bytes exceeds {MAX_REPLY_BYTES}")
    value = cbor.loads(data)
    if not isinstance(value, dict) or not set(value) <= {0, 1, 2, 3, 4}:
        raise RoutingReplyError("routing reply must be a map with key 0 and only keys 0-4")
    return routing_reply_from_value(value)


def routing_reply_from_value(value: dict[Any, Any]) -> RoutingReply:
    """Keys 0-4 of an already decoded map (other keys are the caller's business)."""
    if 0 not in value:
        raise RoutingReplyError("routing reply must be a map with key 0 and only keys 0-4")
    code, message = value[0], value.get(1, "")
    cluster_id, forwarding = value.get(2), value.get(4)
    if type(code) is not int or not 0 <= code <= 65535 or not isinstance(message, str):
        raise RoutingReplyError("key 0 must be a code 0..65535 and key 1 text")
    if not all(v is None or isinstance(v, bytes) for v in (cluster_id, forwarding)):
        raise RoutingReplyError("keys 2 and 4 must be byte strings")
    assert isinstance(code, int)
    assert cluster_id is None or isinstance(cluster_id, bytes)
    assert forwarding is None or isinstance(forwarding, bytes)
    return RoutingReply(code, message, cluster_id, _target(value.get(3)), forwarding)


def _target(value: object) -> Endpoint | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes)
            or len(value[0]) not in (4, 16) or type(value[1]) is not int):
        raise RoutingReplyError("key 3 must be [host bytes (4 or 16), port]")
    port = value[1]
    assert isinstance(port, int)
    return Endpoint(ipaddress.ip_address(value[0]), port)


def reply_to_event(reply: RoutingReply,
                   decode_cluster_id: Callable[[bytes], ClusterId]) -> ContactEvent:
    """The contact event a routing reply means (docs/protocol.md 6.3 and 6.4)."""
    cluster_id: ClusterId | None = None
    if reply.cluster_id is not None:
        try:
            cluster_id = decode_cluster_id(reply.cluster_id)
        except MercuryError as exc:
            return NodeLocalError(int(ErrorCode.CLUSTER_ID_REJECTED),
                                  f"undecodable cluster ID in reply: {exc.message}")
    if reply.target is not None:
        return Redirect(reply.target, cluster_id)
    if reply.forwarding is not None:
        try:
            return EntityMoved(decode_forwarding_record(reply.forwarding))
        except MercuryError as exc:
            return NodeLocalError(int(exc.code), f"bad forwarding record: {exc.message}")
    if reply.code in NODE_LOCAL_CODES:
        if cluster_id is not None:
            return ErrorWithClusterId(reply.code, cluster_id)
        return NodeLocalError(reply.code, reply.message)
    return Answered(reply, cluster_id)


def reply_for_decision(decision: RedirectTo | RedirectMoved | Refuse,
                       current_cluster_id: bytes) -> RoutingReply:
    """The reply a node sends for a routing decision that does not run the request."""
    bundled = current_cluster_id if decision.bundle_cluster_id else None
    if isinstance(decision, RedirectTo):
        target = Endpoint(decision.address.host, decision.address.port)
        return RoutingReply(ErrorCode.REDIRECT, cluster_id=bundled, target=target)
    if isinstance(decision, RedirectMoved):
        return RoutingReply(ErrorCode.ENTITY_MOVED, cluster_id=bundled,
                            forwarding=decision.record.encode())
    message = decision.message.encode()[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")
    return RoutingReply(decision.code, message, cluster_id=bundled)
