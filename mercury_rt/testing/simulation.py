"""The stage every simulation test builds on: one seeded network, its clock, a timeline.

A `Simulation` owns the `SimNetwork` (and so the one `FakeClock` and the one delivery
loop) and a `Timeline` of scripted actions ("crash w1 at 2.0 s") that the network wakes
like any other endpoint, so faults and calls interleave with datagrams and timers in one
deterministic order. What runs on it is the caller's choice: whole nodes (`SimNode`),
bare transports (`TransportHost`) or membership-only hosts all plug in as sans-IO
endpoints. Crashes, restarts, address moves and partitions act on addresses, because
that is all the network knows about a host.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable

from mercury_rt.core.transport import Addr
from mercury_rt.testing.network import FakeClock, LinkProfile, SansIOEndpoint, SimNetwork

TIMELINE_ADDRESS: Addr = ("timeline", 0)
"""Where the timeline sits on the network; nothing sends to it."""


class Timeline:
    """Scripted actions at simulated times: a sans-IO endpoint whose timer is the next one.

    Actions due at the same time run in the order they were scheduled."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], object]]] = []
        self._seq = itertools.count()

    def at(self, when: float, action: Callable[[], object]) -> None:
        """Run `action` when the clock reaches `when`."""
        heapq.heappush(self._queue, (when, next(self._seq), action))

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        """Nothing is addressed to the timeline."""

    def handle_timer(self, now: float) -> None:
        """Run every action that is due."""
        while self._queue and self._queue[0][0] <= now:
            heapq.heappop(self._queue)[2]()

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """The timeline sends nothing itself."""
        return []

    def get_timer(self) -> float | None:
        """When the next action is due."""
        return self._queue[0][0] if self._queue else None


class Simulation:
    """A seeded `SimNetwork` with a `Timeline` on it; see the module docstring.

    The timeline is the network's first endpoint, so a scripted action due at the same
    instant as a host's timer runs first."""

    def __init__(self, seed: int, profile: LinkProfile | None = None) -> None:
        self.net = SimNetwork(seed, profile)
        self.timeline = Timeline()
        self.net.add(TIMELINE_ADDRESS, self.timeline)

    @property
    def clock(self) -> FakeClock:
        """The network's clock, the only time there is."""
        return self.net.clock

    @property
    def now(self) -> float:
        """The current simulated time."""
        return self.net.clock.now

    def add(self, addr: Addr, endpoint: SansIOEndpoint) -> SansIOEndpoint:
        """Attach an endpoint at `addr`."""
        return self.net.add(addr, endpoint)

    def at(self, when: float, action: Callable[[], object]) -> None:
        """Script `action` for time `when`."""
        self.timeline.at(when, action)

    def run_to(self, end: float) -> None:
        """Run everything due by `end` (deliveries, timers, scripted actions)."""
        self.net.run_to(end)

    def run_until(self, done: Callable[[], bool], max_time: float = 600.0) -> None:
        """Run until `done()`; AssertionError with the seed if it never comes."""
        self.net.run_until(done, max_time=max_time)

    def settle(self) -> None:
        """Deliver everything in flight and what it causes, without running timers."""
        self.net.settle()

    def crash(self, *addresses: Addr) -> None:
        """A host at these addresses stops: what is sent to it vanishes, its timers stop."""
        for addr in addresses:
            self.net.crash(addr)

    def revive(self, *addresses: Addr) -> None:
        """The endpoints now at these addresses run again."""
        for addr in addresses:
            self.net.down.discard(addr)

    def move(self, old: Addr, new: Addr) -> None:
        """The endpoint at `old` is reachable at `new` instead."""
        self.net.move(old, new)

    def split(self, left: Iterable[Addr], right: Iterable[Addr]) -> None:
        """Partition: nothing passes between any address on the left and any on the right."""
        rights = list(right)
        for a in left:
            for b in rights:
                self.net.partition(a, b)

    def heal(self) -> None:
        """Remove every partition."""
        self.net.heal()
