"""Stopping background tasks: a lost cancel must not leave a task running, and a task
that outlives its stop must not feed the mirror cache it no longer owns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from typing import Any

import pytest

from mercury_rt.aio import mirror_watch
from mercury_rt.aio.mirror_watch import MirrorWatch
from mercury_rt.aio.task_stop import cancel_within, stop_tasks


async def _swallows_cancels(times: int, ended: list[str]) -> None:
    """Behaves as a task whose cancel was lost `times` times (3.11 wait_for's race)."""
    for _ in range(times):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            continue
    try:
        await asyncio.Event().wait()
    finally:
        ended.append("ended")


def test_a_task_whose_cancel_was_lost_is_cancelled_again_until_it_ends() -> None:
    async def run() -> tuple[set[asyncio.Task[Any]], list[str]]:
        ended: list[str] = []
        task = asyncio.get_running_loop().create_task(_swallows_cancels(2, ended))
        await asyncio.sleep(0)
        return await cancel_within((task,), 5.0), ended

    abandoned, ended = asyncio.run(run())
    assert abandoned == set()
    assert ended == ["ended"]


def test_a_task_that_will_not_end_is_abandoned_at_the_deadline_and_returned() -> None:
    async def run() -> tuple[bool, bool]:
        release = asyncio.Event()

        async def stubborn() -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue

        task = asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)
        abandoned = await cancel_within((task,), 0.3)
        release.set()
        await task
        return task in abandoned, task.done()

    assert asyncio.run(run()) == (True, True)


def test_an_ended_task_s_exception_is_retrieved_not_raised() -> None:
    """Neither raised by the stop nor reported by asyncio as never retrieved."""
    reported: list[dict[str, Any]] = []

    async def run() -> set[asyncio.Task[Any]]:
        async def fails() -> None:
            raise RuntimeError("theirs to log")

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        tasks = [loop.create_task(fails()), loop.create_task(_swallows_cancels(0, []))]
        await asyncio.sleep(0)
        abandoned = await cancel_within(tasks, 1.0)
        del tasks
        gc.collect()
        return abandoned

    assert asyncio.run(run()) == set()
    assert reported == []


class _Settings:
    prefix = b"c/"


class _StuckEtcd:
    """An etcd whose position read ignores cancels until released (a lost cancel)."""

    settings = _Settings()

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def position(self) -> tuple[int, int]:
        self.entered.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                continue
        return 7, 1


class _RecordingCache:
    ready = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def record(*_: object) -> object:
            self.calls.append(name)
            return False if name == "matches" else 0
        return record


def test_a_watch_task_that_outlives_its_stop_leaves_the_cache_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_watch, "CLOSE_TIMEOUT", 0.3)

    async def run() -> tuple[list[str], bool]:
        etcd, cache = _StuckEtcd(), _RecordingCache()
        watch = MirrorWatch(etcd, cache)  # type: ignore[arg-type]
        watch.start()
        await etcd.entered.wait()
        task = watch._task
        await watch.stop()
        etcd.release.set()
        assert task is not None
        await asyncio.wait({task}, timeout=5)
        return cache.calls, task.done()

    calls, ended = asyncio.run(run())
    assert ended
    assert calls == []


def test_a_held_pump_stop_returns_only_once_its_attempts_have_ended() -> None:
    """The node closes the held store right after the pump's stop: an attempt still
    running then (its cancel lost once) would use a closed store."""
    from mercury_rt.aio.held_pump import HeldPump  # noqa: PLC0415
    from mercury_rt.core.node import HeldQueue, MemoryHeldStore, RetryPolicy  # noqa: PLC0415

    async def run() -> list[str]:
        ended: list[str] = []

        async def deliver(_request: object, _timeout: float) -> None:
            await _swallows_cancels(1, ended)

        pump = HeldPump(HeldQueue(MemoryHeldStore(), RetryPolicy()), random.Random(1),
                        deliver, 5.0)
        pump.start()
        attempt = asyncio.get_running_loop().create_task(deliver(None, 5.0))
        pump._retries.add(attempt)
        await asyncio.sleep(0)
        await pump.stop()
        return ended

    assert asyncio.run(run()) == ["ended"]


def test_a_stop_that_abandons_tasks_says_how_many_in_one_warning() -> None:
    class Log:
        def __init__(self) -> None:
            self.warnings: list[tuple[str, dict[str, Any]]] = []

        def warning(self, event: str, **fields: Any) -> None:
            self.warnings.append((event, fields))

    async def run() -> tuple[int, int, Log]:
        log, release = Log(), asyncio.Event()

        async def stubborn() -> None:
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await release.wait()

        ended: list[str] = []
        tasks = [asyncio.get_running_loop().create_task(stubborn()),
                 asyncio.get_running_loop().create_task(_swallows_cancels(1, ended))]
        await asyncio.sleep(0)
        gave_up = await stop_tasks(tasks, 0.7, log, "thing_stop_abandoned")
        quiet = await stop_tasks([tasks[1]], 0.7, log, "never_logged")
        release.set()
        await tasks[0]
        return gave_up, quiet, log

    gave_up, quiet, log = asyncio.run(run())
    assert (gave_up, quiet) == (1, 0)
    assert log.warnings == [("thing_stop_abandoned", {"tasks": 1, "timeout": 0.7})]
