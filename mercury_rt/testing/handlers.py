"""Unit-test one handler as a node would run it, and see its exception.

    reply = run_handler(add, counter, "add", {"n": 5}, state=store)

runs `add` through the real Invoker (dispatch from the entity's tuples, staged state
committed on return, reply checked against the declared type, the timeout) with a
realistic context: a caller principal, an optional persona, a deadline, and `ctx.calls`
if given. Unlike a node, which answers HANDLER_FAILED and keeps the traceback in its log,
the helper re-raises whatever the handler raised, so a test sees the real failure; any
other refusal (no handler bound, timeout, wrong reply type) raises HandlerRefusedError
with its wire code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from carbon.protocol_spec import ProtocolSpec, SpecRegistry
from carbon.types import dumps_typed, loads_typed
from lithium import HandlerRegistry, IncomingCall, attach
from lithium.calls import NO_CALLS, EntityCalls
from lithium.invoke import InvokeLimits, Invoker
from tungsten.api import StateStore
from tungsten.memory import MemoryStore

__all__ = ["TEST_CALLER", "HandlerRefusedError", "invoke_handler", "run_handler"]

TEST_CALLER = Principal(b"\x01" + bytes(32), b"tester")
"""The caller a test handler sees unless told otherwise (cluster hash of zeros)."""
_UNDER_TEST = "handler-under-test"


class HandlerRefusedError(MercuryError):
    """The call did not reach a reply (its `code` says why) and the handler raised nothing."""

    code = ErrorCode.HANDLER_FAILED


async def invoke_handler(handler: Callable[..., Any] | str, interface: ProtocolSpec,
                         operation: str, payload: Any = None, *,
                         registry: HandlerRegistry | None = None,
                         state: StateStore | None = None, entity: bytes = b"entity",
                         caller: Principal = TEST_CALLER, persona: Persona | None = None,
                         calls: EntityCalls | None = None, timeout: float = 5.0,
                         endpoint: int = 1) -> Any:
    """Run one operation's handler on `entity` and return its decoded reply.

    `handler` is the function itself, or a handler id registered in `registry`. `state`
    (default: a fresh MemoryStore) keeps what the handler committed for the test to
    inspect. With `persona`, the call addresses that persona of the entity (its handler
    is bound persona-specific, and ctx.persona carries the parameters).
    """
    op = interface.named(operation)
    registry, handler_id = _registered(handler, registry)
    store = state if state is not None else MemoryStore()
    specs = SpecRegistry()
    with store.writing() as txn:
        attach(txn, entity, interface, endpoint=endpoint, specs=specs,
               handlers={op.name: handler_id}, persona=persona.cls if persona else None)
    raised: list[BaseException] = []
    loop = asyncio.get_running_loop()
    invoker = Invoker(store, registry, specs, limits=InvokeLimits(timeout=timeout),
                      clock=loop.time, calls=lambda _call: calls or NO_CALLS,
                      incident_prefix="test", on_handler_exception=raised.append)
    call = IncomingCall(entity, endpoint, op.number, op.kind, dumps_typed(op.message, payload),
                        caller, persona=persona, deadline=loop.time() + timeout)
    try:
        reply = await invoker.invoke(call)
    finally:
        invoker.close()
    if raised:
        raise raised[0]
    if not reply.ok:
        raise HandlerRefusedError(reply.message, reply.code)
    return loads_typed(op.reply, reply.payload or dumps_typed(op.reply, None))


def run_handler(handler: Callable[..., Any] | str, interface: ProtocolSpec, operation: str,
                payload: Any = None, **options: Any) -> Any:
    """invoke_handler from synchronous test code (runs its own event loop)."""
    return asyncio.run(invoke_handler(handler, interface, operation, payload, **options))


def _registered(handler: Callable[..., Any] | str,
                registry: HandlerRegistry | None) -> tuple[HandlerRegistry, str]:
    if isinstance(handler, str):
        if registry is None or handler not in registry:
            raise HandlerRefusedError(f"handler id {handler!r} is not in the registry given",
                                      ErrorCode.HANDLER_NOT_REGISTERED)
        return registry, handler
    own = HandlerRegistry()
    own.register(_UNDER_TEST, handler)
    return own, _UNDER_TEST
