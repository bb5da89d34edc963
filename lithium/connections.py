"""Connections in an entity's state: the handler map each end offers within one
connection, and dispatch to it (the design's third dispatch case).

A connection's interfaces are like an entity's published ones, scoped to the connection:
each end maps connection endpoints to interface symbols and their operations to handler
IDs. Both ends keep theirs in their entity's state, one record per connection, so
connection state survives wherever entity state does, and the handlers are told the
connection id (`ctx.connection_id`) to keep their own state keyed by it.

Section `/argon/mercury/connections`, key `(connection id,)`, value
`(role, peer cluster, peer local, peer EID, peer offers, own map)`: role "opener" or
"server"; the peer EID (empty when the peer is in this cluster) is where calls back go;
peer offers `[[endpoint, symbol], ...]`; own map `[[endpoint, symbol, [[op, handler ID],
...]], ...]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from carbon.protocol_spec import ProtocolSpec, SpecError, SpecRegistry
from carbon.symbols import Symbol
from carbon.tuples import CarbonTuple
from lithium.bindings import symbol_of
from lithium.registry import check_handler_id
from tungsten.api import ReadView, WriteView

CONNECTIONS_SECTION = Symbol("/argon/mercury/connections")
OPENER, SERVER = "opener", "server"
MAX_CONNECTION_OFFERS = 16


class EntityConnectionError(MercuryError):
    """A call on a connection that this entity cannot take; `code` says why."""

    code = ErrorCode.CONNECTION_UNKNOWN


@dataclass(frozen=True, slots=True)
class Offer:
    """One interface an end offers on a connection: its spec and, per operation name,
    the handler ID that answers it."""

    spec: ProtocolSpec
    handlers: Mapping[str, str]

    def __post_init__(self) -> None:
        for name, handler_id in self.handlers.items():
            self.spec.named(name)
            check_handler_id(handler_id)


Offers = Mapping[int, Offer]
"""Connection endpoint (1-65535) -> what is offered there."""


@dataclass(frozen=True, slots=True)
class Accept:
    """What a CONNECTION handler returns to accept: its reply (of the operation's
    declared reply type) and the interfaces it offers the opener on this connection."""

    reply: Any = None
    offers: Offers = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """One end's record of a connection."""

    role: str
    peer: Principal
    peer_eid: bytes
    peer_offers: tuple[tuple[int, str], ...]
    own: tuple[tuple[int, str, tuple[tuple[int, str], ...]], ...]

    def handler(self, endpoint: int, operation: int) -> tuple[Symbol, str | None] | None:
        """(interface, handler ID or None) on a connection endpoint; None: no endpoint."""
        for number, symbol, ops in self.own:
            if number == endpoint:
                return symbol_of(symbol), dict(ops).get(operation)
        return None

    def is_peer(self, caller: Principal) -> bool:
        """Whether `caller` is the entity at the other end (persona aside)."""
        return caller.cluster == self.peer.cluster and caller.local == self.peer.local


def own_map(offers: Offers, specs: SpecRegistry | None = None) -> tuple[
        tuple[int, str, tuple[tuple[int, str], ...]], ...]:
    """The stored form of what an end offers (registering the specs with `specs`)."""
    if len(offers) > MAX_CONNECTION_OFFERS:
        raise SpecError(f"a connection end offers at most {MAX_CONNECTION_OFFERS} interfaces")
    symbols = [offer.spec.interface for offer in offers.values()]
    if len(set(symbols)) != len(symbols):
        raise SpecError("an interface is offered on two connection endpoints")
    stored = []
    for endpoint in sorted(offers):
        if type(endpoint) is not int or not 0 < endpoint <= 0xFFFF:
            raise SpecError(f"connection endpoint {endpoint!r} must be 1-65535")
        offer = offers[endpoint]
        if specs is not None:
            specs.add(offer.spec)
        ops = tuple(sorted((offer.spec.named(name).number, handler_id)
                           for name, handler_id in offer.handlers.items()))
        stored.append((endpoint, offer.spec.interface.text, ops))
    return tuple(stored)


def offered(own: tuple[tuple[int, str, Any], ...]) -> tuple[tuple[int, str], ...]:
    """(endpoint, symbol) pairs of a stored map: what the other end is told."""
    return tuple((endpoint, symbol) for endpoint, symbol, _ in own)


def record_connection(txn: WriteView, entity: bytes, connection_id: bytes,
                      record: ConnectionRecord) -> None:
    """Write (or rewrite, on re-establishment) one end's record."""
    value: CarbonTuple = (
        record.role, record.peer.cluster, record.peer.local, record.peer_eid,
        [list(o) for o in record.peer_offers],
        [[endpoint, symbol, [list(op) for op in ops]] for endpoint, symbol, ops in record.own])
    txn.put(entity, CONNECTIONS_SECTION, (connection_id,), value)


def read_connection(view: ReadView, entity: bytes,
                    connection_id: bytes) -> ConnectionRecord | None:
    """This entity's record of a connection, or None (a malformed one counts as none)."""
    found = view.get(entity, CONNECTIONS_SECTION, (connection_id,))
    if found is None:
        return None
    try:
        return _record_from(found)
    except (TypeError, ValueError, MercuryError):
        return None


def _record_from(value: CarbonTuple) -> ConnectionRecord:
    """Parse a stored record; raises ValueError/TypeError on anything malformed."""
    fields: list[Any] = list(value)
    role, cluster, local, peer_eid, peer_offers, own = fields
    if role not in (OPENER, SERVER) or not all(
            type(b) is bytes for b in (cluster, local, peer_eid)):
        raise ValueError("connection record")
    return ConnectionRecord(
        role, Principal(cluster, local), peer_eid,
        tuple((_int(e), _str(s)) for e, s in peer_offers),
        tuple((_int(e), _str(s), tuple((_int(o), _str(h)) for o, h in ops))
              for e, s, ops in own))


def _int(value: Value) -> int:
    if type(value) is not int:
        raise ValueError("int")
    return value


def _str(value: Value) -> str:
    if type(value) is not str:
        raise ValueError("str")
    return value


def forget_connection(txn: WriteView, entity: bytes, connection_id: bytes) -> bool:
    """Delete this entity's record of a connection; True if there was one."""
    return txn.delete(entity, CONNECTIONS_SECTION, (connection_id,))


def connections_of(view: ReadView, entity: bytes,
                   limit: int = 4096) -> list[tuple[bytes, ConnectionRecord]]:
    """Up to `limit` of the entity's connections (id, record), for operators and tests."""
    found = []
    for key, _ in view.scan(entity, CONNECTIONS_SECTION, limit):
        if len(key) == 1 and type(key[0]) is bytes:
            record = read_connection(view, entity, key[0])
            if record is not None:
                found.append((key[0], record))
    return found


def encode_open_reply(reply: bytes, offers: tuple[tuple[int, str], ...],
                      granted: tuple[int, int]) -> bytes:
    """The payload of a successful open (docs/protocol.md 5.9):
    [reply, [[endpoint, symbol], ...], granted rate, granted burst]."""
    return cbor.dumps([reply, [list(o) for o in offers], granted[0], granted[1]])
