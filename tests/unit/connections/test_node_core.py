"""The node core reads key 10: an open is a CONNECTION call within the node's bounds,
a use carries the connection id, a refused open or a close leaves the served table."""

from __future__ import annotations

from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from carbon.protocol_spec import OperationKind
from mercury_rt.core.connections import (
    ConnectionField,
    ConnectionForm,
    ConnectionLimits,
    Reservation,
)
from mercury_rt.core.node import Invoke, NodeCore, NodeRequest, Respond, decode_reply
from mercury_rt.core.node import encode_operation as operation
from tests.unit.node.test_request_shape import _home_core

CID = b"q" * 16


def _handle(core: NodeCore, dave: bytes, field: ConnectionField, caller: bytes = b"alice",
            message_id: bytes | None = None) -> Invoke | Respond:
    body = NodeRequest(dave, 1, 2, b"", version=1,
                       vouched=Principal(core.master_hash, caller), message_id=message_id,
                       connection=field).body()
    action = core.handle_local(operation(body), b"k", 10.0, 0.0)
    assert isinstance(action, Invoke | Respond)
    return action


def test_an_open_is_a_connection_call_granted_within_the_bounds() -> None:
    core, dave = _home_core()
    core.connections.limits = ConnectionLimits(per_peer=1, reservable=300)
    opened = _handle(core, dave, ConnectionField(ConnectionForm.OPEN, CID, ((1, "/a/b"),),
                                                 False, Reservation(500, 100)))
    assert isinstance(opened, Invoke)
    call = opened.call
    assert call.kind is OperationKind.CONNECTION and call.connection_id == CID
    assert call.connection is not None and call.connection.peer_offers == ((1, "/a/b"),)
    assert call.connection.granted == (300, 100), "what is left of the reservable rate"
    second = _handle(core, dave, ConnectionField(ConnectionForm.OPEN, b"r" * 16))
    assert isinstance(second, Respond)
    assert decode_reply(second.reply).code == ErrorCode.TOO_MANY_PEER_CONNECTIONS
    core.finish(opened, None, int(ErrorCode.CONNECTION_REFUSED))
    assert len(core.connections) == 0, "a refused open leaves the table"


def test_uses_and_closes_carry_the_id_and_a_close_releases() -> None:
    core, dave = _home_core()
    _handle(core, dave, ConnectionField(ConnectionForm.OPEN, CID))
    use = _handle(core, dave, ConnectionField(ConnectionForm.USE, CID), message_id=b"m" * 8)
    assert isinstance(use, Invoke)
    assert use.call.kind is OperationKind.MESSAGE and use.call.connection_id == CID
    assert core.connections.traffic(b"dave", CID) == 1
    close = _handle(core, dave, ConnectionField(ConnectionForm.CLOSE, CID))
    assert isinstance(close, Invoke)
    core.finish(close, b"\xf6", None)
    assert len(core.connections) == 0
