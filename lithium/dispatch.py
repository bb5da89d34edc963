"""Dispatch: from (entity, endpoint, operation, persona) to a handler and a typed payload.

Pure lookup over a snapshot, the node's interface specs and its handler registry; it
runs no handler and writes nothing. Every way a call can miss has its own error code so
the caller can act: fix the address (unknown entity/endpoint/operation), use the right
kind, send the declared type, use a persona the entity accepts, or tell the entity's
operator (no handler bound, handler not registered).
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.interfaces import METADATA_ENDPOINT, METADATA_INTERFACE
from carbon.metadata import METADATA_SPEC
from carbon.protocol_spec import Operation, ProtocolSpec, SpecRegistry
from carbon.symbols import Symbol
from carbon.types import loads_typed
from lithium.bindings import bound_handler, entity_exists, interface_at, persona_known
from lithium.context import IncomingCall
from lithium.registry import HandlerRegistry, RegisteredHandler
from tungsten.api import ReadView, Snapshot

_METADATA_TEXT = METADATA_INTERFACE.text
METADATA_HANDLER_ID = "carbon.metadata"
"""Endpoint 0 is answered by LITHIUM itself; no registry entry is needed."""


class DispatchError(MercuryError):
    """A call that cannot be routed to a handler; `code` says why."""

    code = ErrorCode.NO_HANDLER_BOUND


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call goes: the interface, operation and handler ID that answer it."""

    interface: Symbol
    operation: Operation
    handler_id: str
    via_persona: bool


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A routed call with its registered handler and its decoded, type-checked payload."""

    route: Route
    handler: RegisteredHandler | None
    payload: Value


def route(view: ReadView, specs: SpecRegistry, call: IncomingCall) -> Route:
    """Find the operation and handler ID for a call; raises DispatchError."""
    interface = _interface(view, call)
    operation = operation_called(specs, interface, call)
    if call.endpoint == METADATA_ENDPOINT:
        return _route_of(interface, operation, METADATA_HANDLER_ID, False)
    handler_id, via_persona = _handler_id(view, call)
    return _route_of(interface, operation, handler_id, via_persona)


_OPERATIONS: dict[tuple[int, int], tuple[ProtocolSpec, Operation | None]] = {}


def _operation_of(spec: ProtocolSpec, number: int) -> Operation | None:
    """`spec.operation(number)`, remembered (why: that is a scan of the spec's list). Keyed
    by the spec's identity, which the kept reference keeps from being reused; bounded."""
    key = (id(spec), number)
    found = _OPERATIONS.get(key)
    if found is not None and found[0] is spec:
        return found[1]
    operation = spec.operation(number)
    if len(_OPERATIONS) >= _MAX_ROUTES:
        _OPERATIONS.clear()
    _OPERATIONS[key] = (spec, operation)
    return operation


_ROUTES: dict[tuple[str, int, str, bool], Route] = {}
_MAX_ROUTES = 4096


def _route_of(interface: Symbol, operation: Operation, handler_id: str,
              via_persona: bool) -> Route:
    """One shared Route per distinct route (why: a million tuples bind a few handlers, and
    building a frozen dataclass costs more than finding it). Keyed by the operation's
    identity, which the kept Route's reference keeps from being reused."""
    key = (interface.text, id(operation), handler_id, via_persona)
    found = _ROUTES.get(key)
    if found is None or found.operation is not operation:
        found = Route(interface, operation, handler_id, via_persona)
        if len(_ROUTES) >= _MAX_ROUTES:
            _ROUTES.clear()
        _ROUTES[key] = found
    return found


def operation_called(specs: SpecRegistry, interface: Symbol, call: IncomingCall) -> Operation:
    """The operation `call` names on `interface`, of the kind it was called as; raises
    DispatchError (shared by the published endpoints and a connection's map)."""
    spec = METADATA_SPEC if interface.text == _METADATA_TEXT else specs.get(interface)
    if spec is None:
        raise DispatchError(f"this node has no protocol spec for {interface}",
                            ErrorCode.UNKNOWN_INTERFACE)
    operation = _operation_of(spec, call.operation)
    if operation is None:
        raise DispatchError(f"{interface} has no operation {call.operation}",
                            ErrorCode.UNKNOWN_OPERATION)
    if operation.kind is not call.kind:
        raise DispatchError(f"{interface} operation {operation.name!r} is a "
                            f"{operation.kind.name}, not a {call.kind.name}",
                            ErrorCode.WRONG_OPERATION_KIND)
    return operation


def _interface(view: ReadView, call: IncomingCall) -> Symbol:
    if call.endpoint == METADATA_ENDPOINT:
        if not entity_exists(view, call.entity):
            raise DispatchError("no such entity on this node", ErrorCode.ENTITY_NOT_ON_NODE)
        return METADATA_INTERFACE
    interface = interface_at(view, call.entity, call.endpoint)
    if interface is None:
        if not entity_exists(view, call.entity):
            raise DispatchError("no such entity on this node", ErrorCode.ENTITY_NOT_ON_NODE)
        raise DispatchError(f"entity has no endpoint {call.endpoint}; ask endpoint 0 for "
                            "its interfaces", ErrorCode.UNKNOWN_ENDPOINT)
    return interface


def _handler_id(view: ReadView, call: IncomingCall) -> tuple[str, bool]:
    """Persona tuple first when the call carries a persona, then the plain tuple."""
    if call.persona is not None:
        persona_class = call.persona.cls
        if not persona_known(view, call.entity, persona_class):
            raise DispatchError(f"entity does not accept persona class {persona_class}",
                                ErrorCode.UNKNOWN_PERSONA)
        found = bound_handler(view, call.entity, call.endpoint, call.operation,
                              persona_class=persona_class)
        if found is not None:
            return found, True
    found = bound_handler(view, call.entity, call.endpoint, call.operation)
    if found is None:
        raise DispatchError(f"no handler is bound to endpoint {call.endpoint} operation "
                            f"{call.operation}", ErrorCode.NO_HANDLER_BOUND)
    return found, False


RouteKey = tuple[bytes, int, int, int, str | None]
"""(entity, endpoint, operation, kind, persona class text): everything a route depends on
besides the dispatch sections and the node's specs."""


class RouteCache:
    """Routes found for `specs`, reused while the dispatch version is unchanged.

    Why it is safe: every change to a dispatch section bumps the store's dispatch version
    in the same write transaction (tungsten.api.TupleWriter), so a snapshot reporting the
    version a route was found under shows the same bindings, whichever process wrote
    them; a view that cannot tell its version (an image from another node) is never
    served from here. One cache serves one store: versions of two stores are unrelated
    numbers (the Invoker asks it only for snapshots of its own store). Specs are only
    ever added, never changed, so a route found stays right; handlers are looked up in
    the registry on every call, so registering or unregistering one needs no
    invalidation. Only routes are kept, never a refusal (a
    peer probing unknown entities cannot push routes out). Bounded: the oldest entry
    goes when full.
    """

    def __init__(self, specs: SpecRegistry, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("a route cache holds at least one route")
        self.specs = specs
        self.max_entries = max_entries
        self._entries: dict[RouteKey, tuple[int, Route]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def route(self, view: Snapshot, call: IncomingCall) -> Route:
        """As `route(view, self.specs, call)`; raises DispatchError the same way."""
        version = view.dispatch_version()
        if version is None:
            return route(view, self.specs, call)
        persona = call.persona
        key = (call.entity, call.endpoint, call.operation, call.kind,
               None if persona is None else persona.cls.text)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self.hits += 1
            return entry[1]
        self.misses += 1
        found = route(view, self.specs, call)
        if entry is None and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (version, found)
        return found


def dispatch(view: ReadView, specs: SpecRegistry, registry: HandlerRegistry,
             call: IncomingCall, limits: cbor.Limits = cbor.DEFAULT_LIMITS) -> Dispatch:
    """Route, find the registered handler, and decode the payload as its declared type."""
    return _dispatched(route(view, specs, call), registry, call, limits)


def dispatch_cached(snapshot: Snapshot, routes: RouteCache, registry: HandlerRegistry,
                    call: IncomingCall, limits: cbor.Limits = cbor.DEFAULT_LIMITS) -> Dispatch:
    """`dispatch` with the route from `routes` (for its specs): the same result."""
    return _dispatched(routes.route(snapshot, call), registry, call, limits)


def _dispatched(found: Route, registry: HandlerRegistry, call: IncomingCall,
                limits: cbor.Limits) -> Dispatch:
    handler = None
    if found.handler_id != METADATA_HANDLER_ID:
        handler = registry.get(found.handler_id)
        if handler is None:
            raise DispatchError(f"handler {found.handler_id!r} is bound but not registered "
                                "on this node", ErrorCode.HANDLER_NOT_REGISTERED)
    payload = loads_typed(found.operation.message, call.payload, limits)
    return Dispatch(found, handler, payload)
