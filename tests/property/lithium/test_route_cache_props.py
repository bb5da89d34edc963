"""Stateful test: the dispatch route cache answers every lookup exactly as an uncached
lookup on the same snapshot does, through random binding changes, old snapshots kept
open, and a cache small enough to evict."""

from __future__ import annotations

import contextlib
import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from carbon.error_codes import ErrorCode
from carbon.interfaces import EndpointError
from carbon.principal import Persona, Principal
from carbon.protocol_spec import (
    Interface,
    OperationKind,
    ProtocolSpec,
    SpecRegistry,
    connection,
    message,
    request,
)
from carbon.symbols import Symbol
from lithium import IncomingCall, attach, detach
from lithium.bindings import bind, create_entity, remove_persona, unbind
from lithium.dispatch import DispatchError, Route, RouteCache, route
from tungsten.api import Snapshot, StateStore
from tungsten.memory import MemoryStore
from tungsten.staged import StagedState
from tungsten.store import LmdbOptions, LmdbStore

OPS = [request(1, "op1", None, None), request(2, "op2", None, None),
       message(3, "op3", None), connection(4, "op4", None, None)]
ONE, TWO = Interface("/test/one", ops=OPS), Interface("/test/two", ops=OPS)
SPECS = SpecRegistry([ONE, TWO])
CALLER = Principal(b"\x01c", b"caller")

entities = st.sampled_from([b"e1", b"e1", b"e2", b"e3"])
endpoints = st.sampled_from([0, 1, 1, 2, 5])
operations = st.sampled_from([1, 1, 2, 3, 4, 9])
kinds = st.sampled_from([OperationKind.REQUEST, OperationKind.REQUEST,
                         OperationKind.MESSAGE, OperationKind.CONNECTION])
personas = st.sampled_from([None, None, "/p/red", "/p/blue"])
handler_ids = st.sampled_from(["h.a", "h.b", "h.c"])
specs_of = st.sampled_from([ONE, TWO])

Outcome = Route | ErrorCode


def _outcome(lookup: object, view: Snapshot, call: IncomingCall) -> Outcome:
    try:
        if isinstance(lookup, RouteCache):
            return lookup.route(view, call)
        return route(view, SPECS, call)
    except DispatchError as exc:
        return exc.code


class RouteCacheModel(RuleBasedStateMachine):
    """Binding changes of every kind, each lookup made cached and uncached."""

    def make_store(self) -> StateStore:
        self.tmp = tempfile.mkdtemp()
        return LmdbStore(self.tmp, LmdbOptions(map_size=8 << 20))

    @initialize()
    def setup(self) -> None:
        self.store = self.make_store()
        self.cache = RouteCache(SPECS, max_entries=6)
        self.held: list[Snapshot] = []
        self.recent: list[IncomingCall] = []
        with self.store.writing() as txn:
            attach(txn, b"e1", ONE, endpoint=1, handlers={"op1": "h.a"})

    @rule(entity=entities, endpoint=st.sampled_from([1, 2, 5]), spec=specs_of)
    def attach_interface(self, entity: bytes, endpoint: int, spec: ProtocolSpec) -> None:
        with contextlib.suppress(EndpointError), self.store.writing() as txn:
            attach(txn, entity, spec, endpoint=endpoint, handlers={})

    @rule(entity=entities, endpoint=endpoints)
    def detach_interface(self, entity: bytes, endpoint: int) -> None:
        with self.store.writing() as txn:
            detach(txn, entity, endpoint)

    @rule(entity=entities)
    def create(self, entity: bytes) -> None:
        with self.store.writing() as txn:
            create_entity(txn, entity)

    @rule(entity=entities, endpoint=endpoints, op=operations, persona=personas,
          handler_id=handler_ids)
    def bind_handler(self, entity: bytes, endpoint: int, op: int, persona: str | None,
                     handler_id: str) -> None:
        with self.store.writing() as txn:
            bind(txn, entity, endpoint, op, handler_id,
                 persona_class=None if persona is None else Symbol(persona))

    @rule(entity=entities, endpoint=endpoints, op=operations, persona=personas)
    def unbind_handler(self, entity: bytes, endpoint: int, op: int, persona: str | None) -> None:
        with self.store.writing() as txn:
            unbind(txn, entity, endpoint, op,
                   persona_class=None if persona is None else Symbol(persona))

    @rule(entity=entities, persona=st.sampled_from(["/p/red", "/p/blue"]))
    def drop_persona(self, entity: bytes, persona: str) -> None:
        with self.store.writing() as txn:
            remove_persona(txn, entity, Symbol(persona))

    @rule(entity=entities, endpoint=endpoints, op=operations, handler_id=handler_ids)
    def handler_rebinds_through_staged_state(self, entity: bytes, endpoint: int, op: int,
                                             handler_id: str) -> None:
        """A handler's own writes to the handler section commit through StagedState."""
        snapshot = self.store.snapshot()
        staged = StagedState(snapshot)
        try:
            bind(staged, entity, endpoint, op, handler_id)
            staged.commit(self.store)
        finally:
            staged.discard()
            snapshot.close()

    @rule(entity=entities)
    def unrelated_write(self, entity: bytes) -> None:
        with self.store.writing() as txn:
            txn.put(entity, Symbol("/app/counter"), ("n",), (1,))

    @rule()
    def hold_snapshot(self) -> None:
        if len(self.held) < 3:
            self.held.append(self.store.snapshot())

    @rule()
    def release_snapshot(self) -> None:
        if self.held:
            self.held.pop(0).close()

    @rule(entity=entities, endpoint=endpoints, op=operations, kind=kinds, persona=personas,
          old=st.booleans())
    def lookup(self, entity: bytes, endpoint: int, op: int, kind: OperationKind,
               persona: str | None, old: bool) -> None:
        call = IncomingCall(entity, endpoint, op, kind, b"\xf6", CALLER,
                            persona=None if persona is None else Persona(Symbol(persona)))
        self.recent = [*self.recent[-3:], call]
        if old and self.held:
            view = self.held[0]
            assert _outcome(self.cache, view, call) == _outcome(None, view, call)
            return
        view = self.store.snapshot()
        try:
            expected = _outcome(None, view, call)
            assert _outcome(self.cache, view, call) == expected
            assert _outcome(self.cache, view, call) == expected, "a repeated lookup differs"
        finally:
            view.close()

    @rule()
    def repeat_recent_lookups(self) -> None:
        """Lookups repeated after whatever changed since: where a stale entry would show."""
        for call in self.recent:
            view = self.store.snapshot()
            try:
                assert _outcome(self.cache, view, call) == _outcome(None, view, call)
            finally:
                view.close()

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "cache"):
            assert len(self.cache) <= self.cache.max_entries

    def teardown(self) -> None:
        for snapshot in getattr(self, "held", []):
            snapshot.close()
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)


class MemoryRouteCacheModel(RouteCacheModel):
    """The same machine on the in-memory store."""

    def make_store(self) -> StateStore:
        self.tmp = ""
        return MemoryStore()


TestLmdbRouteCache = RouteCacheModel.TestCase
TestLmdbRouteCache.settings = settings(max_examples=80, stateful_step_count=60, deadline=None)
TestMemoryRouteCache = MemoryRouteCacheModel.TestCase
TestMemoryRouteCache.settings = settings(max_examples=40, stateful_step_count=60,
                                         deadline=None)
