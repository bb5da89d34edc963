"""Group commit: many writes, one fsync, and no acknowledgement before durability.

Commits run with sync off (microseconds each). A handler that wrote waits here for its
commit's sequence number to become durable. The first waiter starts one `store.sync()`
in a dedicated thread; everyone who arrives while it runs shares that one future (one
waiter per batch), and anyone whose commit came after the sync began waits for the next.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tungsten.api import StateStore


class GroupCommitter:
    """Durability barrier shared by all invocations on one store."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tungsten-sync")
        self._inflight: asyncio.Future[int] | None = None
        self.syncs = 0
        """How many fsync barriers ran (commits / syncs is the batching factor)."""

    async def wait_durable(self, seq: int) -> None:
        """Return once commit `seq` is on stable storage; raises StateError if sync fails."""
        while self._store.durable_seq < seq:
            if self._inflight is None:
                loop = asyncio.get_running_loop()
                self._inflight = loop.run_in_executor(self._executor, self._store.sync)
                self._inflight.add_done_callback(self._finished)
                self.syncs += 1
            await asyncio.shield(self._inflight)

    def _finished(self, _: asyncio.Future[int]) -> None:
        self._inflight = None

    def close(self) -> None:
        """Stop the sync thread (after the last waiter)."""
        self._executor.shutdown(wait=True)
