"""The hot-path codec: REQUEST and REPLY envelopes read and written byte by byte.

Why: `decode_datagram` decodes with cbor2, checks kinds and ranges, then re-encodes to
prove the input canonical, and builds a message object; for the two envelopes almost
every datagram is, that costs more than the rest of the transport's work. This module
reads exactly the canonical bytes of those two envelopes and nothing else: every head is
checked for its major type and its shortest form, so no tag, float, padding or trailing
byte gets through. Anything it does not accept (None) goes to the general decoder, which
gives the precise error; what it accepts decodes there to the same fields (tests/property/
transport/test_transport_fast_paths.py). The writers give the bytes `dumps_flat` gives.

Where a C compiler was present at install, `_fastwire.c` replaces the four functions
(`accelerator.load` checks it was built from this file and that C file); this module
stays the specification, and a fuzz test holds the two to the same results
(tests/property/transport/test_fastwire_accelerated.py).
"""

from __future__ import annotations

import struct

from mercury_rt.core.transport import accelerator
from mercury_rt.core.transport.wire import MAX_ATTEMPT, MAX_U32

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


def _uints(data: bytes, pos: int, out: list[int], count: int) -> int:
    """Read `count` unsigned integers at `pos` into `out`; the position after them, or
    -1 unless each is a major-type-0 head in its shortest form. One loop, not a call per
    field, and the forms ids and times take most often first: this is the hot path."""
    for _ in range(count):
        head = data[pos]
        if head < 24:
            out.append(head)
            pos += 1
        elif head == 27:
            value = _U64(data, pos + 1)[0]
            if value <= MAX_U32:
                return -1
            out.append(value)
            pos += 9
        elif head == 25:
            value = _U16(data, pos + 1)[0]
            if value < 0x100:
                return -1
            out.append(value)
            pos += 3
        elif head == 26:
            value = _U32(data, pos + 1)[0]
            if value < 0x10000:
                return -1
            out.append(value)
            pos += 5
        elif head == 24:
            value = data[pos + 1]
            if value < 24:
                return -1
            out.append(value)
            pos += 2
        else:
            return -1
    return pos


def _payload(data: bytes, pos: int) -> bytes | None:
    """The byte string at `pos` (shortest-form head) if it ends the datagram exactly."""
    arg = data[pos] - 0x40
    if 0 <= arg < 24:
        size, pos = arg, pos + 1
    elif arg == 24:
        size, pos = data[pos + 1], pos + 2
        if size < 24:
            return None
    elif arg == 25:
        size, pos = _U16(data, pos + 1)[0], pos + 3
        if size < 0x100:
            return None
    elif arg == 26:
        size, pos = _U32(data, pos + 1)[0], pos + 5
        if size < 0x10000:
            return None
    else:  # 27: 8-byte lengths, no datagram holds one
        return None
    return data[pos:] if pos + size == len(data) else None


def read_request(data: bytes) -> RequestFields | None:
    """The fields of a canonical REQUEST datagram within every range, else None."""
    if data[:3] != REQUEST_HEAD:
        return None
    ints: list[int] = []
    try:
        pos = _uints(data, 3, ints, 6)
        payload = None if pos < 0 else _payload(data, pos)
    except (IndexError, struct.error):
        return None
    if payload is None:
        return None
    id_, ttl, done, attempt, origin, age = ints
    if ttl > MAX_U32 or attempt > MAX_ATTEMPT or origin > MAX_U32 or age > MAX_U32:
        return None
    return id_, ttl, done, attempt, origin, age, payload


def read_reply(data: bytes) -> ReplyFields | None:
    """The fields of a canonical REPLY datagram within every range, else None."""
    if data[:3] != REPLY_HEAD:
        return None
    ints: list[int] = []
    try:
        pos = _uints(data, 3, ints, 2)
        payload = None if pos < 0 else _payload(data, pos)
    except (IndexError, struct.error):
        return None
    if payload is None or ints[1] > MAX_U32:
        return None
    return ints[0], ints[1], payload


_ONE = [bytes((n,)) for n in range(256)]
_PACK16 = struct.Struct(">BH").pack
_PACK32 = struct.Struct(">BI").pack
_PACK64 = struct.Struct(">BQ").pack


def head(value: int, major: int = 0) -> bytes:
    """The shortest head of `value` (0 <= value < 2**64) for major type `major`."""
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
    if (id_ | ttl_ms | done_below | attempt | origin | age_ms) >> 64 or type(payload) is not bytes:
        return None  # a negative value or one of 65 bits or more makes the OR's shift nonzero
    return b"".join((  # ids and marks carry a 32-bit epoch on top: 8 bytes, inline
        REQUEST_HEAD, _PACK64(27, id_) if id_ > MAX_U32 else head(id_), head(ttl_ms),
        _PACK64(27, done_below) if done_below > MAX_U32 else head(done_below),
        _ONE[attempt] if attempt < 24 else head(attempt), head(origin),
        _ONE[age_ms] if age_ms < 24 else head(age_ms), head(len(payload), 0x40), payload))


def write_reply(id_: int, incarnation: int, payload: bytes) -> bytes | None:
    """The canonical REPLY datagram, or None as `write_request`."""
    if (id_ | incarnation) >> 64 or type(payload) is not bytes:
        return None
    return b"".join((REPLY_HEAD, _PACK64(27, id_) if id_ > MAX_U32 else head(id_),
                     _PACK32(26, incarnation) if 0xFFFF < incarnation <= MAX_U32
                     else head(incarnation), head(len(payload), 0x40), payload))


native = accelerator.load("mercury_rt.core.transport._fastwire")
"""The C accelerator now standing in for the four functions above, or None (pure Python)."""
if native is not None:
    read_request, read_reply = native.read_request, native.read_reply
    write_request, write_reply = native.write_request, native.write_reply
