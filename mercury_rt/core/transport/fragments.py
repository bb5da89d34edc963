"""Large messages as fragments: sending them without flooding the path, and reassembling
them under strict memory bounds.

Sending: the encoded message is cut into `chunk_size` pieces. A congestion window (AIMD) bounds
fragments in flight. The receiver's FRAG_ACKs report a cumulative count plus a selective
bitmap; a fragment is declared lost when `loss_threshold` fragments sent after it have
been acknowledged (QUIC's packet-threshold rule), or when the retransmission timer
fires with no progress. `pump` can also be held to a byte allowance: the transport's
anti-amplification budget for a reply to an address not yet validated (amplification.py).

Receiving: memory is charged as fragment bytes arrive (not reserved from the declared total), per
peer and in total, so a peer must actually send the bytes it makes us hold, and one
spoofed header cannot reserve a megabyte. Incomplete reassemblies expire after a period
without progress. Every fragment is checked against its transfer's header: the
declared total and chunk size fix exactly how long each piece must be.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from mercury_rt.core.transport.wire import ACK_NOW, Addr, FragAck, Fragment, Kind, encode


@dataclass(slots=True)
class TransferSettings:
    """The window and loss parameters one transfer uses."""

    initial_window: int
    min_window: int
    max_window: int
    loss_threshold: int


@dataclass(frozen=True, slots=True)
class AckProgress:
    """What one FRAG_ACK did to a transfer."""

    advanced: bool
    """Something was acknowledged for the first time (the transfer made progress)."""
    rtt_sample: float | None
    """A round-trip time measured from it, when Karn's rule allows one."""


_NO_PROGRESS = AckProgress(advanced=False, rtt_sample=None)


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
    limited: bool = False
    """The last `pump` stopped short of the window because of its byte allowance."""
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

    def pump(self, now: float, allowance: int | None = None) -> list[bytes]:
        """Fragments to send now, within the window and, if given, `allowance` bytes in
        total (the first that would not fit stays unsent, and `limited` says so)."""
        out: list[bytes] = []
        self.limited = False
        while self.flight < int(self.cwnd):
            index = self._next_to_send()
            if index is None:
                break
            datagram = self._encode_fragment(index, 0)
            if allowance is not None:
                if allowance < len(datagram):
                    self._unsend(index)
                    self.limited = True
                    last = self._short_last(allowance, now)
                    if last is not None:
                        out.append(last)
                    break
                allowance -= len(datagram)
            self._mark_sent(index, now)
            out.append(datagram)
        if out:
            out[-1] = self._encode_fragment(self._last_index, ACK_NOW)
        return out

    def lead_with_last(self) -> None:
        """Send the last fragment first. Chosen short (`lead_chunk_size`), it fits the
        small budget of an unvalidated address, and the FRAG_ACK it asks for proves the
        address and lifts the limit for the rest."""
        if self.count > 1:
            self.lost.append(self.count - 1)

    def _short_last(self, allowance: int, now: float) -> bytes | None:
        """When the allowance stops the transfer, the last fragment (the short one, see
        `lead_with_last`) if it is neither held nor in flight and fits: its FRAG_ACK
        validates the address, so it must not wait behind a full fragment."""
        last = self.count - 1
        if self.acked[last] or self.in_flight[last]:
            return None
        datagram = self._encode_fragment(last, 0)
        if len(datagram) > allowance:
            return None
        if self.send_seq[last] >= 0:
            self.retransmitted[last] = 1
        self._mark_sent(last, now)
        return datagram

    def probe(self) -> bytes:
        """The last fragment again, asking for an acknowledgement; changes no state."""
        index = self.count - 1
        start = index * self.chunk_size
        return encode(Fragment(self.kind, self.id, self.nonce, len(self.blob), self.chunk_size,
                               index, ACK_NOW, self.blob[start:]))

    def on_ack(self, cumulative: int, sack: bytes, now: float) -> AckProgress:
        """Apply a FRAG_ACK."""
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
            return _NO_PROGRESS
        while self._acked_below < self.count and self.acked[self._acked_below]:
            self._acked_below += 1
        self.max_acked_seq = max(self.max_acked_seq, newest)
        if self._detect_losses():
            if self.max_acked_seq > self.recovery_seq:
                self.cwnd = self.ssthresh = max(self.cwnd / 2, float(self.settings.min_window))
                self.recovery_seq = self.seq
        else:
            growth = len(newly) if self.cwnd < self.ssthresh else len(newly) / self.cwnd
            self.cwnd = min(self.cwnd + growth, float(self.settings.max_window))
        return AckProgress(advanced=True, rtt_sample=sample)

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
        while self.next_new < self.count:
            self.next_new += 1
            index = self.next_new - 1
            if not self.acked[index] and not self.in_flight[index]:
                return index
        return None

    def _unsend(self, index: int) -> None:
        if self.retransmitted[index] or index != self.next_new - 1:
            self.lost.appendleft(index)
        else:
            self.next_new -= 1

    def _mark_sent(self, index: int, now: float) -> None:
        self._last_index = index
        self.seq += 1
        self.send_seq[index] = self.seq
        self.sent_at[index] = now
        self.in_flight[index] = 1
        self.flight += 1
        self.order.append((self.seq, index))

    def _encode_fragment(self, index: int, flags: int) -> bytes:
        """Fragment `index` on the wire (ACK_NOW does not change its length)."""
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


