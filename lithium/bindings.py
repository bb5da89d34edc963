"""An entity's dispatch tables in TUNGSTEN: endpoints, personas and handler tuples.

Sections of each entity (keys and values are CARBON tuples):
- /argon/mercury/entity          ("entity",) -> ()                  the entity exists
- /argon/carbon/endpoints        (endpoint,) -> (interface symbol,)
- /argon/mercury/personas        (persona class,) -> ()             persona classes it accepts
- /argon/mercury/entity-handlers (endpoint, op) -> (handler ID,)
                                 (persona class, endpoint, op) -> (handler ID,)
"""

from __future__ import annotations

from functools import lru_cache

from carbon.interfaces import MAX_INTERFACES, EndpointError, InterfaceMap, check_endpoint
from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from lithium.registry import check_handler_id
from tungsten.api import ReadView, WriteView

ENTITY_SECTION = Symbol("/argon/mercury/entity")
ENDPOINTS_SECTION = Symbol("/argon/carbon/endpoints")
PERSONAS_SECTION = Symbol("/argon/mercury/personas")
HANDLERS_SECTION = Symbol("/argon/mercury/entity-handlers")
_EXISTS = ("entity",)


def create_entity(txn: WriteView, entity: bytes) -> None:
    """Mark `entity` as hosted here (idempotent)."""
    txn.put(entity, ENTITY_SECTION, _EXISTS, ())


def entity_exists(view: ReadView, entity: bytes) -> bool:
    """True when `entity` was created on this node."""
    return view.get(entity, ENTITY_SECTION, _EXISTS) is not None


@lru_cache(maxsize=4096)
def _symbol(text: str) -> Symbol:
    """Symbols parsed once (why: validation costs more than the LMDB read itself)."""
    return Symbol(text)


symbol_of = _symbol
"""A symbol from its text, parsed once (connection records use it too)."""


def _named_interface(record: CarbonTuple | None) -> Symbol | None:
    """The interface an endpoint record `(interface symbol,)` names, or None."""
    if not record or not isinstance(record[0], str):
        return None
    return _symbol(record[0])


def interface_at(view: ReadView, entity: bytes, endpoint: int) -> Symbol | None:
    """The interface symbol on an endpoint, or None."""
    return _named_interface(view.get(entity, ENDPOINTS_SECTION, (endpoint,)))


def read_interface_map(view: ReadView, entity: bytes) -> InterfaceMap:
    """The entity's whole endpoint map (what endpoint 0 lists): exactly the endpoints
    interface_at resolves, so a malformed record is neither listed nor routed to."""
    named = {key[0]: _named_interface(record)
             for key, record in view.scan(entity, ENDPOINTS_SECTION)
             if len(key) == 1 and type(key[0]) is int}
    return InterfaceMap({endpoint: i for endpoint, i in named.items() if i is not None})


def map_endpoint(txn: WriteView, entity: bytes, endpoint: int, interface: Symbol) -> None:
    """Put `interface` on `endpoint`; refuses to move or overwrite a mapping silently."""
    check_endpoint(endpoint)
    current = read_interface_map(txn, entity)
    if endpoint not in current.by_endpoint and len(current.by_endpoint) >= MAX_INTERFACES:
        raise EndpointError(f"an entity offers at most {MAX_INTERFACES} interfaces")
    at = current.interface_at(endpoint)
    where = current.endpoint_of(interface)
    if at not in (None, interface) or where not in (None, endpoint):
        raise EndpointError(f"endpoint {endpoint} carries {at}, and {interface} is on "
                            f"endpoint {where}; detach first")
    txn.put(entity, ENDPOINTS_SECTION, (endpoint,), (interface.text,))


def unmap_endpoint(txn: WriteView, entity: bytes, endpoint: int) -> bool:
    """Remove an endpoint mapping and every handler tuple for that endpoint."""
    for key, _ in txn.scan(entity, HANDLERS_SECTION):
        if (len(key) == 2 and key[0] == endpoint) or (len(key) == 3 and key[1] == endpoint):
            txn.delete(entity, HANDLERS_SECTION, key)
    return txn.delete(entity, ENDPOINTS_SECTION, (endpoint,))


def add_persona(txn: WriteView, entity: bytes, persona_class: Symbol) -> None:
    """Accept requests addressed to this persona class."""
    txn.put(entity, PERSONAS_SECTION, (persona_class.text,), ())


def remove_persona(txn: WriteView, entity: bytes, persona_class: Symbol) -> bool:
    """Stop accepting a persona class (its handler tuples stay until unbound)."""
    return txn.delete(entity, PERSONAS_SECTION, (persona_class.text,))


def persona_known(view: ReadView, entity: bytes, persona_class: Symbol) -> bool:
    """True when the entity accepts this persona class."""
    return view.get(entity, PERSONAS_SECTION, (persona_class.text,)) is not None


def handler_key(endpoint: int, operation: int,
                persona_class: Symbol | None) -> tuple[int, int] | tuple[str, int, int]:
    """The handler tuple's key: (endpoint, op) or (persona class, endpoint, op)."""
    if persona_class is None:
        return (endpoint, operation)
    return (persona_class.text, endpoint, operation)


def bind(txn: WriteView, entity: bytes, endpoint: int, operation: int, handler_id: str, *,
         persona_class: Symbol | None = None) -> None:
    """Write a handler tuple (and accept the persona class, if one is given)."""
    check_handler_id(handler_id)
    if persona_class is not None:
        add_persona(txn, entity, persona_class)
    txn.put(entity, HANDLERS_SECTION, handler_key(endpoint, operation, persona_class),
            (handler_id,))


def unbind(txn: WriteView, entity: bytes, endpoint: int, operation: int, *,
           persona_class: Symbol | None = None) -> bool:
    """Remove a handler tuple; True if it existed."""
    return txn.delete(entity, HANDLERS_SECTION,
                      handler_key(endpoint, operation, persona_class))


def bound_handler(view: ReadView, entity: bytes, endpoint: int, operation: int, *,
                  persona_class: Symbol | None = None) -> str | None:
    """The handler ID in exactly this tuple (no fallback), or None."""
    found = view.get(entity, HANDLERS_SECTION, handler_key(endpoint, operation, persona_class))
    if found is None or not found or not isinstance(found[0], str):
        return None
    return found[0]
