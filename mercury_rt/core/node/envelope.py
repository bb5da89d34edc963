"""The unpaid operation envelope `[0, body, [], hops]`, read and written byte by byte.

Nearly every operation request arrives unpaid. Its envelope is one fixed shape: an array
of 4 (0x84), kind 0, the body as a byte string, an empty payments array (0x80), hops as
an unsigned integer. `split_unpaid` accepts exactly the canonical bytes of that shape and
nothing else: every head is checked to be the shortest form by arithmetic here, with no
CBOR decoder involved, so no tag, indefinite length or padding can get through; anything
else (payments, a long form, trailing bytes, junk) returns None and the strict general
decoder decides, refusals included. Property tests hold it to that decoder.
"""

from __future__ import annotations

from carbon.cbor_heads import BYTE, head, read_head

_HEAD = b"\x84\x00"
MAX_HOPS = 2**32 - 1


def bytes_head(n: int) -> bytes:
    """The canonical head of a byte string of `n` bytes (major type 2)."""
    return head(2, n)


def split_unpaid(data: bytes) -> tuple[bytes, int] | None:
    """(body, hops) when `data` is exactly the canonical `[0, body, [], hops]` with hops
    at most 2^32 - 1; None for anything else."""
    if not data.startswith(_HEAD):
        return None
    body_head = read_head(data, 2, 2)
    if body_head is None:
        return None
    size, start = body_head
    end = start + size
    if end + 2 > len(data) or data[end] != 0x80:
        return None
    hops = read_head(data, end + 1, 0)
    if hops is None or hops[1] != len(data) or hops[0] > MAX_HOPS:
        return None
    return data[start:end], hops[0]


def join_unpaid(body: bytes, hops: int = 0) -> bytes:
    """The canonical `[0, body, [], hops]` for 0 <= hops < 2^32."""
    if hops < 24:
        tail = BYTE[0x80] + BYTE[hops]
    elif hops < 0x100:
        tail = b"\x80\x18" + BYTE[hops]
    elif hops < 0x10000:
        tail = b"\x80\x19" + hops.to_bytes(2, "big")
    else:
        tail = b"\x80\x1a" + hops.to_bytes(4, "big")
    return b"".join((_HEAD, bytes_head(len(body)), body, tail))
