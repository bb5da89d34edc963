"""TUNGSTEN stores: one suite, run against LMDB and the in-memory store alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from carbon.error_codes import ErrorCode
from carbon.symbols import Symbol
from mercury_rt.cli.entities import state
from tungsten.api import StateStore
from tungsten.errors import ClosedError, ConflictError, KeyTooLargeError, MapFullError
from tungsten.memory import MemoryStore
from tungsten.staged import StagedState
from tungsten.store import LmdbOptions, LmdbStore

S = Symbol("/test/section")
T = Symbol("/test/other")


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Each test runs on both backends: they must behave identically."""
    made: StateStore = LmdbStore(tmp_path / "env") if request.param == "lmdb" else MemoryStore()
    yield made
    made.close()


def test_put_get_delete_round_trip(store: StateStore) -> None:
    """What a transaction writes is read back after commit; deletes remove it."""
    with store.writing() as txn:
        txn.put(b"e1", S, (1, "a"), ("v", b"\x00", None, True, [1, 2], {"k": 3}))
        txn.put(b"e1", S, (2,), (2,))
    with store.reading() as view:
        assert view.get(b"e1", S, (1, "a")) == ("v", b"\x00", None, True, [1, 2], {"k": 3})
        assert view.get(b"e1", S, (3,)) is None
    with store.writing() as txn:
        assert txn.delete(b"e1", S, (2,)) is True
        assert txn.delete(b"e1", S, (2,)) is False
    with store.reading() as view:
        assert view.get(b"e1", S, (2,)) is None


def test_sections_and_entities_are_separate(store: StateStore) -> None:
    """A scan returns one entity's one section only, in key-byte order."""
    with store.writing() as txn:
        for i in (3, 1, 2):
            txn.put(b"e1", S, (i,), (i,))
        txn.put(b"e1", T, (1,), ("other section",))
        txn.put(b"e12", S, (1,), ("entity sharing a byte prefix",))
    with store.reading() as view:
        assert view.scan(b"e1", S) == [((1,), (1,)), ((2,), (2,)), ((3,), (3,))]
        assert view.scan(b"e1", S, limit=2) == [((1,), (1,)), ((2,), (2,))]
        assert view.scan(b"e2", S) == []


def test_exception_in_write_block_leaves_no_trace(store: StateStore) -> None:
    """All or nothing: a block that raises commits none of its writes."""
    with pytest.raises(RuntimeError), store.writing() as txn:
        txn.put(b"e", S, (1,), (1,))
        raise RuntimeError("boom")
    with store.reading() as view:
        assert view.get(b"e", S, (1,)) is None
    assert store.commit_seq == 0


def test_snapshot_does_not_see_later_commits(store: StateStore) -> None:
    """Reads are snapshot-consistent for the snapshot's whole life."""
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("old",))
    snap = store.snapshot()
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("new",))
        txn.put(b"e", S, (2,), ("added",))
    assert snap.get(b"e", S, (1,)) == ("old",)
    assert snap.scan(b"e", S) == [((1,), ("old",))]
    snap.close()
    with store.reading() as view:
        assert view.get(b"e", S, (1,)) == ("new",)
    with pytest.raises(ClosedError):
        snap.get(b"e", S, (1,))


def test_oversized_key_is_a_typed_error(store: StateStore) -> None:
    """Keys past LMDB's 511-byte limit fail clearly on both backends."""
    with pytest.raises(KeyTooLargeError) as info, store.writing() as txn:
        txn.put(b"e", S, ("x" * 600,), ())
    assert info.value.code is ErrorCode.STATE_KEY_TOO_LARGE


def test_sync_makes_commits_durable(store: StateStore) -> None:
    """The barrier covers every commit before it."""
    for i in range(3):
        with store.writing() as txn:
            txn.put(b"e", S, (i,), (i,))
    assert store.commit_seq == 3
    assert store.sync() == 3
    assert store.durable_seq == 3


def test_closed_store_refuses_use(store: StateStore) -> None:
    """Use after close is an error, not a crash."""
    store.close()
    with pytest.raises(ClosedError):
        store.snapshot()


