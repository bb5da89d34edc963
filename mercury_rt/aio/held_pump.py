"""One-way messages no node of their target took: held, retried when due, settled.

Which failures hold a message and when it is tried again are the core's rules
(mercury_rt/core/node/held.py, `should_hold`, `settle_attempt`); this module is the
asyncio loop around them: it wakes at the queue's next due time, runs one delivery
attempt per due message at a time, and resolves the waiters of a message that settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import structlog

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.aio.call_driver import NodeCallError
from mercury_rt.aio.task_stop import stop_tasks
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import CallRequest, HeldMessage, HeldQueue, HeldState, settle_attempt

_log = structlog.get_logger("mercury_rt.node")

STOP_TIMEOUT = 2.0
"""Seconds a stop waits for the retry loop and the attempts in flight to end."""

Deliver = Callable[[CallRequest, float], Awaitable[None]]
"""One delivery attempt of a one-way message within a timeout; raises NodeCallError."""


class HeldPump:
    """Retries a node's held messages through `deliver`, each attempt within
    `attempt_timeout` seconds. `start` inside the event loop; `stop` cancels."""

    def __init__(self, queue: HeldQueue, rng: random.Random, deliver: Deliver,
                 attempt_timeout: float) -> None:
        self.queue = queue
        self._rng = rng
        self._deliver = deliver
        self._attempt_timeout = attempt_timeout
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._settled: dict[bytes, list[asyncio.Future[HeldMessage]]] = {}

    def start(self) -> None:
        """Recover the held messages of an earlier run and start retrying."""
        if self.queue.recover():
            self._changed.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the retry loop and every attempt in flight, and wait (bounded) until
        they have ended: the node closes the held store next, and a task that outlived
        its cancel (a lost one, see task_stop.py) would go on using it."""
        tasks = [task for task in (self._task, *self._retries) if task is not None]
        self._task = None
        await stop_tasks(tasks, STOP_TIMEOUT, _log, "held_pump_stop_abandoned")

    async def flush(self, timeout: float) -> int:
        """One last attempt for every pending message now (a draining node), within
        `timeout`; returns how many are still pending. They stay in the held store (durable
        on LMDB) and are retried when the node starts again."""
        due, _ = self.queue.poll(time.time(), all_due=True)
        loop = asyncio.get_running_loop()
        for record in due:
            task = loop.create_task(self._retry_one(record))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        if self._retries:
            await asyncio.wait(list(self._retries), timeout=timeout)
        return self.queue.pending_count()

    def hold(self, request: CallRequest) -> HeldMessage:
        """Hold a one-way message (a request with a message id) for later delivery."""
        assert request.message_id is not None
        held = self.queue.hold(request.message_id, request.caller, request.target.encode(),
                               cbor.dumps([request.endpoint, request.operation,
                                           request.payload]),
                               now=time.time(), rng=self._rng)
        self._changed.set()
        return held

    async def settled(self, message_id: bytes) -> HeldMessage:
        """Wait until a held message is no longer PENDING; returns its final record."""
        record = self.queue.status(message_id)
        if record.state is not HeldState.PENDING:
            return record
        future: asyncio.Future[HeldMessage] = asyncio.get_running_loop().create_future()
        self._settled.setdefault(message_id, []).append(future)
        return await future

    def _settle(self, record: HeldMessage) -> None:
        for future in self._settled.pop(record.message_id, []):
            if not future.done():
                future.set_result(record)

    async def _run(self) -> None:
        """Retry held messages when due; one attempt per message at a time."""
        while True:
            wake = self.queue.next_wakeup()
            delay = None if wake is None else max(wake - time.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)
            self._changed.clear()
            due, expired = self.queue.poll(time.time())
            for record in expired:
                _log.info("held_message_expired", message_id=record.message_id.hex())
                self._settle(record)
            for record in due:
                task = asyncio.get_running_loop().create_task(self._retry_one(record))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)

    async def _retry_one(self, record: HeldMessage) -> None:
        endpoint, operation, payload = _held_parts(record.payload)
        code: int | None = None
        try:
            await self._deliver(CallRequest(
                Eid.decode(record.target), endpoint, operation, payload, record.sender,
                record.message_id[:8], message_id=record.message_id), self._attempt_timeout)
        except NodeCallError as exc:
            code = exc.raw_code
            _log.info("held_message_attempt_failed", message_id=record.message_id.hex(),
                      code=code, reason=exc.message)
        after = settle_attempt(self.queue, record.message_id, code, time.time(), self._rng)
        if after.state is HeldState.PENDING:
            self._changed.set()
        else:
            self._settle(after)


def _held_parts(data: bytes) -> tuple[int, int, bytes]:
    """(endpoint, operation, payload) of a held message, as `HeldPump.hold` stored them."""
    value = cbor.loads(data)
    if (not isinstance(value, list) or len(value) != 3 or type(value[0]) is not int
            or type(value[1]) is not int or type(value[2]) is not bytes):
        raise NodeCallError("held message record is corrupt", ErrorCode.HELD_RECORD_CORRUPT)
    return value[0], value[1], value[2]
