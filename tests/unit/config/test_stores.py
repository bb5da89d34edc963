"""LMDB-backed held-message and spent-stamp stores: same behaviour as the memory ones, durable."""

from __future__ import annotations

import ast
import inspect
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.config import DurableSpentStore, held_store, spent_store
from mercury_rt.core.gate import MemorySpentStore, SpendResult, SpentStampStore
from mercury_rt.core.node import HeldQueue, HeldState, HeldStore, MemoryHeldStore, RetryPolicy
from tungsten import spent_store as spent_module
from tungsten.api import StateStore
from tungsten.errors import CorruptStateError, StateError
from tungsten.held_store import LmdbHeldStore
from tungsten.memory import MemoryStore
from tungsten.node_state import HELD_SECTION, NODE_ENTITY, SPENT_EXPIRY_SECTION
from tungsten.spent_store import LmdbSpentStore, SpendOutcome
from tungsten.store import LmdbStore

POLICY = RetryPolicy(initial_delay=1.0, factor=2.0, max_delay=8.0, jitter=0.0, ttl=60.0)


@pytest.fixture
def lmdb_store(tmp_path: Path) -> Iterator[LmdbStore]:
    store = LmdbStore(tmp_path / "env")
    yield store
    store.close()


def _protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(protocol, name)) for name in vars(protocol)
            if not name.startswith("_") and callable(getattr(protocol, name))}


def test_held_store_matches_the_core_protocol_exactly() -> None:
    """tungsten cannot import the protocol; the method names and signatures must still match."""
    wanted = _protocol_methods(HeldStore)
    assert set(wanted) == {"get", "put", "delete", "items"}
    for name, signature in wanted.items():
        assert inspect.signature(getattr(LmdbHeldStore, name)) == signature, name


def test_spent_store_matches_the_core_protocol() -> None:
    """Same parameters; the tungsten outcome maps one-to-one onto SpendResult via its value."""
    wanted = _protocol_methods(SpentStampStore)["add_if_absent"]
    ours = inspect.signature(LmdbSpentStore.add_if_absent)
    assert list(ours.parameters) == list(wanted.parameters)
    assert [p.annotation for p in ours.parameters.values()] == \
        [p.annotation for p in wanted.parameters.values()]
    assert inspect.signature(DurableSpentStore.add_if_absent) == wanted
    assert {o.value for o in SpendOutcome} == {r.value for r in SpendResult}



@pytest.fixture(params=["memory", "tungsten-memory", "lmdb"])
def held_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[
        tuple[HeldStore, Callable[[], HeldStore]]]:
    """(store, reopen): reopen gives the store a restarted node would see."""
    if request.param == "memory":
        memory = MemoryHeldStore()
        yield memory, lambda: memory
        return
    if request.param == "tungsten-memory":
        state = MemoryStore()
        yield held_store(state), lambda: held_store(state)
        return
    opened: list[LmdbStore] = [LmdbStore(tmp_path / "env")]

    def reopen() -> HeldStore:
        opened[-1].close()
        opened.append(LmdbStore(tmp_path / "env"))
        return held_store(opened[-1])
    yield held_store(opened[0]), reopen
    opened[-1].close()


def hold(q: HeldQueue, mid: bytes, now: float = 0.0) -> None:
    q.hold(mid, b"alice", b"bob-eid", b"hello", now=now, rng=random.Random(0))


def test_held_store_basic_calls(held_backend: tuple[HeldStore, Any]) -> None:
    store, _ = held_backend
    assert store.get(b"x") is None
    store.put(b"b", b"2")
    store.put(b"a", b"1")
    store.put(b"a", b"1'")
    assert store.get(b"a") == b"1'"
    assert sorted(store.items()) == [(b"a", b"1'"), (b"b", b"2")]
    store.delete(b"a")
    store.delete(b"a")
    assert list(store.items()) == [(b"b", b"2")]


def test_held_queue_survives_restart(held_backend: tuple[HeldStore, Any]) -> None:
    """The shared restart scenario of the held queue, over each backend (LMDB reopened)."""
    store, reopen = held_backend
    q = HeldQueue(store, POLICY)
    hold(q, b"a")
    hold(q, b"b")
    q.poll(1.0)
    q.acknowledged(b"b", 1.1)
    restarted = HeldQueue(reopen(), POLICY)
    assert restarted.status(b"b").state is HeldState.DELIVERED
    assert restarted.status(b"a").in_flight
    assert restarted.recover() == 1
    [again] = restarted.poll(1.2)[0]
    assert again.message_id == b"a" and again.attempts == 2


