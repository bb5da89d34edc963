"""Endpoint 0: the CARBON metadata interface every entity exposes, and its client cache.

A client that knows only an EID asks endpoint 0 which interfaces the entity offers on
which endpoints (`list-interfaces`) and, if it lacks it, an interface's protocol spec
(`get-spec`). Answers are cached per EID; a spec never changes for a given symbol, so the
spec cache never goes stale, while endpoint maps are dropped on an unknown-endpoint error.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.interfaces import (
    METADATA_ENDPOINT,
    METADATA_INTERFACE,
    InterfaceMap,
    interface_map_from_value,
    interface_map_to_value,
)
from carbon.protocol_spec import Interface, SpecRegistry, request, spec_to_value
from carbon.symbols import Symbol, SymbolError
from carbon.types import ANY, INT, NULL, STR, list_of, record

LIST_INTERFACES = 1
GET_SPEC = 2

METADATA_SPEC = Interface(METADATA_INTERFACE, ops=[
    request(LIST_INTERFACES, "list-interfaces", NULL,
            list_of(record(interface=STR, endpoint=INT))),
    request(GET_SPEC, "get-spec", STR, ANY),
])


class MetadataError(MercuryError):
    """A metadata question about an interface this entity does not offer."""

    code = ErrorCode.UNKNOWN_INTERFACE


def answer_metadata(operation: int, payload: Value, endpoints: InterfaceMap,
                    specs: SpecRegistry) -> Value:
    """Answer an endpoint-0 request from the entity's map and the node's specs (pure)."""
    if operation == LIST_INTERFACES:
        return interface_map_to_value(endpoints)
    if operation == GET_SPEC and isinstance(payload, str):
        try:
            symbol = Symbol(payload)
        except SymbolError as exc:
            raise MetadataError(f"get-spec: {exc.message}") from None
        spec = METADATA_SPEC if symbol == METADATA_INTERFACE else specs.get(symbol)
        if spec is None or endpoints.endpoint_of(symbol) is None:
            raise MetadataError(f"this entity offers no interface {symbol}")
        return spec_to_value(spec)
    raise MetadataError(f"endpoint 0 has no operation {operation}", ErrorCode.UNKNOWN_OPERATION)


class EndpointCache:
    """Client-side cache of EID -> interface map, least recently used first out."""

    def __init__(self, max_entities: int = 10_000) -> None:
        self._max = max_entities
        self._maps: OrderedDict[bytes, InterfaceMap] = OrderedDict()

    def learn(self, eid: bytes, listing: Any) -> InterfaceMap:
        """Store a decoded `list-interfaces` reply; raises EndpointError if malformed."""
        imap = interface_map_from_value(listing)
        self._maps[eid] = imap
        self._maps.move_to_end(eid)
        while len(self._maps) > self._max:
            self._maps.popitem(last=False)
        return imap

    def endpoint_for(self, eid: bytes, interface: Symbol) -> int | None:
        """The cached endpoint, or None when the client must ask endpoint 0 first.

        Raises MetadataError when the cached map says the entity lacks the interface.
        """
        if interface == METADATA_INTERFACE:
            return METADATA_ENDPOINT
        imap = self._maps.get(eid)
        if imap is None:
            return None
        self._maps.move_to_end(eid)
        endpoint = imap.endpoint_of(interface)
        if endpoint is None:
            raise MetadataError(f"entity offers no interface {interface} (per its endpoint 0)")
        return endpoint

    def forget(self, eid: bytes) -> None:
        """Drop a cached map, e.g. after the entity answered unknown-endpoint."""
        self._maps.pop(eid, None)

    def __len__(self) -> int:
        return len(self._maps)