def test_staged_commit_applies_writes_and_reads_own_writes(store: StateStore) -> None:
    """A staged transaction sees its own writes and commits them together."""
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("a",))
    snap = store.snapshot()
    staged = StagedState(snap)
    staged.put(b"e", S, (2,), ("b",))
    assert staged.delete(b"e", S, (1,)) is True
    assert staged.get(b"e", S, (1,)) is None
    assert staged.scan(b"e", S) == [((2,), ("b",))]
    seq = staged.commit(store)
    snap.close()
    assert seq == store.commit_seq
    with store.reading() as view:
        assert view.scan(b"e", S) == [((2,), ("b",))]


def test_staged_read_only_work_opens_no_write_transaction(store: StateStore) -> None:
    """Reading costs no commit and nothing to wait for."""
    with store.reading() as view:
        staged = StagedState(view)
        staged.get(b"e", S, (1,))
        assert staged.commit(store) is None
    assert store.commit_seq == 0


def test_staged_conflict_is_detected(store: StateStore) -> None:
    """A value read by one transaction and changed by another makes the first fail."""
    snap = store.snapshot()
    staged = StagedState(snap)
    assert staged.get(b"e", S, ("counter",)) is None
    staged.put(b"e", S, ("counter",), (1,))
    with store.writing() as txn:
        txn.put(b"e", S, ("counter",), (5,))
    with pytest.raises(ConflictError) as info:
        staged.commit(store)
    snap.close()
    assert info.value.code is ErrorCode.STATE_CONFLICT
    with store.reading() as view:
        assert view.get(b"e", S, ("counter",)) == (5,)


def test_staged_scan_conflict_is_detected(store: StateStore) -> None:
    """A section scanned by one transaction and grown by another makes the first fail."""
    snap = store.snapshot()
    staged = StagedState(snap)
    assert staged.scan(b"e", S) == []
    staged.put(b"e", T, ("summary",), (0,))
    with store.writing() as txn:
        txn.put(b"e", S, (1,), (1,))
    with pytest.raises(ConflictError):
        staged.commit(store)
    snap.close()


@pytest.mark.parametrize("limit", [-1, 0, 1, 2, 10])
def test_scan_limit_means_the_same_in_snapshots_and_writes(store: StateStore,
                                                           limit: int) -> None:
    """At most `limit` records (none for limit <= 0), whichever view scans, so a staged
    scan re-checked inside a write transaction sees what the handler saw."""
    with store.writing() as txn:
        for i in range(3):
            txn.put(b"e", S, (i,), (i,))
    expected = [((i,), (i,)) for i in range(3)][:max(limit, 0)]
    with store.reading() as view:
        assert view.scan(b"e", S, limit) == expected
    with store.writing() as txn:
        assert txn.scan(b"e", S, limit) == expected


def test_staged_scan_after_own_deletes_still_returns_limit_records(store: StateStore) -> None:
    """A handler that deleted records and then scans sees the next ones, exactly what the
    same scan shows once its writes are committed."""
    with store.writing() as txn:
        for i in range(5):
            txn.put(b"e", S, (i,), (i,))
    snap = store.snapshot()
    staged = StagedState(snap)
    staged.delete(b"e", S, (0,))
    staged.delete(b"e", S, (2,))
    assert staged.scan(b"e", S, 2) == [((1,), (1,)), ((3,), (3,))]
    staged.commit(store)
    snap.close()
    with store.reading() as view:
        assert view.scan(b"e", S, 2) == [((1,), (1,)), ((3,), (3,))]


def test_lmdb_map_grows_when_full(tmp_path: Path) -> None:
    """A full map doubles and apply() retries, up to max_map_size."""
    store = LmdbStore(tmp_path, LmdbOptions(map_size=64 * 1024, max_map_size=8 << 20))
    for i in range(40):
        store.apply(lambda txn, i=i: [txn.put(b"e", S, (i, j), (b"x" * 1000,))
                                      for j in range(20)])
    assert store.map_size > 64 * 1024
    with store.reading() as view:
        assert len(view.scan(b"e", S)) == 800
    store.close()


