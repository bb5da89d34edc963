"""First datagrams of transit sessions wait behind everything else a node receives.

A session's first datagram is the one request that costs a node real work before it
knows anything about the sender (HPKE open, then the gate's proof and EID checks: ~0.3-1
ms), while its sender pays only the bytes. Served in arrival order, a flood of them puts
every established caller's request behind a queue of that work. So a node opens them one
at a time, each after the event loop has had a turn to read and serve what else arrived
(in-session requests cost ~10 us of transit; a lone first datagram is served at once), and
at most `limit` wait at once: beyond
that a first datagram is answered OVERLOADED (203) at once, an honest answer its sender
retries after, instead of a queue that grows until callers time out (issue 17 item 1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.transit.wire import INIT, message_type

WAITING_LIMIT = 256
"""First datagrams waiting at once (~1 KB each while they wait)."""


class FirstDatagramsBusyError(MercuryError):
    """Too many first datagrams are waiting: the transport answers 203 (retry later)."""

    code = ErrorCode.OVERLOADED


def is_first_datagram(payload: bytes) -> bool:
    """Whether a transport request's payload claims to open a transit session."""
    return message_type(payload) == INIT


class FirstDatagramLane:
    """Runs first datagrams one at a time, each after a turn of the event loop."""

    def __init__(self, limit: int = WAITING_LIMIT) -> None:
        self.limit = limit
        self.waiting = 0
        self.shed = 0
        """First datagrams answered 203 because `limit` were waiting."""
        self._turn = asyncio.Lock()
        self._busy = False
        """A first datagram was served inline in this turn of the event loop."""

    def admit(self, serve: Callable[[], bytes | Awaitable[bytes]]) -> bytes | Awaitable[bytes]:
        """`serve()` now when it is the only first datagram of this loop turn (a quiet
        node answers a new session at once, with no ACK first); else `later(serve)`."""
        if self.waiting or self._busy:
            return self.later(serve)
        self._busy = True
        asyncio.get_running_loop().call_soon(self._idle)
        return serve()

    def _idle(self) -> None:
        self._busy = False

    def later(self, serve: Callable[[], bytes | Awaitable[bytes]]) -> Awaitable[bytes]:
        """`serve()`'s answer, once earlier first datagrams and a loop turn have passed;
        raises FirstDatagramsBusyError now if `limit` are waiting already."""
        if self.waiting >= self.limit:
            self.shed += 1
            raise FirstDatagramsBusyError("too many new sessions being opened; retry after 1 s")
        self.waiting += 1
        return self._run(serve)

    async def _run(self, serve: Callable[[], bytes | Awaitable[bytes]]) -> bytes:
        waiting = True
        try:
            async with self._turn:
                await asyncio.sleep(0)  # what arrived meanwhile is read and served first
                self.waiting, waiting = self.waiting - 1, False
                result = serve()
        finally:
            if waiting:  # cancelled while waiting
                self.waiting -= 1
        if isinstance(result, bytes):
            return result
        return await result
