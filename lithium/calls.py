"""What a handler uses to call other entities: `ctx.calls`, a capability the node injects.

LITHIUM sits below the node runtime (policy <- lithium <- mercury_rt), so a handler cannot
import the node to make calls; the node hands each invocation an `EntityCalls` bound to
the handler's own entity (the caller identity every call carries) and to the call's
deadline (a nested call never outlives the call that made it). These are the protocol
types only; mercury_rt.client implements them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona
from carbon.protocol_spec import ProtocolSpec


class TypedCalls(Protocol):
    """A client for one interface of one target entity: payloads encoded from the spec.

    `await client.call("add", {"n": 5})` or `await client.add(n=5)` returns the decoded
    reply; `await client.send("reset")` (or `client.reset()` for a message operation)
    sends a one-way message. Failures raise MercuryError subclasses carrying the wire code.
    """

    async def call(self, operation: str, payload: Any = None) -> Any:
        """Run a request operation and return its decoded reply."""
        ...

    async def send(self, operation: str, payload: Any = None) -> object:
        """Send a message operation (one-way); returns the node's receipt."""
        ...

    def forget_endpoint(self) -> None:
        """Drop the cached endpoint so the next call asks the target's endpoint 0 again."""
        ...

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """`client.op_name(**fields)`: the operation named op_name (or op-name)."""
        ...


class EntityCalls(Protocol):
    """`ctx.calls`: calls made as the handler's own entity, within the call's deadline."""

    def client(self, target: bytes, interface: ProtocolSpec, *,
               persona: Persona | None = None, endpoint: int | None = None) -> TypedCalls:
        """A typed client for `interface` on `target` (an EID), acting as this entity or
        as one of its personas; the endpoint is learned from endpoint 0 unless given."""
        ...


class CallsUnavailableError(MercuryError):
    """The invoker running this handler was given no way to make calls."""

    code = ErrorCode.NODE_LOCAL_ERROR


class NoCalls:
    """`ctx.calls` where the invoker has no node behind it: every use says so."""

    def client(self, target: bytes, interface: ProtocolSpec, *,
               persona: Persona | None = None, endpoint: int | None = None) -> TypedCalls:
        """Always raises: there is no node to call through."""
        raise CallsUnavailableError("this handler runs without a node; ctx.calls cannot "
                                    "reach other entities (give the Invoker `calls=`)")


NO_CALLS = NoCalls()
