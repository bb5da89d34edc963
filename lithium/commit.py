"""Group commit: many writes, one fsync, and no acknowledgement before durability.

Commits run with sync off (microseconds each). A handler that wrote waits here until its
commit's sequence number is durable. One background syncer runs `store.sync()` in a
dedicated thread, back to back, for as long as anyone waits: every commit made while one
fsync runs is covered by the next, so batches grow with load by themselves. The syncer is
started with `create_task`, so callers already runnable in this loop iteration commit
before the first fsync begins. All waiters share one future per sync (one waiter per
batch), and each re-checks its own sequence number when it completes.
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
        self._wanted = 0
        self._syncer: asyncio.Task[None] | None = None
        self._progress: asyncio.Future[None] | None = None
        self.syncs = 0
        """How many fsync barriers ran (commits / syncs is the batching factor)."""

    async def wait_durable(self, seq: int) -> None:
        """Return once commit `seq` is on stable storage; raises if the sync fails."""
        loop = asyncio.get_running_loop()
        self._wanted = max(self._wanted, seq)
        while self._store.durable_seq < seq:
            if self._progress is None:
                self._progress = loop.create_future()
            if self._syncer is None:
                self._syncer = loop.create_task(self._run_syncs())
            await asyncio.shield(self._progress)

    async def _run_syncs(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._store.durable_seq < self._wanted:
                try:
                    await loop.run_in_executor(self._executor, self._store.sync)
                except Exception as exc:
                    self._finish_batch(exc)
                    return
                self.syncs += 1
                self._finish_batch(None)
        finally:
            self._syncer = None

    def _finish_batch(self, error: Exception | None) -> None:
        """Wake everyone waiting on this sync; they re-check their own sequence."""
        progress, self._progress = self._progress, None
        if progress is None or progress.done():
            return
        if error is None:
            progress.set_result(None)
        else:
            progress.set_exception(error)

    def close(self) -> None:
        """Stop the sync thread (after the last waiter)."""
        self._executor.shutdown(wait=True)
