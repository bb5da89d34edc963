"""Sending one large message as fragments, reliably and without flooding the path.

The encoded message is cut into `chunk_size` pieces. A congestion window (AIMD) bounds
fragments in flight. The receiver's FRAG_ACKs report a cumulative count plus a selective
bitmap; a fragment is declared lost when `loss_threshold` fragments sent after it have
been acknowledged (QUIC's packet-threshold rule), or when the retransmission timer
fires with no progress. Until the peer echoes our random nonce, the bytes we send are
capped at `amplification_factor` times the bytes it sent us, so a spoofed source
address cannot turn us into an amplifier.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mercury_rt.core.messages import ACK_NOW, Fragment, Kind, encode

Addr = tuple[str, int]


@dataclass(slots=True)
class TransferSettings:
    """The window and loss parameters one transfer uses."""

    initial_window: int
    min_window: int
    max_window: int
    loss_threshold: int


@dataclass(eq=False, slots=True)
class FragmentSender:
    """One outgoing fragmented message and its retransmission state."""

    peer: Addr
    kind: Kind
    id: int
    nonce: int
    blob: bytes
    chunk_size: int
    settings: TransferSettings
    rto: float
    budget: int | None = None
    deadline: float | None = None
    count: int = 0
    cwnd: float = 0.0
    ssthresh: float = 0.0
    acked: bytearray = field(default_factory=bytearray)
    in_flight: bytearray = field(default_factory=bytearray)
    send_seq: list[int] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    retransmitted: bytearray = field(default_factory=bytearray)
    order: deque[tuple[int, int]] = field(default_factory=deque)
    lost: deque[int] = field(default_factory=deque)
    next_new: int = 0
    seq: int = 0
    flight: int = 0
    acked_count: int = 0
    max_acked_seq: int = -1
    recovery_seq: int = -1
    progress_at: float = 0.0
    _last_index: int = -1
    _acked_below: int = 0

    def __post_init__(self) -> None:
        self.count = -(-len(self.blob) // self.chunk_size)
        self.cwnd = float(self.settings.initial_window)
        self.ssthresh = float(self.settings.max_window)
        self.acked = bytearray(self.count)
        self.in_flight = bytearray(self.count)
        self.retransmitted = bytearray(self.count)
        self.send_seq = [-1] * self.count
        self.sent_at = [0.0] * self.count

    @property
    def complete(self) -> bool:
        """Every fragment acknowledged."""
        return self.acked_count == self.count

    def pump(self, now: float) -> list[bytes]:
        """Fragments to send now, within the window and the amplification budget."""
        out: list[bytes] = []
        while self.flight < int(self.cwnd):
            index = self._next_to_send()
            if index is None:
                break
            datagram = self._fragment(index, now, 0)
            if self.budget is not None:
                if self.budget < len(datagram):
                    self._unsend(index)
                    break
                self.budget -= len(datagram)
            out.append(datagram)
        if out:
            out[-1] = self._fragment(self._last_index, now, ACK_NOW, resend=True)
        return out

    def probe(self) -> bytes:
        """The last fragment again, asking for an acknowledgement; changes no state."""
        index = self.count - 1
        start = index * self.chunk_size
        return encode(Fragment(self.kind, self.id, self.nonce, len(self.blob), self.chunk_size,
                               index, ACK_NOW, self.blob[start:]))

    def on_ack(self, cumulative: int, sack: bytes, now: float) -> tuple[bool, float | None]:
        """Apply a FRAG_ACK: (whether anything new was acknowledged, an RTT sample if
        Karn's rule allows one)."""
        self.budget = None
        sample: float | None = None
        newest = -1
        newly = self._newly_acked(cumulative, sack)
        for index in newly:
            self.acked[index] = 1
            self.acked_count += 1
            if self.in_flight[index]:
                self.in_flight[index] = 0
                self.flight -= 1
            if self.send_seq[index] > newest:
                newest = self.send_seq[index]
                sample = None if self.retransmitted[index] else now - self.sent_at[index]
        if newest < 0:
            return False, None
        while self._acked_below < self.count and self.acked[self._acked_below]:
            self._acked_below += 1
        self.progress_at = now
        self.max_acked_seq = max(self.max_acked_seq, newest)
        if self._detect_losses():
            if self.max_acked_seq > self.recovery_seq:
                self.cwnd = self.ssthresh = max(self.cwnd / 2, float(self.settings.min_window))
                self.recovery_seq = self.seq
        else:
            growth = len(newly) if self.cwnd < self.ssthresh else len(newly) / self.cwnd
            self.cwnd = min(self.cwnd + growth, float(self.settings.max_window))
        return True, sample

    def on_timeout(self) -> None:
        """No progress for an RTO: everything in flight is presumed lost."""
        for index in range(self.count):
            if self.in_flight[index]:
                self.in_flight[index] = 0
                self.lost.append(index)
        self.flight = 0
        self.order.clear()
        self.ssthresh = max(self.cwnd / 2, float(self.settings.min_window))
        self.cwnd = float(self.settings.min_window)
        self.recovery_seq = self.seq

    def _next_to_send(self) -> int | None:
        while self.lost:
            index = self.lost.popleft()
            if not self.acked[index] and not self.in_flight[index]:
                self.retransmitted[index] = 1
                return index
        if self.next_new < self.count:
            self.next_new += 1
            return self.next_new - 1
        return None

    def _unsend(self, index: int) -> None:
        if self.retransmitted[index] or index != self.next_new - 1:
            self.lost.appendleft(index)
        else:
            self.next_new -= 1

    def _fragment(self, index: int, now: float, flags: int, resend: bool = False) -> bytes:
        if not resend:
            self._last_index = index
            self.seq += 1
            self.send_seq[index] = self.seq
            self.sent_at[index] = now
            self.in_flight[index] = 1
            self.flight += 1
            self.order.append((self.seq, index))
        start = index * self.chunk_size
        return encode(Fragment(self.kind, self.id, self.nonce, len(self.blob), self.chunk_size,
                               index, flags, self.blob[start:start + self.chunk_size]))

    def _newly_acked(self, cumulative: int, sack: bytes) -> list[int]:
        """Indices acknowledged for the first time. The prefix below `_acked_below` is
        skipped and sack bytes past our last fragment are ignored, so an ack costs the
        unacknowledged part, not the whole transfer or whatever sack length a peer sends."""
        acked, count = self.acked, self.count
        cumulative = min(cumulative, count)
        newly = [i for i in range(self._acked_below, cumulative) if not acked[i]]
        for byte_index, byte in enumerate(sack[:(count - cumulative + 7) // 8]):
            if not byte:
                continue
            for bit in range(8):
                index = cumulative + byte_index * 8 + bit
                if byte >> bit & 1 and index < count and not acked[index]:
                    newly.append(index)
        return newly

    def _detect_losses(self) -> bool:
        threshold = self.max_acked_seq - self.settings.loss_threshold
        order = self.order
        lost_any = False
        while order and order[0][0] <= threshold:
            seq, index = order.popleft()
            if self.send_seq[index] == seq and self.in_flight[index]:
                self.in_flight[index] = 0
                self.flight -= 1
                self.lost.append(index)
                lost_any = True
        return lost_any
