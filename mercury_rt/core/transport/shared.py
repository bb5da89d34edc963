"""What both sides of the transport share: per-peer state, the queues, and the senders of
large messages.

`TransportState` holds every piece of state of one `Transport`; the calling side
(calling.py) and the answering side (answering.py) are its two halves, and machine.py
joins them behind the public API. Per peer we keep what our calls to it have taught us
(RTT, whether it has proved its address, its incarnation) and our calls to it in id order.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque

from carbon.error_codes import MercuryError
from mercury_rt.core.transport.config import TransportConfig
from mercury_rt.core.transport.events import TransportEvent
from mercury_rt.core.transport.exchanges import EPOCH_SHIFT, Call, Record, RecordTable
from mercury_rt.core.transport.fragments import (
    FragmentSender,
    Reassembler,
    Reassembly,
    ReassemblyLimits,
    TransferSettings,
)
from mercury_rt.core.transport.stats import TransportStats
from mercury_rt.core.transport.timing import RttEstimator, TimerQueue
from mercury_rt.core.transport.wire import Addr, Kind


class TransportError(MercuryError):
    """Local misuse of the transport API (not a peer's fault)."""


class PeerState:
    """Per-peer client state: RTT, address validation, and our calls to it in id order."""

    __slots__ = ("incarnation", "pending", "rtt", "validated", "waiting")

    def __init__(self, rtt: RttEstimator) -> None:
        self.rtt = rtt
        self.validated = False
        self.incarnation = 0
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
        self._born: float | None = None
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[TransportEvent] = deque()
        self._timers: TimerQueue[Timer] = TimerQueue()
        self._peers: OrderedDict[Addr, PeerState] = OrderedDict()
        self._calls: dict[int, Call] = {}
        self._records = RecordTable(cfg.max_records, cfg.max_records_per_peer,
                                    cfg.max_cached_reply_bytes, cfg.max_peers)
        self._reassembler = Reassembler(ReassemblyLimits(
            cfg.max_envelope, cfg.max_reassemblies_per_peer,
            cfg.max_reassembly_bytes_per_peer, cfg.max_reassembly_bytes,
            cfg.reassembly_timeout, cfg.ack_every))
        self._sweeper = RecordSweeper()
        self._transfer = TransferSettings(cfg.initial_window, cfg.min_window, cfg.max_window,
                                          cfg.loss_threshold)

    def _new_epoch(self) -> int:
        """A fresh random sender epoch: the first id of a new id space."""
        return (self._rng.getrandbits(31) + 1) << EPOCH_SHIFT

    def _peer(self, peer: Addr) -> PeerState:
        state = self._peers.get(peer)
        if state is None:
            cfg = self.config
            state = PeerState(RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto))
            self._peers[peer] = state
            if len(self._peers) > cfg.max_peers:
                self._peers.popitem(last=False)
        return state

    def _emit(self, datagram: bytes, peer: Addr) -> None:
        self._out.append((datagram, peer))
        self.stats.datagrams_out += 1
        self.stats.bytes_out += len(datagram)

    def _new_sender(self, peer: Addr, kind: Kind, id_: int, blob: bytes,
                    budget: int | None) -> FragmentSender:
        rto = self._peer(peer).rtt.rto
        sender = FragmentSender(peer, kind, id_, self._rng.getrandbits(32), blob,
                                self.config.chunk_size, self._transfer, rto, budget)
        self.stats.fragmented_sends += 1
        return sender

    def _pump(self, sender: FragmentSender, now: float) -> None:
        for datagram in sender.pump(now):
            self._emit(datagram, sender.peer)

    def _backoff(self, rto: float) -> float:
        """The next timeout after one expiry of `rto`: doubled, capped at max_rto."""
        return min(rto * 2, self.config.max_rto)

    def _resend_fragments(self, sender: FragmentSender, now: float) -> None:
        """A transfer's timer fired with no progress: probe it if finished, else presume
        the window lost (the caller re-arms with backed-off time)."""
        if sender.complete:
            self._emit(sender.probe(), sender.peer)
            return
        sender.on_timeout()
        self._pump(sender, now)
