"""Coroutine handlers run their first step inline: one that finishes at once is answered
without a Task; one that waits is continued as a Task from where it stopped, and its
waits, errors and cancellation behave as they did in a Task of its own."""

from __future__ import annotations

import asyncio

import pytest

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.aio.endpoint import CallError
from mercury_rt.core.transport import RequestReceived
from tests.net.test_endpoint_loopback import endpoints, run

pytestmark = pytest.mark.net


def test_a_handler_that_never_waits_is_answered_without_a_task() -> None:
    async def handler(event: RequestReceived) -> bytes:
        return b"at once:" + event.payload

    async def main() -> None:
        async with endpoints((handler, None), (None, None)) as (server, client):
            spawned: list[object] = []
            spawn = server._spawn  # the point: is a Task made?

            def counting(job: object) -> object:
                spawned.append(job)
                return spawn(job)  # type: ignore[arg-type]

            server._spawn = counting  # type: ignore[assignment,method-assign]
            assert await client.call(server.local_address, b"x") == b"at once:x"
            assert spawned == []
            assert server.core.stats.datagrams_out == 2  # the ACK, then the reply

    run(main)


def test_a_handler_that_waits_continues_where_it_stopped_and_its_errors_surface() -> None:
    gate = asyncio.Event()
    order: list[str] = []

    async def handler(event: RequestReceived) -> bytes:
        order.append("first step")
        await gate.wait()
        order.append("after the wait")
        await asyncio.sleep(0)
        if event.payload == b"denied":
            raise MercuryError("not after waiting", ErrorCode.OVERLOADED)
        return b"waited:" + event.payload

    async def main() -> None:
        async with endpoints((handler, None), (None, None)) as (server, client):
            call = asyncio.ensure_future(client.call(server.local_address, b"y"))
            deadline = asyncio.get_running_loop().time() + 5
            while not server._tasks and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.001)
            assert order == ["first step"] and len(server._tasks) == 1
            gate.set()
            assert await call == b"waited:y"
            assert order == ["first step", "after the wait"]
            with pytest.raises(CallError) as info:
                await client.call(server.local_address, b"denied")
            assert info.value.code == ErrorCode.OVERLOADED

    run(main)


def test_closing_the_endpoint_cancels_a_waiting_handler_inside_its_wait() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def handler(event: RequestReceived) -> bytes:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""

    async def main() -> None:
        async with endpoints((handler, None), (None, None)) as (server, client):
            call = asyncio.ensure_future(client.call(server.local_address, b"z", timeout=5))
            await asyncio.wait_for(started.wait(), 5)
            server.close()
            await asyncio.wait_for(cancelled.wait(), 5)
            call.cancel()

    run(main)


def test_the_ack_has_left_before_a_handler_runs_its_first_step() -> None:
    """What a handler commits in its first step is covered by an ACK already sent: a node
    killed after the commit but before its REPLY has acknowledged the request, so the
    caller does not run it elsewhere (tests/net/test_node_processes.py's kill -9 test)."""
    handed_to_socket: list[bytes] = []
    seen_by_handler: list[int] = []

    class Recording:
        """The server's UDP transport, recording what is handed to the socket."""

        def __init__(self, udp: asyncio.DatagramTransport) -> None:
            self.udp = udp

        def __getattr__(self, name: str) -> object:
            return getattr(self.udp, name)

        def sendto(self, data: bytes, addr: object) -> None:
            handed_to_socket.append(data)
            self.udp.sendto(data, addr)

    async def handler(event: RequestReceived) -> bytes:
        seen_by_handler.append(len(handed_to_socket))
        return b"done:" + event.payload

    async def main() -> None:
        async with endpoints((handler, None), (None, None)) as (server, client):
            udp = server._udp
            assert udp is not None
            server._udp = Recording(udp)  # type: ignore[assignment]
            try:
                assert await client.call(server.local_address, b"z") == b"done:z"
            finally:
                server._udp = udp
            assert seen_by_handler == [1]  # the ACK was on the socket before the step
            assert len(handed_to_socket) == 2  # then the REPLY

    run(main)
