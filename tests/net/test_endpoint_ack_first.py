"""An endpoint told which requests to acknowledge first (`ack_first`) answers a handler
that finishes in its first step with the REPLY alone, and still acknowledges at once a
request whose handler waits, or one `ack_first` names. Loopback 127.0.112.x only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from mercury_rt.aio.endpoint import TransportEndpoint, open_endpoint
from mercury_rt.core.transport import RequestReceived
from tests.net.test_endpoint_loopback import FAST, run

pytestmark = pytest.mark.net


@asynccontextmanager
async def pair(gate: asyncio.Event, waiting: asyncio.Event | None = None
               ) -> AsyncIterator[tuple[TransportEndpoint, TransportEndpoint]]:
    """A server whose handler waits for `gate` on payloads starting b"wait" (setting
    `waiting` first), and acknowledges first only payloads starting b"first"; a client."""
    async def handler(event: RequestReceived) -> bytes:
        if event.payload.startswith(b"wait"):
            if waiting is not None:
                waiting.set()
            await gate.wait()
        return b"re:" + event.payload

    server = await open_endpoint(("127.0.112.1", 0), config=FAST, on_request=handler,
                                 ack_first=lambda payload: payload.startswith(b"first"))
    client = await open_endpoint(("127.0.112.2", 0), config=FAST)
    try:
        yield server, client
    finally:
        server.close()
        client.close()


def test_an_answer_in_the_first_step_goes_without_an_ack() -> None:
    async def main() -> None:
        async with pair(asyncio.Event()) as (server, client):
            assert await client.call(server.local_address, b"now") == b"re:now"
            assert server.core.stats.datagrams_out == 1, "the REPLY alone"

    run(main)


def test_a_request_named_by_ack_first_is_acknowledged_before_its_reply() -> None:
    async def main() -> None:
        async with pair(asyncio.Event()) as (server, client):
            assert await client.call(server.local_address, b"first") == b"re:first"
            assert server.core.stats.datagrams_out == 2, "the ACK, then the REPLY"

    run(main)


def test_a_handler_that_waits_is_acknowledged_at_once_while_it_waits() -> None:
    async def main() -> None:
        gate, waiting = asyncio.Event(), asyncio.Event()
        async with pair(gate, waiting) as (server, client):
            call = asyncio.ensure_future(client.call(server.local_address, b"wait"))
            await waiting.wait()  # resumed after the step ended and the ACK went out
            assert not call.done() and server.core.stats.datagrams_out == 1
            gate.set()
            assert await call == b"re:wait"
            assert server.core.stats.datagrams_out == 2

    run(main)
