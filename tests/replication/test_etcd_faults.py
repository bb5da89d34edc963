"""etcd faults under mirrored writes (issue 12 "Bad input and faults"): kill -9 of the etcd
leader, or freezing it (SIGSTOP: its sockets stay open, it answers nothing), under write
load loses no acknowledged write (and the pause is reported); with two of
three members stopped, writes fail with REPLICATION_UNAVAILABLE within the configured
bound and none is acknowledged. Each test has its own cluster (both break it)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.etcd_dev import leader_index, start_member, stop_member, wait_ready
from tests.etcd_support import EtcdCluster, etcd_cluster
from tests.replication.mirror_support import Mirror

__all__ = ["etcd_cluster"]
pytestmark = pytest.mark.net


@pytest.fixture
def cluster(etcd_cluster: EtcdCluster, tmp_path: Path) -> EtcdCluster:
    """The module's cluster with every member running (a test before may have killed one;
    a restarted member rejoins from its data dir)."""
    for member in etcd_cluster.members:
        if member.pid <= 0:
            start_member(member, etcd_cluster.members, tmp_path / f"{member.name}.log")
    wait_ready(etcd_cluster.members)
    return etcd_cluster


def _leader(cluster: EtcdCluster) -> int:
    deadline = time.monotonic() + 10
    while (found := leader_index(cluster.members)) is None:
        assert time.monotonic() < deadline, "no etcd leader"
    return found


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_killing_or_freezing_the_etcd_leader_under_write_load_loses_no_acknowledged_write(
        tmp_path: Path, cluster: EtcdCluster, fault: str) -> None:
    acked: list[str] = []
    failed: list[ErrorCode | None] = []
    ack_times: list[float] = []

    async def run() -> tuple[float, int]:
        settings = cluster.settings(b"f1/", timeout=10.0)
        a, b = Mirror(tmp_path / "a", settings), Mirror(tmp_path / "b", settings)
        stop = asyncio.Event()

        async def writer(mirror: Mirror, w: int) -> None:
            i = 0
            while not stop.is_set():
                key = f"w{w}-{i}"
                i += 1
                reply = await mirror.call("put", [key, "x"])
                if reply.ok:
                    acked.append(key)
                    ack_times.append(time.monotonic())
                else:
                    failed.append(reply.code)

        async def until(count: int) -> None:
            deadline = time.monotonic() + 30
            while len(acked) < count:
                assert time.monotonic() < deadline, "writes stopped"
                await asyncio.sleep(0.01)

        try:
            workers = [asyncio.ensure_future(writer(m, w))
                       for w, m in enumerate((a, b, a, b))]
            await until(200)
            victim = cluster.members[_leader(cluster)]
            killed = time.monotonic()
            if fault == "kill":
                await asyncio.to_thread(stop_member, victim, signal.SIGKILL)
            else:
                frozen.append(victim.pid)
                os.kill(victim.pid, signal.SIGSTOP)
            await until(len(acked) + 200)
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
            frozen.clear()
            stop.set()
            await asyncio.gather(*workers)
            times = [killed, *sorted(t for t in ack_times if t >= killed)]
            pause = max(later - earlier for earlier, later in itertools.pairwise(times))
            present = 0
            for key in acked:
                present += await a.value("read", key) == "x"
            return pause, present
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
            await a.close()
            await b.close()

    frozen: list[int] = []
    pause, present = asyncio.run(asyncio.wait_for(run(), 120))
    assert present == len(acked), f"{len(acked) - present} acknowledged writes lost"
    print(f"etcd leader {fault} under 4 writers: longest write pause {pause * 1e3:.0f} ms, "
          f"{len(acked)} acknowledged, 0 lost, {len(failed)} refused ({set(failed)})")
    assert all(code in (ErrorCode.REPLICATION_UNAVAILABLE, ErrorCode.STATE_CONFLICT)
               for code in failed)


def test_majority_lost_writes_fail_with_the_coded_error_and_none_is_acknowledged(
        tmp_path: Path, cluster: EtcdCluster) -> None:
    stopped = cluster.members[:2]
    timeout = 2.0

    async def attempts(mirror: Mirror) -> list[tuple[ErrorCode | None, float]]:
        out = []
        for i in range(5):
            started = time.monotonic()
            reply = await mirror.call("put", [f"lost{i}", "x"])
            out.append((reply.code, time.monotonic() - started))
        return out

    async def run() -> tuple[list[tuple[ErrorCode | None, float]], list[object]]:
        mirror = Mirror(tmp_path / "m", cluster.settings(b"f2/", timeout=timeout))
        try:
            await mirror.value("put", ["before", "x"])
            for member in stopped:
                await asyncio.to_thread(stop_member, member)
            outcomes = await attempts(mirror)
            for member in stopped:
                start_member(member, cluster.members, tmp_path / f"{member.name}.log")
            await asyncio.to_thread(wait_ready, cluster.members)
            seen = [await mirror.value("read", f"lost{i}") for i in range(5)]
            return outcomes, [await mirror.value("read", "before"), *seen]
        finally:
            await mirror.close()

    outcomes, seen = asyncio.run(asyncio.wait_for(run(), 120))
    assert [code for code, _ in outcomes] == [ErrorCode.REPLICATION_UNAVAILABLE] * 5
    assert max(took for _, took in outcomes) < timeout * 2 + 1.5
    assert seen == ["x", None, None, None, None, None]
    print(f"two of three etcd members stopped: 5 of 5 writes refused with 460 in at most "
          f"{max(t for _, t in outcomes):.2f} s; none acknowledged, none applied")
