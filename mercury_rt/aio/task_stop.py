"""Stopping background tasks within a bound, even when a cancel is lost.

Why this exists: on Python 3.11 `asyncio.wait_for` returns its inner result, and drops
the cancel, when the inner await completes in the same loop step that the cancel
arrives (the cancel is "lost"); a watch task cancelled while it was opening a stream then
keeps running and feeding state its owner believes stopped. A cancelled gRPC call can
also fail to end. So a stop cancels, and cancels again any task still running after
RECANCEL_AFTER, until `timeout`; what is still running then is abandoned and returned
for the caller to log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

RECANCEL_AFTER = 0.5
"""Seconds between repeated cancels of a task that survived one (longer than a normal
cleanup after a cancel takes, so a cleanup is interrupted only when the cancel was lost
or the cleanup hangs)."""


async def cancel_within(tasks: Iterable[asyncio.Task[Any]],
                        timeout: float) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait for them, re-cancelling survivors, for at most `timeout`
    seconds. Exceptions the tasks ended with are retrieved (theirs to log), not raised.
    Returns the tasks still running at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending: set[asyncio.Task[Any]] = set()
    for task in tasks:
        if not task.done():
            pending.add(task)
        elif not task.cancelled():
            task.exception()
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        done, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_AFTER))
        for task in done:
            if not task.cancelled():
                task.exception()
    return pending


class WarningLog(Protocol):
    """The part of a structlog logger a stop uses."""

    def warning(self, event: str, **fields: Any) -> Any: ...


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], timeout: float, log: WarningLog,
                     event: str) -> int:
    """`cancel_within`, then one warning `event` naming how many tasks it abandoned (a
    stop that gave up on some must say so: they may still hold a connection). Returns
    that number."""
    abandoned = await cancel_within(tasks, timeout)
    if abandoned:
        log.warning(event, tasks=len(abandoned), timeout=timeout)
    return len(abandoned)


__all__ = ["RECANCEL_AFTER", "WarningLog", "cancel_within", "stop_tasks"]
