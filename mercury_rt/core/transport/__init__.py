"""TODO face.
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
