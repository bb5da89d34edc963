"""The node's side of typed clients: numbered calls as one caller, and `ctx.calls`.

`NodeRawCalls` is what a TypedClient sends through: `NodeRuntime.call`/`send` as one
local entity, each bounded by the client's timeout and, for a handler's calls, by what is
left of the deadline of the call that is running it (a nested call never outlives it).
`NodeEntityCalls` is the `ctx.calls` the node injects into every invocation (lithium.calls).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from carbon.error_codes import ErrorCode
from carbon.metadata import EndpointCache
from carbon.principal import Persona
from carbon.protocol_spec import ProtocolSpec
from mercury_rt.aio.call_driver import NodeCallError
from mercury_rt.client import TypedClient


class CallingNode(Protocol):
    """What of NodeRuntime the clients use (a protocol: node_runtime imports this module)."""

    endpoints: EndpointCache

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   caller: bytes, timeout: float, persona: Persona | None) -> bytes:
        """NodeRuntime.call."""
        ...

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   caller: bytes, timeout: float, persona: Persona | None) -> object:
        """NodeRuntime.send."""
        ...


class NodeRawCalls:
    """`RawCalls` over a node, as local entity `caller`, until `deadline` (the event
    loop's clock, which the node's Invoker measures deadlines in too)."""

    def __init__(self, node: CallingNode, caller: bytes, timeout: float,
                 deadline: float | None = None) -> None:
        self.node, self.caller, self.timeout, self.deadline = node, caller, timeout, deadline

    def _budget(self) -> float:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise NodeCallError("the calling handler's deadline has passed",
                                ErrorCode.DEADLINE_EXPIRED)
        return min(self.timeout, left)

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> bytes:
        """NodeRuntime.call within the budget."""
        return await self.node.call(target, endpoint, operation, payload, caller=self.caller,
                                    timeout=self._budget(), persona=persona)

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> object:
        """NodeRuntime.send within the budget."""
        return await self.node.send(target, endpoint, operation, payload, caller=self.caller,
                                    timeout=self._budget(), persona=persona)


class NodeEntityCalls:
    """`ctx.calls` for one invocation of a handler of `entity` (lithium.calls.EntityCalls)."""

    def __init__(self, node: CallingNode, entity: bytes, deadline: float | None,
                 timeout: float) -> None:
        self._raw = NodeRawCalls(node, entity, timeout, deadline)
        self._node = node

    def client(self, target: bytes, interface: ProtocolSpec, *,
               persona: Persona | None = None, endpoint: int | None = None) -> TypedClient:
        """A typed client calling as this entity (or its `persona`)."""
        return TypedClient(self._raw, target, interface, persona=persona, endpoint=endpoint,
                           endpoints=self._node.endpoints)
