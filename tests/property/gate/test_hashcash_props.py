"""Hashcash stamps over arbitrary digests, costs and text: exact bits, typed refusals."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.gate import (
    StampError,
    check_stamp,
    leading_zero_bits,
    mint_stamp,
)
from mercury_rt.core.gate.hashcash import stamp_time, utc_stamp_date
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


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1),
                    max_value=dt.datetime(2099, 12, 31, 23, 59, 59)))
def test_stamp_dates_convert_as_datetime_does(when: dt.datetime) -> None:
    """The core's calendar arithmetic (it may not load datetime, which loads time) agrees
    with datetime both ways, for every second a stamp can name."""
    moment = when.replace(microsecond=0, tzinfo=dt.UTC)
    seconds = int(moment.timestamp())
    assert utc_stamp_date(seconds) == moment.strftime("%y%m%d%H%M%S")
    assert stamp_time(moment.strftime("%y%m%d%H%M%S")) == (seconds, 1)
    assert stamp_time(moment.strftime("%y%m%d")) == (int(moment.replace(
        hour=0, minute=0, second=0).timestamp()), 86400)


@given(st.text("0123456789", min_size=6, max_size=6))
def test_a_stamp_date_is_real_exactly_when_datetime_accepts_it(date: str) -> None:
    try:
        expected = int(dt.datetime(2000 + int(date[:2]), int(date[2:4]), int(date[4:6]),
                                   tzinfo=dt.UTC).timestamp())
    except ValueError:
        with pytest.raises(StampError):
            stamp_time(date)
    else:
        assert stamp_time(date)[0] == expected
