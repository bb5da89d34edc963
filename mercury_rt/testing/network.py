"""A simulated network and fake clock for testing sans-IO endpoints without sockets.

`SimNetwork` delivers datagrams between endpoints with seeded loss, duplication,
delay, reordering and partitions, and advances a fake clock straight to the next
thing that happens (a delivery or a timer), so a simulated minute runs in
milliseconds and any failure replays exactly from its seed. It drives anything with
the sans-IO endpoint shape (`SansIOEndpoint`); `TransportHost` adapts a bare
`Transport` plus an event handler to that shape.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mercury_rt.core.transport import Addr, Transport, TransportConfig, TransportEvent


class SansIOEndpoint(Protocol):
    """What the simulator needs from an endpoint: bytes and time in, bytes out."""

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        """Take one datagram."""

    def handle_timer(self, now: float) -> None:
        """Run due timers."""

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Queued output."""

    def get_timer(self) -> float | None:
        """Next deadline."""


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How the network treats each datagram. Probabilities are per datagram."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.001
    jitter: float = 0.0
    reorder_delay: float = 0.01


@dataclass
class FakeClock:
    """Time that moves only when told to."""

    now: float = 0.0

    def advance_to(self, when: float) -> None:
        """Move forward (never back)."""
        self.now = max(self.now, when)

    def __call__(self) -> float:
        return self.now


EventHandler = Callable[["TransportHost", TransportEvent, float], None]


