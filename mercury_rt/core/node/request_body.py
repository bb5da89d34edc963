"""A caller's request bodies, encoded around their payload (issue 13).

A node calling the same target, endpoint and operation again sends a body whose every
field but the payload (and the per-call ids, keys 9 and 11) is the same as last time.
The canonical map orders its keys 0-11 by value, so the body is the map head, keys 0-2
and key 3's head byte, the payload as a byte string, then keys 4-8, then the ids: the
parts before and after the payload are encoded once per call shape, by the general
encoder, and each call only concatenates. `NodeRequest.body()` stays the definition:
a request of any other shape (a persona, a connection, a field of an unusual type) goes
to it, and a property test proves the bytes identical for every input.
"""

from __future__ import annotations

from typing import Any

from carbon import cbor
from carbon.bounded import keep_newest
from carbon.principal import Principal
from mercury_rt.core.gate import PaymentStamp
from mercury_rt.core.node.envelope import bytes_head, join_unpaid
from mercury_rt.core.node.messages import (
    REQUEST_ID_KEY,
    NodeRequest,
    encode_operation,
    principal_to_value,
)

_BYTE = tuple(bytes((n,)) for n in range(256))
_MESSAGE_ID_KEY = b"\x09"
_REQUEST_ID_KEY = _BYTE[REQUEST_ID_KEY]

Shape = tuple[bytes, int, int, int, bytes | None, Principal | None, tuple[bytes, ...], int]
"""(target, endpoint, operation, version, source, vouched, delegation, transit)."""


def _shape(request: NodeRequest) -> Shape | None:
    """The fields the cached parts encode, if each has the exact type the concatenation
    assumes (why exact: True == 1 as a dict key, yet CBOR encodes them differently)."""
    vouched, delegation, source = request.vouched, request.delegation, request.source
    if (request.connection is not None or type(request.target) is not bytes
            or type(request.endpoint) is not int or type(request.operation) is not int
            or type(request.version) is not int or type(request.transit) is not int
            or type(request.payload) is not bytes
            or not (source is None or type(source) is bytes)
            or type(delegation) is not tuple
            or not all(type(c) is bytes for c in delegation)
            or not _id_fits(request.message_id) or not _id_fits(request.request_id)):
        return None
    if vouched is not None and (type(vouched) is not Principal or vouched.persona is not None
                                or type(vouched.cluster) is not bytes
                                or type(vouched.local) is not bytes):
        return None
    return (request.target, request.endpoint, request.operation, request.version, source,
            vouched, delegation, request.transit)


def _id_fits(value: object) -> bool:
    return value is None or type(value) is bytes


def _parts(shape: Shape) -> tuple[bytes, bytes, int]:
    """(keys 0-2 and key 3's byte, keys 4-8, their count with key 3) by the general
    encoder; each map has fewer than 24 entries, so its head is one byte to drop."""
    target, endpoint, operation, version, source, vouched, delegation, transit = shape
    rest: dict[int, Any] = {4: version}
    if source is not None:
        rest[5] = source
    if vouched is not None:
        rest[6] = principal_to_value(vouched)
    if delegation:
        rest[7] = list(delegation)
    if transit:
        rest[8] = transit
    before = cbor.dumps_built({0: target, 1: endpoint, 2: operation})[1:] + b"\x03"
    return before, cbor.dumps_built(rest)[1:], 4 + len(rest)


class RequestBodies:
    """Bodies by call shape, for one caller; bounded (the oldest shape goes when full)."""

    def __init__(self, max_shapes: int = 1024) -> None:
        self.max_shapes = max_shapes
        self._parts: dict[Shape, tuple[bytes, bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._parts)

    def body(self, request: NodeRequest) -> bytes:
        """Exactly `request.body()`."""
        shape = _shape(request)
        if shape is None:
            return request.body()
        parts = self._parts.get(shape)
        if parts is None:
            parts = _parts(shape)
            keep_newest(self._parts, shape, parts, self.max_shapes)
        before, after, count = parts
        payload, message_id, request_id = request.payload, request.message_id, request.request_id
        out = [b"", before, bytes_head(len(payload)), payload, after]
        if message_id is not None:
            count += 1
            out += (_MESSAGE_ID_KEY, bytes_head(len(message_id)), message_id)
        if request_id is not None:
            count += 1
            out += (_REQUEST_ID_KEY, bytes_head(len(request_id)), request_id)
        out[0] = _BYTE[0xa0 | count]
        return b"".join(out)


def operation_payload(body: bytes, payments: tuple[PaymentStamp, ...] = ()) -> bytes:
    """Exactly `encode_operation(body, payments)` (hops 0, as a caller sends it): an
    unpaid request by concatenation, a paid one by the general encoder."""
    if payments or type(body) is not bytes:
        return encode_operation(body, payments)
    return join_unpaid(body)
