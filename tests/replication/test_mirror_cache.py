"""Each mirror's read cache (its own LMDB, kept current by a watch) on a real 3-member
etcd of this module's own (127.0.105.x): reads stay linearizable through two cached
mirrors, a write through A reaches B's cache through the watch and B then answers from
it, killing the member B's watch uses misses nothing, a compacted history drops the
copies and they are read again, a restarted mirror resumes its cache from LMDB, racing
cached mirrors lose no increment, and with the majority lost a read is refused (460), as
the operator guide says, never answered from the cache."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from carbon.symbols import Symbol
from carbon.types import dumps_typed
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.etcd_dev import stop_member
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from tests.etcd_support import EtcdCluster
from tests.replication.mirror_support import ENTITY, SECTION, Mirror
from tests.replication.own_etcd import all_running, etcdctl, member_at, own_cluster
from tests.replication.test_replicated_nodes import node_configs, start_node
from tungsten.cache_events import Effect, KeyEvent
from tungsten.etcd_store import EntityRead, EtcdState
from tungsten.mirror_cache import CACHE_ENTITY, MARK_SECTION
from tungsten.store import LmdbStore

pytestmark = pytest.mark.net
HOSTS = ("127.0.105.1", "127.0.105.2", "127.0.105.3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    yield from own_cluster(tmp_path_factory.mktemp("etcd-cache"), HOSTS)


@pytest.fixture
def etcd(cluster: EtcdCluster, tmp_path: Path) -> EtcdCluster:
    """The module's cluster with every member running (a test before may have killed
    some)."""
    return all_running(cluster, tmp_path)


def cached(mirror: Mirror, key: str) -> str | None:
    """What the mirror's cache holds for `key` (None: absent or entity not cached)."""
    assert mirror.watch is not None
    copy = mirror.watch.cache.read(ENTITY)
    try:
        found = copy.snapshot.get(ENTITY, Symbol(SECTION), (key,))
    finally:
        copy.snapshot.close()
    return None if found is None else str(found[0])


def etcd_records(mirror: Mirror) -> dict[bytes, bytes]:
    """The cache's copy of the entity as raw records (to compare with etcd's)."""
    assert mirror.watch is not None
    copy = mirror.watch.cache.read(ENTITY)
    try:
        records = copy.snapshot.entity_records(ENTITY, 1 << 30) or []
    finally:
        copy.snapshot.close()
    return {bytes((len(ENTITY),)) + ENTITY + suffix: value for suffix, value in records}


