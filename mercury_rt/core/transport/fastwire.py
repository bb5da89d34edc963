"""The hot-path codec: REQUEST and REPLY envelopes read and written byte by byte.

Why: `decode_datagram` decodes with cbor2, checks kinds and ranges, then re-encodes to
prove the input canonical, and builds a message object; for the two envelopes almost
every datagram is, that costs more than the rest of the transport's work. This module
reads exactly the canonical bytes of those two envelopes and nothing else: every head is
checked for its major type and its shortest form, so no tag, float, padding or trailing
byte gets through. Anything it does not accept (None) goes to the general decoder, which
gives the precise error; what it accepts decodes there to the same fields (tests/property/
transport/test_fast_path_equivalence.py). The writers give the bytes `dumps_flat` gives.
"""

from __future__ import annotations

import struct

from mercury_rt.core.transport.wire import MAX_ATTEMPT, MAX_ID, MAX_U32

REQUEST_HEAD = b"\x89\x01\x01"
"""Array of 9, version 1, type REQUEST: how every REQUEST datagram starts."""
REPLY_HEAD = b"\x85\x01\x02"
"""Array of 5, version 1, type REPLY."""

RequestFields = tuple[int, int, int, int, int, int, bytes]
"""id, ttl_ms, done_below, attempt, origin, age_ms, payload (as wire.Request)."""
ReplyFields = tuple[int, int, bytes]
"""id, incarnation, payload (as wire.Reply)."""

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_BAD = (-1, 0)


def _uint(data: bytes, pos: int, major: int) -> tuple[int, int]:
    """The argument of the head at `pos` of major type `major` (0 uint, 0x40 bytes) and
    the position after it; (-1, 0) unless it is that type in its shortest form."""
    arg = data[pos] - major
    if 0 <= arg < 24:
        return arg, pos + 1
    if arg == 24:
        value = data[pos + 1]
        return (value, pos + 2) if value >= 24 else _BAD
    if arg == 25:
        value = _U16(data, pos + 1)[0]
        return (value, pos + 3) if value >= 0x100 else _BAD
    if arg == 26:
        value = _U32(data, pos + 1)[0]
        return (value, pos + 5) if value >= 0x10000 else _BAD
    if arg == 27:
        value = _U64(data, pos + 1)[0]
        return (value, pos + 9) if value > MAX_U32 else _BAD
    return _BAD


def _payload(data: bytes, pos: int) -> bytes | None:
    """The byte string at `pos` if it ends the datagram exactly."""
    size, start = _uint(data, pos, 0x40)
    if size < 0 or start + size != len(data):
        return None
    return data[start:]


def read_request(data: bytes) -> RequestFields | None:
    """The fields of a canonical REQUEST datagram within every range, else None."""
    if data[:3] != REQUEST_HEAD:
        return None
    try:
        id_, pos = _uint(data, 3, 0)
        ttl, pos = _uint(data, pos, 0)
        done, pos = _uint(data, pos, 0)
        attempt, pos = _uint(data, pos, 0)
        origin, pos = _uint(data, pos, 0)
        age, pos = _uint(data, pos, 0)
        if (id_ < 0 or not 0 <= ttl <= MAX_U32 or done < 0 or not 0 <= attempt <= MAX_ATTEMPT
                or not 0 <= origin <= MAX_U32 or not 0 <= age <= MAX_U32):
            return None
        payload = _payload(data, pos)
    except (IndexError, struct.error):
        return None
    if payload is None:
        return None
    return id_, ttl, done, attempt, origin, age, payload


def read_reply(data: bytes) -> ReplyFields | None:
    """The fields of a canonical REPLY datagram within every range, else None."""
    if data[:3] != REPLY_HEAD:
        return None
    try:
        id_, pos = _uint(data, 3, 0)
        incarnation, pos = _uint(data, pos, 0)
        if id_ < 0 or not 0 <= incarnation <= MAX_U32:
            return None
        payload = _payload(data, pos)
    except (IndexError, struct.error):
        return None
    if payload is None:
        return None
    return id_, incarnation, payload


_ONE = [bytes((n,)) for n in range(256)]
_PACK16 = struct.Struct(">BH").pack
_PACK32 = struct.Struct(">BI").pack
_PACK64 = struct.Struct(">BQ").pack


def head(value: int, major: int = 0) -> bytes:
    """The shortest head of `value` (0 <= value <= MAX_ID) for major type `major`."""
    if value < 24:
        return _ONE[major + value]
    if value < 0x100:
        return bytes((major + 24, value))
    if value < 0x10000:
        return _PACK16(major + 25, value)
    if value <= MAX_U32:
        return _PACK32(major + 26, value)
    return _PACK64(major + 27, value)


def write_request(id_: int, ttl_ms: int, done_below: int, attempt: int, origin: int,
                  age_ms: int, payload: bytes) -> bytes | None:
    """The canonical REQUEST datagram, or None for a value the envelope cannot hold (the
    caller then lets the general encoder decide)."""
    if not (0 <= id_ <= MAX_ID and 0 <= ttl_ms <= MAX_ID and 0 <= done_below <= MAX_ID
            and 0 <= attempt <= MAX_ID and 0 <= origin <= MAX_ID and 0 <= age_ms <= MAX_ID
            and type(payload) is bytes and len(payload) <= MAX_ID):
        return None
    return b"".join((REQUEST_HEAD, head(id_), head(ttl_ms), head(done_below), head(attempt),
                     head(origin), head(age_ms), head(len(payload), 0x40), payload))


def write_reply(id_: int, incarnation: int, payload: bytes) -> bytes | None:
    """The canonical REPLY datagram, or None as `write_request`."""
    if not (0 <= id_ <= MAX_ID and 0 <= incarnation <= MAX_ID and type(payload) is bytes
            and len(payload) <= MAX_ID):
        return None
    return b"".join((REPLY_HEAD, head(id_), head(incarnation), head(len(payload), 0x40),
                     payload))
