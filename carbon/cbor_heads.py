"""Canonical CBOR heads written and read by arithmetic, for the byte-by-byte fast paths.

The fast paths of issue 13 (the unpaid operation envelope, the plain request body, the
session frames) write and accept only the canonical bytes of one fixed shape, with no
CBOR decoder involved, so no tag, indefinite length or padding can get through. They all
need the same two primitives: the shortest head of a major type and argument, and the
reading of one that refuses every longer form. One copy of each, here.
"""

from __future__ import annotations

BYTE = tuple(bytes((n,)) for n in range(256))
"""Each byte value as a one-byte `bytes` (cheaper than `bytes((n,))` per head)."""
_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
_FLOOR = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}
"""Argument bytes after a head's low bits 24-27, and the least value that needs them
(anything less has a shorter form, so is not canonical)."""


def head(major: int, n: int) -> bytes:
    """The canonical CBOR head of major type `major` with argument `n` (0 <= n < 2**64)."""
    kind = major << 5
    if n < 24:
        return BYTE[kind | n]
    if n < 0x100:
        return BYTE[kind | 24] + BYTE[n]
    if n < 0x10000:
        return BYTE[kind | 25] + n.to_bytes(2, "big")
    if n < 0x100000000:
        return BYTE[kind | 26] + n.to_bytes(4, "big")
    return BYTE[kind | 27] + n.to_bytes(8, "big")


def read_head(data: bytes, at: int, major: int) -> tuple[int, int] | None:
    """(value, offset after the head) of a canonical head of `major` at `at`, or None."""
    if at >= len(data) or data[at] >> 5 != major:
        return None
    low = data[at] & 0x1F
    if low < 24:
        return low, at + 1
    width = _WIDTH.get(low)
    if width is None or at + 1 + width > len(data):
        return None
    value = int.from_bytes(data[at + 1:at + 1 + width], "big")
    if value < _FLOOR[low]:
        return None
    return value, at + 1 + width
