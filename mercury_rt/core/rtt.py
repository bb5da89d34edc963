"""Round-trip time estimation and retransmission timeout, as RFC 6298 specifies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RttEstimator:
    """SRTT/RTTVAR smoothing; `rto` is clamped to [min_rto, max_rto].

    Callers feed only samples from exchanges sent exactly once (Karn's algorithm), so a
    retransmission never pollutes the estimate.
    """

    initial_rto: float
    min_rto: float
    max_rto: float
    srtt: float | None = None
    rttvar: float = 0.0
    rto: float = 0.0

    def __post_init__(self) -> None:
        self.rto = self.initial_rto

    def sample(self, rtt: float) -> None:
        """Fold one measured round trip into the estimate."""
        rtt = max(rtt, 0.0)
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(max(self.srtt + 4 * self.rttvar, self.min_rto), self.max_rto)
