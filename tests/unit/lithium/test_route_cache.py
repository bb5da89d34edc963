"""The Invoker's route cache: repeated calls skip the binding reads, and every change an
operator or a handler makes to bindings or handlers takes effect on the next call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from carbon.protocol_spec import Interface, OperationKind, SpecRegistry, request
from carbon.types import INT, dumps_typed, loads_typed
from lithium import HandlerRegistry, IncomingCall, Invoker, Reply, attach, detach
from lithium.bindings import bind
from lithium.dispatch import DispatchError, RouteCache
from tungsten.api import Snapshot, StateStore
from tungsten.memory import MemoryStore
from tungsten.staged import EntityChanges
from tungsten.store import LmdbStore

WHO = Interface("/example/who/v1", ops=[request(1, "who", None, int),
                                         request(2, "rebind", None, int)])
CALLER = Principal(b"\x01cluster", b"bob")


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = LmdbStore(tmp_path / "env") if request.param == "lmdb" else MemoryStore()
    yield made
    made.close()


def _registry() -> HandlerRegistry:
    handlers = HandlerRegistry()
    handlers.register("who.one", lambda ctx, msg: 1)
    handlers.register("who.two", lambda ctx, msg: 2)

    def rebind(ctx: Any, msg: None) -> int:
        """A handler that rebinds its own entity's op 1 (a self-configuring app)."""
        ctx.state.put("/argon/mercury/entity-handlers", (1, 1), ("who.two",))
        return 0

    handlers.register("who.rebind", rebind)
    return handlers


def _invoker(store: StateStore, registry: HandlerRegistry) -> Invoker:
    specs = SpecRegistry()
    with store.writing() as txn:
        attach(txn, b"alice", WHO, endpoint=1, specs=specs,
               handlers={"who": "who.one", "rebind": "who.rebind"})
    return Invoker(store, registry, specs)


def _ask(invoker: Invoker, op: int = 1) -> Reply:
    call = IncomingCall(b"alice", 1, op, OperationKind.REQUEST, b"\xf6", CALLER)
    return asyncio.run(invoker.invoke(call))


def _answer(reply: Reply) -> Any:
    assert reply.ok, reply
    assert reply.payload is not None
    return loads_typed(INT, reply.payload)


def test_repeated_calls_are_served_from_the_cache(store: StateStore) -> None:
    invoker = _invoker(store, _registry())
    assert [_answer(_ask(invoker)) for _ in range(5)] == [1] * 5
    assert (invoker.routes.misses, invoker.routes.hits) == (1, 4)
    invoker.close()


def test_an_operator_rebinding_takes_effect_on_the_next_call(store: StateStore) -> None:
    invoker = _invoker(store, _registry())
    assert _answer(_ask(invoker)) == 1
    with store.writing() as txn:
        bind(txn, b"alice", 1, 1, "who.two")
    assert _answer(_ask(invoker)) == 2
    with store.writing() as txn:
        detach(txn, b"alice", 1)
    assert _ask(invoker).code is ErrorCode.UNKNOWN_ENDPOINT
    invoker.close()


def test_a_handler_rebinding_through_its_state_takes_effect(store: StateStore) -> None:
    invoker = _invoker(store, _registry())
    assert _answer(_ask(invoker)) == 1
    assert _answer(_ask(invoker, op=2)) == 0
    assert _answer(_ask(invoker)) == 2
    invoker.close()


def test_unregistering_a_handler_needs_no_invalidation(store: StateStore) -> None:
    registry = _registry()
    invoker = _invoker(store, registry)
    assert _answer(_ask(invoker)) == 1
    registry.unregister("who.one")
    assert _ask(invoker).code is ErrorCode.HANDLER_NOT_REGISTERED
    registry.register("who.one", lambda ctx, msg: 11)
    assert _answer(_ask(invoker)) == 11
    invoker.close()


def test_refusals_are_not_cached_and_the_cache_is_bounded(store: StateStore) -> None:
    specs = SpecRegistry()
    with store.writing() as txn:
        for n in range(10):
            attach(txn, b"e%d" % n, WHO, endpoint=1, specs=specs, handlers={"who": "who.one"})
    routes = RouteCache(specs, max_entries=4)
    snapshot = store.snapshot()
    for n in range(10):
        routes.route(snapshot, IncomingCall(b"e%d" % n, 1, 1, OperationKind.REQUEST,
                                            dumps_typed(INT, 0), CALLER))
        assert len(routes) <= 4
    for n in range(10):
        with pytest.raises(DispatchError, match="no such entity"):
            routes.route(snapshot, IncomingCall(b"x%d" % n, 1, 1, OperationKind.REQUEST,
                                                b"\xf6", CALLER))
    snapshot.close()
    assert len(routes) == 4 and routes.misses == 20


def test_two_nodes_in_one_process_with_different_specs_for_one_symbol() -> None:
    """Routes and operations are shared between lookups only by identity: a node whose
    spec under the same symbol differs gets its own operation."""
    one = Interface("/example/same/v1", ops=[request(1, "a", None, int)])
    other = Interface("/example/same/v1", ops=[request(1, "b", int, int)])
    stores = [MemoryStore(), MemoryStore()]
    found = []
    for store, spec in zip(stores, (one, other), strict=True):
        specs = SpecRegistry()
        with store.writing() as txn:
            attach(txn, b"e", spec, endpoint=1, specs=specs, handlers={spec.operations[0].name:
                                                                       "who.one"})
        snapshot = store.snapshot()
        call = IncomingCall(b"e", 1, 1, OperationKind.REQUEST, b"\xf6", CALLER)
        found.append(RouteCache(specs).route(snapshot, call))
        snapshot.close()
    assert [r.operation.name for r in found] == ["a", "b"]


class _Elsewhere:
    """State held by another store, at the same dispatch version number as ours."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def fetch(self) -> Snapshot:
        return self.store.snapshot()

    async def commit(self, changes: EntityChanges) -> None:
        self.store.apply(changes.apply)


def test_state_from_another_store_is_never_routed_from_this_stores_cache() -> None:
    """Two stores whose dispatch versions happen to be equal: each call is routed by the
    bindings of the state it runs against."""
    home, away = MemoryStore(), MemoryStore()
    invoker = _invoker(home, _registry())
    with away.writing() as txn:
        attach(txn, b"alice", WHO, endpoint=1, handlers={"who": "who.two"})
    with home.reading() as a, away.reading() as b:
        assert a.dispatch_version() == b.dispatch_version()  # type: ignore[attr-defined]
    call = IncomingCall(b"alice", 1, 1, OperationKind.REQUEST, b"\xf6", CALLER)

    async def both() -> list[Any]:
        out = []
        for _ in range(2):
            out.append(_answer(await invoker.invoke(call)))
            out.append(_answer(await invoker.invoke(call, _Elsewhere(away))))
        return out

    assert asyncio.run(both()) == [1, 2, 1, 2]
    invoker.close()
