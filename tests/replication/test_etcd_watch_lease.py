"""Watch and lease primitives of the etcd adapter against a real 3-member etcd: a watch
delivers every change from its start revision once and in order, also when the member it
is connected to is killed mid-stream; a compacted revision is a typed error; a watch buffers
at most one (fragmented) response; a lease kept alive outlives its TTL, and its keys vanish
when it is revoked or no longer renewed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.etcd_dev import stop_member
from tests.etcd_support import EtcdCluster
from tests.replication.own_etcd import all_running, etcdctl, member_at, own_cluster
from tungsten.etcd_store import (
    MAX_TXN_BYTES,
    EtcdState,
    EtcdWatch,
    EventKind,
    LeaseExpiredError,
    WatchCompactedError,
    WatchEvent,
    grant_lease,
    keep_alive,
    put_on_lease,
    read_range,
    refresh_lease,
    revoke_lease,
)

pytestmark = pytest.mark.net


@pytest.fixture(scope="module")
def module_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    yield from own_cluster(tmp_path_factory.mktemp("etcd-wl"),
                           ("127.0.103.1", "127.0.103.2", "127.0.103.3"))


@pytest.fixture
def etcd(module_etcd: EtcdCluster, tmp_path: Path) -> EtcdCluster:
    return all_running(module_etcd, tmp_path)


async def _take(watch: EtcdWatch, count: int, timeout: float = 20.0) -> list[WatchEvent]:
    async def collect() -> list[WatchEvent]:
        return [await anext(watch) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


def test_a_watch_delivers_history_and_new_changes_in_order(etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"w1/"))
        try:
            start = (await read_range(state, b"k/", prefix=True)).revision + 1
            await state._run(lambda c: c.put(b"w1/k/a", b"1"))
            await state._run(lambda c: c.put(b"w1/other", b"x"))  # outside the prefix
            async with EtcdWatch(state, b"k/", start, prefix=True) as watch:
                await state._run(lambda c: c.put(b"w1/k/b", b"2"))
                await state._run(lambda c: c.delete(b"w1/k/a"))
                got = await _take(watch, 3)
            assert [(e.kind, e.key, e.value) for e in got] == [
                (EventKind.PUT, b"k/a", b"1"), (EventKind.PUT, b"k/b", b"2"),
                (EventKind.DELETE, b"k/a", b"")]
            assert got[0].mod_revision < got[1].mod_revision < got[2].mod_revision
            assert got[0].version == 1 and got[2].version == 0
            single = await read_range(state, b"k/b")
            assert [(e.key, e.value) for e in single.entries] == [(b"k/b", b"2")]
        finally:
            await state.close()

    asyncio.run(run())


def test_killing_the_watched_member_mid_stream_misses_and_repeats_nothing(
        etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"w2/", timeout=15.0))
        total = 120
        try:
            start = (await read_range(state, b"", prefix=True)).revision + 1
            watch = EtcdWatch(state, b"", start, prefix=True)
            await state._run(lambda c: c.put(b"w2/n0", b"0"))
            first = await _take(watch, 1)
            victim = member_at(etcd, watch.endpoint)

            async def writer() -> list[int]:
                revisions = []
                for n in range(1, total):
                    key, value = f"w2/n{n}".encode(), str(n).encode()
                    done = await state._run(lambda c, k=key, v=value: c.put(k, v))
                    revisions.append(int(done.header.revision))
                    if n == total // 3:
                        await asyncio.to_thread(stop_member, victim, signal.SIGKILL)
                return revisions

            writes = asyncio.ensure_future(writer())
            rest = await _take(watch, total - 1, timeout=60)
            revisions = await writes
            await watch.close()
            got = first + rest
            assert [e.value for e in got] == [str(n).encode() for n in range(total)]
            assert [e.mod_revision for e in rest] == revisions
            assert watch.reopened >= 1
        finally:
            await state.close()

    asyncio.run(run())


def test_a_watch_from_a_compacted_revision_is_a_typed_error(etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"w3/"))
        try:
            old = (await read_range(state, b"q")).revision
            for n in range(3):
                await state._run(lambda c, n=n: c.put(b"w3/other", str(n).encode()))
            now = (await read_range(state, b"q")).revision
            etcdctl(etcd, "compact", str(now))
            watch = EtcdWatch(state, b"q", old)
            with pytest.raises(WatchCompactedError) as caught:
                await _take(watch, 1)
            assert caught.value.code is ErrorCode.WATCH_COMPACTED
            assert caught.value.compact_revision == now
            with pytest.raises(StopAsyncIteration):
                await anext(watch)  # closed: the caller re-reads and watches again
        finally:
            await state.close()

    asyncio.run(run())


def test_a_broken_watch_whose_resume_point_was_compacted_says_so(etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"w4/", timeout=15.0))
        try:
            start = (await read_range(state, b"quiet")).revision + 1
            watch = EtcdWatch(state, b"quiet", start)
            await state._run(lambda c: c.put(b"w4/quiet", b"1"))
            assert [e.value for e in await _take(watch, 1)] == [b"1"]
            for n in range(3):
                await state._run(lambda c, n=n: c.put(b"w4/busy", str(n).encode()))
            now = (await read_range(state, b"quiet")).revision
            etcdctl(etcd, "compact", str(now))
            await asyncio.to_thread(stop_member, member_at(etcd, watch.endpoint),
                                    signal.SIGKILL)
            with pytest.raises(WatchCompactedError):
                await _take(watch, 1)
        finally:
            await state.close()

    asyncio.run(run())


def test_a_watch_buffers_one_fragment_of_a_large_backlog(etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"w5/"))
        value = b"v" * 100_000
        count = 40  # 4 MB of backlog: etcd must split it into several responses
        try:
            start = (await read_range(state, b"big/", prefix=True)).revision + 1
            for n in range(count):
                await state._run(lambda c, n=n: c.put(b"w5/big/%d" % n, value))
            most = 0
            async with EtcdWatch(state, b"big/", start, prefix=True) as watch:
                for n in range(count):
                    event = await asyncio.wait_for(anext(watch), 20)
                    assert event.key == b"big/%d" % n and event.value == value
                    most = max(most, watch.buffered_bytes + len(event.key) + len(value))
            # etcd fragments at its request limit plus 512 KiB of gRPC allowance
            assert most <= MAX_TXN_BYTES + 512 * 1024 + len(value)
        finally:
            await state.close()

    asyncio.run(run())


def test_a_lease_kept_alive_outlives_its_ttl_and_revoking_deletes_its_key(
        etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"l1/"))
        try:
            lease = await grant_lease(state, 1)
            revision = await put_on_lease(state, b"alive", b"me", lease)
            watch = EtcdWatch(state, b"alive", revision + 1)
            keeper = asyncio.ensure_future(keep_alive(state, lease, interval=0.2))
            with pytest.raises(TimeoutError):  # 3 TTLs pass without the key vanishing
                await asyncio.wait_for(anext(watch), 3.0)
            assert not keeper.done()
            assert (await read_range(state, b"alive")).entries[0].lease == lease.id
            await revoke_lease(state, lease)
            gone = await _take(watch, 1)
            assert gone[0].kind is EventKind.DELETE
            with pytest.raises(LeaseExpiredError):
                await asyncio.wait_for(keeper, 5)
            await revoke_lease(state, lease)  # already gone: not an error
            with pytest.raises(LeaseExpiredError) as caught:
                await refresh_lease(state, lease)
            assert caught.value.code is ErrorCode.LEASE_EXPIRED
            await watch.close()
        finally:
            await state.close()

    asyncio.run(run())


def test_a_lease_not_renewed_expires_and_its_key_vanishes(etcd: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd.settings(b"l2/"))
        try:
            lease = await grant_lease(state, 1)
            revision = await put_on_lease(state, b"node", b"x", lease)
            async with EtcdWatch(state, b"node", revision + 1) as watch:
                gone = await _take(watch, 1, timeout=10)
            assert gone[0].kind is EventKind.DELETE
            assert (await read_range(state, b"node")).entries == ()
            with pytest.raises(LeaseExpiredError):
                await keep_alive(state, lease, interval=0.01)
        finally:
            await state.close()

    asyncio.run(run())
