"""Transport settings: timing, sizes, and the bounds on what a peer can make us hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from carbon.cbor import Limits


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """All transport tunables. Defaults suit the internet; tests and LANs may shrink timers.

    Sizes are bytes, times seconds. `max_datagram` is the largest datagram we send (a
    safe internet default, like QUIC's 1200); messages whose encoding is larger travel
    as fragments of `max_datagram` bytes each.
    """

    max_datagram: int = 1200
    max_message: int = 2 * 1024 * 1024
    initial_rto: float = 0.5
    min_rto: float = 0.02
    max_rto: float = 10.0
    rto_granularity: float = 0.05
    """RFC 6298's G, read as the host's scheduling granularity: the RTO is at least this
    much above the smoothed RTT (timing.RttEstimator), so a busy host's stalls are not
    taken for loss; `min_rto` remains the floor of every interval."""
    default_timeout: float = 30.0
    max_ttl: float = 300.0
    record_slack: float = 10.0
    reassembly_timeout: float = 30.0
    initial_window: int = 32
    min_window: int = 2
    max_window: int = 256
    ack_every: int = 8
    loss_threshold: int = 3
    max_peers: int = 65_536
    max_epochs_per_peer: int = 16
    max_epochs_per_host: int = 4_096
    """Epoch marks the unvalidated addresses (ports) of one IP may hold together."""
    max_records: int = 200_000
    max_records_per_peer: int = 8_192
    max_cached_reply_bytes: int = 128 * 1024 * 1024
    max_reply_bytes_per_peer: int = 8 * 1024 * 1024
    max_reassemblies_per_peer: int = 8
    max_reassembly_bytes_per_peer: int = 8 * 1024 * 1024
    max_reassembly_bytes: int = 128 * 1024 * 1024
    max_outstanding_calls: int = 100_000
    max_call_span: int = 4_096
    amplification_factor: int = 3
    max_poll_interval: float = 0.5
    max_poll_misses: int = 10
    max_validated_addresses: int = 65_536
    max_address_accounts: int = 65_536
    limits: Limits = field(default_factory=lambda: Limits(max_bytes=65_535, max_depth=4,
                                                          max_items=64))

    def __post_init__(self) -> None:
        if self.max_datagram < 512 or self.max_datagram > 65_000:
            raise ValueError("max_datagram must be 512..65000 bytes")
        if not 0 < self.min_rto <= self.initial_rto <= self.max_rto:
            raise ValueError("need 0 < min_rto <= initial_rto <= max_rto")
        if not 0 <= self.rto_granularity <= self.max_rto:
            raise ValueError("need 0 <= rto_granularity <= max_rto")
        if self.min_window < 1 or self.min_window > self.initial_window > self.max_window:
            raise ValueError("need 1 <= min_window <= initial_window <= max_window")
        if self.reassembly_timeout <= 2 * self.max_rto:
            raise ValueError("reassembly_timeout must exceed 2 * max_rto, so a live "
                             "sender's probes always arrive before a reassembly expires")
        if self.max_call_span > self.max_records_per_peer:
            raise ValueError("max_call_span must not exceed max_records_per_peer, or a "
                             "peer with the same settings would refuse our calls")
        if self.max_poll_interval < self.min_rto or self.max_poll_misses < 1:
            raise ValueError("need max_poll_interval >= min_rto and max_poll_misses >= 1")
        if not 1 <= self.max_epochs_per_peer <= self.max_peers:
            raise ValueError("need 1 <= max_epochs_per_peer <= max_peers")
        if self.max_epochs_per_host < self.max_epochs_per_peer:
            raise ValueError("need max_epochs_per_peer <= max_epochs_per_host")
        if self.amplification_factor < 1:
            raise ValueError("amplification_factor must be a positive integer")
        if self.max_validated_addresses < 1 or self.max_address_accounts < 1:
            raise ValueError("max_validated_addresses and max_address_accounts must be >= 1")
        if self.max_message > 2**32 - 1:
            raise ValueError("max_message must fit in 32 bits")

    @property
    def chunk_size(self) -> int:
        """Payload bytes per fragment: the datagram less the fragment header's worst case."""
        return self.max_datagram - FRAGMENT_OVERHEAD

    @property
    def reply_bytes_per_peer(self) -> int:
        """Reply bytes held per address: `max_reply_bytes_per_peer`, or one largest reply
        if that is more (a node configured for large messages can still answer them)."""
        return max(self.max_reply_bytes_per_peer, self.max_envelope)

    @property
    def max_envelope(self) -> int:
        """The largest reassembled datagram: a `max_message` payload in its envelope."""
        return self.max_message + ENVELOPE_OVERHEAD

    @property
    def inner_limits(self) -> Limits:
        """Limits for a reassembled message (one envelope holding a large payload)."""
        return Limits(max_bytes=self.max_envelope, max_depth=4, max_items=64)


# [1, 7, kind, id(u64), nonce(u32), total(u32), chunk(u32), index(u32), flags, bytes(len)]
FRAGMENT_OVERHEAD = 1 + 1 + 1 + 1 + 9 + 5 + 5 + 5 + 5 + 2 + 5
ENVELOPE_OVERHEAD = 64
"""Room for the bytes an envelope adds to its payload (a REQUEST's fields take at most 43)."""