def test_the_head_check_sends_records_only_when_the_copy_is_stale(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    """read_entity with a known head: one linearizable read that says "unchanged" (no
    records) while the head has that mod revision, and returns the records, the new head
    and the stored reply otherwise."""
    async def run() -> tuple[EntityRead, EntityRead, EntityRead, EntityRead]:
        a = Mirror(tmp_path / "a", etcd.settings(b"c0/"), cached=False)
        try:
            never = await a.etcd.read_entity(ENTITY, known_head=0)
            await a.value("put", ["k", "v"], request_id=b"req-1")
            fresh = await a.etcd.read_entity(ENTITY, b"req-1", known_head=0)
            same = await a.etcd.read_entity(ENTITY, b"req-1", known_head=fresh.head)
            cold = await a.etcd.read_entity(ENTITY)
            return never, fresh, same, cold
        finally:
            await a.close()

    never, fresh, same, cold = asyncio.run(run())
    assert never.unchanged and never.records == {} and never.head == 0
    assert not fresh.unchanged and fresh.head > 0 and len(fresh.records) == 1
    assert fresh.stored_reply is not None
    assert same.unchanged and same.records == {} and same.head == fresh.head
    assert same.stored_reply == fresh.stored_reply
    assert same.revision >= fresh.revision and same.epoch == fresh.epoch != 0
    assert not cold.unchanged and cold.records == fresh.records


def test_a_write_through_a_is_read_through_b_in_1000_of_1000_trials_with_caches(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[int, int, int]:
        a, b = Mirror(tmp_path / "a", etcd.settings(b"c1/")), \
            Mirror(tmp_path / "b", etcd.settings(b"c1/"))
        watch = await b.ready()
        await a.ready()
        try:
            seen = 0
            for i in range(1000):
                await a.value("put", [f"k{i}", f"v{i}"])
                seen += await b.value("read", f"k{i}") == f"v{i}"
                seen += await b.value("read", f"k{i}") == f"v{i}"
            return seen, watch.counters["hits"], watch.counters["fetches"]
        finally:
            await a.close()
            await b.close()

    seen, hits, fetches = asyncio.run(run())
    assert seen == 2000
    assert hits >= 900  # the second read of each pair, at least, needed no records
    print(f"1000 writes through A, each read twice through B: {hits} reads from B's "
          f"cache, {fetches} full reads")


def test_a_write_through_a_reaches_bs_cache_through_the_watch(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[str | None, str | None, int, int]:
        a, b = Mirror(tmp_path / "a", etcd.settings(b"c2/")), \
            Mirror(tmp_path / "b", etcd.settings(b"c2/"))
        watch = await b.ready()
        try:
            assert await b.value("read", "x") is None  # B caches the entity
            assert watch.cache.mark(ENTITY) is not None
            await a.value("put", ["x", "1"])
            revision, _ = await a.etcd.position()
            await asyncio.wait_for(watch.caught_up(revision), 10)
            in_cache = cached(b, "x")
            hits = watch.counters["hits"]
            answered = await b.value("read", "x")
            assert isinstance(answered, str)
            return in_cache, answered, watch.counters["hits"] - hits, watch.counters["advances"]
        finally:
            await a.close()
            await b.close()

    in_cache, answered, new_hits, advances = asyncio.run(run())
    assert in_cache == "1"
    assert answered == "1"
    assert new_hits == 1
    assert advances >= 1


def test_a_flood_of_stamp_spends_never_reaches_the_caches_event_handler(
        tmp_path: Path, etcd: EtcdCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch covers the entity keys only: 200 stamps spent in the cluster (each a put
    under `t/`) are not streamed to the node to be thrown away; the next commit is."""
    async def run() -> list[bytes]:
        a = Mirror(tmp_path / "a", etcd.settings(b"c-stamps/"))
        watch = await a.ready()
        fed: list[bytes] = []
        head_seen = asyncio.Event()
        feed = watch.cache.feed

        def recording(events: Sequence[KeyEvent]) -> list[Effect]:
            fed.extend(e.key for e in events)
            if any(e.key.startswith(b"h/") for e in events):
                head_seen.set()
            return feed(events)

        monkeypatch.setattr(watch.cache, "feed", recording)
        try:
            for i in range(200):  # expiring after the module: a lease running out
                # mid-module would move etcd's revision under later tests' caught_up
                spent = await a.etcd.spend_stamp(i.to_bytes(32, "big"), b"request",
                                                 int(time.time()) + 7200, time.time())
                assert spent is None
            await a.value("put", ["x", "1"])
            await asyncio.wait_for(head_seen.wait(), 10)
            return fed
        finally:
            await a.close()

    fed = asyncio.run(run())
    assert not [key for key in fed if key.startswith(b"t/")]
    assert any(key.startswith(b"s/") for key in fed)


def test_killing_the_member_bs_watch_uses_misses_nothing(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[dict[bytes, bytes], dict[bytes, bytes], int, str | None]:
        a, b = Mirror(tmp_path / "a", etcd.settings(b"c3/")), \
            Mirror(tmp_path / "b", etcd.settings(b"c3/"))
        watch = await b.ready()
        try:
            await b.value("read", "k0")
            await a.value("put", ["k0", "before"])
            revision, _ = await a.etcd.position()
            await asyncio.wait_for(watch.caught_up(revision), 10)
            assert watch.watch is not None
            victim = member_at(etcd, watch.watch.endpoint)
            await asyncio.to_thread(stop_member, victim, signal.SIGKILL)
            for i in range(50):
                await a.value("put", [f"k{i}", f"after-{i}"])
            revision, _ = await a.etcd.position()
            await asyncio.wait_for(watch.caught_up(revision), 30)
            truth = (await a.etcd.read_entity(ENTITY)).records
            reopened = watch.watch.reopened if watch.watch is not None else -1
            return etcd_records(b), truth, reopened, cached(b, "k49")
        finally:
            await a.close()
            await b.close()

    copy, truth, reopened, last = asyncio.run(run())
    assert copy == truth
    assert last == "after-49"
    assert reopened >= 1


def test_a_compacted_history_drops_the_copies_and_they_are_read_again(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[int, object, object, str | None]:
        a, b = Mirror(tmp_path / "a", etcd.settings(b"c4/")), \
            Mirror(tmp_path / "b", etcd.settings(b"c4/"))
        watch = await b.ready()
        try:
            await b.value("read", "k")
            await watch.stop()  # B's watch falls behind ...
            for i in range(5):
                await a.value("put", ["k", f"v{i}"])
            revision, _ = await a.etcd.position()
            etcdctl(etcd, "compact", str(revision))  # ... past what etcd still keeps
            compactions = watch.counters["compactions"]
            watch.start()
            await asyncio.wait_for(watch.caught_up(revision), 10)
            dropped = watch.cache.mark(ENTITY)
            answered = await b.value("read", "k")
            await a.value("put", ["k", "after"])
            revision, _ = await a.etcd.position()
            await asyncio.wait_for(watch.caught_up(revision), 10)
            return watch.counters["compactions"] - compactions, dropped, answered, \
                cached(b, "k")
        finally:
            await a.close()
            await b.close()

    compactions, dropped, answered, later = asyncio.run(run())
    assert compactions == 1
    assert dropped is None
    assert answered == "v4"
    assert later == "after"


def test_a_restarted_mirror_resumes_its_cache_from_lmdb(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[str | None, object, int, int]:
        a = Mirror(tmp_path / "a", etcd.settings(b"c5/"))
        b = Mirror(tmp_path / "b", etcd.settings(b"c5/"))
        await b.ready()
        await b.value("read", "k")
        await b.close()  # B stops; A writes meanwhile
        try:
            await a.value("put", ["k", "while-away"])
            revision, _ = await a.etcd.position()
            again = Mirror(tmp_path / "b", etcd.settings(b"c5/"))
            try:
                watch = await again.ready()
                await asyncio.wait_for(watch.caught_up(revision), 10)
                in_cache = cached(again, "k")
                answered = await again.value("read", "k")
                return in_cache, answered, watch.counters["hits"], watch.counters["fetches"]
            finally:
                await again.close()
        finally:
            await a.close()

    in_cache, answered, hits, fetches = asyncio.run(run())
    assert in_cache == "while-away"  # resumed from its stored position, not re-read
    assert answered == "while-away"
    assert (hits, fetches) == (1, 0)


def test_two_cached_mirrors_racing_lose_no_increment(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[int, int, int, int]:
        a, b = Mirror(tmp_path / "a", etcd.settings(b"c6/")), \
            Mirror(tmp_path / "b", etcd.settings(b"c6/"))
        acked = 0

        async def worker(mirror: Mirror, count: int) -> None:
            nonlocal acked
            done = 0
            while done < count:
                reply = await mirror.call("add", 1)
                if reply.code is ErrorCode.STATE_CONFLICT:
                    continue
                assert reply.ok, (reply.code, reply.message)
                done += 1
                acked += 1

        try:
            watches = [await a.ready(), await b.ready()]
            await asyncio.gather(*(worker(m, 100) for m in (a, b, a, b)))
            hits = sum(w.counters["hits"] for w in watches)
            reruns = a.invoker.counters["conflict_retries"] + \
                b.invoker.counters["conflict_retries"]
            return acked, int(str(await b.value("get"))), hits, reruns
        finally:
            await a.close()
            await b.close()

    acked, total, hits, reruns = asyncio.run(run())
    assert (acked, total) == (400, 400)
    assert hits > 0  # handlers ran on cached copies, and still no increment was lost
    print(f"400 racing increments on two cached mirrors: {hits} ran on the cache, "
          f"{reruns} re-ran after a failed compare")


def test_with_the_majority_lost_a_cached_read_is_refused_not_answered_stale(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    async def run() -> tuple[ErrorCode | None, float, object]:
        b = Mirror(tmp_path / "b", etcd.settings(b"c7/", timeout=2.0))
        try:
            await b.ready()
            await b.value("put", ["k", "v"])
            assert await b.value("read", "k") == "v"
            assert cached(b, "k") == "v"
            for member in etcd.members[:2]:
                await asyncio.to_thread(stop_member, member, signal.SIGKILL)
            loop = asyncio.get_running_loop()
            started = loop.time()
            refused = await b.call("read", "k")
            took = loop.time() - started
            await asyncio.to_thread(all_running, etcd, tmp_path)
            return refused.code, took, await b.value("read", "k")
        finally:
            await b.close()

    code, took, after = asyncio.run(run())
    assert code is ErrorCode.REPLICATION_UNAVAILABLE
    assert took < 5.0
    assert after == "v"


def test_real_nodes_keep_their_cache_in_state_dir_etcd_cache(
        tmp_path: Path, etcd: EtcdCluster) -> None:
    """Two `mercury-rt node run` processes with a `replication:` section serve calls;
    after they stop, each node's `state_dir/etcd-cache` holds only entities it mirrors,
    and a copy whose head is etcd's current head holds exactly etcd's records."""
    configs = node_configs(tmp_path, etcd, NODE_HOSTS)
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()

    async def main() -> None:
        procs = {n: await start_node(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.106.9", ()),)),
                                   TransportConfig(initial_rto=0.2, min_rto=0.02, max_rto=2.0))
        try:
            for i in range(40):
                await home.nodes["h1"].call(carol, 1, 1, dumps_typed(str, f"t{i}"),
                                            caller=b"probe", timeout=10.0)
                await home.nodes["h1"].call(carol, 1, 2, dumps_typed(None, None),
                                            caller=b"probe", timeout=10.0)
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                await asyncio.wait_for(proc.wait(), 60)
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 150))
    truth = asyncio.run(read_truth(etcd))
    copies = {node: node_copy(tmp_path / "state" / node / "etcd-cache") for node in configs}
    assert any(mark is not None for mark, _ in copies.values())
    for mark, (entities, records) in copies.values():
        assert entities <= {b"carol"}
        if mark is not None and mark[1] == truth.head:
            assert records == truth.records


NODE_HOSTS = (("n1", "127.0.106.1", 10), ("n2", "127.0.106.2", 20))




async def read_truth(cluster: EtcdCluster) -> EntityRead:
    state = EtcdState(cluster.settings(b"nodes/"))
    try:
        return await state.read_entity(b"carol")
    finally:
        await state.close()


def node_copy(directory: Path) -> tuple[tuple[int, int] | None,
                                        tuple[set[bytes], dict[bytes, bytes]]]:
    """(carol's mark, (every cached entity, carol's records)) of a stopped node's cache."""
    store = LmdbStore(directory)
    view = store.snapshot()
    try:
        marks = {key[0]: value for key, value in view.scan(CACHE_ENTITY, MARK_SECTION)}
        found = view.entity_records(b"carol", 1 << 30) or []
    finally:
        view.close()
        store.close()
    mark = marks.get(b"carol")
    entities = {e for e in marks if isinstance(e, bytes)}
    records = {bytes((5,)) + b"carol" + suffix: value for suffix, value in found}
    if mark is None:
        return None, (entities, records)
    reflects, head = mark
    assert isinstance(reflects, int) and isinstance(head, int)
    return (reflects, head), (entities, records)
