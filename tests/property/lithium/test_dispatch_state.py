"""Stateful test: a model of handler tuples and personas agrees with TUNGSTEN dispatch."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Persona, Principal
from carbon.protocol_spec import Interface, OperationKind, SpecRegistry, request
from carbon.symbols import Symbol
from carbon.types import NULL, dumps_typed
from lithium import HandlerRegistry, IncomingCall, attach
from lithium.bindings import bind, remove_persona, unbind
from lithium.dispatch import dispatch
from tungsten.api import StateStore
from tungsten.memory import MemoryStore
from tungsten.store import LmdbOptions, LmdbStore

OPS = [request(n, f"op{n}", None, None) for n in (1, 2, 3)]
SPECS = SpecRegistry([Interface("/test/one", ops=OPS), Interface("/test/two", ops=OPS)])
HANDLER_IDS = ["h.a", "h.b", "h.c", "h.missing"]
REGISTRY = HandlerRegistry()
for _hid in HANDLER_IDS[:-1]:
    REGISTRY.register(_hid, lambda ctx, msg: None)

entities = st.sampled_from([b"e1", b"e1", b"e2", b"e3"])
endpoints = st.sampled_from([1, 1, 2, 5])
operations = st.sampled_from([1, 1, 2, 3, 9])
personas = st.sampled_from([None, None, "/p/red", "/p/blue"])
handler_ids = st.sampled_from(HANDLER_IDS)
CALLER = Principal(b"\x01c", b"caller")


class DispatchModel(RuleBasedStateMachine):
    """Random attach/bind/unbind/persona changes, with every lookup checked against a model."""

    def make_store(self) -> StateStore:
        self.tmp = tempfile.mkdtemp()
        return LmdbStore(self.tmp, LmdbOptions(map_size=8 << 20))

    @initialize()
    def setup(self) -> None:
        self.store = self.make_store()
        self.entities: set[bytes] = set()
        self.personas: dict[bytes, set[str]] = {}
        self.tuples: dict[tuple[bytes, str | None, int, int], str] = {}
        self.create(b"e1")

    @rule(entity=entities)
    def create(self, entity: bytes) -> None:
        if entity in self.entities:
            return
        with self.store.writing() as txn:
            attach(txn, entity, SPECS.get(Symbol("/test/one")), endpoint=1, handlers={})  # type: ignore[arg-type]
            attach(txn, entity, SPECS.get(Symbol("/test/two")), endpoint=2, handlers={})  # type: ignore[arg-type]
        self.entities.add(entity)

    @rule(entity=entities, endpoint=endpoints, op=operations, persona=personas,
          handler_id=handler_ids)
    def bind_handler(self, entity: bytes, endpoint: int, op: int, persona: str | None,
                     handler_id: str) -> None:
        with self.store.writing() as txn:
            bind(txn, entity, endpoint, op, handler_id,
                 persona_class=None if persona is None else Symbol(persona))
        self.tuples[(entity, persona, endpoint, op)] = handler_id
        if persona is not None:
            self.personas.setdefault(entity, set()).add(persona)

    @rule(entity=entities, endpoint=endpoints, op=operations, persona=personas)
    def unbind_handler(self, entity: bytes, endpoint: int, op: int, persona: str | None) -> None:
        with self.store.writing() as txn:
            existed = unbind(txn, entity, endpoint, op,
                             persona_class=None if persona is None else Symbol(persona))
        assert existed == ((entity, persona, endpoint, op) in self.tuples)
        self.tuples.pop((entity, persona, endpoint, op), None)

    @rule(entity=entities, persona=st.sampled_from(["/p/red", "/p/blue"]))
    def drop_persona(self, entity: bytes, persona: str) -> None:
        with self.store.writing() as txn:
            remove_persona(txn, entity, Symbol(persona))
        self.personas.get(entity, set()).discard(persona)

    def expected(self, entity: bytes, endpoint: int, op: int,
                 persona: str | None) -> str | ErrorCode:
        if entity not in self.entities:
            return ErrorCode.ENTITY_NOT_ON_NODE
        if endpoint not in (1, 2):
            return ErrorCode.UNKNOWN_ENDPOINT
        if op not in (1, 2, 3):
            return ErrorCode.UNKNOWN_OPERATION
        found = None
        if persona is not None:
            if persona not in self.personas.get(entity, set()):
                return ErrorCode.UNKNOWN_PERSONA
            found = self.tuples.get((entity, persona, endpoint, op))
        found = found or self.tuples.get((entity, None, endpoint, op))
        if found is None:
            return ErrorCode.NO_HANDLER_BOUND
        return ErrorCode.HANDLER_NOT_REGISTERED if found == "h.missing" else found

    @rule(entity=entities, endpoint=endpoints, op=operations, persona=personas)
    def lookup(self, entity: bytes, endpoint: int, op: int, persona: str | None) -> None:
        call = IncomingCall(entity, endpoint, op, OperationKind.REQUEST, dumps_typed(NULL, None),
                            CALLER, persona=None if persona is None else Persona(Symbol(persona)))
        with self.store.reading() as view:
            try:
                got: str | ErrorCode = dispatch(view, SPECS, REGISTRY, call).route.handler_id
            except MercuryError as exc:
                got = exc.code
        assert got == self.expected(entity, endpoint, op, persona)

    def teardown(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)


class MemoryDispatchModel(DispatchModel):
    """The same machine on the in-memory store."""

    def make_store(self) -> StateStore:
        self.tmp = ""
        return MemoryStore()


TestLmdbDispatchModel = DispatchModel.TestCase
TestLmdbDispatchModel.settings = settings(max_examples=100, stateful_step_count=50,
                                          deadline=None)
TestMemoryDispatchModel = MemoryDispatchModel.TestCase
TestMemoryDispatchModel.settings = settings(max_examples=50, stateful_step_count=50,
                                            deadline=None)
