"""Reliable request/reply and one-way messages over datagrams, sans-IO: the `Transport`.

Everything that decides what goes on the wire for an exchange lives in this package,
each rule in one module:

- strict datagram decoding: one canonical CBOR envelope per datagram, every field
  checked by kind and range, only `MessageError` escapes; the bounds (`MAX_DETAIL`,
  ids, attempts): wire.py
- at-most-once: a received request or message runs once, a retransmission is answered
  from its record (the kept reply, an Ack, or REQUEST_LOST), and admission (record
  bounds, `max_ttl`, refusing a retransmission that may predate our restart):
  answering.py; the records, the sender epochs and their `done_below` marks, and the
  bounds on all three: exchanges.py
- retransmission scheduling (backoff, polling an acknowledged request, OVERLOADED
  retries), deadlines and NO_ANSWER, flow control (`max_call_span`): calling.py; the
  RTO (RFC 6298, Karn's rule) and the timer queue: timing.py
- fragmentation: congestion window, loss detection, reassembly under memory bounds:
  fragments.py; which exchange a fragment or FRAG_ACK belongs to: machine.py
- anti-amplification: at most 3x the bytes received to an address until it proves it
  receives what we send, and the bounded tables of both: amplification.py; every answer
  goes out through `_emit` or `_pump` in shared.py, which apply it
- the public API and the dispatch of datagrams and timers: machine.py; the state both
  sides share, per-peer state included: shared.py; the fast paths for a new request and
  a reply to our call, equivalent to the general path: fastpath.py, over fastwire.py
- tunables and their consistency checks: config.py; what the user is told: events.py;
  counters: stats.py

The transport does not know what a payload means: no entities, EIDs, clusters,
routing or policy; a peer is an `Addr` and a payload is bytes. Nor does it touch a
socket or a clock: the shell (mercury_rt.aio.endpoint) and the simulator
(mercury_rt.testing) feed it datagrams and the time.
"""

from mercury_rt.core.transport.config import (
    TransportConfig,
)
from mercury_rt.core.transport.events import (
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    TransportEvent,
)
from mercury_rt.core.transport.exchanges import (
    EPOCH_SHIFT,
    LookupVerdict,
    Record,
    RecordState,
    RecordTable,
)
from mercury_rt.core.transport.machine import (
    Transport,
)
from mercury_rt.core.transport.shared import (
    TransportError,
)
from mercury_rt.core.transport.wire import (
    Addr,
    Kind,
)

__all__ = [
    "EPOCH_SHIFT",
    "Addr",
    "CallFailed",
    "Kind",
    "LookupVerdict",
    "MessageDelivered",
    "MessageReceived",
    "Record",
    "RecordState",
    "RecordTable",
    "ReplyReceived",
    "RequestReceived",
    "Transport",
    "TransportConfig",
    "TransportError",
    "TransportEvent",
]
