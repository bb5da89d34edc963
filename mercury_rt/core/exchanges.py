"""The state each side keeps per exchange, and the tables that bound it.

Client side, a `Call` is one request or one-way message we sent:

    SENT --Ack(kind,id)--> ACKED --Reply/Error--> (done)
    SENT --Reply/Error--> (done)          any --deadline/cancel--> (done)

In SENT the whole message is retransmitted on timeout (fragments: only the missing
ones); in ACKED the peer has it whole, so a request is only polled (POLL) and a
message needs nothing more. Server side, a `Record` remembers a request or message
we received, so a retransmission is answered from the record and never runs twice:

    RUNNING --reply()--> REPLIED            DELIVERED (one-way messages)

Records live until `first seen + ttl + slack`, past which no retransmission can come,
or until the peer's `done_below` mark passes them: ids carry the sender's random epoch
in their top 32 bits, and a sender's requests say which of its ids are finished, so a
busy client's records are released at once and stale copies below the mark are dropped.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum

from mercury_rt.core.fragment_sender import FragmentSender
from mercury_rt.core.messages import Kind

Addr = tuple[str, int]
EPOCH_SHIFT = 32


class CallState(Enum):
    """Where a call stands; see the module docstring for the transition table."""

    SENT = "sent"
    ACKED = "acked"


@dataclass(eq=False, slots=True)
class Call:
    """One outstanding request or one-way message of ours."""

    handle: int
    peer: Addr
    kind: Kind
    payload: bytes
    expires_at: float
    rto: float
    sent_at: float
    origin: int = 0
    answer_timeout: float | None = None
    state: CallState = CallState.SENT
    transmissions: int = 1
    sender: FragmentSender | None = None
    deadline: float | None = None


class RecordState(Enum):
    """Server-side progress of a received exchange."""

    RUNNING = "running"
    REPLIED = "replied"
    DELIVERED = "delivered"


@dataclass(eq=False, slots=True)
class Record:
    """What we remember of a request or message received from `peer`."""

    peer: Addr
    id: int
    kind: Kind
    expires_at: float
    bytes_in: int
    state: RecordState
    reply: bytes | None = None
    sender: FragmentSender | None = None
    reply_bytes: int = 0
    deadline: float | None = None


@dataclass(slots=True)
class _Epoch:
    """One sender incarnation's finished-below mark and its record ids in arrival order."""

    done_below: int = 0
    ids: deque[int] = field(default_factory=deque)


class RecordTable:
    """Received exchanges keyed by (peer, id), bounded per peer, in total and in bytes."""

    def __init__(self, max_records: int, max_per_peer: int, max_reply_bytes: int,
                 max_epochs: int) -> None:
        self.max_records = max_records
        self.max_per_peer = max_per_peer
        self.max_reply_bytes = max_reply_bytes
        self.max_epochs = max_epochs
        self.by_key: dict[tuple[Addr, int], Record] = {}
        self._per_peer: dict[Addr, int] = {}
        self._epochs: OrderedDict[tuple[Addr, int], _Epoch] = OrderedDict()
        self.reply_bytes = 0

    def lookup(self, peer: Addr, id_: int, done_below: int) -> Record | bool:
        """Apply the sender's mark, then: the record, or True if `id_` is a stale copy,
        or False if it is new. One call on the hot path instead of three."""
        epoch = self._epoch(peer, id_)
        if done_below > epoch.done_below and done_below >> EPOCH_SHIFT == id_ >> EPOCH_SHIFT:
            self._release_below(peer, epoch, done_below)
        record = self.by_key.get((peer, id_))
        if record is not None:
            return record
        return id_ < epoch.done_below

    def _release_below(self, peer: Addr, epoch: _Epoch, done_below: int) -> None:
        epoch.done_below = done_below
        ids = epoch.ids
        while ids and ids[0] < done_below:
            record = self.by_key.get((peer, ids.popleft()))
            if record is not None and record.state is not RecordState.RUNNING:
                self.remove(record)

    def _epoch(self, peer: Addr, id_: int) -> _Epoch:
        key = (peer, id_ >> EPOCH_SHIFT)
        epoch = self._epochs.get(key)
        if epoch is None:
            epoch = self._epochs[key] = _Epoch()
            if len(self._epochs) > self.max_epochs:
                self._epochs.popitem(last=False)
        return epoch

    def get(self, peer: Addr, id_: int) -> Record | None:
        """The record of (peer, id), if we still hold one."""
        return self.by_key.get((peer, id_))

    def has_room(self, peer: Addr) -> bool:
        """Whether one more record from `peer` fits within the bounds."""
        return (len(self.by_key) < self.max_records
                and self._per_peer.get(peer, 0) < self.max_per_peer)

    def reply_fits(self, size: int) -> bool:
        """Whether caching a reply of `size` bytes stays within the byte bound."""
        return self.reply_bytes + size <= self.max_reply_bytes

    def add(self, record: Record) -> None:
        """Insert a new record (the caller checked `has_room`)."""
        self.by_key[(record.peer, record.id)] = record
        self._per_peer[record.peer] = self._per_peer.get(record.peer, 0) + 1
        self._epoch(record.peer, record.id).ids.append(record.id)

    def charge_reply(self, record: Record, size: int) -> None:
        """Account for a cached reply's bytes."""
        record.reply_bytes = size
        self.reply_bytes += size

    def remove(self, record: Record) -> None:
        """Drop a record whose retransmission window has passed."""
        if self.by_key.pop((record.peer, record.id), None) is None:
            return
        record.deadline = None
        self.reply_bytes -= record.reply_bytes
        left = self._per_peer[record.peer] - 1
        if left:
            self._per_peer[record.peer] = left
        else:
            del self._per_peer[record.peer]

    def sweep(self, now: float) -> float | None:
        """Drop expired records, oldest first; returns when to sweep next.

        Records are kept in arrival order, so sweeping looks only at the front. A record
        with a long ttl may briefly shield younger ones behind it; that costs memory
        within the table's bounds, never correctness.
        """
        by_key = self.by_key
        while by_key:
            record = next(iter(by_key.values()))
            if record.expires_at > now:
                return record.expires_at
            self.remove(record)
        return None

    def __len__(self) -> int:
        return len(self.by_key)
