"""What invoking a connection call does to the entity's state, beside its handler.

An open runs the CONNECTION operation's handler like a request's; to accept, the handler
returns `Accept(reply, offers)`, and its map is written to the entity's record of the
connection in the same transaction as the handler's own writes (so an accept that fails
to commit leaves nothing behind). A close deletes the record. Checks that need no handler
run first: an id another peer's connection holds here is refused (442) before anything
runs.
"""

from __future__ import annotations

from typing import Any

from carbon.error_codes import ErrorCode
from carbon.protocol_spec import SpecRegistry
from lithium.connections import (
    SERVER,
    Accept,
    ConnectionRecord,
    EntityConnectionError,
    encode_open_reply,
    forget_connection,
    offered,
    own_map,
    read_connection,
    record_connection,
)
from lithium.context import IncomingCall
from tungsten.api import ReadView, WriteView

CLOSED_REPLY = b"\xf6"
"""A close answers null."""


def _peer_id(call: IncomingCall) -> bytes:
    assert call.connection_id is not None
    return call.connection_id


def check_open(view: ReadView, call: IncomingCall) -> None:
    """Before an open's handler runs: the id is not another peer's connection here."""
    record = read_connection(view, call.entity, _peer_id(call))
    if record is not None and not record.is_peer(call.originator or call.caller):
        raise EntityConnectionError("this connection id belongs to another connection; open "
                               "with a fresh id", ErrorCode.CONNECTION_ID_IN_USE)


def accept_connection(txn: WriteView, call: IncomingCall, result: Any,
                      specs: SpecRegistry) -> tuple[tuple[int, str], ...]:
    """Record the accepted connection (raises CONNECTION_REFUSED unless the handler
    returned an Accept); the interfaces offered, as the opener is told them."""
    if not isinstance(result, Accept):
        raise EntityConnectionError("the entity did not accept the connection",
                               ErrorCode.CONNECTION_REFUSED)
    assert call.connection is not None
    own = own_map(result.offers, specs)
    peer = call.originator or call.caller
    record_connection(txn, call.entity, _peer_id(call), ConnectionRecord(
        SERVER, peer, call.connection.peer_eid, call.connection.peer_offers, own))
    return offered(own)


def opened_reply(call: IncomingCall, reply: bytes, offers: tuple[tuple[int, str], ...]) -> bytes:
    """The open's reply payload: the typed reply, the offers, the granted reservation."""
    assert call.connection is not None
    return encode_open_reply(reply, offers, call.connection.granted)


def close_connection(txn: WriteView, call: IncomingCall) -> bytes:
    """Delete the record of a connection the caller is the peer of; raises 440/441."""
    record = read_connection(txn, call.entity, _peer_id(call))
    if record is None:
        raise EntityConnectionError("this entity has no such connection here",
                               ErrorCode.CONNECTION_UNKNOWN)
    if not record.is_peer(call.originator or call.caller):
        raise EntityConnectionError("only the entity at the other end closes a connection",
                               ErrorCode.CONNECTION_NOT_PEER)
    forget_connection(txn, call.entity, _peer_id(call))
    return CLOSED_REPLY
