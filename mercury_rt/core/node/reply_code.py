"""The code of an encoded node reply, read from its first bytes (for metrics).

A node counts every reply it sends by code. Decoding each reply to learn it would cost a
full CBOR parse per request; the canonical encoding (NodeReply.encode: a map whose
smallest key, 0, holds the code) puts the code in the first few bytes, so it is read
from there. Anything that does not start like a canonical node reply yields None
(counted as "unknown"), never an exception: the bytes may be a mirror's relayed reply.
"""

from __future__ import annotations

_MAP_SMALL = 0xA0
"""Major type 5 (map) with the entry count in the low 5 bits (0-23 entries)."""
_ONE_BYTE, _TWO_BYTES, _FOUR_BYTES = 0x18, 0x19, 0x1A
_WIDTHS = {_ONE_BYTE: 1, _TWO_BYTES: 2, _FOUR_BYTES: 4}


def peek_reply_code(reply: bytes) -> int | None:
    """The code of a canonically encoded NodeReply (0 is OK), or None if `reply` is not
    one: equal to `decode_reply(reply).code` for every reply the node core encodes."""
    if len(reply) < 3 or not _MAP_SMALL < reply[0] < _MAP_SMALL + 24 or reply[1] != 0:
        return None
    head = reply[2]
    if head < _ONE_BYTE:
        return head
    width = _WIDTHS.get(head)
    if width is None or len(reply) < 3 + width:
        return None
    return int.from_bytes(reply[3:3 + width], "big")
