"""A UDP relay for loopback tests: stands at a published address in front of a real node.

It listens on one 127.0.0.x address; each client's datagrams go to the upstream (a node's
real port) from a socket of the relay's own for that client, and whatever comes back on
that socket goes to the client. Every datagram is recorded in both directions, so a test
can search what crossed the network. Hooks may drop, rewrite or multiply datagrams, and
`replay` sends captured bytes from a fresh source address, as an attacker on the path
could. Plain non-blocking sockets read by the event loop: no thread, no sleep.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cbor2

Addr = tuple[str, int]
UP = "up"
"""Client to node."""
DOWN = "down"
"""Node to client."""
Hook = Callable[[bytes, Addr], list[bytes]]
"""What to send instead of a datagram from/to client `Addr`: [] drops it, [d] passes d
(rewritten or not), [d, d] duplicates it."""


@dataclass(frozen=True, slots=True)
class Captured:
    """One datagram that reached the relay: as the client or the node sent it (before any
    hook rewrote it), or as `replay` injected it."""

    direction: str
    client: Addr
    data: bytes


def _open(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


class UdpRelay:
    """See module docstring. Build it in a running loop (`UdpRelay(host)` or `await
    UdpRelay.start(host)`), set `upstream` once the node is bound, `close()` at the end."""

    def __init__(self, host: str, upstream: Addr | None = None, *,
                 on_up: Hook | None = None, on_down: Hook | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._listen = _open(host)
        self._host = host
        bound = self._listen.getsockname()
        self.address: Addr = (str(bound[0]), int(bound[1]))
        """Where clients send: the address to publish."""
        self.upstream = upstream
        """The node's real address; datagrams arriving before it is set are recorded and
        dropped."""
        self.on_up = on_up
        self.on_down = on_down
        self.captured: list[Captured] = []
        self._clients: dict[Addr, socket.socket] = {}
        self._changed = asyncio.Event()
        self._loop.add_reader(self._listen.fileno(), self._from_clients)

    @classmethod
    async def start(cls, host: str, upstream: Addr | None = None, **hooks: Any) -> UdpRelay:
        """A relay listening on `host` (any free port)."""
        return cls(host, upstream, **hooks)

    def up(self) -> list[bytes]:
        """Every datagram clients sent, in order."""
        return [c.data for c in self.captured if c.direction == UP]

    def down(self) -> list[bytes]:
        """Every datagram the node sent back, in order."""
        return [c.data for c in self.captured if c.direction == DOWN]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (bounded) until `condition()` holds; re-checked after each datagram."""
        async def watch() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(watch(), timeout)

    def replay(self, data: bytes, *, from_new_address: bool = True,
               client: Addr | None = None) -> Addr:
        """Send `data` to the node as `client` did (from its relay socket) or, by default,
        from a fresh socket as a new client; returns the client key its replies are
        recorded under."""
        if from_new_address or client is None:
            client = ("replay", len(self._clients))
        self._send_up(client, data)
        return client

    def close(self) -> None:
        """Stop relaying and close every socket (again: nothing)."""
        if self._listen.fileno() < 0:
            return
        for sock in (self._listen, *self._clients.values()):
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._clients.clear()

    def _record(self, direction: str, client: Addr, data: bytes) -> None:
        self.captured.append(Captured(direction, client, data))
        self._changed.set()

    def _from_clients(self) -> None:
        for data, client in _drain(self._listen):
            self._record(UP, client, data)
            if self.upstream is None:
                continue
            for out in self.on_up(data, client) if self.on_up else [data]:
                self._send_up(client, out, recorded=True)

    def _send_up(self, client: Addr, data: bytes, recorded: bool = False) -> None:
        assert self.upstream is not None, "set the relay's upstream first"
        if not recorded:
            self._record(UP, client, data)
        sock = self._clients.get(client)
        if sock is None:
            sock = self._clients[client] = _open(self._host)
            self._loop.add_reader(sock.fileno(), self._from_node, client, sock)
        sock.sendto(data, self.upstream)

    def _from_node(self, client: Addr, sock: socket.socket) -> None:
        for data, _ in _drain(sock):
            self._record(DOWN, client, data)
            if client[0] == "replay":
                continue  # a replay's answer has nobody to go to; it is recorded
            for out in self.on_down(data, client) if self.on_down else [data]:
                self._listen.sendto(out, client)


def _drain(sock: socket.socket) -> Iterator[tuple[bytes, Addr]]:
    """Every datagram waiting on a non-blocking socket."""
    while True:
        try:
            data, addr = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. ICMP port unreachable reported on the socket
            continue
        yield data, (str(addr[0]), int(addr[1]))


def strings_in(data: bytes, depth: int = 0) -> Iterator[bytes]:
    """Every byte and text string inside `data` read as CBOR, recursively (a transport
    datagram carries a transit message, which carries ...); `data` itself first."""
    yield data
    if depth > 8:
        return
    try:
        value = cbor2.loads(data)
    except Exception:  # not CBOR (ciphertext, say): only its raw bytes count
        return
    yield from _walk(value, depth)


def _walk(value: object, depth: int) -> Iterator[bytes]:
    if isinstance(value, bytes):
        yield from strings_in(value, depth + 1)
    elif isinstance(value, str):
        yield value.encode()
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, depth)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(key, depth)
            yield from _walk(item, depth)
    elif isinstance(value, cbor2.CBORTag):
        yield from _walk(value.value, depth)


def leaks(captured: list[bytes], *secrets: bytes) -> list[bytes]:
    """The secrets found in any captured datagram, raw or CBOR-decoded."""
    found = []
    for secret in secrets:
        if any(secret in piece for data in captured for piece in strings_in(data)):
            found.append(secret)
    return found
