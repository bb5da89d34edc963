"""Mirrors of one entity share its state through etcd (issue 12 items 1 and 2): a write
through A is read through B, concurrent increments on two mirrors lose nothing, a request
retried at another mirror after the first answered nothing runs once, and a change set
over etcd's limits is refused with its code on the node that ran the handler."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from tests.etcd_support import EtcdCluster, etcd_cluster
from tests.replication.mirror_support import Mirror

__all__ = ["etcd_cluster"]
pytestmark = pytest.mark.net


def _pair(tmp_path: Path, cluster: EtcdCluster, prefix: bytes) -> tuple[Mirror, Mirror]:
    settings = cluster.settings(prefix)
    return Mirror(tmp_path / "a", settings), Mirror(tmp_path / "b", settings)


def test_a_write_through_a_is_read_through_b_in_1000_of_1000_trials(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    async def run() -> int:
        a, b = _pair(tmp_path, etcd_cluster, b"m1/")
        try:
            seen = 0
            for i in range(1000):
                await a.value("put", [f"k{i}", f"v{i}"])
                seen += await b.value("read", f"k{i}") == f"v{i}"
            return seen
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(run()) == 1000


def test_two_mirrors_incrementing_concurrently_1000_times_reach_1000(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    async def run() -> tuple[int, int, int]:
        a, b = _pair(tmp_path, etcd_cluster, b"m2/")
        acked = conflicts = 0

        async def worker(mirror: Mirror, count: int) -> None:
            nonlocal acked, conflicts
            done = 0
            while done < count:
                reply = await mirror.call("add", 1)
                if reply.code is ErrorCode.STATE_CONFLICT:  # "retry", as the code says
                    conflicts += 1
                    continue
                assert reply.ok, (reply.code, reply.message)
                done += 1
                acked += 1

        try:
            await asyncio.gather(*(worker(m, 250) for m in (a, b, a, b)))
            return acked, int(str(await b.value("get"))), conflicts
        finally:
            await a.close()
            await b.close()

    acked, total, conflicts = asyncio.run(run())
    assert acked == 1000
    assert total == 1000
    print(f"1000 concurrent increments on two mirrors: counter 1000, {conflicts} caller retries")


def test_a_request_retried_at_b_after_a_committed_runs_once(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    async def run() -> tuple[object, object, object]:
        a, b = _pair(tmp_path, etcd_cluster, b"m3/")
        try:
            first = await a.value("add", 5, request_id=b"caller-7")  # A's answer is "lost"
            retried = await b.value("add", 5, request_id=b"caller-7")
            return first, retried, await b.value("get")
        finally:
            await a.close()
            await b.close()

    first, retried, total = asyncio.run(run())
    assert first == retried == 5
    assert total == 5


def test_a_change_set_over_etcd_limits_is_refused_with_its_code(
        tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    async def run() -> tuple[ErrorCode | None, str, object]:
        a, b = _pair(tmp_path, etcd_cluster, b"m4/")
        try:
            reply = await a.call("fill", 200)
            return reply.code, reply.message, await b.value("read", "k0")
        finally:
            await a.close()
            await b.close()

    code, message, stored = asyncio.run(run())
    assert code is ErrorCode.REPLICATION_CHANGE_TOO_LARGE
    assert "128" in message
    assert stored is None
