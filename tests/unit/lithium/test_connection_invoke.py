"""Invoking on connections: an accept records the map with the handler's writes, uses go
to the connection's map only, each refusal has its code and runs nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from carbon import cbor
from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from carbon.protocol_spec import Interface, OperationKind, SpecRegistry, connection, request
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed
from lithium import Accept, HandlerRegistry, IncomingCall, Invoker, Offer, attach
from lithium.connections import SERVER, connections_of, read_connection
from lithium.context import CLOSE, OPEN, USE, ConnectionCall
from tungsten.memory import MemoryStore

CHAT = Interface("/t/chat/v1", ops=[connection(1, "open", str, str), request(2, "plain", str,
                                                                             str)])
TALK = Interface("/t/talk/v1", ops=[request(1, "say", str, str)])
ALICE = Principal(b"\x01home", b"alice")
MALLORY = Principal(b"\x01home", b"mallory")
CID = b"c" * 16
CHAT_STATE = Symbol("/t/chat")


def _node(accept: bool = True) -> tuple[Invoker, MemoryStore, list[Any]]:
    store, specs, registry, ran = MemoryStore(), SpecRegistry(), HandlerRegistry(), []

    def open_chat(ctx: Any, text: str) -> Any:
        ran.append(("open", ctx.connection_id, ctx.reestablished))
        ctx.state.put("/t/chat", (ctx.connection_id,), (text,))
        return Accept(f"hi {text}", {3: Offer(TALK, {"say": "talk.say"})}) if accept else "no"

    def say(ctx: Any, text: str) -> str:
        ran.append(("say", ctx.connection_id, ctx.caller.local))
        return text.upper()

    registry.register("chat.open", open_chat)
    registry.register("talk.say", say)
    registry.register("chat.plain", lambda ctx, text: text)
    with store.writing() as txn:
        attach(txn, b"carol", CHAT, endpoint=2, specs=specs,
               handlers={"open": "chat.open", "plain": "chat.plain"})
    return Invoker(store, registry, specs), store, ran


def _call(form: int, endpoint: int, op: int, text: str, caller: Principal = ALICE,
          kind: OperationKind = OperationKind.REQUEST, **extra: Any) -> IncomingCall:
    return IncomingCall(b"carol", endpoint, op, kind, dumps_typed(str, text), caller,
                        connection_id=CID, connection=ConnectionCall(form, **extra))


def _open(**extra: Any) -> IncomingCall:
    return _call(OPEN, 2, 1, "alice", kind=OperationKind.CONNECTION,
                 peer_offers=((1, "/t/hear/v1"),), granted=(10, 20), **extra)


def test_an_accept_records_the_map_and_uses_reach_only_it() -> None:
    async def main() -> None:
        invoker, store, ran = _node()
        opened = await invoker.invoke(_open())
        assert opened.ok
        reply, offers, rate, burst = cbor.loads(opened.payload or b"")  # type: ignore[misc]
        assert loads_typed(str, reply) == "hi alice"
        assert (offers, rate, burst) == ([[3, "/t/talk/v1"]], 10, 20)
        with store.reading() as view:
            record = read_connection(view, b"carol", CID)
            assert record is not None and record.role == SERVER and record.is_peer(ALICE)
            assert record.peer_offers == ((1, "/t/hear/v1"),)
            assert view.get(b"carol", CHAT_STATE, (CID,)) == ("alice",)
        said = await invoker.invoke(_call(USE, 3, 1, "hello"))
        assert loads_typed(str, said.payload or b"") == "HELLO"
        assert ran == [("open", CID, False), ("say", CID, b"alice")]
        published = await invoker.invoke(_call(USE, 2, 2, "x"))
        assert published.code == ErrorCode.UNKNOWN_ENDPOINT, "published endpoints are not on it"
        with store.reading() as view:
            assert len(connections_of(view, b"carol")) == 1

    asyncio.run(main())


def test_each_refusal_has_its_code_and_runs_nothing() -> None:
    async def main() -> None:
        invoker, store, ran = _node()
        unknown = await invoker.invoke(_call(USE, 3, 1, "hello"))
        assert unknown.code == ErrorCode.CONNECTION_UNKNOWN
        assert (await invoker.invoke(_open())).ok
        stranger = await invoker.invoke(_call(USE, 3, 1, "hello", caller=MALLORY))
        assert stranger.code == ErrorCode.CONNECTION_NOT_PEER
        hijack = await invoker.invoke(_call(OPEN, 2, 1, "m", caller=MALLORY,
                                            kind=OperationKind.CONNECTION))
        assert hijack.code == ErrorCode.CONNECTION_ID_IN_USE
        not_closed = await invoker.invoke(_call(CLOSE, 0, 0, "x", caller=MALLORY))
        assert not_closed.code == ErrorCode.CONNECTION_NOT_PEER
        as_request = await invoker.invoke(_call(OPEN, 2, 2, "x", kind=OperationKind.CONNECTION))
        assert as_request.code == ErrorCode.WRONG_OPERATION_KIND
        assert [r[0] for r in ran] == ["open"]
        closed = await invoker.invoke(_call(CLOSE, 0, 0, "x"))
        assert closed.ok
        with store.reading() as view:
            assert read_connection(view, b"carol", CID) is None
        after = await invoker.invoke(_call(USE, 3, 1, "hello"))
        assert after.code == ErrorCode.CONNECTION_UNKNOWN

    asyncio.run(main())


def test_a_refusing_handler_leaves_nothing_and_a_reopen_is_told() -> None:
    async def main() -> None:
        invoker, store, ran = _node(accept=False)
        refused = await invoker.invoke(_open())
        assert refused.code == ErrorCode.CONNECTION_REFUSED
        with store.reading() as view:
            assert read_connection(view, b"carol", CID) is None
            assert view.get(b"carol", CHAT_STATE, (CID,)) is None
        invoker, store, ran = _node()
        assert (await invoker.invoke(_open(reestablished=True))).ok
        assert ran == [("open", CID, True)]

    asyncio.run(main())
