"""Connections between entities (docs/protocol.md 5.9): the rules, pure.

A connection is opened by calling a CONNECTION operation; both ends then offer
interfaces within its scope, and every handler invoked on it is told its id. It lives
between entities, not nodes: when the node serving the far end is gone, the opener's
next use reaches another mirror, which does not know the connection (440), and the
opener opens it again under the same id.

- wire.py: key 10 of a node request body (open, use, close), the open reply, offers,
  reservations; strict bounded decoding.
- machine.py: one end's connection as a state machine (phases, re-establishment, idle
  timeout, a vanished peer, the sender's reservation, traffic counters).
- bucket.py: the sender's token bucket for a reservation.
- limits.py: the bounds a node puts on the connections it serves (per entity, per
  peer, in total) and its idle sweep.

This area imports no other area of the core.
"""

from mercury_rt.core.connections.bucket import Bucket
from mercury_rt.core.connections.limits import ConnectionLimits, ServedConnections
from mercury_rt.core.connections.machine import (
    Answered,
    AwaitReopen,
    Close,
    CloseAnswered,
    Connection,
    ConnectionSettings,
    Counters,
    Ended,
    Go,
    Input,
    Opened,
    OpenFailed,
    Output,
    PeerClosed,
    Phase,
    Refused,
    Reopen,
    ReservationNotKept,
    Retry,
    Send,
    SendClose,
    Tick,
    Wait,
    opening,
    served,
    step,
)
from mercury_rt.core.connections.wire import (
    CONNECTION_KEY,
    ID_BYTES,
    MAX_OFFERS,
    NO_RESERVATION,
    ConnectionField,
    ConnectionForm,
    ConnectionWireError,
    Offers,
    OpenReply,
    Reservation,
    decode_field,
    decode_open_reply,
    offers_from_value,
    offers_to_value,
)

__all__ = [
    "CONNECTION_KEY", "ID_BYTES", "MAX_OFFERS", "NO_RESERVATION", "Answered", "AwaitReopen",
    "Bucket", "Close", "CloseAnswered", "Connection", "ConnectionField", "ConnectionForm",
    "ConnectionLimits", "ConnectionSettings", "ConnectionWireError", "Counters", "Ended", "Go",
    "Input", "Offers", "OpenFailed", "OpenReply", "Opened", "Output", "PeerClosed", "Phase",
    "Refused", "Reopen", "Reservation", "ReservationNotKept", "Retry", "Send", "SendClose",
    "ServedConnections", "Tick", "Wait", "decode_field", "decode_open_reply",
    "offers_from_value", "offers_to_value", "opening", "served", "step",
]
