"""The sender's token bucket for a connection's bandwidth reservation (pure values).

A reservation of `rate` bytes/s and `burst` bytes is enforced where traffic leaves: a
send of n bytes goes when the bucket holds min(n, burst) tokens and then takes n (a
message larger than the burst leaves the bucket in debt, so the rate holds on average);
otherwise the sender waits until it would. Frozen, so the connection state machine
stays a pure function of (state, input).
"""

from __future__ import annotations

from dataclasses import dataclass

from mercury_rt.core.connections.wire import Reservation


@dataclass(frozen=True, slots=True)
class Bucket:
    """Tokens (bytes) held at time `last`; starts full."""

    tokens: float
    last: float

    @classmethod
    def full(cls, reservation: Reservation, now: float) -> Bucket:
        """A bucket holding the whole burst."""
        return cls(float(reservation.burst), now)

    def refilled(self, reservation: Reservation, now: float) -> Bucket:
        """The bucket at `now` (a clock going back refills nothing)."""
        gained = max(0.0, now - self.last) * reservation.rate
        return Bucket(min(float(reservation.burst), self.tokens + gained),
                      max(self.last, now))

    def ready_at(self, reservation: Reservation, size: int, now: float) -> float:
        """When a send of `size` bytes may go (`now` if it may go now)."""
        bucket = self.refilled(reservation, now)
        need = min(size, reservation.burst) - bucket.tokens
        if need <= 0:
            return now
        return now + need / reservation.rate

    def spent(self, reservation: Reservation, size: int, now: float) -> Bucket:
        """The bucket after sending `size` bytes at `now` (may go into debt)."""
        bucket = self.refilled(reservation, now)
        return Bucket(bucket.tokens - size, bucket.last)
