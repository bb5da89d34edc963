"""The shell that keeps a node's mirror cache current: one etcd watch from the last
revision seen, fed event by event into tungsten's MirrorCache (which decides and writes).

Lifecycle: on start, read etcd's cluster id and revision (the cache drops copies of
another etcd cluster or prefix), then watch the entity keys (ENTITY_RANGE: not the spent
stamps, which would only be thrown away) from the cache's position (inclusive;
re-delivery of that revision is harmless). EtcdWatch itself resumes
a broken stream at the next member without missing an event; when no member answers
for the adapter's timeout it raises, and this loop starts a new watch from the position
once etcd answers again. When etcd compacted the history the watch needed, every copy is
dropped (each entity is re-read on its next request) and the watch restarts from now.

Correctness never depends on this task: a read uses its copy only when a linearizable
read finds the entity's head unchanged (mercury_rt/aio/replicated_state.py), so a slow,
broken or stopped watch only costs full reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import structlog

from carbon.error_codes import MercuryError
from mercury_rt.aio.task_stop import stop_tasks
from tungsten.cache_events import Advance, Forget, KeyEvent, epoch_of
from tungsten.etcd_store import (
    CLOSE_TIMEOUT,
    ENTITY_RANGE,
    EtcdState,
    EtcdWatch,
    EventKind,
    WatchCompactedError,
)
from tungsten.mirror_cache import MirrorCache

RETRY_AFTER = 0.5
"""Seconds between attempts to reach etcd again after the watch could not continue."""
_log = structlog.get_logger("mercury_rt.mirror_cache")


class MirrorWatch:
    """Feeds `cache` from `etcd` in a background task (`start`/`stop`)."""

    def __init__(self, etcd: EtcdState, cache: MirrorCache, logger: Any = None,
                 retry_after: float = RETRY_AFTER) -> None:
        self.etcd, self.cache = etcd, cache
        self._log = logger if logger is not None else _log
        self._retry_after = retry_after
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self.opened = asyncio.Event()
        """Set once the cache has been matched to etcd's cluster (reads may use it)."""
        self.watch: EtcdWatch | None = None
        """The stream in use, if any (tests kill the member it is connected to)."""
        self.counters: Counter[str] = Counter()
        """hits, fetches, installs, install_failures, advances, forgets, restarts,
        compactions (the node's metrics show them)."""

    def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop watching and keep the position for the next start. Bounded: a cancelled
        gRPC read can fail to end, and the node's shutdown must not wait for it for ever;
        a task that outlives its stop (a lost cancel) no longer feeds the cache."""
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks((task,), CLOSE_TIMEOUT, self._log, "mirror_cache_stop_abandoned")
        if self.cache.ready:
            with contextlib.suppress(MercuryError):
                self.cache.save_position()

    async def caught_up(self, revision: int) -> None:
        """Return once the watch has fed every event up to `revision` (tests, tools)."""
        while self.cache.seen < revision:
            event = self._progress
            await event.wait()

    def _owns(self) -> bool:
        """Whether the running task is this watch's current one (not one stopped)."""
        return self._task is not None and self._task is asyncio.current_task()

    async def _run(self) -> None:
        while self._owns():
            try:
                await self._watch_once()
            except WatchCompactedError as exc:
                self.counters["compactions"] += 1
                self._log.warning("mirror_cache_compacted", compacted=exc.compact_revision)
                await self._restart_from_now()
            except MercuryError as exc:
                self.counters["restarts"] += 1
                self._log.warning("mirror_cache_watch_failed", code=int(exc.code),
                                  reason=exc.message)
                await asyncio.sleep(self._retry_after)
            except Exception as exc:  # our own bug: keep the node serving (reads stay
                self.counters["restarts"] += 1  # correct without the watch), say so
                self._log.error("mirror_cache_watch_error", exc_info=exc)
                await asyncio.sleep(self._retry_after)

    async def _watch_once(self) -> None:
        revision, cluster_id = await self.etcd.position()
        if not self._owns():
            return
        prefix = self.etcd.settings.prefix
        if not self.cache.matches(cluster_id, prefix):
            self.cache.open(epoch_of(cluster_id, prefix))
        start = self.cache.resume()
        if start == 0:
            self.cache.restart_at(revision)
            start = revision
        self.opened.set()
        first, end = ENTITY_RANGE
        async with EtcdWatch(self.etcd, first, start, end=end) as watch:
            self.watch = watch
            try:
                async for event in watch:
                    if not self._owns():
                        return
                    self._feed(KeyEvent(event.mod_revision, event.key,
                                        None if event.kind is EventKind.DELETE
                                        else event.value))
            finally:
                if self.watch is watch:
                    self.watch = None

    async def _restart_from_now(self) -> None:
        try:
            revision, _ = await self.etcd.position()
        except MercuryError:
            await asyncio.sleep(self._retry_after)
            return
        if self._owns():
            self.cache.restart_at(revision)
            self._notify()

    def _feed(self, event: KeyEvent) -> None:
        for effect in self.cache.feed((event,)):
            if isinstance(effect, Advance):
                self.counters["advances"] += 1
            elif isinstance(effect, Forget):
                self.counters["forgets"] += 1
                self._log.info("mirror_cache_dropped", entity=effect.entity.hex(),
                               reason=effect.reason)
        self._notify()

    def _notify(self) -> None:
        """Wake `caught_up` waiters: the position moved."""
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()


__all__ = ["RETRY_AFTER", "MirrorWatch"]