def test_held_queue_reports_a_corrupt_record(held_backend: tuple[HeldStore, Any]) -> None:
    store, reopen = held_backend
    hold(HeldQueue(store, POLICY), b"m1")
    store.put(b"bad", b"\xff")
    restarted = HeldQueue(reopen(), POLICY)
    assert restarted.corrupt_ids == [b"bad"]
    assert restarted.status(b"m1").state is HeldState.PENDING


def test_held_store_refuses_to_truncate() -> None:
    store = LmdbHeldStore(MemoryStore(), max_items=2)
    for mid in (b"a", b"b", b"c"):
        store.put(mid, b"r")
    with pytest.raises(StateError):
        list(store.items())


def test_foreign_record_in_the_held_section_is_a_typed_error() -> None:
    state = MemoryStore()
    with state.writing() as w:
        w.put(NODE_ENTITY, HELD_SECTION, ("text-id",), (b"r",))
    with pytest.raises(CorruptStateError) as info:
        list(LmdbHeldStore(state).items())
    assert info.value.code is ErrorCode.STATE_CORRUPT


@pytest.fixture(params=["memory", "tungsten-memory", "lmdb"])
def spent_factory(request: pytest.FixtureRequest,
                  lmdb_store: LmdbStore) -> Callable[[int], SpentStampStore]:
    if request.param == "memory":
        return MemorySpentStore
    backing: StateStore = MemoryStore() if request.param == "tungsten-memory" else lmdb_store
    return lambda limit: spent_store(backing, limit)


def test_spent_store_refuses_replays_expires_and_is_bounded(
        spent_factory: Callable[[int], Any]) -> None:
    """The memory store's scenario, word for word, over each backend."""
    store = spent_factory(2)
    assert store.add_if_absent(b"a", 100, 0) is SpendResult.ADDED
    assert store.add_if_absent(b"a", 100, 1) is SpendResult.ALREADY_SPENT
    assert store.add_if_absent(b"b", 200, 2) is SpendResult.ADDED
    assert store.add_if_absent(b"c", 200, 3) is SpendResult.FULL
    assert store.add_if_absent(b"c", 200, 100) is SpendResult.ADDED
    assert len(store) == 2
    assert store.add_if_absent(b"d", 300, 150) is SpendResult.FULL
    assert store.add_if_absent(b"a", 300, 200) is SpendResult.ADDED


def test_spent_stamps_survive_a_restart(tmp_path: Path) -> None:
    """A replay after a node restart is still refused; the bound still counts old stamps."""
    first = LmdbStore(tmp_path / "env")
    store = DurableSpentStore(first, limit=2)
    assert store.add_if_absent(b"a", 100, 0) is SpendResult.ADDED
    assert store.add_if_absent(b"b", 100, 0) is SpendResult.ADDED
    first.close()
    second = LmdbStore(tmp_path / "env")
    again = DurableSpentStore(second, limit=2)
    assert len(again) == 2
    assert again.add_if_absent(b"a", 100, 1) is SpendResult.ALREADY_SPENT
    assert again.add_if_absent(b"c", 100, 1) is SpendResult.FULL
    assert again.add_if_absent(b"c", 200, 100) is SpendResult.ADDED
    assert len(again) == 1
    second.close()


def test_purge_crosses_batches_and_leaves_nothing_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spent_module, "PURGE_BATCH", 3)
    state = MemoryStore()
    store = LmdbSpentStore(state, limit=100)
    for i in range(10):
        assert store.add_if_absent(bytes([i]), 10 + i, 0) is SpendOutcome.ADDED
    assert store.add_if_absent(b"new", 100, 15) is SpendOutcome.ADDED  # drops expiries <= 15
    assert len(store) == 5
    with state.reading() as view:
        remaining = [k[0] for k, _ in view.scan(NODE_ENTITY, SPENT_EXPIRY_SECTION)]
    assert remaining == [16, 17, 18, 19, 100]


def test_spent_store_validates_its_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        LmdbSpentStore(MemoryStore(), limit=0)


@pytest.mark.parametrize("module", ["held_store", "spent_store", "node_state"])
def test_tungsten_stores_respect_the_dependency_direction(module: str) -> None:
    """tungsten sits below lithium and mercury_rt and only store.py may touch lmdb."""
    source = (Path(__file__).parents[3] / "tungsten" / f"{module}.py").read_text()
    imported = {node.module or "" for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Import) for alias in node.names}
    roots = {name.split(".")[0] for name in imported}
    assert roots <= {"__future__", "collections", "enum", "carbon", "tungsten"}, roots
