"""Asking an entity's endpoint 0 what it offers: its interfaces and their specs.

A caller that knows only an EID learns here which endpoint carries an interface and what
each operation's payload and reply types are, so tools (`mercury-rt call`, name
resolution) need neither endpoint numbers nor hand-encoded payloads. Answers are checked
(carbon.metadata): a malformed listing or spec is a coded error, never trusted.
"""

from __future__ import annotations

from typing import Protocol

from carbon.interfaces import METADATA_ENDPOINT, InterfaceMap, interface_map_from_value
from carbon.metadata import GET_SPEC, LIST_INTERFACES, METADATA_SPEC, MetadataError
from carbon.protocol_spec import ProtocolSpec, spec_from_value
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed


class Calls(Protocol):
    """What asking endpoint 0 needs of a node: NodeRuntime.call."""

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes,
                   *, caller: bytes, timeout: float = ...) -> bytes:
        """The reply payload; raises NodeCallError."""


async def list_interfaces(node: Calls, eid: bytes, *, caller: bytes,
                          timeout: float = 10.0) -> InterfaceMap:
    """The entity's endpoint -> interface map (endpoint 0 `list-interfaces`)."""
    op = METADATA_SPEC.named("list-interfaces")
    raw = await node.call(eid, METADATA_ENDPOINT, LIST_INTERFACES, dumps_typed(op.message, None),
                          caller=caller, timeout=timeout)
    return interface_map_from_value(loads_typed(op.reply, raw))


async def get_spec(node: Calls, eid: bytes, interface: Symbol, *, caller: bytes,
                   timeout: float = 10.0) -> ProtocolSpec:
    """The interface's protocol spec as the entity publishes it (endpoint 0 `get-spec`);
    MetadataError if it answers with another interface's spec."""
    op = METADATA_SPEC.named("get-spec")
    raw = await node.call(eid, METADATA_ENDPOINT, GET_SPEC,
                          dumps_typed(op.message, interface.text), caller=caller,
                          timeout=timeout)
    spec = spec_from_value(loads_typed(op.reply, raw))
    if spec.interface != interface:
        raise MetadataError(f"asked for the spec of {interface}, got {spec.interface}")
    return spec
