"""What both sides of the transport share: per-peer state, the queues, and the senders of
large messages.

`TransportState` holds every piece of state of one `Transport`; the calling side
(calling.py) and the answering side (answering.py) are its two halves, and machine.py
joins them behind the public API. Per peer we keep what our calls to it have taught us
(RTT, its incarnation) and our calls to it in id order. Whether an address has proved it
receives what we send is the amplification guard's (amplification.py): every datagram that
is not part of a call of ours goes out through `_emit`, which keeps its rule.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict, deque

from carbon.error_codes import MercuryError
from mercury_rt.core.transport.amplification import Account, AmplificationGuard
from mercury_rt.core.transport.config import TransportConfig
from mercury_rt.core.transport.events import TransportEvent
from mercury_rt.core.transport.exchanges import (
    EPOCH_SHIFT,
    EVICTION_SCAN,
    Call,
    Record,
    RecordTable,
)
from mercury_rt.core.transport.fragments import (
    FragmentSender,
    Reassembler,
    Reassembly,
    ReassemblyLimits,
    TransferSettings,
    lead_chunk_size,
)
from mercury_rt.core.transport.stats import TransportStats
from mercury_rt.core.transport.timing import RttEstimator, TimerQueue
from mercury_rt.core.transport.wire import Addr, Error, Kind, encode


class TransportError(MercuryError):
    """Local misuse of the transport API (not a peer's fault)."""


class PeerState:
    """Per-peer client state: RTT, and our calls to it in id order."""

    __slots__ = ("heard_at", "incarnation", "pending", "rtt", "waiting")

    def __init__(self, rtt: RttEstimator) -> None:
        self.rtt = rtt
        self.incarnation = 0
        self.heard_at = float("-inf")
        """When the peer last proved it is there (answered an exchange of ours, or the
        layer above validated it): a lossy but live peer is not given up (calling.py)."""
        self.pending: deque[int] = deque()
        self.waiting: deque[Call] = deque()


class RecordSweeper:
    """The one timer that expires server-side records (see RecordTable.sweep)."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline: float | None = None


Timer = Call | Record | Reassembly | RecordSweeper
"""Everything the transport arms a timer for."""


class TransportState:
    """The state of one endpoint's exchanges with all its peers, and the plumbing both
    sides use on it."""

    def __init__(self, config: TransportConfig | None = None, *, rng: random.Random) -> None:
        self.config = cfg = config or TransportConfig()
        self.stats = TransportStats()
        self._rng = rng
        self._next_id = self._new_epoch()
        self.incarnation = rng.getrandbits(32) or 1
        self._nonce_key = rng.getrandbits(256).to_bytes(32, "big")
        self._nonces = 0
        self._born: float | None = None
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[TransportEvent] = deque()
        self._timers: TimerQueue[Timer] = TimerQueue()
        self._peers: OrderedDict[Addr, PeerState] = OrderedDict()
        self._calls: dict[int, Call] = {}
        self._reassembler = Reassembler(ReassemblyLimits(
            cfg.max_envelope, cfg.max_reassemblies_per_peer,
            cfg.max_reassembly_bytes_per_peer, cfg.max_reassembly_bytes,
            cfg.reassembly_timeout, cfg.ack_every))
        self._amplification = AmplificationGuard(cfg.amplification_factor,
                                                 cfg.max_validated_addresses,
                                                 cfg.max_address_accounts)
        self._validated = self._amplification.validated
        self._records = RecordTable(cfg.max_records, cfg.max_records_per_peer,
                                    cfg.max_cached_reply_bytes, cfg.max_peers,
                                    cfg.max_epochs_per_peer, self._validated,
                                    cfg.reply_bytes_per_peer, cfg.max_epochs_per_host)
        self._sweeper = RecordSweeper()
        self._max_in = cfg.limits.max_bytes
        self._max_ttl_ms = cfg.max_ttl * 1000
        """The two bounds the fast paths check on every datagram (fastpath.py)."""
        self._transfer = TransferSettings(cfg.initial_window, cfg.min_window, cfg.max_window,
                                          cfg.loss_threshold)

    def _new_epoch(self) -> int:
        """A fresh random sender epoch: the first id of a new id space."""
        return (self._rng.getrandbits(31) + 1) << EPOCH_SHIFT

    def _peer(self, peer: Addr) -> PeerState:
        state = self._peers.get(peer)
        if state is None:
            cfg = self.config
            state = PeerState(RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto,
                                           cfg.rto_granularity))
            self._peers[peer] = state
            if len(self._peers) > cfg.max_peers:
                self._evict_peer()
        return state

    def _evict_peer(self) -> None:
        """Forget the oldest peer that has no unfinished call of ours: a state with calls
        holds their order and `done_below`, so it stays (such states are bounded by
        `max_outstanding_calls`)."""
        peers = self._peers
        for _ in range(min(len(peers), EVICTION_SCAN)):
            addr, state = next(iter(peers.items()))
            if self._peer_low(state) == self._next_id:
                del peers[addr]
                return
            peers.move_to_end(addr)

    def _peer_low(self, state: PeerState) -> int:
        """Our lowest unfinished id to this peer (amortised O(1))."""
        pending, calls = state.pending, self._calls
        while pending and pending[0] not in calls:
            pending.popleft()
        return pending[0] if pending else self._next_id

    def _emit_own(self, datagram: bytes, peer: Addr) -> None:
        """Send a datagram of a call of ours (we chose to talk to `peer`: not limited)."""
        self._out.append((datagram, peer))
        self.stats.datagrams_out += 1
        self.stats.bytes_out += len(datagram)

    def _emit(self, datagram: bytes, peer: Addr) -> bool:
        """Send anything else (replies, acks, errors, FRAG_ACKs) within `peer`'s
        amplification budget; False when it was withheld."""
        if peer not in self._validated and not self._amplification.spend(peer, len(datagram)):
            self.stats.amplification_limited += 1
            return False
        self._emit_own(datagram, peer)
        return True

    def _fits(self, peer: Addr, size: int) -> bool:
        """Whether `size` more bytes to `peer` are within its amplification budget."""
        return peer in self._validated or self._amplification.allowance(peer) >= size

    def _error_datagram(self, error: Error, peer: Addr) -> bytes:
        """An ERROR's datagram. Its code is the answer and its detail only explains, so
        when an unvalidated address's budget cannot carry the detail, the code alone."""
        datagram = encode(error)
        if error.detail and not self._fits(peer, len(datagram)):
            datagram = encode(Error(error.kind, error.id, error.code, ""))
        return datagram

    def _emit_error(self, error: Error, peer: Addr) -> None:
        """Send a transport ERROR (see `_error_datagram`)."""
        self._emit(self._error_datagram(error, peer), peer)

    def _validate(self, peer: Addr, now: float) -> None:
        """`peer` proved it receives what we send: lift its limit, resume its replies.
        It is also alive now, which our calls to it go by (`heard_at`)."""
        state = self._peers.get(peer)
        if state is not None:
            state.heard_at = now
        for record in self._amplification.validate(peer):
            if record.sender is not None and self._records.get(peer, record.id) is record:
                self._pump(record.sender, now)

    def _unblock(self, account: Account, now: float) -> None:
        """The budget grew: resume waiting replies in order, until one is limited again
        (so a datagram costs at most one transfer that cannot proceed)."""
        blocked = account.blocked
        while blocked:
            id_, record = next(iter(blocked.items()))
            del blocked[id_]
            sender = record.sender
            if sender is None or self._records.get(record.peer, id_) is not record:
                continue
            self._pump(sender, now)
            if sender.limited:
                return

    def _new_nonce(self) -> int:
        """A transfer nonce no one can predict (3.7: echoing it proves an address). It is a
        keyed hash of a counter, not a raw output of the injected generator: a peer shown
        enough raw outputs of a Mersenne Twister can compute all the others, including the
        nonces of transfers to someone else."""
        self._nonces += 1
        digest = hashlib.blake2b(self._nonces.to_bytes(8, "big"), key=self._nonce_key,
                                 digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def _new_sender(self, peer: Addr, kind: Kind, id_: int, blob: bytes,
                    lead: bool = False) -> FragmentSender:
        """A transfer of `blob` under a fresh unpredictable nonce (`_new_nonce`). With
        `lead`, its chunk size leaves a short last fragment, sent first
        (FragmentSender.lead_with_last)."""
        rto = self._peer(peer).rtt.rto
        chunk = self.config.chunk_size
        if lead:
            chunk = lead_chunk_size(len(blob), chunk)
        sender = FragmentSender(peer, kind, id_, self._new_nonce(), blob, chunk,
                                self._transfer, rto)
        if lead:
            sender.lead_with_last()
        self.stats.fragmented_sends += 1
        return sender

    def _pump(self, sender: FragmentSender, now: float) -> None:
        """Send what the window allows; a reply's fragments also stay within its address's
        amplification budget (the rest waits in the account's `blocked`)."""
        peer = sender.peer
        if sender.kind is not Kind.REPLY or peer in self._validated:
            for datagram in sender.pump(now):
                self._emit_own(datagram, peer)
            return
        guard = self._amplification
        datagrams = sender.pump(now, guard.allowance(peer))
        for datagram in datagrams:
            guard.charge(peer, len(datagram))
            self._emit_own(datagram, peer)
        if sender.limited:
            self.stats.amplification_limited += 1
            blocked = self._records.get(peer, sender.id)
            if blocked is not None:
                guard.block(blocked)

    def _backoff(self, rto: float) -> float:
        """The next timeout after one expiry of `rto`: doubled, capped at max_rto."""
        return min(rto * 2, self.config.max_rto)

    def _resend_fragments(self, sender: FragmentSender, now: float) -> None:
        """A transfer's timer fired with no progress: probe it if finished, else presume
        the window lost (the caller re-arms with backed-off time)."""
        if sender.complete:
            probe = sender.probe()
            if sender.kind is Kind.REPLY:
                self._emit(probe, sender.peer)
            else:
                self._emit_own(probe, sender.peer)
            return
        sender.on_timeout()
        self._pump(sender, now)
