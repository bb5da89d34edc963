"""A plain request body read byte by byte, with no CBOR decoder (docs/protocol.md 6.9).

Nearly every request body is one of a few shapes: the target, endpoint, operation,
payload and version, a source EID or a vouched caller without a persona, and perhaps
delegation certificates, a transit level, a message id or a request id. `read_plain_body`
accepts exactly the canonical bytes of such a body and returns the fields the strict
decoder would give. Every head is checked to be the shortest form by arithmetic, map keys
strictly ascending and the bytes filled exactly, so no tag, indefinite length, padding,
duplicate key or trailing byte can pass (no decoder runs, so none of cbor2's tag
semantics can shorten an input either); anything else, refusals included, returns None
and the strict general decoder decides. Why: the strict decoder's re-encoding check cost
more than the rest of reading a served request. Property tests hold it to that decoder.
"""

from __future__ import annotations

from typing import TypeGuard

from carbon.cbor_heads import read_head
from carbon.principal import Principal

MAX_U32 = 2**32 - 1
MAX_DELEGATION = 8
MAX_MESSAGE_ID = 32
MAX_REQUEST_ID = 32
"""The bounds both this reader and the general decoder (messages.py) apply: u32
integers, at most 8 delegation certificates, message and request ids of 1-32 bytes."""

PlainFields = tuple[bytes, int, int, bytes, int, bytes | None, Principal | None,
                    tuple[bytes, ...], int, bytes | None, None, bytes | None]
"""NodeRequest's fields in order: target, endpoint, operation, payload, version, source,
vouched, delegation, transit, message id, no connection (key 10), request id."""

_MAP_OF_5, _MAP_OF_11 = 0xA5, 0xAB
_BYTE_KEYS = frozenset({0, 3, 5, 9, 11})
_UINT_KEYS = frozenset({1, 2, 4, 8})
_PRINCIPAL, _DELEGATION = 6, 7
_NO_PERSONA = b"\xf6\xf6"
_ARRAY_OF_4, _ARRAY = 0x84, 0x80


def read_plain_body(body: bytes) -> PlainFields | None:
    """The fields of `body` when it is exactly the canonical encoding of a plain request
    body that the general decoder accepts; None for anything else. The one-byte heads
    (short byte strings, small integers) are read inline: nearly every head is one."""
    if type(body) is not bytes or not body or not _MAP_OF_5 <= body[0] <= _MAP_OF_11:
        return None
    fields: dict[int, object] = {}
    at, last, end = 1, -1, len(body)
    for _ in range(body[0] - 0xA0):
        if at >= end - 1 or not last < body[at] <= 11:
            return None
        last, first = body[at], body[at + 1]
        read: tuple[object, int] | None
        if last in _BYTE_KEYS:
            read = _byte_string(body, at + 1)
        elif last in _UINT_KEYS:
            read = (first, at + 2) if first < 24 else _uint(body, at + 1)
        elif last == _PRINCIPAL:
            read = _principal(body, at + 1)
        elif last == _DELEGATION:
            read = _certificates(body, at + 1)
        else:
            return None  # key 10, a connection: the general decoder reads it
        if read is None:
            return None
        fields[last], at = read
    if at != end:
        return None
    return _plain_fields(fields)


def _uint(body: bytes, at: int) -> tuple[int, int] | None:
    head = read_head(body, at, 0)
    return None if head is None or head[0] > MAX_U32 else head


def _byte_string(body: bytes, at: int) -> tuple[bytes, int] | None:
    """The byte string at `at` and the offset after it; the heads of strings shorter than
    256 bytes (EIDs, payloads, ids) read inline, any other through `read_head`."""
    first = body[at] if at < len(body) else 0
    if 0x40 <= first < 0x58:
        start, stop = at + 1, at + 1 + first - 0x40
    elif first == 0x58 and at + 1 < len(body) and body[at + 1] >= 24:
        start, stop = at + 2, at + 2 + body[at + 1]
    else:
        head = read_head(body, at, 2)
        if head is None:
            return None
        start, stop = head[1], head[1] + head[0]
    if stop > len(body):
        return None
    return body[start:stop], stop


def _principal(body: bytes, at: int) -> tuple[Principal, int] | None:
    """`[cluster, local, null, null]`: a vouched caller without a persona."""
    if at >= len(body) or body[at] != _ARRAY_OF_4:
        return None
    cluster = _byte_string(body, at + 1)
    if cluster is None:
        return None
    local = _byte_string(body, cluster[1])
    if local is None or body[local[1]:local[1] + 2] != _NO_PERSONA:
        return None
    return Principal(cluster[0], local[0]), local[1] + 2


def _certificates(body: bytes, at: int) -> tuple[tuple[bytes, ...], int] | None:
    if at >= len(body) or not _ARRAY <= body[at] <= _ARRAY + MAX_DELEGATION:
        return None
    certificates, at = [], at + 1
    for _ in range(body[at - 1] - _ARRAY):
        read = _byte_string(body, at)
        if read is None:
            return None
        certificates.append(read[0])
        at = read[1]
    return tuple(certificates), at


def _plain_fields(fields: dict[int, object]) -> PlainFields | None:
    """The general decoder's rules on the keys present: 0-4 required, exactly one of
    source (5) and vouched (6), ids of 1-32 bytes."""
    get = fields.get
    if not fields.keys() >= {0, 1, 2, 3, 4} or (5 in fields) == (6 in fields):
        return None
    message_id, request_id = get(9), get(11)
    if not (id_ok(message_id, MAX_MESSAGE_ID) and id_ok(request_id, MAX_REQUEST_ID)):
        return None
    return (fields[0], fields[1], fields[2], fields[3], fields[4],  # type: ignore[return-value]
            get(5), get(6), get(7, ()), get(8, 0), message_id, None, request_id)


def id_ok(value: object, limit: int) -> TypeGuard[bytes | None]:
    """An optional caller-chosen id (message id, request id): absent, or 1-`limit` bytes.
    One rule for this reader, the general decoder and the local fast path (messages.py),
    so they cannot drift."""
    return value is None or (type(value) is bytes and 1 <= len(value) <= limit)