MIN_CHUNK = 256
LEAD_BYTES = 16
"""The longest last piece `lead_chunk_size` looks for."""
LEAD_SEARCH = 1024
"""How many chunk sizes it tries (bounded work per reply, whatever `max_datagram` is)."""


def lead_chunk_size(total: int, largest: int) -> int:
    """A chunk size in [MIN_CHUNK, largest] that leaves a last piece of 1..LEAD_BYTES bytes
    (`largest` if there is none): that piece's fragment is a few dozen bytes, within the
    budget even a minimal request earns. Tries at most LEAD_SEARCH sizes, largest first."""
    top = min(largest, total - 1)
    for chunk in range(top, max(MIN_CHUNK, top - LEAD_SEARCH) - 1, -1):
        if 0 < total % chunk <= LEAD_BYTES:
            return chunk
    return largest

MAX_SACK_BYTES = 128
_OVERHEAD = 256


class FragmentVerdict(Enum):
    """What one fragment did to its reassembly."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    COMPLETE = "complete"
    INVALID = "invalid"
    REFUSED = "refused"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class ReassemblyLimits:
    """Bounds on what peers can make us hold while messages are incomplete."""

    max_message: int
    per_peer_count: int
    per_peer_bytes: int
    total_bytes: int
    timeout: float
    ack_every: int


@dataclass(eq=False, slots=True)
class Reassembly:
    """One message being put back together."""

    peer: Addr
    kind: Kind
    id: int
    nonce: int
    total: int
    chunk_size: int
    count: int
    last_activity: float
    deadline: float | None = None
    chunks: list[bytes | None] = field(default_factory=list)
    received: int = 0
    cumulative: int = 0
    since_ack: int = 0
    held: int = _OVERHEAD

    def expected_length(self, index: int) -> int:
        """The exact byte length fragment `index` must have."""
        if index < self.count - 1:
            return self.chunk_size
        return self.total - self.chunk_size * (self.count - 1)

    def frag_ack(self) -> FragAck:
        """What we have: the contiguous prefix and a bitmap of what lies beyond it."""
        chunks, base = self.chunks, self.cumulative
        width = min(self.count - base, MAX_SACK_BYTES * 8)
        sack = bytearray(-(-width // 8))
        for offset in range(width):
            if chunks[base + offset] is not None:
                sack[offset >> 3] |= 1 << (offset & 7)
        self.since_ack = 0
        return FragAck(self.kind, self.id, self.nonce, base, bytes(sack.rstrip(b"\0")))

    def assemble(self) -> bytes:
        """The whole message; only valid once complete."""
        return b"".join(c for c in self.chunks if c is not None)


@dataclass(frozen=True, slots=True)
class FragmentOutcome:
    """One fragment's verdict, and the reassembly it went into (None when refused)."""

    verdict: FragmentVerdict
    entry: Reassembly | None


@dataclass(slots=True)
class _PeerUsage:
    count: int = 0
    held: int = 0


