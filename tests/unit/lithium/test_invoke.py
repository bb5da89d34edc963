"""Dispatch and transactional invocation: every miss has its code, handlers cannot hurt."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from carbon.error_codes import ErrorCode
from carbon.interfaces import EndpointError
from carbon.metadata import METADATA_SPEC
from carbon.principal import Persona, Principal
from carbon.protocol_spec import (
    Interface,
    OperationKind,
    SpecRegistry,
    connection,
    message,
    request,
)
from carbon.symbols import Symbol
from carbon.types import INT, NULL, dumps_typed, loads_typed, record
from lithium import HandlerRegistry, IncomingCall, InvokeLimits, Invoker, Reply, attach, detach
from lithium.bindings import ENDPOINTS_SECTION, bind, bound_handler
from lithium.registry import HandlerIdError
from tungsten.api import StateStore
from tungsten.memory import MemoryStore
from tungsten.store import LmdbOptions, LmdbStore

COUNTER = Interface("/example/counter/v1", ops=[
    request(1, "add", record(n=int), int),
    message(2, "reset", None),
    request(3, "peek", None, int),
    request(4, "broken", None, int),
])
ADD = record(n=int)
SECTION = "/example/counter"
VIP = Symbol("/example/persona/vip")
BOB = Principal(b"\x01cluster", b"bob")


def _registry() -> HandlerRegistry:
    handlers = HandlerRegistry()

    @handlers.handler("counter.add")
    def add(ctx: Any, msg: dict[str, int]) -> int:
        (total,) = ctx.state.get(SECTION, ("total",)) or (0,)
        ctx.state.put(SECTION, ("total",), (total + msg["n"],))
        return int(total) + msg["n"]

    @handlers.handler("counter.add-vip")
    def add_vip(ctx: Any, msg: dict[str, int]) -> int:
        return -1

    @handlers.handler("counter.peek")
    async def peek(ctx: Any, msg: None) -> int:
        (total,) = ctx.state.get(SECTION, ("total",)) or (0,)
        return int(total)

    @handlers.handler("counter.broken")
    def broken(ctx: Any, msg: None) -> int:
        ctx.state.put(SECTION, ("total",), (999,))
        raise RuntimeError("secret internal detail")

    handlers.register("counter.wrong-type", lambda ctx, msg: "not an int")
    return handlers


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Invocation behaves the same on both backends."""
    made: StateStore = LmdbStore(tmp_path / "env") if request.param == "lmdb" else MemoryStore()
    yield made
    made.close()


def _node(store: StateStore, handlers: HandlerRegistry | None = None,
          **limits: Any) -> Invoker:
    specs = SpecRegistry()
    with store.writing() as txn:
        attach(txn, b"alice", COUNTER, endpoint=1, specs=specs, handlers={
            "add": "counter.add", "peek": "counter.peek", "broken": "counter.broken"})
        bind(txn, b"alice", 1, 1, "counter.add-vip", persona_class=VIP)
    return Invoker(store, handlers or _registry(), specs, limits=InvokeLimits(**limits),
                   clock=lambda: 100.0)


def _call(endpoint: int = 1, op: int = 1, payload: bytes | None = None, **kw: Any) -> IncomingCall:
    kind = kw.pop("kind", OperationKind.REQUEST)
    body = dumps_typed(ADD, {"n": 1}) if payload is None else payload
    return IncomingCall(kw.pop("entity", b"alice"), endpoint, op, kind, body, BOB, **kw)


def _run(invoker: Invoker, *calls: IncomingCall) -> list[Reply]:
    async def go() -> list[Reply]:
        return list(await asyncio.gather(*(invoker.invoke(c) for c in calls)))
    try:
        return asyncio.run(go())
    finally:
        invoker.close()


def _total(store: StateStore) -> Any:
    with store.reading() as view:
        return view.get(b"alice", Symbol(SECTION), ("total",))


def test_request_runs_handler_and_commits(store: StateStore) -> None:
    """A handler that returns commits its writes; the reply is typed bytes."""
    (reply,) = _run(_node(store), _call(payload=dumps_typed(ADD, {"n": 5})))
    assert reply.ok and reply.payload is not None
    assert loads_typed(INT, reply.payload) == 5
    assert _total(store) == (5,)
    assert store.durable_seq >= store.commit_seq


NULL_BYTES = dumps_typed(NULL, None)


