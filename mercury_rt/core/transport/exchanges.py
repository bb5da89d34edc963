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
from collections.abc import Container
from dataclasses import dataclass, field
from enum import Enum

from mercury_rt.core.transport.fragments import FragmentSender
from mercury_rt.core.transport.wire import Addr, Kind

EPOCH_SHIFT = 32
EVICTION_SCAN = 64
"""Epochs looked at, oldest first, for one a full table may evict (bounded work per
refused datagram)."""
SMALL_SHARE = 64
"""Records an address may hold in the last quarter of the record table: room kept for new
and small callers (and validated ones, unbounded there) that heavy strangers cannot take."""
FULL_TABLE_RETRY = 1.0
SMALL_REPLY_SHARE = 64 * 1024
"""Reply bytes an address may hold in the last quarter of the reply-byte bound: as
SMALL_SHARE does for records, room for new callers that heavy strangers cannot take."""
"""Seconds a caller refused by a full epoch table is told to wait: the next full sweep."""


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
    polls_unanswered: int = 0
    polled_at: float = 0.0
    """When the first of the POLLs now unanswered went out."""
    refused: bool = False
    """The peer answered it OVERLOADED (203, not run): safe to try elsewhere."""


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


class LookupVerdict(Enum):
    """What `RecordTable.lookup` found when it holds no record of the id."""

    NEW = "new"
    """Neither held nor below the sender's mark: a first arrival, which may be admitted."""
    STALE = "stale"
    """Below the sender's `done_below` mark: a late copy of a finished exchange, dropped."""


@dataclass(slots=True)
class _Epoch:
    """One sender incarnation's finished-below mark and its record ids in arrival order.

    `keep_until` is the latest expiry of any record it held: until then a delayed copy of
    a released request may still arrive, and only the mark stops it from running again.
    """

    done_below: int = 0
    ids: deque[int] = field(default_factory=deque)
    keep_until: float = 0.0
    live: int = 0
    """Records of this epoch still held: while any is, the mark is never evicted."""
    host_counted: bool = False
    """Counted in its host's share (its address was not validated when it was made)."""


