"""Dispatch on a connection: the design's third case, after the primary interface and
the persona tuples.

A call carrying a connection id (form USE) is routed through the target entity's record
of that connection, never its published endpoints: the record must exist here (else
CONNECTION_UNKNOWN, 440: the opener re-establishes it), the caller must be the entity at
the other end (else CONNECTION_NOT_PEER, 441), and the connection endpoint, operation,
kind, handler and payload type are checked as for any call (5.3).
"""

from __future__ import annotations

from carbon import cbor
from carbon.error_codes import ErrorCode
from carbon.protocol_spec import SpecRegistry
from carbon.types import loads_typed
from lithium.connections import read_connection
from lithium.context import IncomingCall
from lithium.dispatch import Dispatch, DispatchError, Route, operation_called
from lithium.registry import HandlerRegistry
from tungsten.api import ReadView


def dispatch_on_connection(view: ReadView, specs: SpecRegistry, registry: HandlerRegistry,
                           call: IncomingCall,
                           limits: cbor.Limits = cbor.DEFAULT_LIMITS) -> Dispatch:
    """Route a USE call through the connection's map; raises DispatchError."""
    assert call.connection_id is not None
    record = read_connection(view, call.entity, call.connection_id)
    if record is None:
        raise DispatchError("this entity has no such connection here; open it again",
                            ErrorCode.CONNECTION_UNKNOWN)
    if not record.is_peer(call.originator or call.caller):
        raise DispatchError("the caller is not the entity at the other end of this "
                            "connection", ErrorCode.CONNECTION_NOT_PEER)
    found = record.handler(call.endpoint, call.operation)
    if found is None:
        raise DispatchError(f"the connection offers nothing on endpoint {call.endpoint}",
                            ErrorCode.UNKNOWN_ENDPOINT)
    interface, handler_id = found
    operation = operation_called(specs, interface, call)
    if handler_id is None:
        raise DispatchError(f"no handler is offered for operation {call.operation} on "
                            "this connection", ErrorCode.NO_HANDLER_BOUND)
    handler = registry.get(handler_id)
    if handler is None:
        raise DispatchError(f"handler {handler_id!r} is offered but not registered on this "
                            "node", ErrorCode.HANDLER_NOT_REGISTERED)
    payload = loads_typed(operation.message, call.payload, limits)
    return Dispatch(Route(interface, operation, handler_id, via_persona=False), handler,
                    payload)