class TransportHost:
    """A Transport plus a handler that reacts to its events, as one sans-IO endpoint."""

    def __init__(self, transport: Transport, handler: EventHandler | None = None) -> None:
        self.transport = transport
        self.handler = handler
        self.events: list[TransportEvent] = []

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        """Feed the transport, then let the handler react."""
        self.transport.receive_datagram(data, peer, now)
        self._drain(now)

    def handle_timer(self, now: float) -> None:
        """Run the transport's timers, then let the handler react."""
        self.transport.handle_timer(now)
        self._drain(now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """The transport's queued output."""
        return self.transport.datagrams_to_send()

    def get_timer(self) -> float | None:
        """The transport's next deadline."""
        return self.transport.get_timer()

    def _drain(self, now: float) -> None:
        while (event := self.transport.next_event()) is not None:
            if self.handler is None:
                self.events.append(event)
            else:
                self.handler(self, event, now)


@dataclass(order=True)
class _InFlight:
    deliver_at: float
    seq: int
    src: Addr = field(compare=False)
    dst: Addr = field(compare=False)
    data: bytes = field(compare=False)


class SimNetwork:
    """Endpoints at addresses, a fake clock, and a seeded lossy network between them."""

    def __init__(self, seed: int, profile: LinkProfile | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.profile = profile or LinkProfile()
        self.clock = FakeClock()
        self.endpoints: dict[Addr, SansIOEndpoint] = {}
        self.down: set[Addr] = set()
        self._cut: set[frozenset[Addr]] = set()
        self._queue: list[_InFlight] = []
        self._seq = itertools.count()
        self.delivered = 0
        self.dropped = 0

    def transport(self, config: TransportConfig | None = None) -> Transport:
        """A Transport whose randomness derives from this network's seed."""
        return Transport(config, rng=random.Random(self.rng.getrandbits(64)))

    def add(self, addr: Addr, endpoint: SansIOEndpoint) -> SansIOEndpoint:
        """Attach an endpoint at `addr`."""
        self.endpoints[addr] = endpoint
        return endpoint

    def partition(self, a: Addr, b: Addr) -> None:
        """Drop everything between `a` and `b` (both ways) until `heal`."""
        self._cut.add(frozenset((a, b)))

    def heal(self, a: Addr | None = None, b: Addr | None = None) -> None:
        """Remove one partition, or all when called without arguments."""
        if a is None or b is None:
            self._cut.clear()
        else:
            self._cut.discard(frozenset((a, b)))

    def crash(self, addr: Addr) -> None:
        """The host stops: datagrams to it vanish and its timers stop."""
        self.down.add(addr)

    def restart(self, addr: Addr, endpoint: SansIOEndpoint) -> None:
        """The host comes back with fresh state (what survived is the caller's business)."""
        self.down.discard(addr)
        self.endpoints[addr] = endpoint

    def move(self, old: Addr, new: Addr) -> None:
        """The endpoint at `old` answers at `new` from now on; datagrams still on their
        way to `old` are lost, as they would be after a real address change. A crashed
        host stays crashed at its new address."""
        self.endpoints[new] = self.endpoints.pop(old)
        if old in self.down:
            self.down.discard(old)
            self.down.add(new)

    def flush(self) -> None:
        """Collect every endpoint's output into the network."""
        for addr, endpoint in self.endpoints.items():
            for data, dst in endpoint.datagrams_to_send():
                if addr not in self.down:
                    self._launch(addr, dst, data)

    def step(self) -> bool:
        """Advance to the next delivery or timer and process it; False if nothing is left."""
        self.flush()
        when, timer_owner = self._next_timer()
        if self._queue and (when is None or self._queue[0].deliver_at <= when):
            item = heapq.heappop(self._queue)
            self.clock.advance_to(item.deliver_at)
            self._deliver(item)
        elif when is not None and timer_owner is not None:
            self.clock.advance_to(when)
            timer_owner.handle_timer(self.clock.now)
        else:
            return False
        self.flush()
        return True

    def run_until(self, done: Callable[[], bool], max_time: float = 600.0,
                  max_steps: int = 10_000_000) -> None:
        """Step until `done()`; raises AssertionError (with the seed) on a stall or limit."""
        for _ in range(max_steps):
            if done():
                return
            if self.clock.now > max_time or not self.step():
                break
        if not done():
            raise AssertionError(f"simulation did not finish (seed={self.seed}, "
                                 f"t={self.clock.now:.3f}s)")

    def next_time(self) -> float | None:
        """When the next delivery or timer is due; None when nothing is left to happen."""
        self.flush()
        when, _ = self._next_timer()
        if self._queue and (when is None or self._queue[0].deliver_at <= when):
            return self._queue[0].deliver_at
        return when

    def run_to(self, end: float) -> None:
        """Process everything due by `end`, then leave the clock at `end`."""
        while (when := self.next_time()) is not None and when <= end:
            self.step()
        self.clock.advance_to(end)

    def settle(self) -> None:
        """Deliver every datagram in flight and every one those cause, running no timer:
        with zero delay this is one synchronous round, in the order things were sent."""
        self.flush()
        while self._queue:
            item = heapq.heappop(self._queue)
            self.clock.advance_to(item.deliver_at)
            self._deliver(item)
            self.flush()

    def _next_timer(self) -> tuple[float | None, SansIOEndpoint | None]:
        best: tuple[float | None, SansIOEndpoint | None] = (None, None)
        for addr, endpoint in self.endpoints.items():
            if addr in self.down:
                continue
            when = endpoint.get_timer()
            if when is not None and (best[0] is None or when < best[0]):
                best = (when, endpoint)
        return best

    def _launch(self, src: Addr, dst: Addr, data: bytes) -> None:
        p, rng = self.profile, self.rng
        if frozenset((src, dst)) in self._cut or rng.random() < p.loss:
            self.dropped += 1
            return
        copies = 2 if rng.random() < p.duplicate else 1
        for _ in range(copies):
            delay = p.delay + rng.random() * p.jitter
            if rng.random() < p.reorder:
                delay += rng.random() * p.reorder_delay
            heapq.heappush(self._queue, _InFlight(self.clock.now + delay, next(self._seq),
                                                  src, dst, data))

    def _deliver(self, item: _InFlight) -> None:
        endpoint = self.endpoints.get(item.dst)
        if endpoint is None or item.dst in self.down:
            self.dropped += 1
            return
        self.delivered += 1
        endpoint.receive_datagram(item.data, item.src, self.clock.now)
