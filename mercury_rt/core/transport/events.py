"""Events the transport core reports to its user (the node or the asyncio shell)."""

from __future__ import annotations

from dataclasses import dataclass

from mercury_rt.core.transport.wire import Addr


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request to run once; answer with `Transport.reply` or `reply_error`."""

    peer: Addr
    request_id: int
    payload: bytes
    deadline: float


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A one-way message, delivered once; the transport has already acknowledged it."""

    peer: Addr
    message_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The reply to our call `handle`."""

    handle: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """The peer acknowledged our one-way message `handle`."""

    handle: int


@dataclass(frozen=True, slots=True)
class CallFailed:
    """Our call or message `handle` ended without success; `code` says why."""

    handle: int
    code: int
    detail: str


TransportEvent = RequestReceived | MessageReceived | ReplyReceived | MessageDelivered | CallFailed
