"""The asyncio shell on real UDP sockets, loopback only (127.0.0.x), bounded and cleaned up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.endpoint import CallError, TransportEndpoint, open_endpoint
from mercury_rt.core.transport import MessageReceived, RequestReceived, TransportConfig, wire

pytestmark = pytest.mark.net
FAST = TransportConfig(initial_rto=0.05, min_rto=0.01, max_rto=0.5, reassembly_timeout=5.0)


@asynccontextmanager
async def endpoints(*handlers: tuple[object, object]) -> AsyncIterator[list[TransportEndpoint]]:
    opened: list[TransportEndpoint] = []
    try:
        for i, (on_request, on_message) in enumerate(handlers, start=1):
            opened.append(await open_endpoint((f"127.0.0.{i}", 0), config=FAST,
                                              on_request=on_request,  # type: ignore[arg-type]
                                              on_message=on_message))  # type: ignore[arg-type]
        yield opened
    finally:
        for endpoint in opened:
            endpoint.close()


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), timeout=30))


def test_requests_large_payloads_and_messages_cross_real_sockets() -> None:
    received: list[bytes] = []
    got_message = asyncio.Event()

    def echo(event: RequestReceived) -> bytes:
        return event.payload[::-1]

    def note(event: MessageReceived) -> None:
        received.append(event.payload)
        got_message.set()

    async def main() -> None:
        async with endpoints((echo, note), (None, None)) as (server, client):
            addr = server.local_address
            assert await client.call(addr, b"hello") == b"olleh"
            big = bytes(range(256)) * 4096  # 1 MiB
            assert await client.call(addr, big, timeout=20) == big[::-1]
            replies = await asyncio.gather(*(client.call(addr, bytes([i])) for i in range(200)))
            assert replies == [bytes([i]) for i in range(200)]
            await client.send(addr, b"one-way")
            await got_message.wait()
            assert received == [b"one-way"]

    run(main)


def test_async_handlers_errors_and_timeouts_surface_as_typed_call_errors() -> None:
    async def handler(event: RequestReceived) -> bytes:
        if event.payload == b"boom":
            raise RuntimeError("secret internals")
        if event.payload == b"denied":
            raise MercuryError("not allowed", ErrorCode.OVERLOADED)
        await asyncio.sleep(0)
        return b"ok:" + event.payload

    async def main() -> None:
        async with endpoints((handler, None), (None, None)) as (server, client):
            addr = server.local_address
            assert await client.call(addr, b"x") == b"ok:x"
            with pytest.raises(CallError) as info:
                await client.call(addr, b"boom")
            assert info.value.code == ErrorCode.REQUEST_FAILED
            assert "secret" not in info.value.message
            with pytest.raises(CallError) as info:
                await client.call(("127.0.0.9", 9), b"anyone?", timeout=0.3)
            assert info.value.code == ErrorCode.TIMEOUT

    run(main)


def test_garbage_from_the_network_does_not_disturb_service() -> None:
    async def main() -> None:
        async with endpoints((lambda e: e.payload, None), (None, None)) as (server, client):
            addr = server.local_address
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for i in range(300):
                    raw.sendto(bytes([i % 256]) * (i % 50 + 1), addr)
            assert await client.call(addr, b"fine") == b"fine"
            assert sum(server.core.stats.decode_errors.values()) > 0

    run(main)


def test_cancelling_a_call_forgets_it() -> None:
    async def never(event: RequestReceived) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def main() -> None:
        async with endpoints((never, None), (None, None)) as (server, client):
            task = asyncio.ensure_future(client.call(server.local_address, b"x", timeout=5))
            while client.core.outstanding == 0:
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.core.outstanding == 0

    run(main)


def test_a_call_beyond_the_callers_own_bounds_raises_call_error_with_its_code() -> None:
    """README: failures raise CallError with a stable code, our own limits included
    (issue 16 item 5)."""
    async def main() -> None:
        async with endpoints((lambda e: e.payload, None), (None, None)) as (server, client):
            addr = server.local_address
            too_big = b"x" * (client.core.config.max_message + 1)
            for attempt, code in ((client.call(addr, too_big), ErrorCode.MESSAGE_TOO_LARGE),
                                  (client.send(addr, too_big), ErrorCode.MESSAGE_TOO_LARGE),
                                  (client.call(addr, b"x", timeout=10_000),
                                   ErrorCode.TTL_TOO_LONG)):
                with pytest.raises(CallError) as info:
                    await attempt
                assert info.value.code == code
            assert await client.call(addr, b"still fine") == b"still fine"

    run(main)


class _Silent(asyncio.DatagramProtocol):
    """A socket that only counts what reaches it: a source that never proves itself."""

    def __init__(self) -> None:
        self.bytes = 0
        self.arrived = asyncio.Event()
        self.threshold = 1

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        self.bytes += len(data)
        if self.bytes >= self.threshold:
            self.arrived.set()


def test_a_source_that_never_echoes_gets_at_most_three_times_its_bytes_until_validated() -> None:
    async def main() -> None:
        async with endpoints((lambda e: b"R" * 200_000, None)) as (server,):
            loop = asyncio.get_running_loop()
            udp, silent = await loop.create_datagram_endpoint(
                _Silent, local_addr=("127.0.0.3", 0))
            try:
                request = wire.encode_request(9 << 32, 5_000, 0, 1, 0, 0, b"tiny")
                udp.sendto(request, server.local_address)
                await silent.arrived.wait()  # the short lead fragment
                source = udp.get_extra_info("sockname")[:2]
                account = server.core._amplification.account(source)
                assert account is not None and account.sent <= 3 * len(request)
                assert silent.bytes <= 3 * len(request)
                silent.threshold, silent.arrived = 20_000, asyncio.Event()
                server.validate_address(source)  # as the session layer would
                await silent.arrived.wait()
            finally:
                udp.close()

    run(main)
