"""The dispatch version: what lets a node cache call routes and still see every change to
its bindings, including changes another process makes to the same LMDB environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon import cbor
from carbon.symbols import Symbol
from lithium.bindings import (
    ENDPOINTS_SECTION,
    ENTITY_SECTION,
    HANDLERS_SECTION,
    PERSONAS_SECTION,
    bind,
    bound_handler,
)
from tungsten.api import StateStore
from tungsten.keys import DISPATCH_SECTIONS, DISPATCH_VERSION_KEY
from tungsten.memory import MemoryStore
from tungsten.remote import image_snapshot, read_image
from tungsten.staged import StagedState
from tungsten.store import FOREIGN_COMMIT_CHECK, LmdbStore

ROOT = Path(__file__).resolve().parents[3]
APP = Symbol("/app/counter")


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = LmdbStore(tmp_path / "env") if request.param == "lmdb" else MemoryStore()
    yield made
    made.close()


def _version(store: StateStore) -> int | None:
    snapshot = store.snapshot()
    try:
        return snapshot.dispatch_version()
    finally:
        snapshot.close()


def test_tungsten_tracks_exactly_the_sections_dispatch_reads() -> None:
    assert {s.text for s in (ENTITY_SECTION, ENDPOINTS_SECTION, PERSONAS_SECTION,
                             HANDLERS_SECTION)} == DISPATCH_SECTIONS


def test_a_dispatch_change_bumps_once_per_transaction_and_nothing_else_does(
        store: StateStore) -> None:
    assert _version(store) == 0
    with store.writing() as txn:
        bind(txn, b"e", 1, 1, "h.a")
        bind(txn, b"e", 1, 2, "h.b", persona_class=Symbol("/p/red"))
        txn.delete(b"e", ENDPOINTS_SECTION, (9,))
    assert _version(store) == 1
    with store.writing() as txn:
        txn.put(b"e", APP, ("n",), (1,))
    assert _version(store) == 1, "an application write must not invalidate routes"
    with store.writing() as txn:
        txn.delete(b"e", HANDLERS_SECTION, (1, 1))
    assert _version(store) == 2


def test_an_aborted_transaction_leaves_the_version(store: StateStore) -> None:
    with pytest.raises(RuntimeError), store.writing() as txn:
        bind(txn, b"e", 1, 1, "h.a")
        raise RuntimeError("abort")
    assert _version(store) == 0


def test_a_handlers_staged_write_to_a_dispatch_section_bumps(store: StateStore) -> None:
    snapshot = store.snapshot()
    staged = StagedState(snapshot)
    bind(staged, b"e", 1, 1, "h.a")
    staged.commit(store)
    staged.discard()
    snapshot.close()
    assert _version(store) == 1


def test_an_open_snapshot_keeps_its_version(store: StateStore) -> None:
    old = store.snapshot()
    with store.writing() as txn:
        bind(txn, b"e", 1, 1, "h.a")
    assert old.dispatch_version() == 0
    assert _version(store) == 1
    old.close()


def test_the_version_record_is_no_entity_record(store: StateStore) -> None:
    with store.writing() as txn:
        bind(txn, b"e", 1, 1, "h.a")
    with store.reading() as view:
        assert view.scan(b"e", HANDLERS_SECTION) == [((1, 1), ("h.a",))]
    snapshot = store.snapshot()
    image = read_image(snapshot, b"e")
    snapshot.close()
    assert all(DISPATCH_VERSION_KEY not in record for record in image)
    assert image_snapshot(b"e", cbor.loads(cbor.dumps(image))).dispatch_version() is None, \
        "an image from another node cannot tell its version: never served from a cache"
    if isinstance(store, LmdbStore):
        report = store.verify()
        assert report.ok and report.records == 1 and report.entities == 1


def test_verify_names_an_unknown_store_record(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "env")
    with store._env.begin(write=True) as txn:
        txn.put(b"\x00something-else", b"\x81\x01")
        txn.put(DISPATCH_VERSION_KEY, b"\x81\x20")  # (-1,): not a version
    report = store.verify()
    store.close()
    assert not report.ok and len(report.problems) == 2 and report.records == 0


def test_another_process_binding_the_same_env_changes_the_version(tmp_path: Path) -> None:
    """An operator's tool (another process) rebinds while the node has the env open: within
    FOREIGN_COMMIT_CHECK the node's snapshots show the rebinding, with a new version."""
    path, now = tmp_path / "env", [0.0]
    store = LmdbStore(path, clock=lambda: now[0])
    with store.writing() as txn:
        bind(txn, b"e", 1, 1, "h.a")
    before = _version(store)
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from lithium.bindings import bind
        from tungsten.store import FOREIGN_COMMIT_CHECK, LmdbStore
        store = LmdbStore({str(path)!r})
        with store.writing() as txn:
            bind(txn, b"e", 1, 1, "h.b")
        store.close()
    """)
    subprocess.run([sys.executable, "-c", child], check=True, timeout=60)
    now[0] += FOREIGN_COMMIT_CHECK
    snapshot = store.snapshot()
    assert bound_handler(snapshot, b"e", 1, 1) == "h.b"
    assert snapshot.dispatch_version() == (before or 0) + 1
    snapshot.close()
    store.close()


def test_other_processes_commits_are_looked_for_at_a_bounded_rate(tmp_path: Path) -> None:
    """Between checks a snapshot reuses the shared read (no LMDB call per request)."""
    now = [0.0]
    store = LmdbStore(tmp_path / "env", clock=lambda: now[0])
    first = store.snapshot()
    second = store.snapshot()
    assert first._shared is second._shared
    first.close()
    second.close()
    store.close()
