"""`loads_flat` refuses every semantic tag and accepts only canonical bytes, as `loads`.

cbor2 decodes some tags by default, and references (shared values 28/29, string
references 256/25) and bignums (2/3) can make an input shorter than the canonical bytes
of the value it decodes to, so padded heads can bring a tagged input back to exactly the
canonical length: a check that trusted an arithmetic canonical length accepted such
inputs. These properties build them on purpose (padded heads, wrapper tags, references)
and check that `loads_flat` accepts exactly the canonical bytes, like `loads`, with the
same code.
"""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import CodecError, loads, loads_flat
from carbon.error_codes import ErrorCode

ITEM = st.one_of(st.integers(-(2**64), 2**64 - 1), st.integers(-(2**66), 2**66),
                 st.binary(max_size=40),
                 st.text(max_size=20))
SIZES = (1, 2, 3, 5, 9)


def head(major: int, argument: int, size: int) -> bytes:
    """A CBOR head of `size` bytes (1 = shortest possible if it fits)."""
    if size == 1 and argument < 24:
        return bytes([major << 5 | argument])
    size = max(size, next(s for s in SIZES[1:] if argument < 256 ** (s - 1)))
    return bytes([major << 5 | {2: 24, 3: 25, 5: 26, 9: 27}[size]]) + argument.to_bytes(
        size - 1, "big")


@st.composite
def tagged_encodings(draw: st.DrawFn) -> tuple[list[int | bytes | str], bytes]:
    """A flat array and one encoding of it: each head maybe padded, each item maybe
    wrapped in a tag that decodes to the same item, repeats maybe references."""
    items = draw(st.lists(ITEM, max_size=6))
    if items and draw(st.booleans()):
        items.append(draw(st.sampled_from([x for x in items if not isinstance(x, int)]
                                          or items)))
    namespace = draw(st.booleans())
    out = b"\xd9\x01\x00" if namespace else b""
    out += head(4, len(items), draw(st.sampled_from(SIZES)))
    shared: list[object] = []
    strings: list[object] = []
    for item in items:
        out += encode_item(draw, item, shared, strings if namespace else None)
    return items, out


def encode_item(draw: st.DrawFn, item: int | bytes | str, shared: list[object],
                strings: list[object] | None) -> bytes:
    size = draw(st.sampled_from(SIZES))
    if not isinstance(item, int):
        if item in shared and draw(st.booleans()):
            return b"\xd8\x1d" + head(0, shared.index(item), size)
        if strings is not None and item in strings and draw(st.booleans()):
            return b"\xd8\x19" + head(0, strings.index(item), size)
        raw = item.encode() if isinstance(item, str) else item
        body = head(3 if isinstance(item, str) else 2, len(raw), size) + raw
        if strings is not None and len(raw) >= 3:
            strings.append(item)
        if draw(st.booleans()):
            shared.append(item)
            return b"\xd8\x1c" + body
        return body
    if not -(2**64) <= item < 2**64 or draw(st.booleans()):  # a bignum tag (2; 3 if < 0)
        magnitude = item if item >= 0 else -1 - item
        raw = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "big")
        if strings is not None and len(raw) >= 3:
            strings.append(raw)  # its bytes join the string-reference namespace
        return (b"\xc2" if item >= 0 else b"\xc3") + head(2, len(raw), 1) + raw
    return head(0, item, size) if item >= 0 else head(1, -1 - item, size)


def outcome(decode: object, data: bytes) -> tuple[str, object]:
    try:
        return "ok", decode(data)  # type: ignore[operator]
    except CodecError as exc:
        return "refused", exc.code


@given(tagged_encodings())
def test_only_the_canonical_bytes_are_accepted_whatever_tags_pad_them(
        case: tuple[list[int | bytes | str], bytes]) -> None:
    items, data = case
    assert cbor2.loads(data) == items  # the encoding is valid CBOR for the same value
    flat = outcome(lambda d: loads_flat(d, 1 << 20), data)
    if data == cbor2.dumps(items) and all(
            -(2**64) <= x < 2**64 for x in items if isinstance(x, int)):
        assert flat == ("ok", items)
    else:
        assert flat[0] == "refused"
    general = outcome(loads, data)
    assert flat[0] == general[0]
    if flat[1] != ErrorCode.TOO_DEEP:  # the flat decoder's depth limit is 2, not 16
        assert flat == general


def test_a_padded_shared_reference_of_canonical_length_is_refused() -> None:
    """The 57-byte case: [s, s] as [28(s), 29(0)] with padded heads has the canonical
    length and decodes to the same value."""
    s = b"abcdefghijklmnopqrstuvwxyz"
    data = head(4, 2, 9) + b"\xd8\x1c" + head(2, 26, 9) + s + b"\xd8\x1d" + head(0, 0, 9)
    assert len(data) == len(cbor2.dumps([s, s])) and cbor2.loads(data) == [s, s]
    with pytest.raises(CodecError):
        loads_flat(data, 1 << 20)


def test_a_bignum_as_short_as_the_canonical_int_is_refused() -> None:
    """[65536] as [2(h'010000')] is 6 bytes, like its canonical encoding."""
    data = b"\x81\xc2\x43\x01\x00\x00"
    assert len(data) == len(cbor2.dumps([65536])) and cbor2.loads(data) == [65536]
    with pytest.raises(CodecError):
        loads_flat(data, 1 << 20)
