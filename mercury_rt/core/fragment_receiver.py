"""Reassembling fragmented messages under strict memory bounds.

Memory is charged as fragment bytes arrive (not reserved from the declared total), per
peer and in total, so a peer must actually send the bytes it makes us hold, and one
spoofed header cannot reserve a megabyte. Incomplete reassemblies expire after a period
without progress. Every fragment is checked against its transfer's header: the
declared total and chunk size fix exactly how long each piece must be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mercury_rt.core.messages import ACK_NOW, FragAck, Fragment, Kind

Addr = tuple[str, int]
MIN_CHUNK = 256
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

    def add(self, peer: Addr, frag: Fragment, now: float
            ) -> tuple[FragmentVerdict, Reassembly | None]:
        """Take one fragment; the reassembly is returned for ADDED/DUPLICATE/COMPLETE."""
        key = (peer, frag.kind, frag.id)
        entry = self.active.get(key)
        if entry is None:
            verdict = self._check_header(frag)
            if verdict is not None:
                return verdict, None
            entry = self._open(peer, frag, now)
            if entry is None:
                return FragmentVerdict.REFUSED, None
        elif ((frag.nonce, frag.total, frag.chunk_size) != (entry.nonce, entry.total,
                                                            entry.chunk_size)
              or frag.index >= entry.count):
            return FragmentVerdict.INVALID, None
        return self._store(entry, frag, now)

    def wants_ack(self, entry: Reassembly, frag: Fragment, verdict: FragmentVerdict) -> bool:
        """Acknowledge on request, on duplicates, on gaps, and every `ack_every` pieces."""
        return (verdict is FragmentVerdict.DUPLICATE or bool(frag.flags & ACK_NOW)
                or frag.index != entry.cumulative - 1
                or entry.since_ack >= self.limits.ack_every)

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

    def _store(self, entry: Reassembly, frag: Fragment, now: float
               ) -> tuple[FragmentVerdict, Reassembly | None]:
        if len(frag.data) != entry.expected_length(frag.index):
            return FragmentVerdict.INVALID, None
        entry.last_activity = now
        if entry.chunks[frag.index] is not None:
            return FragmentVerdict.DUPLICATE, entry
        usage = self._usage[entry.peer]
        size = len(frag.data)
        if (usage.held + size > self.limits.per_peer_bytes
                or self.total_held + size > self.limits.total_bytes):
            return FragmentVerdict.REFUSED, None
        entry.chunks[frag.index] = frag.data
        entry.held += size
        usage.held += size
        self.total_held += size
        entry.received += 1
        entry.since_ack += 1
        while entry.cumulative < entry.count and entry.chunks[entry.cumulative] is not None:
            entry.cumulative += 1
        if entry.received == entry.count:
            return FragmentVerdict.COMPLETE, entry
        return FragmentVerdict.ADDED, entry