class RecordTable:
    """Received exchanges keyed by (peer, id), bounded per peer, in total and in bytes.

    The last quarter of `max_records` is kept for addresses holding fewer than SMALL_SHARE
    records and for validated ones, so a few heavy strangers cannot take it all.

    Epochs are bounded too, per address and in total. An epoch is created only for an
    admitted record and lives until its records' retransmission window has passed. One
    address holds at most `max_epochs_per_peer` of them: past that share its new sender
    incarnations are refused (OVERLOADED), so one address, or a handful, cannot fill the
    table and lock out new callers; the addresses of one host (IP) together hold at most
    `max_epochs_per_host` unless validated, since one host has 65,535 ports to send from.
    When `max_epochs` are protecting, the least recently
    active mark of an address that has not proved it receives (not in `validated`) and
    holds no record is evicted for the newcomer; a validated address's mark never is, nor
    one whose records are still held. Failing that, the newcomer is refused.
    """

    def __init__(self, max_records: int, max_per_peer: int, max_reply_bytes: int,
                 max_epochs: int, max_epochs_per_peer: int = 16,
                 validated: Container[Addr] = (),
                 max_reply_bytes_per_peer: int | None = None,
                 max_epochs_per_host: int | None = None) -> None:
        self.max_records = max_records
        self.max_per_peer = max_per_peer
        self.max_reply_bytes = max_reply_bytes
        self.max_reply_bytes_per_peer = (max_reply_bytes if max_reply_bytes_per_peer is None
                                         else max_reply_bytes_per_peer)
        self._peer_reply_bytes: dict[Addr, int] = {}
        self.max_epochs = max_epochs
        self.max_epochs_per_peer = max_epochs_per_peer
        self.max_epochs_per_host = (max(max_epochs_per_peer, max_epochs // 16)
                                    if max_epochs_per_host is None else max_epochs_per_host)
        self._host_epochs: dict[str, int] = {}
        """Marks held by the unvalidated addresses of each host (IP)."""
        self._validated = validated
        self.by_key: dict[tuple[Addr, int], Record] = {}
        self._per_peer: dict[Addr, int] = {}
        self._epochs: OrderedDict[tuple[Addr, int], _Epoch] = OrderedDict()
        self._peer_epochs: dict[Addr, dict[int, _Epoch]] = {}
        self.evicted_epochs = 0
        self._next_full_sweep = float("-inf")
        self.reply_bytes = 0

    def lookup(self, peer: Addr, id_: int, done_below: int) -> Record | LookupVerdict:
        """Apply the sender's mark, then: the record we hold of `id_`, or why there is
        none. One call on the hot path instead of three; creates nothing (a datagram
        that is never admitted costs no memory)."""
        same_epoch = done_below >> EPOCH_SHIFT == id_ >> EPOCH_SHIFT
        epoch = self._epochs.get((peer, id_ >> EPOCH_SHIFT))
        if epoch is None:
            return _verdict(stale=same_epoch and id_ < done_below)
        if done_below > epoch.done_below and same_epoch:
            self._release_below(peer, epoch, done_below)
        record = self.by_key.get((peer, id_))
        if record is not None:
            return record
        return _verdict(stale=id_ < epoch.done_below)

    def known_epoch_new(self, peer: Addr, id_: int, done_below: int) -> _Epoch | None:
        """The epoch of `id_` when `lookup` would find it NEW within an epoch we already
        hold (the common case: a busy sender's next id); None for anything else (no
        epoch yet, held, stale). Read-only: the fast path decides with it before it
        changes anything, then applies the mark with `apply_mark`."""
        epoch = self._epochs.get((peer, id_ >> EPOCH_SHIFT))
        if (epoch is None or id_ < epoch.done_below or (peer, id_) in self.by_key
                or (id_ < done_below and done_below >> EPOCH_SHIFT == id_ >> EPOCH_SHIFT)):
            return None
        return epoch

    def apply_mark(self, peer: Addr, epoch: _Epoch, id_: int, done_below: int) -> None:
        """What `lookup` does with the sender's mark before it looks for the record."""
        if done_below > epoch.done_below and done_below >> EPOCH_SHIFT == id_ >> EPOCH_SHIFT:
            self._release_below(peer, epoch, done_below)

    def _release_below(self, peer: Addr, epoch: _Epoch, done_below: int) -> None:
        epoch.done_below = done_below
        ids = epoch.ids
        while ids and ids[0] < done_below:
            record = self.by_key.get((peer, ids.popleft()))
            if record is not None and record.state is not RecordState.RUNNING:
                self.remove(record)

    def get(self, peer: Addr, id_: int) -> Record | None:
        """The record of (peer, id), if we still hold one."""
        return self.by_key.get((peer, id_))

    def has_room(self, peer: Addr, id_: int, now: float) -> bool:
        """Whether one more record from `peer` fits within the bounds (including, for a
        new sender incarnation, the bound on epochs). An address already holding half its
        reply-byte bound starts nothing new: its next reply could not be held."""
        held, total = self._per_peer.get(peer, 0), len(self.by_key)
        return (total < self.max_records and held < self.max_per_peer
                and 2 * self._peer_reply_bytes.get(peer, 0) < self.max_reply_bytes_per_peer
                and (total < self.max_records - self.max_records // 4 or held < SMALL_SHARE
                     or peer in self._validated)
                and ((peer, id_ >> EPOCH_SHIFT) in self._epochs
                     or self._epoch_room(peer, now)))

    def retry_after(self, peer: Addr, now: float) -> float:
        """Seconds after which a refused newcomer from `peer` may find room: when the
        first of its own marks ends if its share is full, else the next full sweep."""
        own = self._peer_epochs.get(peer)
        if own is not None and len(own) >= self.max_epochs_per_peer:
            return max(min(e.keep_until for e in own.values()) - now, FULL_TABLE_RETRY)
        return FULL_TABLE_RETRY

    def _epoch_room(self, peer: Addr, now: float) -> bool:
        """Room for a new epoch of `peer`: within its share, then within the total."""
        own = self._peer_epochs.get(peer)
        if own is not None and len(own) >= self.max_epochs_per_peer:
            for epoch_id in [n for n, e in own.items() if e.keep_until <= now]:
                self._drop_epoch((peer, epoch_id))
            if len(own) >= self.max_epochs_per_peer:
                return False
        if (self._host_epochs.get(peer[0], 0) >= self.max_epochs_per_host
                and peer not in self._validated):
            return False
        if len(self._epochs) < self.max_epochs:
            return True
        if now >= self._next_full_sweep:  # a full scan, at most once a second: the
            self._next_full_sweep = now + 1.0  # front-first sweep can be shielded
            for key in [k for k, e in self._epochs.items() if e.keep_until <= now]:
                self._drop_epoch(key)
        return len(self._epochs) < self.max_epochs or self._evict_stranger()

    def _evict_stranger(self) -> bool:
        """Evict the least recently active mark that holds no record and belongs to an
        address not validated; False if none is among the oldest EVICTION_SCAN."""
        for n, (key, epoch) in enumerate(self._epochs.items()):
            if n >= EVICTION_SCAN:
                return False
            if epoch.live == 0 and key[0] not in self._validated:
                self._drop_epoch(key)
                self.evicted_epochs += 1
                return True
        return False

    def _drop_epoch(self, key: tuple[Addr, int]) -> None:
        epoch = self._epochs.pop(key)
        own = self._peer_epochs[key[0]]
        del own[key[1]]
        if not own:
            del self._peer_epochs[key[0]]
        if epoch.host_counted:
            host = key[0][0]
            left = self._host_epochs[host] - 1
            if left:
                self._host_epochs[host] = left
            else:
                del self._host_epochs[host]

    def reply_fits(self, peer: Addr, size: int) -> bool:
        """Whether holding a reply of `size` bytes for `peer` (kept whole, or being sent as
        fragments) stays within the byte bounds, per address and in total; the last
        quarter of the total only for validated addresses and those holding little."""
        held = self._peer_reply_bytes.get(peer, 0) + size
        total = self.reply_bytes + size
        return (total <= self.max_reply_bytes and held <= self.max_reply_bytes_per_peer
                and (total <= self.max_reply_bytes - self.max_reply_bytes // 4
                     or held <= SMALL_REPLY_SHARE or peer in self._validated))

    def held_bytes(self, peer: Addr) -> int:
        """Reply bytes held for `peer` (for metrics and tests)."""
        return self._peer_reply_bytes.get(peer, 0)

    def add(self, record: Record, done_below: int = 0) -> None:
        """Insert a new record (the caller checked `has_room`), keeping the `done_below`
        of the datagram that brought it: for a sender's first datagram it is the epoch's
        first mark, and `lookup` had no epoch to keep it in."""
        self.by_key[(record.peer, record.id)] = record
        self._per_peer[record.peer] = self._per_peer.get(record.peer, 0) + 1
        key = (record.peer, record.id >> EPOCH_SHIFT)
        epoch = self._epochs.get(key)
        if epoch is None:
            epoch = self._epochs[key] = _Epoch()
            self._peer_epochs.setdefault(record.peer, {})[key[1]] = epoch
            if record.peer not in self._validated:
                epoch.host_counted = True
                host = record.peer[0]
                self._host_epochs[host] = self._host_epochs.get(host, 0) + 1
        else:
            self._epochs.move_to_end(key)  # oldest-active first, for the sweep
        ids = epoch.ids
        while ids and (record.peer, ids[0]) not in self.by_key:
            ids.popleft()  # gone already: nothing for the mark to release
        ids.append(record.id)
        epoch.live += 1
        epoch.keep_until = max(epoch.keep_until, record.expires_at)
        if done_below >> EPOCH_SHIFT == key[1] and done_below > epoch.done_below:
            epoch.done_below = done_below

    def charge_reply(self, record: Record, size: int) -> None:
        """Charge a held reply's bytes to its address (the caller checked `reply_fits`)."""
        record.reply_bytes = size
        self.reply_bytes += size
        self._peer_reply_bytes[record.peer] = self._peer_reply_bytes.get(record.peer, 0) + size

    def release_reply(self, record: Record) -> None:
        """The reply's bytes are no longer held (its transfer ended, or the record went)."""
        size, record.reply_bytes = record.reply_bytes, 0
        if not size:
            return
        self.reply_bytes -= size
        left = self._peer_reply_bytes[record.peer] - size
        if left:
            self._peer_reply_bytes[record.peer] = left
        else:
            del self._peer_reply_bytes[record.peer]

    def remove(self, record: Record) -> None:
        """Drop a record whose retransmission window has passed."""
        if self.by_key.pop((record.peer, record.id), None) is None:
            return
        record.deadline = None
        self.release_reply(record)
        epoch = self._epochs.get((record.peer, record.id >> EPOCH_SHIFT))
        if epoch is not None and epoch.live:
            epoch.live -= 1
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
        next_record = None
        while by_key:
            record = next(iter(by_key.values()))
            if record.expires_at > now:
                next_record = record.expires_at
                break
            self.remove(record)
        return _earliest(next_record, self._sweep_epochs(now))

    def _sweep_epochs(self, now: float) -> float | None:
        """Drop epochs whose marks protect nothing any more (front first, as records)."""
        epochs = self._epochs
        while epochs:
            epoch = next(iter(epochs.values()))
            if epoch.keep_until > now:
                return epoch.keep_until
            self._drop_epoch(next(iter(epochs)))
        return None

    def __len__(self) -> int:
        return len(self.by_key)


def _verdict(*, stale: bool) -> LookupVerdict:
    return LookupVerdict.STALE if stale else LookupVerdict.NEW


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
