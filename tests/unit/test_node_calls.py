"""ctx.calls on a node: nested calls carry the handler's entity as caller, never more
time than is left of the running call's deadline, and refuse once it has passed."""

from __future__ import annotations

import asyncio

import pytest

from carbon.error_codes import ErrorCode
from carbon.metadata import EndpointCache
from carbon.principal import Persona
from mercury_rt.aio.call_driver import NodeCallError
from mercury_rt.aio.node_calls import NodeEntityCalls
from tests.devapp_support import ADMIN, COUNTER


class RecordingNode:
    """A CallingNode that records what it was asked and answers 1 (an INT reply)."""

    def __init__(self) -> None:
        self.endpoints = EndpointCache()
        self.asked: list[tuple[bytes, float, Persona | None]] = []

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   caller: bytes, timeout: float, persona: Persona | None) -> bytes:
        self.asked.append((caller, timeout, persona))
        return b"\x01"

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   caller: bytes, timeout: float, persona: Persona | None) -> object:
        self.asked.append((caller, timeout, persona))
        return b"id"


def test_nested_calls_are_made_as_the_entity_within_the_deadline() -> None:
    async def main() -> RecordingNode:
        node = RecordingNode()
        deadline = asyncio.get_running_loop().time() + 0.25
        calls = NodeEntityCalls(node, b"alice", deadline, timeout=30.0)
        assert await calls.client(b"carol", COUNTER, endpoint=4, persona=ADMIN).add(n=1) == 1
        await calls.client(b"carol", COUNTER, endpoint=4).reset()
        return node
    node = asyncio.run(main())
    assert [(caller, persona) for caller, _, persona in node.asked] == [
        (b"alice", ADMIN), (b"alice", None)]
    assert all(0 < timeout <= 0.25 for _, timeout, _ in node.asked)


def test_without_a_deadline_the_handler_timeout_bounds_the_call() -> None:
    async def main() -> RecordingNode:
        node = RecordingNode()
        await NodeEntityCalls(node, b"alice", None, timeout=5.0).client(
            b"carol", COUNTER, endpoint=4).total()
        return node
    assert asyncio.run(main()).asked == [(b"alice", 5.0, None)]


def test_a_call_after_the_deadline_is_refused_without_being_sent() -> None:
    async def main() -> RecordingNode:
        node = RecordingNode()
        past = asyncio.get_running_loop().time() - 0.01
        with pytest.raises(NodeCallError) as info:
            await NodeEntityCalls(node, b"alice", past, timeout=5.0).client(
                b"carol", COUNTER, endpoint=4).total()
        assert info.value.code is ErrorCode.DEADLINE_EXPIRED
        return node
    assert asyncio.run(main()).asked == []

