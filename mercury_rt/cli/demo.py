"""CLI verb `demo`: a local demo on 127.0.0.x that shows what the runtime does, then exits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import click

from mercury_rt.aio.endpoint import TransportEndpoint, open_endpoint
from mercury_rt.aio.loop import run
from mercury_rt.core.transport_events import MessageReceived, RequestReceived

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


class DemoError(click.ClickException):
    """The demo saw something it did not expect; the message says what."""


async def _transport_demo() -> list[str]:
    lines: list[str] = []
    inbox: asyncio.Queue[MessageReceived] = asyncio.Queue()

    def answer(event: RequestReceived) -> bytes:
        if event.payload.startswith(b"sha256:"):
            return hashlib.sha256(event.payload[7:]).digest()
        return b"pong from " + event.payload

    nodes: list[TransportEndpoint] = []
    try:
        for host in HOSTS:
            nodes.append(await open_endpoint((host, 0), on_request=answer,
                                             on_message=inbox.put_nowait))
        for name, node in zip("abc", nodes, strict=True):
            lines.append(f"node {name} listening on udp {_fmt(node.local_address)}")
        a, b, c = nodes
        start = time.perf_counter()
        reply = await a.call(b.local_address, b"node a")
        lines.append(f"a -> b request 'node a' -> {reply.decode()!r} "
                     f"({(time.perf_counter() - start) * 1e3:.2f} ms, one datagram each way)")
        blob = os.urandom(1 << 20)
        start = time.perf_counter()
        digest = await c.call(a.local_address, b"sha256:" + blob, timeout=30)
        elapsed = time.perf_counter() - start
        if digest != hashlib.sha256(blob).digest():
            raise DemoError("the 1 MiB request arrived corrupted")
        frags = c.core.stats.fragmented_sends
        lines.append(f"c -> a 1 MiB request in fragments, digest verified "
                     f"({elapsed * 1e3:.0f} ms, {len(blob) / elapsed / 1e6:.1f} MB/s, "
                     f"{frags} fragmented transfer)")
        await b.send(c.local_address, b"hello c, from b")
        note = await asyncio.wait_for(inbox.get(), 5)
        lines.append(f"b -> c one-way message {note.payload.decode()!r} delivered and "
                     "acknowledged")
        replies = await asyncio.gather(*(a.call(c.local_address, str(i).encode())
                                         for i in range(100)))
        if len(set(replies)) != 100:
            raise DemoError("concurrent requests got mixed-up replies")
        lines.append("a -> c 100 concurrent requests, 100 distinct replies")
        sent = sum(n.core.stats.datagrams_out for n in nodes)
        lines.append(f"total: {sent} datagrams sent, "
                     f"{sum(n.core.stats.retransmissions for n in nodes)} retransmissions")
    finally:
        for node in nodes:
            node.close()
    return lines


def _fmt(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


@click.command("demo")
def demo() -> None:
    """Start a local demo on 127.0.0.1-3, exchange requests and messages, print, exit 0."""
    click.echo("mercury-rt demo: three nodes on loopback UDP")
    try:
        lines = run(asyncio.wait_for(_transport_demo(), 60))
    except OSError as exc:
        raise DemoError(f"could not open UDP sockets on 127.0.0.x: {exc}") from exc
    except TimeoutError as exc:
        raise DemoError("the demo did not finish within 60 s") from exc
    for line in lines:
        click.echo(f"  {line}")
    click.echo("demo finished: all exchanges succeeded")


COMMANDS: list[click.Command] = [demo]
