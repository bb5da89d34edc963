"""Transport messages: the datagram envelope, its types and their strict encoding.

Every datagram is one canonical CBOR array `[version, type, field...]`. Arrays rather
than maps keep datagrams small and leave no room for duplicate or unknown keys; each
type has a fixed field list, checked by kind and range on decode. A datagram that is
not exactly one valid message raises `MessageError` (a `CodecError` with a stable code);
nothing else escapes `decode_datagram`, whatever the input bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from carbon.cbor import CodecError, Limits, dumps_flat, loads_flat
from carbon.error_codes import ErrorCode

Addr = tuple[str, int]
"""A datagram address as the socket layer gives it: (host text, UDP port)."""

PROTOCOL_VERSION = 1
MAX_ID = 2**64 - 1
MAX_U32 = 2**32 - 1
MAX_ATTEMPT = 255
MAX_DETAIL = 1024
ACK_NOW = 1  # FRAGMENT flag: the sender's window is full; acknowledge at once


class MessageError(CodecError):
    """A datagram that is not exactly one valid transport message."""


class Kind(IntEnum):
    """What an exchange carries; used to key fragments, acks and errors."""

    REQUEST = 1
    REPLY = 2
    MESSAGE = 3


class MessageType(IntEnum):
    """The second element of every envelope."""

    REQUEST = 1
    REPLY = 2
    MESSAGE = 3
    ACK = 4
    ERROR = 5
    POLL = 6
    FRAGMENT = 7
    FRAG_ACK = 8


@dataclass(frozen=True, slots=True)
class Request:
    """A request expecting one reply; `ttl_ms` is the caller's remaining time.

    `done_below`: every id of the sender's epoch below it is finished on the sender's
    side, so the receiver may forget those exchanges and ignore stale copies of them.
    `attempt` counts transmissions (1 = first); `origin` is the receiver incarnation the
    sender knew when it first sent this exchange (0 = unknown) and `age_ms` the time since
    that first transmission, so a restarted receiver can refuse a retransmission that may
    have run before its restart, and only such a one.
    """

    id: int
    ttl_ms: int
    done_below: int
    attempt: int
    origin: int
    age_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """The reply to request `id`; it also acknowledges the request.

    `incarnation` is the replier's random start-up number (see Request.origin).
    """

    id: int
    incarnation: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """A one-way message; the receiver acknowledges it with Ack(MESSAGE, id).

    Fields as in Request.
    """

    id: int
    ttl_ms: int
    done_below: int
    attempt: int
    origin: int
    age_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """Receipt of a whole request, message or (fragmented) reply; carries the
    acknowledger's incarnation."""

    kind: Kind
    id: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class Error:
    """A typed failure of exchange (kind, id); `detail` says what would succeed."""

    kind: Kind
    id: int
    code: int
    detail: str


@dataclass(frozen=True, slots=True)
class Poll:
    """Asks for the reply to an acknowledged request without resending its payload."""

    id: int


@dataclass(frozen=True, slots=True)
class Fragment:
    """Bytes `[index*chunk_size, ...)` of the encoded message (kind, id), `total` long."""

    kind: Kind
    id: int
    nonce: int
    total: int
    chunk_size: int
    index: int
    flags: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FragAck:
    """Fragments received: all below `cumulative`, plus bit i of `sack` = cumulative+i."""

    kind: Kind
    id: int
    nonce: int
    cumulative: int
    sack: bytes


AnyMessage = Request | Reply | Message | Ack | Error | Poll | Fragment | FragAck

_TYPE_OF: dict[type, MessageType] = {
    Request: MessageType.REQUEST,
    Reply: MessageType.REPLY,
    Message: MessageType.MESSAGE,
    Ack: MessageType.ACK,
    Error: MessageType.ERROR,
    Poll: MessageType.POLL,
    Fragment: MessageType.FRAGMENT,
    FragAck: MessageType.FRAG_ACK,
}


def encode(message: AnyMessage) -> bytes:
    """The canonical datagram bytes of `message`."""
    fields = [getattr(message, name) for name in message.__slots__]
    return dumps_flat([PROTOCOL_VERSION, _TYPE_OF[type(message)], *fields])


def encode_request(id_: int, ttl_ms: int, done_below: int, attempt: int, origin: int,
                   age_ms: int, payload: bytes) -> bytes:
    """Hot-path shortcut for `encode(Request(...))`: the same bytes."""
    return dumps_flat([PROTOCOL_VERSION, MessageType.REQUEST, id_, ttl_ms, done_below, attempt,
                       origin, age_ms, payload])


def encode_reply(id_: int, incarnation: int, payload: bytes) -> bytes:
    """Hot-path shortcut for `encode(Reply(...))`: the same bytes."""
    return dumps_flat([PROTOCOL_VERSION, MessageType.REPLY, id_, incarnation, payload])


