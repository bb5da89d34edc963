"""Node messages: what travels in transport payloads between nodes (docs/protocol.md 6.9).

An operation request is `[0, body, payments, hops]`: `body` is the canonical encoding of the
request map, `payments` the payment stamps (section 7), `hops` how often nodes of the
target cluster have forwarded it. Keeping the body as exact bytes lets a stamp bind to it
(hashcash's request digest covers the body only) and lets a node forward a request
unchanged. `[1, master_hash]` asks a node for its cluster's current cluster ID, so a
node can fetch the keys a hashes-only EID lacks. A reply is one map: the routing reply
of 6.4 (keys 0-4) plus the reply payload (5) and, for hashcash refusals, the bits
required (6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carbon import cbor
from carbon.cbor import CodecError, Limits
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol, SymbolError
from mercury_rt.core.connections import (
    CONNECTION_KEY,
    ConnectionField,
    ConnectionForm,
    decode_field,
)
from mercury_rt.core.gate import PaymentStamp, decode_payments, encode_payments
from mercury_rt.core.identity import ClusterId, Endpoint
from mercury_rt.core.node.envelope import split_unpaid
from mercury_rt.core.node.plain_body import (
    MAX_DELEGATION,
    MAX_MESSAGE_ID,
    MAX_REQUEST_ID,
    MAX_U32,
    id_ok,
    read_plain_body,
)
from mercury_rt.core.node.state_messages import (
    STATE_COMMIT,
    STATE_FETCH,
    StateCommit,
    StateFetch,
    decode_state_request,
)
from mercury_rt.core.routing import (
    RoutingReply,
    RoutingReplyError,
    routing_reply_from_value,
)
from mercury_rt.core.transit.algorithms import decode_algorithm_list

OK = 0
_LIMITS = Limits(max_bytes=2 * 1024 * 1024 + 4096, max_depth=8, max_items=4096)
_REQUEST_KEYS = frozenset(range(12))
REQUEST_ID_KEY = 11
_REQUEST_FORMS = ("a node request is [0, body, payments, hops], [1, master_hash], "
                  "[4, entity] or [5, entity, changes]")


class NodeMessageError(MercuryError):
    """A node request or reply that does not follow docs/protocol.md 6.9."""

    code = ErrorCode.WRONG_TYPE


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """One operation on one entity.

    `target` is the target's EID (encoded); `version` the target cluster's cluster-ID
    version the caller holds. Exactly one of `source` (the caller's EID, inter-cluster)
    and `vouched` (the caller as vouched for by a node of this cluster) is present.
    `message_id` marks a one-way message: the handler runs as a message sink, the reply
    only acknowledges, and the receiving node runs each message id once.
    """

    target: bytes
    endpoint: int
    operation: int
    payload: bytes
    version: int = 0
    source: bytes | None = None
    vouched: Principal | None = None
    delegation: tuple[bytes, ...] = ()
    transit: int = 0
    message_id: bytes | None = None
    connection: ConnectionField | None = None
    """Key 10: the call opens, runs on or closes a connection (docs/protocol.md 5.9)."""
    request_id: bytes | None = None
    """Key 11: chosen by the caller, the same on every node it retries the request at;
    a cluster with replicated state runs each (caller, id) once (docs/protocol.md 6.9)."""

    def body(self) -> bytes:
        """The canonical body bytes (what a hashcash stamp binds to)."""
        value: dict[int, Any] = {0: self.target, 1: self.endpoint, 2: self.operation,
                                 3: self.payload, 4: self.version}
        if self.source is not None:
            value[5] = self.source
        if self.vouched is not None:
            value[6] = principal_to_value(self.vouched)
        if self.delegation:
            value[7] = list(self.delegation)
        if self.transit:
            value[8] = self.transit
        if self.message_id is not None:
            value[9] = self.message_id
        if self.connection is not None:
            value[CONNECTION_KEY] = self.connection.to_value()
        if self.request_id is not None:
            value[REQUEST_ID_KEY] = self.request_id
        if self.vouched is not None and self.vouched.persona is not None:
            return cbor.dumps(value)  # persona parameters: any CARBON value, so walk it
        return cbor.dumps_built(value)


@dataclass(frozen=True, slots=True)
class DecodedOperation:
    """A decoded operation request: the request, its exact body, payments and hops."""

    request: NodeRequest
    body: bytes
    payments: tuple[PaymentStamp, ...]
    hops: int


@dataclass(frozen=True, slots=True)
class ClusterIdQuery:
    """A request for this cluster's current cluster ID (keys for hashes-only EIDs)."""

    master_hash: bytes


def encode_operation(body: bytes, payments: tuple[PaymentStamp, ...] = (),
                     hops: int = 0) -> bytes:
    """The transport payload for an operation request."""
    return cbor.dumps_built([0, body, encode_payments(payments), hops])


QUERY_PADDING = 400
"""Zero bytes a cluster-ID query carries, so the signed cluster ID it asks for (up to
three times its size) can be answered to an address not yet validated (3.7)."""
MAX_QUERY_PADDING = 2048


def encode_cluster_id_query(master_hash: bytes) -> bytes:
    """The transport payload asking for a cluster's current cluster ID, padded."""
    return cbor.dumps([1, master_hash, bytes(QUERY_PADDING)])


def decode_node_request(
        data: bytes) -> DecodedOperation | ClusterIdQuery | StateFetch | StateCommit:
    """Parse a node request payload; raises only MercuryError subclasses. The common
    unpaid envelope is split without a decoder (envelope.py), a plain body read without
    one (plain_body.py), anything else decoded strictly."""
    unpaid = split_unpaid(data) if len(data) <= _LIMITS.max_bytes else None
    if unpaid is not None:
        body, hops = unpaid
        return DecodedOperation(decode_body(body), body, (), hops)
    outer = cbor.loads(data, _LIMITS)
    if not isinstance(outer, list) or not outer or type(outer[0]) is not int:
        raise NodeMessageError(_REQUEST_FORMS)  # (a bool is not a kind, though True == 1)
    kind = outer[0]
    if kind == 1 and len(outer) in (2, 3) and type(outer[1]) is bytes and len(outer[1]) <= 64 \
            and (len(outer) == 2 or (type(outer[2]) is bytes
                                     and len(outer[2]) <= MAX_QUERY_PADDING)):
        return ClusterIdQuery(outer[1])
    if kind in (STATE_FETCH, STATE_COMMIT):
        return decode_state_request(outer)
    if kind != 0 or len(outer) != 4 or type(outer[1]) is not bytes or not _u32(outer[3]):
        raise NodeMessageError(_REQUEST_FORMS)
    body = outer[1]
    assert isinstance(body, bytes)
    payments = decode_payments(outer[2])
    return DecodedOperation(decode_body(body), body, payments, outer[3])  # type: ignore[arg-type]


def decode_body(body: bytes) -> NodeRequest:
    """The request a body holds; raises only MercuryError subclasses. A plain body is
    read byte by byte, the same fields the strict decoder gives; others decoded strictly."""
    plain = read_plain_body(body) if len(body) <= _LIMITS.max_bytes else None
    if plain is not None:
        return NodeRequest(*plain)
    return _request_from(cbor.loads(body, _LIMITS))


def decoded_plain(request: NodeRequest, body: bytes) -> DecodedOperation | None:
    """What `decode_node_request(encode_operation(body))` returns for `request` (whose
    `body()` is `body`), without encoding or decoding: for a plain request (vouched for
    without a persona, unpaid, not on a connection, every field within its bounds).
    None for any other: the caller then takes the general path, which decides the rest
    (refusals included). Why: a call to an entity on this node never leaves the process,
    and decoding what it has just encoded costs two strict decodes."""
    vouched = request.vouched
    delegation, message_id = request.delegation, request.message_id
    if (vouched is None or vouched.persona is not None or request.source is not None
            or request.connection is not None or type(vouched.cluster) is not bytes
            or type(vouched.local) is not bytes or type(request.target) is not bytes
            or type(request.payload) is not bytes or not _u32(request.endpoint)
            or not _u32(request.operation) or not _u32(request.version)
            or not _u32(request.transit) or type(delegation) is not tuple
            or len(delegation) > MAX_DELEGATION
            or not all(type(c) is bytes for c in delegation)
            or not id_ok(message_id, MAX_MESSAGE_ID)
            or not id_ok(request.request_id, MAX_REQUEST_ID)):
        return None
    return DecodedOperation(request, body, (), 0)


def _checked_id(value: object, limit: int, what: str) -> bytes | None:
    if id_ok(value, limit):
        return value
    raise NodeMessageError(f"{what} must be 1-{limit} bytes")


def _request_from(value: cbor.Value) -> NodeRequest:
    if not isinstance(value, dict) or not set(value) <= _REQUEST_KEYS:
        raise NodeMessageError("request body must be a map with keys 0-11")
    try:
        target, endpoint, operation, payload = value[0], value[1], value[2], value[3]
        version = value[4]
    except KeyError as exc:
        raise NodeMessageError(f"request body lacks key {exc.args[0]}") from None
    source, vouched, delegation = value.get(5), value.get(6), value.get(7, [])
    if not (type(target) is bytes and _u32(endpoint) and _u32(operation)
            and type(payload) is bytes and _u32(version) and _u32(value.get(8, 0))):
        raise NodeMessageError("request field of the wrong kind")
    if (source is None) == (vouched is None):
        raise NodeMessageError("a request carries exactly one of source (5) and vouched (6)")
    if source is not None and type(source) is not bytes:
        raise NodeMessageError("source must be EID bytes")
    message_id = _checked_id(value.get(9), MAX_MESSAGE_ID, "message id")
    request_id = _checked_id(value.get(REQUEST_ID_KEY), MAX_REQUEST_ID, "request id")
    if (not isinstance(delegation, list) or len(delegation) > MAX_DELEGATION
            or not all(type(c) is bytes for c in delegation)):
        raise NodeMessageError(f"delegation must be at most {MAX_DELEGATION} certificates")
    connection = None if CONNECTION_KEY not in value \
        else _connection_from(value[CONNECTION_KEY], message_id)
    return NodeRequest(target, endpoint, operation, payload,  # type: ignore[arg-type]
                       version, source,  # type: ignore[arg-type]
                       None if vouched is None else principal_from_value(vouched),
                       tuple(delegation), value.get(8, 0), message_id,  # type: ignore[arg-type]
                       connection, request_id)


def _connection_from(value: cbor.Value, message_id: bytes | None) -> ConnectionField:
    """Key 10; an open is a request, never a one-way message."""
    field = decode_field(value)
    if field.form is ConnectionForm.OPEN and message_id is not None:
        raise NodeMessageError("a connection is opened by a request, not a one-way message")
    return field


def _u32(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_U32


def principal_to_value(principal: Principal) -> list[Any]:
    """[cluster, local, persona class or null, persona params]."""
    persona = principal.persona
    return [principal.cluster, principal.local, persona.cls.text if persona else None,
            persona.params if persona else None]


def principal_from_value(value: cbor.Value) -> Principal:
    """Inverse of principal_to_value; raises NodeMessageError."""
    if (not isinstance(value, list) or len(value) != 4 or type(value[0]) is not bytes
            or type(value[1]) is not bytes or not (value[2] is None or type(value[2]) is str)):
        raise NodeMessageError("vouched principal must be [cluster, local, class|null, params]")
    persona = None
    if value[2] is not None:
        try:
            persona = Persona(Symbol(value[2]), value[3])
        except SymbolError as exc:
            raise NodeMessageError(f"vouched persona: {exc.message}") from None
    return Principal(value[0], value[1], persona)


MAX_MESSAGE_TEXT = 256
"""Characters of human-readable text a node reply carries (key 1, docs/protocol.md 6.4).
Text from a handler, the gate or a peer is cut to this, so no one can bloat a reply."""


@dataclass(frozen=True, slots=True)
class NodeReply:
    """The answer to a NodeRequest: OK with a payload, or a code (see 6.4 for 1-4)."""

    code: int = OK
    payload: bytes | None = None
    message: str = ""
    cluster_id: bytes | None = None
    target: Endpoint | None = None
    forwarding: bytes | None = None
    required_bits: int | None = None
    acceptable: tuple[int, ...] | None = None
    """707 refusals: the transit algorithm ids the node accepts for this operation."""

    @property
    def ok(self) -> bool:
        """Whether the operation succeeded."""
        return self.code == OK

    def routing(self) -> RoutingReply:
        """The routing part (6.4), for the contact state machine."""
        return RoutingReply(self.code, self.message[:MAX_MESSAGE_TEXT], self.cluster_id,
                            self.target, self.forwarding)

    def encode(self) -> bytes:
        """Canonical wire form."""
        if self.payload is not None and (
                self.code, self.message, self.cluster_id, self.target, self.forwarding,
                self.required_bits, self.acceptable) == _PLAIN_OK:
            return encode_ok(self.payload)
        value: dict[int, Any] = {0: self.code}
        if self.message:
            value[1] = self.message[:MAX_MESSAGE_TEXT]
        if self.cluster_id is not None:
            value[2] = self.cluster_id
        if self.target is not None:
            value[3] = [self.target.host.packed, self.target.port]
        if self.forwarding is not None:
            value[4] = self.forwarding
        if self.payload is not None:
            value[5] = self.payload
        if self.required_bits is not None:
            value[6] = self.required_bits
        if self.acceptable is not None:
            value[7] = list(self.acceptable)
        return cbor.dumps_built(value)


_PLAIN_OK = (OK, "", None, None, None, None, None)
_OK_HEAD = b"\xa2\x00\x00\x05"
"""The canonical start of `{0: 0, 5: payload}`, the OK reply without extras: a map of 2,
key 0, code 0, key 5, then the payload as a byte string."""


def encode_ok(payload: bytes) -> bytes:
    """`NodeReply(payload=payload).encode()`, the common reply, without building the map:
    the same bytes."""
    n = len(payload)
    if n < 24:
        return _OK_HEAD + bytes((0x40 + n,)) + payload
    if n < 0x100:
        return _OK_HEAD + bytes((0x58, n)) + payload
    if n < 0x10000:
        return _OK_HEAD + b"\x59" + n.to_bytes(2, "big") + payload
    if n < 0x100000000:
        return _OK_HEAD + b"\x5a" + n.to_bytes(4, "big") + payload
    return _OK_HEAD + b"\x5b" + n.to_bytes(8, "big") + payload


def _ok_payload(data: bytes) -> bytes | None:
    """The payload of `data` when it is exactly `encode_ok(payload)` (None otherwise:
    `decode_reply` then takes the general path, which decides everything else)."""
    if not data.startswith(_OK_HEAD) or len(data) < 5 or len(data) > _LIMITS.max_bytes:
        return None
    first = data[4]
    if 0x40 <= first < 0x58:
        start, n, least = 5, first - 0x40, 0
    elif first == 0x58 and len(data) > 5:
        start, n, least = 6, data[5], 24
    elif first == 0x59:
        start, n, least = 7, int.from_bytes(data[5:7], "big"), 0x100
    elif first == 0x5a:
        start, n, least = 9, int.from_bytes(data[5:9], "big"), 0x10000
    else:
        return None  # 8-byte lengths exceed every limit; anything else is no OK head
    if n < least or len(data) != start + n:
        return None
    return data[start:]


def error_reply(exc: MercuryError, cluster_id: bytes | None = None) -> NodeReply:
    """A reply carrying a typed error."""
    return NodeReply(int(exc.code), message=exc.message[:MAX_MESSAGE_TEXT],
                     cluster_id=cluster_id)


def decode_reply(data: bytes) -> NodeReply:
    """Parse a node reply; raises only MercuryError subclasses."""
    payload = _ok_payload(data)
    if payload is not None:
        return NodeReply(OK, payload)
    return _decode_reply(data)


def _decode_reply(data: bytes) -> NodeReply:
    """`decode_reply`'s general path: any reply map."""
    value = cbor.loads(data, _LIMITS)
    if not isinstance(value, dict) or 0 not in value or not set(value) <= set(range(8)):
        raise NodeMessageError("a node reply is a map with key 0 and keys 0-7 only")
    payload, bits = value.get(5), value.get(6)
    if not (payload is None or type(payload) is bytes) or not (bits is None or _u32(bits)):
        raise NodeMessageError("reply payload must be bytes and bits an integer")
    acceptable = None
    if 7 in value:
        try:
            acceptable = decode_algorithm_list(value[7], "acceptable algorithms (key 7)")
        except MercuryError as exc:
            raise NodeMessageError(exc.message) from None
    try:
        routing = routing_reply_from_value(value)
    except (RoutingReplyError, CodecError) as exc:
        raise NodeMessageError(f"reply: {exc.message}") from None
    return NodeReply(routing.code, payload, routing.message, routing.cluster_id,
                     routing.target, routing.forwarding, bits,  # type: ignore[arg-type]
                     acceptable)


def fetched_cluster_id(master_hash: bytes, reply: bytes) -> ClusterId | None:
    """The cluster ID a key fetch's answer carries, if it decodes and names `master_hash`
    (None otherwise). Not yet verified: the caller proves it before using it."""
    try:
        data = decode_reply(reply).cluster_id
        cluster_id = None if data is None else ClusterId.decode(data)
    except MercuryError:
        return None
    return cluster_id if cluster_id is not None and cluster_id.master_hash == master_hash \
        else None