@pytest.mark.parametrize(("call", "code"), [
    (_call(entity=b"nobody"), ErrorCode.ENTITY_NOT_ON_NODE),
    (_call(endpoint=9), ErrorCode.UNKNOWN_ENDPOINT),
    (_call(op=77), ErrorCode.UNKNOWN_OPERATION),
    (_call(op=2, payload=NULL_BYTES), ErrorCode.WRONG_OPERATION_KIND),
    (_call(op=2, payload=NULL_BYTES, kind=OperationKind.MESSAGE), ErrorCode.NO_HANDLER_BOUND),
    (_call(payload=dumps_typed(record(n=str), {"n": "x"})), ErrorCode.PAYLOAD_TYPE_MISMATCH),
    (_call(payload=b"\xff"), ErrorCode.MALFORMED),
    (_call(persona=Persona(Symbol("/example/persona/unknown"))), ErrorCode.UNKNOWN_PERSONA),
    (_call(op=3, payload=NULL_BYTES, deadline=99.0), ErrorCode.DEADLINE_EXPIRED),
])
def test_each_bad_call_has_its_own_code(store: StateStore, call: IncomingCall,
                                        code: ErrorCode) -> None:
    """Bad addresses, kinds, payloads and personas are refused before any handler runs."""
    (reply,) = _run(_node(store), call)
    assert reply.code is code, reply
    assert _total(store) is None


def test_missing_handler_registration_is_distinct(store: StateStore) -> None:
    """A tuple naming an ID no code registered answers HANDLER_NOT_REGISTERED."""
    invoker = _node(store)
    with store.writing() as txn:
        bind(txn, b"alice", 1, 3, "counter.gone")
    (reply,) = _run(invoker, _call(op=3, payload=NULL_BYTES))
    assert reply.code is ErrorCode.HANDLER_NOT_REGISTERED


def test_persona_tuple_wins_and_plain_tuple_is_the_fallback(store: StateStore) -> None:
    """With a persona, its own tuple is used first; other operations fall back."""
    vip = Persona(VIP, params={"tier": 1})
    add, peek = _run(_node(store), _call(persona=vip),
                     _call(op=3, payload=NULL_BYTES, persona=vip))
    assert add.payload is not None and loads_typed(INT, add.payload) == -1
    assert peek.ok


def test_raising_handler_leaves_no_trace_and_leaks_nothing(store: StateStore) -> None:
    """The error reply carries a code and an incident number, not the exception text."""
    with capture_logs() as logs:
        (reply,) = _run(_node(store), _call(op=4, payload=NULL_BYTES))
    assert reply.code is ErrorCode.HANDLER_FAILED
    assert "secret" not in reply.message and "RuntimeError" not in reply.message
    assert _total(store) is None
    assert logs[0]["event"] == "handler_failed" and logs[0]["handler_id"] == "counter.broken"


def test_a_state_key_over_the_stores_limit_is_402_with_its_reason(store: StateStore) -> None:
    """The handler asked for something the store cannot hold: STATE_KEY_TOO_LARGE saying
    so, not an opaque HANDLER_FAILED (issue 16 item 21); nothing is written."""
    handlers = _registry()
    handlers.register("counter.big-key", lambda ctx, msg: ctx.state.put(
        SECTION, ("k" * 600,), (1,)) or 0)
    invoker = _node(store, handlers)
    with store.writing() as txn:
        bind(txn, b"alice", 1, 3, "counter.big-key")
    (reply,) = _run(invoker, _call(op=3, payload=NULL_BYTES))
    assert reply.code is ErrorCode.STATE_KEY_TOO_LARGE
    assert "limit" in reply.message
    assert _total(store) is None


def test_a_connection_operation_called_as_a_request_is_423(store: StateStore) -> None:
    """Without the connection field's open form (protocol.md 5.3, 5.9) a call is a REQUEST
    or MESSAGE: a CONNECTION operation is refused with WRONG_OPERATION_KIND before any
    handler runs."""
    specs = SpecRegistry()
    session = Interface("/example/session/v1", ops=[connection(1, "open", None, int)])
    handlers = HandlerRegistry()
    handlers.register("session.open", lambda ctx, msg: 1)
    with store.writing() as txn:
        attach(txn, b"alice", session, endpoint=2, specs=specs,
               handlers={"open": "session.open"})
    invoker = Invoker(store, handlers, specs, clock=lambda: 100.0)
    (reply,) = _run(invoker, _call(endpoint=2, op=1, payload=NULL_BYTES))
    assert reply.code is ErrorCode.WRONG_OPERATION_KIND


def test_wrong_reply_type_is_a_typed_error(store: StateStore) -> None:
    """A handler returning the wrong type cannot put bad bytes on the wire."""
    invoker = _node(store)
    with store.writing() as txn:
        bind(txn, b"alice", 1, 3, "counter.wrong-type")
    (reply,) = _run(invoker, _call(op=3, payload=NULL_BYTES))
    assert reply.code is ErrorCode.REPLY_TYPE_MISMATCH