def test_lmdb_map_full_at_maximum_is_a_clear_error(tmp_path: Path) -> None:
    """At max_map_size the write fails with STATE_MAP_FULL and nothing is half-written."""
    store = LmdbStore(tmp_path, LmdbOptions(map_size=64 * 1024, max_map_size=64 * 1024))
    with pytest.raises(MapFullError) as info:
        store.apply(lambda txn: [txn.put(b"e", S, (j,), (b"x" * 1000,)) for j in range(200)])
    assert info.value.code is ErrorCode.STATE_MAP_FULL
    assert "max_map_size" in info.value.message
    with store.reading() as view:
        assert view.scan(b"e", S) == []
    store.close()


def test_lmdb_state_survives_reopen(tmp_path: Path) -> None:
    """Committed and synced state is there after a clean close and reopen."""
    store = LmdbStore(tmp_path)
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("kept",))
    store.close()
    again = LmdbStore(tmp_path)
    with again.reading() as view:
        assert view.get(b"e", S, (1,)) == ("kept",)
    again.close()


def test_lmdb_snapshots_share_a_transaction_until_a_commit(tmp_path: Path) -> None:
    """Snapshots reuse one read transaction between commits and release it when done."""
    store = LmdbStore(tmp_path)
    a, b = store.snapshot(), store.snapshot()
    assert store.open_snapshots == 2
    with store.writing() as txn:
        txn.put(b"e", S, (1,), (1,))
    c = store.snapshot()
    assert a.get(b"e", S, (1,)) is None
    assert c.get(b"e", S, (1,)) == (1,)
    for snap in (a, b, c):
        snap.close()
    assert store.open_snapshots == 0
    store.close()


def test_lmdb_verify_reports_foreign_records(tmp_path: Path) -> None:
    """verify() accepts our records and names ones that are not CARBON tuples."""
    store = LmdbStore(tmp_path)
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("fine",))
    report = store.verify()
    assert report.ok and report.records == 1 and report.entities == 1
    with store._env.begin(write=True) as raw:  # simulate damage by a foreign writer
        raw.put(b"\x01e\x0c/test/section\x81\x02", b"\xff")
    report = store.verify()
    assert not report.ok and report.records == 2
    assert "CorruptStateError" in report.problems[0]
    store.close()


def test_state_check_cli(tmp_path: Path) -> None:
    """`mercury-rt state check DIR` says ok for sound state."""
    store = LmdbStore(tmp_path)
    with store.writing() as txn:
        txn.put(b"e", S, (1,), ("fine",))
    store.close()
    result = CliRunner().invoke(state, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 records, 1 entities" in result.output and "state ok" in result.output


def test_lmdb_growth_waits_for_open_snapshots(tmp_path: Path) -> None:
    """A full map never invalidates open snapshots: growth waits until they close."""
    store = LmdbStore(tmp_path, LmdbOptions(map_size=64 * 1024, max_map_size=16 << 20))
    with store.writing() as txn:
        txn.put(b"e", S, ("before",), ("old",))
    snap = store.snapshot()
    with pytest.raises(MapFullError) as info:
        for i in range(30):
            store.apply(lambda txn, i=i: [txn.put(b"e", S, (i, j), (b"x" * 1500,))
                                          for j in range(10)])
    assert not info.value.grown and "retry" in info.value.message
    assert snap.get(b"e", S, ("before",)) == ("old",)
    with pytest.raises(MapFullError):
        store.snapshot()
    snap.close()
    assert store.map_size > 64 * 1024
    store.apply(lambda txn: txn.put(b"e", S, ("after",), ("new",)))
    with store.reading() as view:
        assert view.get(b"e", S, ("after",)) == ("new",)
    store.close()


def test_lmdb_grows_early_when_idle(tmp_path: Path) -> None:
    """Many small commits with no reader open grow the map before it is full."""
    store = LmdbStore(tmp_path, LmdbOptions(map_size=128 * 1024, max_map_size=16 << 20))
    for i in range(640):
        with store.writing() as txn:
            txn.put(b"e", S, (i,), (b"x" * 300,))
    assert store.map_size > 128 * 1024
    store.close()
