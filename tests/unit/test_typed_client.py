"""The typed client without a network: payloads encoded by the spec, endpoints learnt
from endpoint 0 (cached, re-learnt when stale), replies decoded, failures typed.

`InvokerRaw` stands in for the node: each numbered call goes straight to a real Invoker
over a MemoryStore holding the test app (tests/devapp_support.py), endpoint 0 included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode, MercuryError
from carbon.metadata import EndpointCache, MetadataError
from carbon.principal import Persona, Principal
from carbon.protocol_spec import Interface, OperationKind, SpecRegistry, request
from carbon.types import INT, STR, PayloadTypeError, dumps_typed, list_of, optional, record
from lithium import HandlerRegistry, IncomingCall, attach, detach
from lithium.invoke import Invoker
from mercury_rt.apps import NodeApp
from mercury_rt.client import ClientUsageError, ReplyDecodeError, TypedClient, payload_of
from tests.devapp_support import ADMIN, COUNTER, RELAY, WHO, setup
from tungsten.memory import MemoryStore

CLUSTER = b"\x01" + bytes(32)


class InvokerRaw:
    """RawCalls into a real Invoker; records every numbered call it carried."""

    def __init__(self, caller: bytes = b"bob") -> None:
        self.store, self.specs, self.registry = MemoryStore(), SpecRegistry(), HandlerRegistry()
        setup(NodeApp("n1", ("alice",), self.registry, self.specs, self.store))
        self.invoker = Invoker(self.store, self.registry, self.specs)
        self.caller = caller
        self.sent: list[tuple[int, int, Persona | None]] = []

    async def _run(self, kind: OperationKind, target: bytes, endpoint: int, operation: int,
                   payload: bytes, persona: Persona | None) -> bytes:
        self.sent.append((endpoint, operation, persona))
        reply = await self.invoker.invoke(IncomingCall(
            target, endpoint, operation, kind, payload, Principal(CLUSTER, self.caller, persona)))
        if not reply.ok:
            raise MercuryError(reply.message, reply.code)
        return reply.payload or b""

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> bytes:
        return await self._run(OperationKind.REQUEST, target, endpoint, operation, payload,
                               persona)

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> object:
        await self._run(OperationKind.MESSAGE, target, endpoint, operation, payload, persona)
        return b"message-id"


def _run(scenario: Callable[[InvokerRaw], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        raw = InvokerRaw()
        try:
            return await scenario(raw)
        finally:
            raw.invoker.close()
    return asyncio.run(main())


def test_operations_by_name_encode_and_decode_by_the_spec() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        counter = TypedClient(raw, b"alice", COUNTER)
        assert await counter.add(n=5) == 5
        assert await counter.call("add", {"n": 2}) == 7
        assert await counter.total() == 7
        assert await counter.reset() == b"message-id"  # a message operation: sent one-way
        assert await counter.total() == 0
        endpoint_zero = [s for s in raw.sent if s[0] == 0]
        assert len(endpoint_zero) == 1, "the endpoint is learnt once, then cached"
        assert {s[0] for s in raw.sent} == {0, 4}, "COUNTER is on endpoint 4, not 1"
    _run(scenario)


def test_a_payload_of_the_wrong_type_is_refused_before_anything_is_sent() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        counter = TypedClient(raw, b"alice", COUNTER, endpoint=4)
        with pytest.raises(PayloadTypeError) as info:
            await counter.add(n="five")
        assert info.value.code is ErrorCode.PAYLOAD_TYPE_MISMATCH
        assert raw.sent == []
    _run(scenario)


def test_unknown_operations_and_the_wrong_kind_are_usage_errors() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        counter = TypedClient(raw, b"alice", COUNTER, endpoint=4)
        with pytest.raises(ClientUsageError, match="no operation named 'multiply'"):
            await counter.multiply(n=2)
        with pytest.raises(ClientUsageError, match="use send"):
            await counter.call("reset")
        with pytest.raises(ClientUsageError, match="use call"):
            await counter.send("add", {"n": 1})
        assert raw.sent == []
    _run(scenario)


def test_hyphenated_operations_are_reached_with_underscores() -> None:
    async def scenario(raw: InvokerRaw) -> dict[str, Any]:
        relay = TypedClient(raw, b"alice", RELAY)
        try:
            await relay.add_remote(target=b"x", n=1, as_admin=False)
        except MercuryError as exc:  # the invoker has no node behind ctx.calls
            return {"code": exc.code}
        return {}
    assert _run(scenario) == {"code": ErrorCode.HANDLER_FAILED}


def test_a_stale_cached_endpoint_is_learnt_again_and_the_call_goes_through() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        endpoints = EndpointCache()
        counter = TypedClient(raw, b"alice", COUNTER, endpoints=endpoints)
        assert await counter.add(n=1) == 1
        with raw.store.writing() as txn:  # the entity re-maps COUNTER to endpoint 5
            detach(txn, b"alice", 4)
        with raw.store.writing() as txn:
            attach(txn, b"alice", COUNTER, endpoint=5, specs=raw.specs, handlers={
                "add": "test.add", "total": "test.total", "reset": "test.reset"})
        assert await counter.add(n=1) == 2
        assert [s[0] for s in raw.sent] == [0, 4, 4, 0, 5]
        assert endpoints.endpoint_for(b"alice", COUNTER.interface) == 5
    _run(scenario)


def test_a_target_without_the_interface_is_unknown_interface() -> None:
    other = Interface("/test/other/v1", ops=[request(1, "ping", None, None)])

    async def scenario(raw: InvokerRaw) -> None:
        with pytest.raises(MetadataError) as info:
            await TypedClient(raw, b"alice", other).ping()
        assert info.value.code is ErrorCode.UNKNOWN_INTERFACE
    _run(scenario)


def test_an_interface_added_after_the_map_was_cached_is_found() -> None:
    other = Interface("/test/other/v1", ops=[request(1, "ping", None, INT)])

    async def scenario(raw: InvokerRaw) -> None:
        endpoints = EndpointCache()
        await TypedClient(raw, b"alice", COUNTER, endpoints=endpoints).total()
        raw.registry.register("test.ping", lambda ctx, msg: 1)
        with raw.store.writing() as txn:
            attach(txn, b"alice", other, endpoint=11, specs=raw.specs,
                   handlers={"ping": "test.ping"})
        assert await TypedClient(raw, b"alice", other, endpoints=endpoints).ping() == 1
        assert [s[0] for s in raw.sent] == [0, 4, 0, 11]
    _run(scenario)


def test_forget_endpoint_asks_endpoint_zero_again() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        counter = TypedClient(raw, b"alice", COUNTER)
        await counter.total()
        counter.forget_endpoint()
        await counter.total()
        assert [s[0] for s in raw.sent] == [0, 4, 0, 4]
    _run(scenario)


def test_the_persona_travels_with_every_call_and_the_target_sees_it() -> None:
    async def scenario(raw: InvokerRaw) -> None:
        who = TypedClient(raw, b"alice", WHO, persona=ADMIN)
        assert await who.whoami() == {"local": "bob", "persona": ADMIN.cls.text, "vip": False}
        assert {s[2] for s in raw.sent} == {ADMIN}
    _run(scenario)


class GarbageRaw:
    """A target that answers every request with an int, whatever was declared."""

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> bytes:
        return dumps_typed(INT, 3)

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> object:
        return None


def test_a_reply_that_is_not_the_declared_type_is_reply_type_mismatch() -> None:
    who = TypedClient(GarbageRaw(), b"alice", WHO, endpoint=7)
    with pytest.raises(ReplyDecodeError) as info:
        asyncio.run(who.whoami())
    assert info.value.code is ErrorCode.REPLY_TYPE_MISMATCH
    with pytest.raises(ReplyDecodeError, match="malformed listing"):
        asyncio.run(TypedClient(GarbageRaw(), b"alice", WHO).whoami())


class EchoRaw:
    """A target whose every request answers its own payload bytes."""

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> bytes:
        return payload

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> object:
        return None


SHAPE = record(name=STR, tags=list_of(STR), n=INT, note=optional(STR))
ECHO = Interface("/test/echo/v1", ops=[request(1, "echo", SHAPE, SHAPE)])
values = st.fixed_dictionaries({"name": st.text(max_size=20),
                                "tags": st.lists(st.text(max_size=5), max_size=4),
                                "n": st.integers(-(2**63), 2**63 - 1),
                                "note": st.none() | st.text(max_size=10)})


@given(values)
def test_any_value_of_the_declared_type_round_trips_through_the_client(
        value: dict[str, Any]) -> None:
    client = TypedClient(EchoRaw(), b"alice", ECHO, endpoint=1)
    assert asyncio.run(client.echo(**value)) == value
    assert asyncio.run(client.call("echo", value)) == value


@given(st.lists(st.integers(), max_size=3),
       st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3))
def test_payload_of_takes_one_value_or_fields_never_both(args: list[int],
                                                         fields: dict[str, int]) -> None:
    if (args and fields) or len(args) > 1:
        with pytest.raises(ClientUsageError):
            payload_of(tuple(args), fields)
    else:
        assert payload_of(tuple(args), fields) == (fields or (args[0] if args else None))