def decode_datagram(data: bytes, limits: Limits) -> AnyMessage:
    """Decode one datagram; raises only MessageError."""
    try:
        value = loads_flat(data, limits.max_bytes)
    except CodecError as exc:
        raise MessageError(exc.message, exc.code) from None
    if len(value) < 2:
        raise MessageError("a datagram must be an array [version, type, ...]",
                           ErrorCode.WRONG_TYPE)
    version, mtype = value[0], value[1]
    fast = _fast_decode(value) if version == PROTOCOL_VERSION else None
    if fast is not None:
        return fast
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise MessageError(f"protocol version {version!r} unsupported; this peer speaks "
                           f"{PROTOCOL_VERSION}", ErrorCode.UNSUPPORTED_VERSION)
    schema = _SCHEMAS.get(mtype) if type(mtype) is int else None
    if schema is None:
        raise MessageError(f"unknown message type {mtype!r}", ErrorCode.UNKNOWN_MESSAGE_TYPE)
    cls, checks = schema.cls, schema.fields
    fields = value[2:]
    if len(fields) != len(checks):
        raise MessageError(f"{cls.__name__} has {len(checks)} fields, got {len(fields)}",
                           ErrorCode.WRONG_TYPE)
    for check, field in zip(checks, fields, strict=True):
        if not check.valid(field):
            raise MessageError(f"{cls.__name__}.{check.name}: invalid value",
                               ErrorCode.WRONG_TYPE)
    if checks[0] is _KIND:
        fields[0] = Kind(cast(int, fields[0]))
    return cls(*fields)  # type: ignore[no-any-return]


def _fast_decode(value: list[Any]) -> AnyMessage | None:
    """Requests and replies, the hot path, checked inline; None means use the schema."""
    if value[1] == MessageType.REQUEST and len(value) == 9:
        _, _, id_, ttl, done, attempt, origin, age, payload = value
        if (type(id_) is int and type(ttl) is int and type(done) is int
                and type(attempt) is int and type(origin) is int and type(age) is int
                and type(payload) is bytes
                and 0 <= id_ <= MAX_ID and 0 <= ttl <= MAX_U32 and 0 <= done <= MAX_ID
                and 0 <= attempt <= MAX_ATTEMPT and 0 <= origin <= MAX_U32 and 0 <= age <= MAX_U32):
            return Request(id_, ttl, done, attempt, origin, age, payload)
    elif value[1] == MessageType.REPLY and len(value) == 5:
        _, _, id_, incarnation, payload = value
        if (type(id_) is int and type(incarnation) is int and type(payload) is bytes
                and 0 <= id_ <= MAX_ID and 0 <= incarnation <= MAX_U32):
            return Reply(id_, incarnation, payload)
    return None


def _uint(limit: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and 0 <= v <= limit


def _is_bytes(v: Any) -> bool:
    return type(v) is bytes


def _is_detail(v: Any) -> bool:
    return type(v) is str and len(v) <= MAX_DETAIL


_KIND_VALUES = frozenset(Kind)


def _is_kind(v: Any) -> bool:
    return type(v) is int and v in _KIND_VALUES


@dataclass(frozen=True, slots=True)
class _Field:
    """One envelope field after [version, type]: its name (for errors) and its check."""

    name: str
    valid: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class _Schema:
    """A message type's class and its fields, in wire order."""

    cls: type
    fields: tuple[_Field, ...]


_ID = _Field("id", _uint(MAX_ID))
_KIND = _Field("kind", _is_kind)
_SENDER_FIELDS = (_ID, _Field("ttl_ms", _uint(MAX_U32)), _Field("done_below", _uint(MAX_ID)),
                  _Field("attempt", _uint(MAX_ATTEMPT)), _Field("origin", _uint(MAX_U32)),
                  _Field("age_ms", _uint(MAX_U32)), _Field("payload", _is_bytes))
_INCARNATION = _Field("incarnation", _uint(MAX_U32))
_NONCE = _Field("nonce", _uint(MAX_U32))
_SCHEMAS: dict[int, _Schema] = {
    MessageType.REQUEST: _Schema(Request, _SENDER_FIELDS),
    MessageType.REPLY: _Schema(Reply, (_ID, _INCARNATION, _Field("payload", _is_bytes))),
    MessageType.MESSAGE: _Schema(Message, _SENDER_FIELDS),
    MessageType.ACK: _Schema(Ack, (_KIND, _ID, _INCARNATION)),
    MessageType.ERROR: _Schema(Error, (_KIND, _ID, _Field("code", _uint(MAX_U32)),
                                       _Field("detail", _is_detail))),
    MessageType.POLL: _Schema(Poll, (_ID,)),
    MessageType.FRAGMENT: _Schema(Fragment, (
        _KIND, _ID, _NONCE, _Field("total", _uint(MAX_U32)),
        _Field("chunk_size", _uint(MAX_U32)), _Field("index", _uint(MAX_U32)),
        _Field("flags", _uint(255)), _Field("data", _is_bytes))),
    MessageType.FRAG_ACK: _Schema(FragAck, (
        _KIND, _ID, _NONCE, _Field("cumulative", _uint(MAX_U32)), _Field("sack", _is_bytes))),
}
