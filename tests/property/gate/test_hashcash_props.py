"""Hashcash stamps over arbitrary digests, costs and text: exact bits, typed refusals."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.gate import (
    StampError,
    check_stamp,
    leading_zero_bits,
    mint_stamp,
)
from tests.gate_support import NOW, RESOURCE, WINDOW, check


@given(st.binary(min_size=20, max_size=20))
def test_leading_zero_bits_is_exact(digest: bytes) -> None:
    bits = "".join(f"{b:08b}" for b in digest)
    assert leading_zero_bits(digest) == len(bits) - len(bits.lstrip("0"))


@given(st.integers(0, 12), st.binary(min_size=12, max_size=12))
def test_minted_stamps_verify_with_at_least_the_bits_asked(bits: int, rand: bytes) -> None:
    stamp = mint_stamp(RESOURCE, bits, NOW, rand)
    assert check(stamp, required=bits) >= bits


@given(st.text(max_size=300))
def test_any_text_gives_a_result_or_a_stamp_error(text: str) -> None:
    with contextlib.suppress(StampError):
        check_stamp(text, RESOURCE, 8, NOW, **WINDOW)
