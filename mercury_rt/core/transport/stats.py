"""Counters the transport keeps, for metrics and for tests that assert on behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TransportStats:
    """Monotonic counters."""

    datagrams_in: int = 0
    datagrams_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    duplicates: int = 0
    stale: int = 0
    unexpected: int = 0
    refused: int = 0
    overloaded_retries: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    cancelled: int = 0
    late_replies: int = 0
    fragments_in: int = 0
    fragments_refused: int = 0
    fragmented_sends: int = 0
    reassemblies_expired: int = 0
    amplification_limited: int = 0
    """Datagrams (or bursts of reply fragments) withheld: they would have exceeded the
    anti-amplification budget of an address not yet validated."""
    replies_dropped: int = 0
    """Replies not held (answered ERROR 204) because the bytes held for their address, or
    in all, were at their bound."""
    decode_errors: dict[str, int] = field(default_factory=dict)

    def count_decode_error(self, code: int) -> None:
        """One more datagram dropped as undecodable, by error code name."""
        name = str(getattr(code, "name", code))
        self.decode_errors[name] = self.decode_errors.get(name, 0) + 1