def test_hanging_async_handler_times_out(store: StateStore) -> None:
    """An async handler that never finishes is cancelled at the timeout."""
    handlers = _registry()

    @handlers.handler("counter.hang")
    async def hang(ctx: Any, msg: None) -> int:
        ctx.state.put(SECTION, ("total",), (1,))
        await asyncio.Event().wait()
        return 0

    invoker = _node(store, handlers, timeout=0.01)
    with store.writing() as txn:
        bind(txn, b"alice", 1, 3, "counter.hang")
    (reply,) = _run(invoker, _call(op=3, payload=NULL_BYTES))
    assert reply.code is ErrorCode.HANDLER_TIMEOUT
    assert _total(store) is None


def test_hanging_blocking_handler_is_abandoned_and_its_writes_discarded(
        store: StateStore) -> None:
    """A blocking handler over its time keeps its thread, but not its transaction."""
    release, finished = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    handlers = _registry()

    @handlers.handler("counter.block", blocking=True)
    def block(ctx: Any, msg: None) -> int:
        release.wait(10)
        try:
            ctx.state.put(SECTION, ("total",), (1,))
        except Exception as exc:
            errors.append(exc)
        finished.set()
        return 0

    invoker = _node(store, handlers, timeout=0.01)
    with store.writing() as txn:
        bind(txn, b"alice", 1, 3, "counter.block")
    (reply,) = _run(invoker, _call(op=3, payload=NULL_BYTES))
    release.set()
    assert finished.wait(10)
    assert reply.code is ErrorCode.HANDLER_TIMEOUT
    assert errors and getattr(errors[0], "code", None) is ErrorCode.STATE_CLOSED
    assert _total(store) is None


def test_concurrent_increments_are_not_lost(store: StateStore) -> None:
    """Optimistic conflicts re-run the handler, so no update is lost."""
    handlers = HandlerRegistry()

    @handlers.handler("counter.add")
    async def add(ctx: Any, msg: dict[str, int]) -> int:
        (total,) = ctx.state.get(SECTION, ("total",)) or (0,)
        await asyncio.sleep(0)
        ctx.state.put(SECTION, ("total",), (total + msg["n"],))
        return int(total) + msg["n"]

    replies = _run(_node(store, handlers, max_conflict_retries=20), *[_call()] * 8)
    assert all(r.ok for r in replies)
    assert _total(store) == (8,)


def test_writes_are_acknowledged_only_after_a_shared_sync(store: StateStore) -> None:
    """Many concurrent writers share few fsyncs, and each reply follows its barrier."""
    handlers = HandlerRegistry()
    seen: list[tuple[int, int]] = []

    @handlers.handler("counter.add")
    async def add(ctx: Any, msg: dict[str, int]) -> int:
        await asyncio.sleep(0)
        ctx.state.put(SECTION, ("slot", msg["n"]), (1,))
        return msg["n"]

    invoker = _node(store, handlers)
    real_sync = store.sync

    def counting_sync() -> int:
        seen.append((store.commit_seq, store.durable_seq))
        return real_sync()

    store.sync = counting_sync  # type: ignore[method-assign]
    replies = _run(invoker, *[_call(payload=dumps_typed(ADD, {"n": i})) for i in range(40)])
    assert all(r.ok for r in replies)
    assert store.durable_seq == store.commit_seq
    assert 1 <= len(seen) < 40


def test_read_only_handler_opens_no_write_transaction(store: StateStore) -> None:
    """A handler that only reads does not commit and does not wait for a sync."""
    invoker = _node(store)
    before = store.commit_seq
    replies = _run(invoker, *[_call(op=3, payload=NULL_BYTES)] * 5)
    assert all(r.ok for r in replies)
    assert store.commit_seq == before


def test_endpoint_zero_lists_interfaces(store: StateStore) -> None:
    """Every entity answers CARBON metadata on endpoint 0 without any handler."""
    (reply,) = _run(_node(store), _call(endpoint=0, op=1, payload=NULL_BYTES))
    assert reply.payload is not None
    listing = loads_typed(METADATA_SPEC.named("list-interfaces").reply, reply.payload)
    assert listing == [{"interface": "/argon/carbon/metadata", "endpoint": 0},
                       {"interface": "/example/counter/v1", "endpoint": 1}]


def test_endpoint_zero_skips_an_endpoint_record_that_names_no_interface(
        store: StateStore) -> None:
    """A damaged endpoint record (here from outside the API) is neither routed to nor
    listed, instead of failing endpoint 0 with an internal error."""
    invoker = _node(store)
    with store.writing() as txn:
        txn.put(b"alice", ENDPOINTS_SECTION, (2,), ())
    (listed, routed) = _run(invoker, _call(endpoint=0, op=1, payload=NULL_BYTES),
                            _call(endpoint=2))
    assert listed.payload is not None
    listing = loads_typed(METADATA_SPEC.named("list-interfaces").reply, listed.payload)
    assert [entry["endpoint"] for entry in listing] == [0, 1]
    assert routed.code == ErrorCode.UNKNOWN_ENDPOINT


