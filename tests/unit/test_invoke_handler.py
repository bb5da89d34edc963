"""invoke_handler / run_handler: one handler run as a node runs it, its own exception
re-raised for the test to see, and a realistic context (state, caller, persona,
deadline, ctx.calls); and incident ids that name the node and its run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from carbon.principal import Persona, Principal
from carbon.protocol_spec import OperationKind, SpecRegistry
from carbon.symbols import Symbol
from carbon.types import PayloadTypeError, dumps_typed
from lithium import HandlerError, HandlerRegistry, IncomingCall, RequestContext, attach
from lithium.calls import CallsUnavailableError
from lithium.invoke import Invoker
from mercury_rt.testing.handlers import (
    TEST_CALLER,
    HandlerRefusedError,
    invoke_handler,
    run_handler,
)
from tests.devapp_support import (
    ADMIN,
    COUNTER,
    RELAY,
    SECTION,
    VIP,
    WHO,
    add,
    add_remote,
    broken,
    whoami,
)
from tungsten.memory import MemoryStore


def test_the_reply_is_decoded_and_the_writes_are_committed() -> None:
    store = MemoryStore()
    assert run_handler(add, COUNTER, "add", {"n": 3}, state=store, entity=b"alice") == 3
    assert run_handler(add, COUNTER, "add", {"n": 4}, state=store, entity=b"alice") == 7
    assert store.snapshot().get(b"alice", Symbol(SECTION), ("total",)) == (7,)


def test_the_handlers_own_exception_is_re_raised_with_its_message() -> None:
    with pytest.raises(ZeroDivisionError, match="the secret internal detail"):
        run_handler(broken, COUNTER, "add", {"n": 1})


def test_a_chosen_handler_error_is_re_raised_too() -> None:
    def refuse(ctx: RequestContext, msg: Any) -> int:
        raise HandlerError("no such item", ErrorCode.NAME_NOT_FOUND)
    with pytest.raises(HandlerError) as info:
        run_handler(refuse, COUNTER, "add", {"n": 1})
    assert info.value.code is ErrorCode.NAME_NOT_FOUND


def test_a_raising_handler_leaves_no_state_behind() -> None:
    store = MemoryStore()

    def write_then_fail(ctx: RequestContext, msg: Any) -> int:
        ctx.state.put(SECTION, ("total",), (99,))
        raise RuntimeError("after the write")
    with pytest.raises(RuntimeError):
        run_handler(write_then_fail, COUNTER, "add", {"n": 1}, state=store)
    assert store.snapshot().get(b"entity", Symbol(SECTION), ("total",)) is None


def test_a_wrong_reply_type_raises_the_type_error() -> None:
    with pytest.raises(PayloadTypeError):
        run_handler(lambda ctx, msg: "seven", COUNTER, "add", {"n": 1})


def test_a_slow_handler_is_handler_timeout() -> None:
    async def slow(ctx: RequestContext, msg: Any) -> int:
        await asyncio.sleep(10)
        return 0
    with pytest.raises(HandlerRefusedError) as info:
        run_handler(slow, COUNTER, "add", {"n": 1}, timeout=0.05)
    assert info.value.code is ErrorCode.HANDLER_TIMEOUT


def test_the_context_names_caller_persona_and_deadline() -> None:
    seen: list[RequestContext] = []

    def look(ctx: RequestContext, msg: None) -> dict[str, Any]:
        seen.append(ctx)
        return whoami(ctx, msg)
    caller = Principal(b"\x01" + bytes(32), b"bob", ADMIN)
    vip = Persona(VIP, {"level": 3})
    reply = run_handler(look, WHO, "whoami", caller=caller, persona=vip, entity=b"alice")
    assert reply == {"local": "bob", "persona": ADMIN.cls.text, "vip": False}
    [ctx] = seen
    assert ctx.entity == b"alice" and ctx.persona == vip and ctx.persona_params == {"level": 3}
    assert ctx.deadline is not None and ctx.interface == WHO.interface
    assert run_handler(look, WHO, "whoami") == {"local": TEST_CALLER.local.decode(),
                                                 "persona": None, "vip": False}


def test_a_handler_id_from_the_apps_own_registry() -> None:
    registry = HandlerRegistry()
    registry.register("test.add", add)
    assert run_handler("test.add", COUNTER, "add", {"n": 2}, registry=registry) == 2
    with pytest.raises(HandlerRefusedError) as info:
        run_handler("test.missing", COUNTER, "add", {"n": 2}, registry=registry)
    assert info.value.code is ErrorCode.HANDLER_NOT_REGISTERED


def test_ctx_calls_without_a_node_says_so_and_a_fake_can_stand_in() -> None:
    with pytest.raises(CallsUnavailableError):
        run_handler(add_remote, RELAY, "add-remote", {"target": b"x", "n": 1,
                                                      "as_admin": False})

    class FakeClient:
        def __init__(self, persona: Persona | None) -> None:
            self.persona = persona

        async def add(self, n: int) -> int:
            return 40 + n

        async def whoami(self) -> dict[str, Any]:
            return {"local": "entity", "persona": self.persona and self.persona.cls.text}

    class FakeCalls:
        def client(self, target: bytes, interface: object, *, persona: Persona | None = None,
                   endpoint: int | None = None) -> FakeClient:
            return FakeClient(persona)
    reply = run_handler(add_remote, RELAY, "add-remote", {"target": b"x", "n": 2,
                                                          "as_admin": True},
                        calls=FakeCalls())  # type: ignore[arg-type]
    assert reply == {"total": 42, "seen_as": "entity", "persona": ADMIN.cls.text}


def _failing_invoker(prefix: str | None) -> Invoker:
    store, specs, registry = MemoryStore(), SpecRegistry(), HandlerRegistry()
    registry.register("test.broken", broken)
    with store.writing() as txn:
        attach(txn, b"alice", COUNTER, endpoint=1, specs=specs, handlers={"add": "test.broken"})
    return Invoker(store, registry, specs, incident_prefix=prefix)


def _incident(invoker: Invoker) -> str:
    call = IncomingCall(b"alice", 1, 1, OperationKind.REQUEST, dumps_typed(
        COUNTER.named("add").message, {"n": 1}), TEST_CALLER)

    async def main() -> str:
        try:
            reply = await invoker.invoke(call)
        finally:
            invoker.close()
        assert reply.code is ErrorCode.HANDLER_FAILED
        return reply.message
    return asyncio.run(main())


def test_an_incident_id_names_the_node_and_differs_between_runs() -> None:
    assert "incident node-a-1f2e3d-1 " in _incident(_failing_invoker("node-a-1f2e3d"))
    first, second = (_incident(_failing_invoker(None)) for _ in range(2))
    assert first != second, "two runs of a node must not both say incident 1"


@given(st.integers(1, 5))
def test_incident_numbers_count_up_under_one_prefix(failures: int) -> None:
    invoker = _failing_invoker("n")
    call = IncomingCall(b"alice", 1, 1, OperationKind.REQUEST, dumps_typed(
        COUNTER.named("add").message, {"n": 1}), TEST_CALLER)

    async def main() -> list[str]:
        try:
            return [(await invoker.invoke(call)).message for _ in range(failures)]
        finally:
            invoker.close()
    messages = asyncio.run(main())
    assert [f"incident n-{i} " in m for i, m in enumerate(messages, 1)] == [True] * failures


def test_invoke_handler_is_awaitable_from_async_tests() -> None:
    async def main() -> int:
        return int(await invoke_handler(add, COUNTER, "add", {"n": 9}))
    assert asyncio.run(main()) == 9