class Reassembler:
    """All reassemblies in progress, keyed by (peer, kind, id), within `limits`."""

    def __init__(self, limits: ReassemblyLimits) -> None:
        self.limits = limits
        self.active: dict[tuple[Addr, int, int], Reassembly] = {}
        self._usage: dict[Addr, _PeerUsage] = {}
        self.total_held = 0

    def add(self, peer: Addr, frag: Fragment, now: float) -> FragmentOutcome:
        """Take one fragment; the outcome has its reassembly for ADDED/DUPLICATE/COMPLETE."""
        key = (peer, frag.kind, frag.id)
        entry = self.active.get(key)
        if entry is None:
            verdict = self._check_header(frag)
            if verdict is not None:
                return FragmentOutcome(verdict, None)
            entry = self._open(peer, frag, now)
            if entry is None:
                return FragmentOutcome(FragmentVerdict.REFUSED, None)
        elif ((frag.nonce, frag.total, frag.chunk_size) != (entry.nonce, entry.total,
                                                            entry.chunk_size)
              or frag.index >= entry.count):
            return FragmentOutcome(FragmentVerdict.INVALID, None)
        outcome = self._store(entry, frag, now)
        if outcome.entry is None and entry.received == 0:
            self.remove(entry)  # a refused first fragment leaves nothing open (3.2)
        return outcome

    def wants_ack(self, entry: Reassembly, frag: Fragment, verdict: FragmentVerdict) -> bool:
        """Acknowledge on request, on duplicates, on gaps, and every `ack_every` pieces."""
        return (verdict is FragmentVerdict.DUPLICATE or bool(frag.flags & ACK_NOW)
                or frag.index != entry.cumulative - 1
                or entry.since_ack >= self.limits.ack_every)

    def held(self, peer: Addr) -> int:
        """Bytes held for `peer`'s transfers in progress."""
        usage = self._usage.get(peer)
        return usage.held if usage is not None else 0

    def remove(self, entry: Reassembly) -> None:
        """Forget a finished or expired reassembly and release its memory."""
        if self.active.pop((entry.peer, entry.kind, entry.id), None) is None:
            return
        entry.deadline = None
        usage = self._usage[entry.peer]
        usage.count -= 1
        usage.held -= entry.held
        self.total_held -= entry.held
        if usage.count == 0:
            del self._usage[entry.peer]

    def _check_header(self, frag: Fragment) -> FragmentVerdict | None:
        if frag.total > self.limits.max_message:
            return FragmentVerdict.TOO_LARGE
        if frag.chunk_size < MIN_CHUNK or frag.total < 1:
            return FragmentVerdict.INVALID
        if frag.index >= -(-frag.total // frag.chunk_size):
            return FragmentVerdict.INVALID
        return None

    def _open(self, peer: Addr, frag: Fragment, now: float) -> Reassembly | None:
        usage = self._usage.get(peer) or _PeerUsage()
        count = -(-frag.total // frag.chunk_size)
        cost = _OVERHEAD + 8 * count
        if (usage.count >= self.limits.per_peer_count
                or usage.held + cost > self.limits.per_peer_bytes
                or self.total_held + cost > self.limits.total_bytes):
            return None
        entry = Reassembly(peer, Kind(frag.kind), frag.id, frag.nonce, frag.total,
                           frag.chunk_size, count, now, chunks=[None] * count, held=cost)
        self.active[(peer, frag.kind, frag.id)] = entry
        self._usage[peer] = usage
        usage.count += 1
        usage.held += cost
        self.total_held += cost
        return entry

    def _store(self, entry: Reassembly, frag: Fragment, now: float) -> FragmentOutcome:
        if len(frag.data) != entry.expected_length(frag.index):
            return FragmentOutcome(FragmentVerdict.INVALID, None)
        entry.last_activity = now
        if entry.chunks[frag.index] is not None:
            return FragmentOutcome(FragmentVerdict.DUPLICATE, entry)
        usage = self._usage[entry.peer]
        size = len(frag.data)
        if (usage.held + size > self.limits.per_peer_bytes
                or self.total_held + size > self.limits.total_bytes):
            return FragmentOutcome(FragmentVerdict.REFUSED, None)
        entry.chunks[frag.index] = frag.data
        entry.held += size
        usage.held += size
        self.total_held += size
        entry.received += 1
        entry.since_ack += 1
        while entry.cumulative < entry.count and entry.chunks[entry.cumulative] is not None:
            entry.cumulative += 1
        if entry.received == entry.count:
            return FragmentOutcome(FragmentVerdict.COMPLETE, entry)
        return FragmentOutcome(FragmentVerdict.ADDED, entry)
