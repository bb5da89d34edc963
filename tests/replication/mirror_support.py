"""Two (or more) mirrors of one entity as a node runs them: each its own LMDB for
bindings and its own Invoker, sharing the entity's state through etcd (ReplicatedElsewhere,
the node's path for a config with a `replication:` section), each with its read cache in
its own LMDB (`<dir>/etcd-cache`) kept current by a watch, as a node has."""

from __future__ import annotations

import asyncio
from pathlib import Path

from carbon.principal import Principal
from carbon.protocol_spec import Interface, SpecRegistry, request
from carbon.types import dumps_typed, list_of, loads_typed, optional
from lithium import HandlerRegistry, IncomingCall, attach
from lithium.bindings import entity_exists
from lithium.context import RequestContext
from lithium.invoke import InvokeLimits, Invoker, Reply
from mercury_rt.aio.mirror_watch import MirrorWatch
from mercury_rt.aio.replicated_state import ReplicatedElsewhere
from tungsten.etcd_store import EtcdSettings, EtcdState
from tungsten.mirror_cache import MirrorCache
from tungsten.store import LmdbStore

COUNTER = Interface("/test/counter/v1", ops=[
    request(1, "add", int, int), request(2, "get", None, int),
    request(3, "put", list_of(str), None), request(4, "read", str, optional(str)),
    request(5, "fill", int, None)])
SECTION = "/test/counter"
ENTITY = b"acct"
CALLER = Principal(b"\x01" + bytes(32), b"tester")


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.handler("t.add")
    def add(ctx: RequestContext, n: int) -> int:
        now = ctx.state.get(SECTION, ("count",))
        total = (0 if now is None else int(now[0])) + n
        ctx.state.put(SECTION, ("count",), (total,))
        return total

    @registry.handler("t.get")
    def get(ctx: RequestContext, _: None) -> int:
        now = ctx.state.get(SECTION, ("count",))
        return 0 if now is None else int(now[0])

    @registry.handler("t.put")
    def put(ctx: RequestContext, kv: list[str]) -> None:
        ctx.state.put(SECTION, (kv[0],), (kv[1],))

    @registry.handler("t.read")
    def read(ctx: RequestContext, key: str) -> str | None:
        found = ctx.state.get(SECTION, (key,))
        return None if found is None else str(found[0])

    @registry.handler("t.fill")
    def fill(ctx: RequestContext, n: int) -> None:
        for i in range(n):
            ctx.state.put(SECTION, (f"k{i}",), ("x",))

    return registry


HANDLERS = {"add": "t.add", "get": "t.get", "put": "t.put", "read": "t.read", "fill": "t.fill"}


class Mirror:
    """One node's view: its own store (bindings) and Invoker, the shared etcd state."""

    def __init__(self, directory: Path, settings: EtcdSettings, *, cached: bool = True) -> None:
        self.store = LmdbStore(directory)
        self.specs = SpecRegistry()
        with self.store.writing() as txn:
            attach(txn, ENTITY, COUNTER, endpoint=1, specs=self.specs, handlers=HANDLERS)
        self.etcd = EtcdState(settings)
        self.invoker = Invoker(self.store, _registry(), self.specs,
                               limits=InvokeLimits(timeout=30.0, max_conflict_retries=8),
                               incident_prefix="mirror")
        self.cache_store = LmdbStore(directory / "etcd-cache") if cached else None
        self.watch = None if self.cache_store is None else MirrorWatch(
            self.etcd, MirrorCache(self.cache_store, mirrored=self._mirrors))

    def _mirrors(self, entity: bytes) -> bool:
        with self.store.reading() as view:
            return entity_exists(view, entity)

    async def ready(self) -> MirrorWatch:
        """The watch, once it has reached etcd (started if it was not)."""
        assert self.watch is not None
        self.watch.start()
        await self.watch.opened.wait()
        return self.watch

    async def call(self, operation: str, payload: object = None,
                   request_id: bytes | None = None) -> Reply:
        """Run one operation as the node does for a replicated entity."""
        op = COUNTER.named(operation)
        loop = asyncio.get_running_loop()
        if self.watch is not None:
            self.watch.start()
        call = IncomingCall(ENTITY, 1, op.number, op.kind, dumps_typed(op.message, payload),
                            CALLER, deadline=loop.time() + 30.0, request_id=request_id)
        return await self.invoker.invoke(call, ReplicatedElsewhere(
            self.etcd, self.store, ENTITY, request_id, cache=self.watch))

    async def value(self, operation: str, payload: object = None,
                    request_id: bytes | None = None) -> object:
        """The decoded reply; AssertionError with the code if it failed."""
        reply = await self.call(operation, payload, request_id)
        assert reply.ok, (reply.code, reply.message)
        return loads_typed(COUNTER.named(operation).reply, reply.payload or b"")

    async def close(self) -> None:
        """Release the invoker, the watch, etcd connections and the stores."""
        self.invoker.close()
        if self.watch is not None:
            await self.watch.stop()
        await self.etcd.close()
        self.store.close()
        if self.cache_store is not None:
            self.cache_store.close()