def test_overload_is_refused_not_queued_without_bound(store: StateStore) -> None:
    """Past max_waiting, calls are answered HANDLERS_BUSY at once."""
    handlers = HandlerRegistry()
    @handlers.handler("counter.peek")
    async def slow(ctx: Any, msg: None) -> int:
        await asyncio.sleep(0)
        return 0

    replies = _run(_node(store, handlers, max_concurrent=1, max_waiting=2),
                   *[_call(op=3, payload=NULL_BYTES)] * 6)
    codes = [r.code for r in replies]
    assert codes.count(ErrorCode.HANDLERS_BUSY) == 3
    assert codes.count(None) == 3


def test_registry_refuses_bad_and_duplicate_ids() -> None:
    """Handler IDs are validated and registered once."""
    handlers = HandlerRegistry()
    handlers.register("a.b", lambda ctx, msg: None)
    for bad in ("a.b", "Bad", "", "x" * 200):
        with pytest.raises(HandlerIdError):
            handlers.register(bad, lambda ctx, msg: None)


def test_state_failures_become_replies_not_exceptions(tmp_path: Path) -> None:
    """A full map at its maximum fails the write with STATE_MAP_FULL; the node carries on."""
    store = LmdbStore(tmp_path, LmdbOptions(map_size=64 * 1024, max_map_size=64 * 1024))
    handlers = HandlerRegistry()

    @handlers.handler("counter.add")
    def fill(ctx: Any, msg: dict[str, int]) -> int:
        for i in range(100):
            ctx.state.put(SECTION, ("blob", i), (b"x" * 1000,))
        return 0

    handlers.register("counter.peek", lambda ctx, msg: 0)
    (reply, peek) = _run(_node(store, handlers), _call(), _call(op=3, payload=NULL_BYTES))
    assert reply.code is ErrorCode.STATE_MAP_FULL
    assert "max_map_size" in reply.message
    assert peek.ok
    store.close()


def test_internal_failure_is_a_reply_not_an_exception(store: StateStore) -> None:
    """Even a failure inside the runtime (here: the store's sync) never escapes invoke()."""
    invoker = _node(store)

    def broken_sync() -> int:
        raise OSError("disk on fire")

    store.sync = broken_sync  # type: ignore[method-assign]
    with capture_logs() as logs:
        (reply,) = _run(invoker, _call())
    assert reply.code is ErrorCode.STATE_FAILURE
    assert "disk" not in reply.message
    assert logs and logs[0]["event"] == "invoke_internal_error"


def test_attach_with_persona_and_detach(store: StateStore) -> None:
    """attach(persona=) binds persona tuples; detach removes the endpoint and its tuples."""
    invoker = _node(store)
    gold = Symbol("/example/persona/gold")
    with store.writing() as txn:
        attach(txn, b"alice", COUNTER, endpoint=1, persona=gold,
               handlers={"add": "counter.add-vip"})
    persona_add, plain_add = _run(invoker, _call(persona=Persona(gold)), _call())
    assert persona_add.payload is not None and loads_typed(INT, persona_add.payload) == -1
    assert plain_add.payload is not None and loads_typed(INT, plain_add.payload) == 1
    with store.writing() as txn:
        assert detach(txn, b"alice", 1)
        assert bound_handler(txn, b"alice", 1, 1, persona_class=gold) is None
    (after,) = _run(_node_only(store), _call())
    assert after.code is ErrorCode.UNKNOWN_ENDPOINT


def test_endpoint_conflicts_are_refused(store: StateStore) -> None:
    """An endpoint cannot silently change interface, nor an interface sit on two."""
    other = Interface("/example/other/v1", ops=[request(1, "x", int, int)])
    with store.writing() as txn:
        attach(txn, b"alice", COUNTER, endpoint=1, handlers={})
    for spec, endpoint in ((other, 1), (COUNTER, 2)):
        with pytest.raises(EndpointError) as info, store.writing() as txn:
            attach(txn, b"alice", spec, endpoint=endpoint, handlers={})
        assert info.value.code is ErrorCode.ENDPOINT_IN_USE
    with pytest.raises(EndpointError), store.writing() as txn:
        attach(txn, b"alice", other, endpoint=0, handlers={})


def _node_only(store: StateStore) -> Invoker:
    return Invoker(store, _registry(), SpecRegistry([COUNTER]))
