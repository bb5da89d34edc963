"""The asyncio shell around the transport core: sockets, one timer, futures, handler tasks.

It makes no protocol decisions. A datagram goes into the core; the core's events become
resolved futures (for our calls) or handler invocations (for requests to us); the core's
datagrams go out; the core's next deadline arms one loop timer. Transient send errors
(EPERM, ENOBUFS, ECONNREFUSED on UDP) are loss, which the core already recovers from.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import socket
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, cast

import structlog

from carbon.error_codes import ErrorCode, MercuryError, known_code
from mercury_rt.core.transport import (
    Addr,
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
    TransportError,
)

RequestHandler = Callable[[RequestReceived], bytes | Awaitable[bytes]]
MessageHandler = Callable[[MessageReceived], Awaitable[None] | None]
SOCKET_BUFFER = 4 * 1024 * 1024
_log = structlog.get_logger("mercury_rt.aio")


class CallError(MercuryError):
    """A call or message that failed; `code` is the wire error code."""


class TransportEndpoint(asyncio.DatagramProtocol):
    """One UDP socket driven by one Transport core. Create with `await open_endpoint(...)`."""

    def __init__(self, core: Transport, on_request: RequestHandler | None = None,
                 on_message: MessageHandler | None = None) -> None:
        self.core = core
        self.on_request = on_request
        self.on_message = on_message
        self.send_errors = 0
        self._loop = asyncio.get_running_loop()
        self._now = self._loop.time
        self._udp: asyncio.DatagramTransport | None = None
        self._futures: dict[int, asyncio.Future[bytes | None]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.closed = asyncio.Event()

    # ----- public API ------------------------------------------------------------------

    @property
    def local_address(self) -> Addr:
        """The bound (host, port)."""
        assert self._udp is not None
        host, port = self._udp.get_extra_info("sockname")[:2]
        return (host, port)

    async def call(self, peer: Addr, payload: bytes, timeout: float | None = None,
                   answer_timeout: float | None = None) -> bytes:
        """Send a request and await its reply; raises CallError with the wire code.

        `answer_timeout`: fail with NO_ANSWER if the peer has not even acknowledged the
        request by then (it may be down; another node can be tried safely-ish: see
        docs/protocol.md 3.3).
        """
        try:  # inline rather than through `_start`: one coroutine and no closure per call
            handle = self.core.call(peer, payload, self._now(), timeout, answer_timeout)
        except TransportError as exc:
            raise CallError(exc.message, exc.code) from None
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._futures[handle] = future
        self._service()
        try:
            result = await future
        except asyncio.CancelledError:
            if self.core.cancel(handle):
                self._futures.pop(handle, None)
            raise
        assert result is not None
        return result

    async def send(self, peer: Addr, payload: bytes, timeout: float | None = None) -> None:
        """Send a one-way message and await its acknowledgement."""
        await self._start(self.core.send, peer, payload, timeout)

    def validate_address(self, peer: Addr) -> None:
        """Tell the core `peer` has proved it receives what we send (e.g. it used keys
        only our reply carried), lifting its anti-amplification limit (protocol.md 3.7);
        replies that waited for it go out now (none did for an address validated before:
        the core only refreshes it, so nothing is serviced then: this runs per request)."""
        known = self.core.is_validated(peer)
        self.core.validate_address(peer, self._now())
        if not known:
            self._service()

    async def drain(self) -> None:
        """Wait for every running handler to finish (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._service()

    def close(self) -> None:
        """Close the socket; outstanding calls fail with CANCELLED."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(CallError("endpoint closed", ErrorCode.CANCELLED))
        self._futures.clear()
        for task in self._tasks:
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()

    # ----- asyncio protocol callbacks --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the datagram transport."""
        self._udp = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Hand one datagram to the core and carry out what it decided."""
        peer = addr if len(addr) == 2 else (addr[0], addr[1])  # IPv6 gives 4 items
        self.core.receive_datagram(data, peer, self._now())
        self._service()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors and the like: the core treats silence as loss already."""
        self.send_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone."""
        self.closed.set()

    # ----- plumbing --------------------------------------------------------------------

    async def _start(self, start: Callable[[Addr, bytes, float, float | None], int],
                     peer: Addr, payload: bytes, timeout: float | None) -> bytes | None:
        try:
            handle = start(peer, payload, self._now(), timeout)
        except TransportError as exc:  # our own bounds (max_message, ttl, calls): the
            raise CallError(exc.message, exc.code) from None  # same error type as the peer's
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._futures[handle] = future
        self._service()
        try:
            return await future
        except asyncio.CancelledError:
            if self.core.cancel(handle):
                self._futures.pop(handle, None)
            raise

    def _service(self) -> None:
        """Carry out the core's decisions: events, then datagrams, then the timer. Events
        are told apart by exact type, the two common ones first (cheaper than `match`,
        which tries each class pattern with isinstance in turn)."""
        next_event = self.core.next_event
        while (event := next_event()) is not None:
            if type(event) is RequestReceived:
                self._run_request(event)
            elif type(event) is ReplyReceived:
                self._resolve(event.handle, event.payload)
            elif isinstance(event, MessageDelivered):
                self._resolve(event.handle, None)
            elif isinstance(event, CallFailed):
                future = self._futures.pop(event.handle, None)
                if future is not None and not future.done():
                    future.set_exception(CallError(event.detail, known_code(event.code)))
            elif isinstance(event, MessageReceived):
                self._run_message(event)
        self._flush()
        self._arm_timer()

    def _resolve(self, handle: int, value: bytes | None) -> None:
        future = self._futures.pop(handle, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _run_request(self, event: RequestReceived) -> None:
        if self.on_request is None:
            self._reply_error(event, ErrorCode.REQUEST_FAILED, "no request handler here")
            return
        try:
            result = self.on_request(event)
        except Exception as exc:
            self._handler_failed(event, exc)
            return
        if type(result) is bytes:
            self.core.reply(event.peer, event.request_id, result, self._now())
            return
        if isinstance(result, bytes) or not inspect.isawaitable(result):
            self._answer(event, result)
            return
        self.core.acknowledge(event.peer, event.request_id)
        self._flush()  # the ACK leaves before the handler can commit anything (below)
        if inspect.iscoroutine(result):
            self._first_step_inline(event, result)
            return
        task = self._spawn(result)
        task.add_done_callback(lambda done: self._on_handler_done(event, done))

    def _first_step_inline(self, event: RequestReceived,
                           coro: Coroutine[Any, Any, Any]) -> None:
        """Run a handler coroutine's first step now: one that finishes without waiting
        (most do) is answered with no Task, no callbacks and no loop iteration between;
        one that waits continues as a Task from where it stopped. Why: a Task per request
        costs more than the rest of a short handler. The ACK was sent before (not only
        queued): a node killed after the handler committed has then acknowledged the
        request, so its caller does not run it on another node (protocol.md 6.9)."""
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            self._answer(event, done.value)
            return
        except asyncio.CancelledError:
            return  # as a cancelled handler Task: no answer
        except Exception as exc:
            self._handler_failed(event, exc)
            return
        task = self._spawn(_await(_resume(coro, yielded)))
        task.add_done_callback(lambda done: self._on_handler_done(event, done))

    def _on_handler_done(self, event: RequestReceived, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._handler_failed(event, exc if isinstance(exc, Exception) else RuntimeError())
        else:
            self._answer(event, task.result())
        self._service()

    def _answer(self, event: RequestReceived, result: object) -> None:
        """Reply with the handler's bytes; anything else is the handler's failure."""
        if isinstance(result, bytes):
            self.core.reply(event.peer, event.request_id, result, self._now())
        else:
            self._reply_error(event, ErrorCode.REQUEST_FAILED, "handler returned no bytes")

    def _handler_failed(self, event: RequestReceived, exc: Exception) -> None:
        if isinstance(exc, MercuryError):
            self._reply_error(event, exc.code, exc.message)
            return
        _log.error("request_handler_failed", peer=event.peer, exc_info=exc)
        self._reply_error(event, ErrorCode.REQUEST_FAILED, "the request handler failed")

    def _reply_error(self, event: RequestReceived, code: ErrorCode, detail: str) -> None:
        self.core.reply_error(event.peer, event.request_id, code, detail, self._now())

    def _run_message(self, event: MessageReceived) -> None:
        if self.on_message is None:
            return
        try:
            result = self.on_message(event)
        except Exception as exc:
            _log.error("message_handler_failed", peer=event.peer, exc_info=exc)
            return
        if inspect.isawaitable(result):
            self._spawn(result).add_done_callback(_log_message_failure)

    def _spawn(self, awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(awaitable, loop=self._loop)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _flush(self) -> None:
        udp = self._udp
        if udp is None or udp.is_closing():
            self.core.datagrams_to_send()
            return
        sendto = udp.sendto
        for data, addr in self.core.datagrams_to_send():
            try:
                sendto(data, addr)
            except OSError:
                self.send_errors += 1

    def _arm_timer(self) -> None:
        when = self.core.get_timer()
        if when is None or (self._timer_at is not None and self._timer_at <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.core.handle_timer(self._now())
        self._service()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any],
            yielded: Any) -> Generator[Any, Any, Any]:
    """Continue `coro`, whose first step already ran and yielded `yielded`, exactly as a
    Task stepping it would: what it yields goes up to the Task driving this, what the
    Task sends or throws goes down to it."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # cancellation included: it is the coroutine's
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value


async def _await(resumed: Awaitable[Any]) -> Any:
    """A real coroutine around `_resume` (asyncio Tasks take only coroutines)."""
    return await resumed


def _log_message_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("message_handler_failed", exc_info=task.exception())




async def open_endpoint(local: Addr, *, config: TransportConfig | None = None,
                        on_request: RequestHandler | None = None,
                        on_message: MessageHandler | None = None,
                        rng: random.Random | None = None) -> TransportEndpoint:
    """Bind a UDP socket at `local` and drive a fresh Transport core on it."""
    loop = asyncio.get_running_loop()
    core = Transport(config, rng=rng or random.Random())
    sock = bind_socket(local)
    _, endpoint = await loop.create_datagram_endpoint(
        lambda: TransportEndpoint(core, on_request, on_message), sock=sock)
    _shrink_stock_read_buffer(endpoint)
    return endpoint


def bind_socket(local: Addr) -> socket.socket:
    """A non-blocking UDP socket bound at `local`, with large kernel buffers."""
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
    sock.bind(local)
    sock.setblocking(False)
    return sock


def _shrink_stock_read_buffer(endpoint: TransportEndpoint) -> None:
    """The stock loop reads UDP with a 256 KiB buffer that glibc mmaps per datagram;
    64 KiB (the largest UDP payload) costs a third as much. uvloop has no such knob."""
    udp = endpoint._udp
    if udp is not None and hasattr(udp, "max_size"):
        udp.max_size = 65_536
