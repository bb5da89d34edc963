"""The transport's clocks: RTT estimation and RTO (RFC 6298, with G), and the timer queue.

The timer queue is a heap of deadlines with lazy cancellation. Each timed object carries
its own `deadline`; a heap entry whose deadline no longer matches the object's is stale
and skipped. Re-arming is a push; cancelling is setting the object's deadline to None.
This keeps every operation O(log n) without a search.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


@dataclass(slots=True)
class RttEstimator:
    """SRTT/RTTVAR smoothing as RFC 6298: `rto = SRTT + max(granularity, 4 * RTTVAR)`,
    clamped to [min_rto, max_rto].

    `granularity` is RFC 6298's G, the clock's granularity, read here as the host's: a
    process on a busy host is not run for tens of milliseconds at a time, so a round trip
    measured at 1 ms can take 30 ms the next time with no loss at all. A steady RTT gives
    RTTVAR near 0, and an RTO near SRTT would retransmit on every such stall (spurious
    retransmissions: 5-49 % of calls at 64 outstanding with a 20 ms floor, issue 13);
    G keeps the margin above SRTT at least that long, while `min_rto` stays the absolute
    floor of every interval (probes of an unanswered call included, calling.py).
    Callers feed only samples from exchanges sent exactly once (Karn's algorithm), so a
    retransmission never pollutes the estimate.
    """

    initial_rto: float
    min_rto: float
    max_rto: float
    granularity: float = 0.0
    srtt: float | None = None
    rttvar: float = 0.0
    rto: float = 0.0

    def __post_init__(self) -> None:
        self.rto = self.initial_rto

    def sample(self, rtt: float) -> None:
        """Fold one measured round trip into the estimate."""
        rtt = max(rtt, 0.0)
        srtt = self.srtt
        if srtt is None:
            srtt, rttvar = rtt, rtt / 2
        else:
            rttvar = 0.75 * self.rttvar + 0.25 * abs(srtt - rtt)
            srtt = 0.875 * srtt + 0.125 * rtt
        self.srtt, self.rttvar = srtt, rttvar
        self.rto = min(max(srtt + max(self.granularity, 4 * rttvar), self.min_rto),
                       self.max_rto)


class Timed(Protocol):
    """Anything with a mutable deadline."""

    deadline: float | None


T = TypeVar("T", bound=Timed)


class TimerQueue(Generic[T]):
    """Deadlines of many objects of the types in `T`; `expired(now)` pops the due ones in
    order, typed, so the owner can match on exactly the kinds it arms."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()

    def arm(self, obj: T, deadline: float) -> None:
        """Set `obj` to fire at `deadline` (replacing any earlier arming)."""
        obj.deadline = deadline
        heapq.heappush(self._heap, (deadline, next(self._counter), obj))

    def next_deadline(self) -> float | None:
        """The earliest live deadline, discarding stale entries on the way."""
        heap = self._heap
        while heap:
            when, _, obj = heap[0]
            if obj.deadline == when:
                return when
            heapq.heappop(heap)
        return None

    def expired(self, now: float) -> list[T]:
        """Pop every live object whose deadline is at or before `now`, clearing it."""
        due: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, obj = heapq.heappop(heap)
            if obj.deadline == when:
                obj.deadline = None
                due.append(obj)
        return due
