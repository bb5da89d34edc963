"""The etcd side of a node's membership, with a `replication:` section: cluster-ID versions
are published by compare-and-swap on one etcd key and learnt by watching it.

Only moves data: the adapter (core/node/membership.py) proposes a version, this shell
tries the CAS (aio/etcd_versions.py) and reports back: won (`cas_won`), etcd unreachable
(`cas_failed`), or lost, with what a re-read found (`etcd_value`, which verifies it and
says whether to CAS again). At start and on every change the watch delivers, the key's
value goes to `etcd_value` too; a node that holds a newer version than etcd's (or finds
nothing valid there) puts its own. A watch that breaks resumes from its revision; one
whose revision was compacted re-reads the key and watches again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.etcd_versions import EtcdVersionStore, Published, after_put
from mercury_rt.core.identity import ClusterId
from mercury_rt.core.node import MembershipStep, NodeMembership
from tungsten.etcd_store import EtcdState, EventKind, WatchCompactedError

MAX_CAS_ROUNDS = 8
"""Lost CAS in a row on one proposal before giving up until the next tick."""
_log = structlog.get_logger("mercury_rt.membership.etcd")


class EtcdMembership:
    """Publishes and learns one node's cluster-ID versions on etcd. See module docstring."""

    def __init__(self, adapter: NodeMembership, etcd: EtcdState,
                 carry_out: Callable[[MembershipStep], None], interval: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.adapter = adapter
        self.store = EtcdVersionStore(etcd)
        self._carry_out = carry_out
        self._interval = interval
        self._live: Published | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seeding = False
        self.watch_restarts = 0

    def start(self) -> None:
        """Read the key and watch it (the first read also brings etcd up to date)."""
        self._spawn(self._watch_versions())

    async def stop(self) -> None:
        """Stop the watch and any CAS in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def propose(self, proposed: ClusterId) -> None:
        """Publish the adapter's proposal by CAS (reported back to the adapter)."""
        self._spawn(self._publish(proposed))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, proposed: ClusterId | None) -> None:
        """CAS `proposed` (None: the held version, to bring etcd up to date) until it is
        won, adopted over, no longer needed, or MAX_CAS_ROUNDS were lost."""
        candidate = proposed if proposed is not None else self.adapter.core.state.cluster_id
        try:
            for _ in range(MAX_CAS_ROUNDS):
                after = self._live
                signed = candidate.encode()
                if await self.store.publish(signed, after):
                    self._live = after_put(after, signed)
                    self._carry_out(self.adapter.cas_won(candidate, self._loop.time()))
                    return
                self._live = await self.store.current()
                live = None if self._live is None else self._live.signed
                step, again = self.adapter.etcd_value(live, self._loop.time(), proposed)
                self._carry_out(step)
                if again is None:
                    return
                candidate = again
            raise MercuryError(f"lost {MAX_CAS_ROUNDS} compare-and-swaps in a row on etcd's "
                               "cluster-ID key", ErrorCode.CLUSTER_ID_PUBLISHED_MEANWHILE)
        except MercuryError as exc:
            if proposed is not None:
                self._carry_out(self.adapter.cas_failed(proposed, exc.code, exc.message))
            else:
                _log.warning("cluster_id_not_put", code=exc.code.value, reason=exc.message,
                             effect="etcd holds an older cluster ID; retried on the next "
                                    "change")
        finally:
            if proposed is None:
                self._seeding = False

    async def _watch_versions(self) -> None:
        while True:
            try:
                found, revision = await self.store.read()
                self._seen(found)
                async with self.store.watch(revision + 1) as watch:
                    async for event in watch:
                        self._seen(Published(event.value, event.version)
                                   if event.kind is EventKind.PUT else None)
            except WatchCompactedError:
                self.watch_restarts += 1  # re-read at once: the history we needed is gone
            except MercuryError as exc:
                self.watch_restarts += 1
                _log.warning("cluster_id_watch_failed", code=exc.code.value,
                             reason=exc.message, effect="re-read and watched again")
                await asyncio.sleep(self._interval)

    def _seen(self, found: Published | None) -> None:
        """etcd's value now (read or watched): adopt, or put ours if etcd is behind."""
        self._live = found
        step, put = self.adapter.etcd_value(None if found is None else found.signed,
                                            self._loop.time())
        self._carry_out(step)
        if put is not None and not self._seeding:
            self._seeding = True
            self._spawn(self._publish(None))
