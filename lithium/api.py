"""The developer API: attach an interface's operations to handlers on an entity.

    counter = Interface("/example/counter/v1", ops=[
        request(1, "add", record(n=int), int),
        message(2, "reset", None),
    ])
    with store.writing() as txn:
        attach(txn, b"alice", counter, endpoint=1,
               handlers={"add": "counter.add", "reset": "counter.reset"})

Operations left out of `handlers` stay unbound (callers get NO_HANDLER_BOUND). With
`persona=`, the tuples are persona-specific and the persona class becomes accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

from carbon.protocol_spec import ProtocolSpec, SpecError, SpecRegistry
from carbon.symbols import Symbol
from lithium.bindings import bind, create_entity, map_endpoint, unmap_endpoint
from tungsten.api import WriteView


def attach(txn: WriteView, entity: bytes, spec: ProtocolSpec, *, endpoint: int,
           handlers: Mapping[str, str], persona: Symbol | str | None = None,
           specs: SpecRegistry | None = None) -> None:
    """Offer `spec` on `endpoint` of `entity`, binding operation names to handler IDs.

    Pass the node's `specs` to register the interface there too (dispatch needs it).
    """
    unknown = set(handlers) - {op.name for op in spec.operations}
    if unknown:
        raise SpecError(f"{spec.interface} has no operation named {sorted(unknown)[0]!r}")
    if specs is not None:
        specs.add(spec)
    persona_class = Symbol(persona) if isinstance(persona, str) else persona
    create_entity(txn, entity)
    map_endpoint(txn, entity, endpoint, spec.interface)
    for name, handler_id in handlers.items():
        bind(txn, entity, endpoint, spec.named(name).number, handler_id,
             persona_class=persona_class)


def detach(txn: WriteView, entity: bytes, endpoint: int) -> bool:
    """Stop offering whatever interface is on `endpoint`, with all its handler tuples."""
    return unmap_endpoint(txn, entity, endpoint)
