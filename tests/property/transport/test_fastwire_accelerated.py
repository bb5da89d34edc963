"""The C accelerator of the envelope codec (_fastwire.c) gives exactly what fastwire.py gives.

fastwire.py is loaded a second time from its source under another name with the
accelerator disabled, so its pure-Python functions run beside the C ones; both get the
same inputs: valid envelopes, every head form (shortest or not) in every position, mutated
and random bytes for the readers; boundary, out-of-range, bool and non-int values and
non-bytes payloads for the writers. Results (None included) and exception types must be
identical. Skipped, saying why, only where no accelerator was built (no C compiler, or
MERCURY_PURE=1 at install); CI builds it (test.sh's pip install).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.transport import accelerator, fastwire
from tests.property.transport.test_transport_fast_paths import ANY_DATAGRAM

NATIVE = accelerator.load("mercury_rt.core.transport._fastwire")
pytestmark = pytest.mark.skipif(
    NATIVE is None, reason="no fresh C accelerator built (no C compiler at install, "
    "MERCURY_PURE=1, or a stale build: see the warning); the pure codec is in use")


def _pure_fastwire() -> ModuleType:
    """fastwire.py run again from its source, under another name, with no accelerator."""
    spec = importlib.util.spec_from_file_location("pure_fastwire", fastwire.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = os.environ.get(accelerator.PURE_ENV)
    os.environ[accelerator.PURE_ENV] = "1"
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del os.environ[accelerator.PURE_ENV]
        else:
            os.environ[accelerator.PURE_ENV] = saved
    return module


PURE = _pure_fastwire()


def outcome(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """What a call gave: its value, or the type of what it raised."""
    try:
        return "value", function(*args)
    except Exception as exc:
        return "raised", type(exc)


def test_the_accelerated_functions_are_the_ones_in_use_and_the_copy_is_pure() -> None:
    assert NATIVE is not None
    for name in ("read_request", "read_reply", "write_request", "write_reply"):
        assert getattr(fastwire, name) is getattr(NATIVE, name)
        assert getattr(PURE, name).__code__.co_filename == fastwire.__file__


def _head(major: int, value: int, form: int) -> bytes:
    """A CBOR head of `major` for `value` in one of the five forms, shortest or not."""
    if form == 0:
        return bytes((major + value % 24,))
    size = 1 << (form - 1)
    return bytes((major + 23 + form,)) + (value % (1 << (8 * size))).to_bytes(size, "big")


EDGES = [0, 1, 23, 24, 255, 256, 0xFFFF, 0x10000, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
VALUES = st.sampled_from(EDGES) | st.integers(0, 300) | st.integers(0, 2**64 - 1)
"""Values near each form's bounds (where a padded head becomes shortest) and any."""
HEADS = st.builds(_head, st.just(0), VALUES, st.integers(0, 4))
ODD_HEADS = st.builds(lambda first, rest: bytes((first,)) + rest,
                      st.integers(0, 255), st.binary(max_size=16))
"""Any bytes where a head should be: another major type, 28-31, truncated."""
PAYLOAD = st.binary(max_size=40)


@st.composite
def crafted(draw: st.DrawFn) -> bytes:
    """An envelope head, heads of every form for the ints, a payload head whose length
    may be shortest, padded, wrong or 8 bytes long, then the payload and maybe more."""
    envelope = draw(st.sampled_from([fastwire.REQUEST_HEAD, fastwire.REPLY_HEAD]))
    count = draw(st.integers(0, 7))
    ints = b"".join(draw(st.lists(HEADS | ODD_HEADS, min_size=count, max_size=count)))
    payload = draw(PAYLOAD)
    length = draw(st.sampled_from([len(payload), len(payload) + 1, max(len(payload) - 1, 0)])
                  | VALUES)
    head = _head(0x40, length, draw(st.integers(0, 4))) if draw(st.booleans()) else b""
    tail = draw(st.binary(max_size=2))
    return envelope + ints + head + payload + tail


DATAGRAMS = ANY_DATAGRAM | crafted() | st.binary(max_size=80)


@settings(max_examples=3000)
@given(DATAGRAMS)
def test_the_readers_give_the_pure_readers_results(data: bytes) -> None:
    assert NATIVE is not None
    assert outcome(NATIVE.read_request, data) == outcome(PURE.read_request, data)
    assert outcome(NATIVE.read_reply, data) == outcome(PURE.read_reply, data)


INTS = (st.sampled_from([*EDGES, 2**64, 2**65, -1, -(2**64)]) | st.integers(0, 2**64 - 1)
        | st.integers(-2**70, 2**70))
ARGS = INTS | st.booleans()
ODD_ARGS = ARGS | st.floats(allow_nan=False) | st.none() | st.text(max_size=2)
PAYLOADS = PAYLOAD | st.binary(min_size=0x100, max_size=0x10100) | st.text(max_size=4) \
    | st.none() | PAYLOAD.map(bytearray)


@given(st.lists(ARGS, min_size=6, max_size=6), PAYLOADS)
def test_the_writers_give_the_pure_writers_bytes(ints: list[Any], payload: Any) -> None:
    assert NATIVE is not None
    assert outcome(NATIVE.write_request, *ints, payload) == \
        outcome(PURE.write_request, *ints, payload)
    assert outcome(NATIVE.write_reply, *ints[:2], payload) == \
        outcome(PURE.write_reply, *ints[:2], payload)


@given(st.lists(ODD_ARGS, min_size=6, max_size=6), PAYLOADS)
def test_the_writers_raise_what_the_pure_writers_raise(args: list[Any], payload: Any) -> None:
    assert NATIVE is not None
    assert outcome(NATIVE.write_request, *args, payload) == \
        outcome(PURE.write_request, *args, payload)
    assert outcome(NATIVE.write_reply, *args[:2], payload) == \
        outcome(PURE.write_reply, *args[:2], payload)


@given(st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6), PAYLOAD)
def test_what_the_writers_write_the_readers_read_back(ints: list[int], payload: bytes) -> None:
    assert NATIVE is not None
    request = NATIVE.write_request(*ints, payload)
    reply = NATIVE.write_reply(*ints[:2], payload)
    assert NATIVE.read_request(request) == PURE.read_request(request)
    assert NATIVE.read_reply(reply) == PURE.read_reply(reply)
