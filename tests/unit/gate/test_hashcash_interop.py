"""Interop, both directions, with the PyPI `hashcash` package and the Debian `hashcash` tool."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import hashcash
import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from mercury_rt.core.gate import (
    StampError,
    check_stamp,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from tests.gate_support import LOCAL

RESOURCE = stamp_resource(target_tag(Principal(LOCAL, b"shop")), 2, 5, request_digest(b"req"))
TOOL = shutil.which("hashcash")
needs_tool = pytest.mark.skipif(TOOL is None, reason="Debian `hashcash` tool not installed "
                                "(apt-get install hashcash)")
WINDOW = {"max_age": 86400, "max_future": 300}


@pytest.fixture
def utc() -> Iterator[None]:
    """The PyPI package writes local time; the protocol says UTC, so run it in UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.usefixtures("utc")
@pytest.mark.parametrize("bits", [4, 8, 12])
def test_pypi_minted_stamps_verify_here(bits: int) -> None:
    now = 1_800_000_000.0
    stamp = hashcash.mint(RESOURCE, bits=bits, now=now, stamp_seconds=True)
    assert check_stamp(stamp, RESOURCE, bits, now, **WINDOW).bits >= bits
    with pytest.raises(StampError) as info:
        check_stamp(stamp, RESOURCE.replace(".2.5.", ".2.6."), bits, now, **WINDOW)
    assert info.value.code is ErrorCode.HASHCASH_WRONG_RESOURCE


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_our_stamps_verify_with_pypi(bits: int) -> None:
    stamp = mint_stamp(RESOURCE, bits, 1_800_000_000.0, os.urandom(12))
    assert hashcash.check(stamp, RESOURCE, bits=bits) is True
    assert hashcash.check(stamp, RESOURCE + "0", bits=bits) is False


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    assert TOOL is not None
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30,
                          check=False)


@needs_tool
@pytest.mark.parametrize(("bits", "width"), [(8, "6"), (10, "10"), (12, "12")])
def test_debian_tool_stamps_verify_here(bits: int, width: str) -> None:
    minted = _tool("-mq", "-u", "-b", str(bits), "-z", width, RESOURCE)
    assert minted.returncode == 0, minted.stderr
    stamp = minted.stdout.strip()
    assert check_stamp(stamp, RESOURCE, bits, time.time(), **WINDOW).bits >= bits
    with pytest.raises(StampError):
        check_stamp(stamp, RESOURCE, bits + 1, time.time(), **WINDOW)


@needs_tool
@pytest.mark.parametrize("bits", [6, 9, 12])
def test_our_stamps_verify_with_the_debian_tool(bits: int) -> None:
    stamp = mint_stamp(RESOURCE, bits, time.time(), os.urandom(12))
    ok = _tool("-cq", "-u", "-y", "-b", str(bits), "-r", RESOURCE, stamp)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    wrong = _tool("-cq", "-u", "-y", "-b", str(bits), "-r", RESOURCE + "0", stamp)
    assert wrong.returncode != 0
    more = _tool("-cq", "-u", "-y", "-b", str(bits + 1), "-r", RESOURCE, stamp)
    assert more.returncode != 0
