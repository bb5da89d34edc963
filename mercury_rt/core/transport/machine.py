"""The transport core: reliable request/reply and one-way messages over datagrams, sans-IO.

Fed `receive_datagram(data, peer, now)`, `handle_timer(now)` and API calls; it returns
nothing directly but queues datagrams (`datagrams_to_send`), events (`next_event`) and
one timer deadline (`get_timer`). It never touches a socket, a clock or a global RNG,
so any scenario replays exactly from its inputs. Peer input never raises: malformed or
unexpected datagrams are counted in `stats` and dropped, or answered with a typed Error.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from typing import assert_never

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.transport.config import TransportConfig
from mercury_rt.core.transport.events import (
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    TransportEvent,
)
from mercury_rt.core.transport.exchanges import (
    EPOCH_SHIFT,
    Call,
    CallState,
    LookupVerdict,
    Record,
    RecordState,
    RecordTable,
)
from mercury_rt.core.transport.fragments import (
    FragmentSender,
    FragmentVerdict,
    Reassembler,
    Reassembly,
    ReassemblyLimits,
    TransferSettings,
)
from mercury_rt.core.transport.stats import TransportStats
from mercury_rt.core.transport.timing import RttEstimator, TimerQueue
from mercury_rt.core.transport.wire import (
    MAX_ATTEMPT,
    MAX_DETAIL,
    MAX_U32,
    Ack,
    Addr,
    AnyMessage,
    Error,
    FragAck,
    Fragment,
    Kind,
    Message,
    MessageError,
    Poll,
    Reply,
    Request,
    decode_datagram,
    encode,
    encode_reply,
    encode_request,
)

_COUNTER_MASK = (1 << EPOCH_SHIFT) - 1
RESTART_SLACK = 1.0
"""Seconds allowed for a first transmission's travel when judging if it predates us."""


class TransportError(MercuryError):
    """Local misuse of the transport API (not a peer's fault)."""


class _Peer:
    """Per-peer client state: RTT, address validation, and our calls to it in id order."""

    __slots__ = ("incarnation", "pending", "rtt", "validated", "waiting")

    def __init__(self, rtt: RttEstimator) -> None:
        self.rtt = rtt
        self.validated = False
        self.incarnation = 0
        self.pending: deque[int] = deque()
        self.waiting: deque[Call] = deque()


class _Sweeper:
    """The one timer that expires server-side records (see RecordTable.sweep)."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline: float | None = None


class Transport:
    """One endpoint's exchanges with all its peers. See module docstring."""

    def __init__(self, config: TransportConfig | None = None, *, rng: random.Random) -> None:
        self.config = cfg = config or TransportConfig()
        self.stats = TransportStats()
        self._rng = rng
        self._next_id = self._new_epoch()
        self.incarnation = rng.getrandbits(32) or 1
        self._born: float | None = None
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[TransportEvent] = deque()
        self._timers: TimerQueue[Call | Record | Reassembly | _Sweeper] = TimerQueue()
        self._peers: OrderedDict[Addr, _Peer] = OrderedDict()
        self._calls: dict[int, Call] = {}
        self._records = RecordTable(cfg.max_records, cfg.max_records_per_peer,
                                    cfg.max_cached_reply_bytes, cfg.max_peers)
        self._reassembler = Reassembler(ReassemblyLimits(
            cfg.max_envelope, cfg.max_reassemblies_per_peer,
            cfg.max_reassembly_bytes_per_peer, cfg.max_reassembly_bytes,
            cfg.reassembly_timeout, cfg.ack_every))
        self._sweeper = _Sweeper()
        self._transfer = TransferSettings(cfg.initial_window, cfg.min_window, cfg.max_window,
                                          cfg.loss_threshold)

    # ----- outputs ---------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Take every datagram queued since the last call, in order."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> TransportEvent | None:
        """The oldest unread event, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None if nothing is pending."""
        return self._timers.next_deadline()

    @property
    def outstanding(self) -> int:
        """Calls and messages of ours still in progress."""
        return len(self._calls)

    # ----- client API ------------------------------------------------------------------

    def call(self, peer: Addr, payload: bytes, now: float, timeout: float | None = None,
             answer_timeout: float | None = None) -> int:
        """Start a request to `peer`; its outcome arrives as ReplyReceived or CallFailed.

        With `answer_timeout`, a request the peer has not acknowledged (nor answered) within
        that time fails with NO_ANSWER, so a caller can try another node; once the peer
        has acknowledged it, only the overall `timeout` applies.
        """
        return self._start(Kind.REQUEST, peer, payload, now, timeout, answer_timeout)

    def send(self, peer: Addr, payload: bytes, now: float, timeout: float | None = None) -> int:
        """Start a one-way message; outcome: MessageDelivered or CallFailed."""
        return self._start(Kind.MESSAGE, peer, payload, now, timeout)

    def cancel(self, handle: int) -> bool:
        """Abandon a call; no event follows. Returns whether it was still outstanding."""
        call = self._calls.pop(handle, None)
        if call is None:
            return False
        self._forget_call(call)
        self.stats.cancelled += 1
        self._after_finish(call, call.sent_at)
        return True

    # ----- server API ------------------------------------------------------------------

    def reply(self, peer: Addr, request_id: int, payload: bytes, now: float) -> bool:
        """Answer request `request_id` from `peer` (once). False if it is no longer held."""
        datagram = encode_reply(request_id, self.incarnation, payload)
        return self._finish(peer, request_id, datagram, now)

    def acknowledge(self, peer: Addr, request_id: int) -> None:
        """Tell the caller now that we hold its request (used before slow handlers), so it
        waits for us instead of trying another node."""
        record = self._records.get(peer, request_id)
        if record is not None and record.state is RecordState.RUNNING:
            self._emit(encode(Ack(Kind.REQUEST, request_id, self.incarnation)), peer)

    def reply_error(self, peer: Addr, request_id: int, code: int, detail: str,
                    now: float) -> bool:
        """Answer a request with a typed error instead of a reply."""
        datagram = encode(Error(Kind.REQUEST, request_id, int(code), detail[:MAX_DETAIL]))
        return self._finish(peer, request_id, datagram, now)

    # ----- inputs ----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        """Process one datagram from `peer`. Never raises for any input bytes."""
        self._born = now if self._born is None else self._born
        self.stats.datagrams_in += 1
        self.stats.bytes_in += len(data)
        try:
            message = decode_datagram(data, self.config.limits)
        except MessageError as exc:
            self.stats.count_decode_error(exc.code)
            return
        self._dispatch(message, peer, len(data), now)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at `now`: retransmissions, deadlines, expiries."""
        self._born = now if self._born is None else self._born
        for obj in self._timers.expired(now):
            if isinstance(obj, Call):
                self._call_timer(obj, now)
            elif isinstance(obj, Record):
                self._record_timer(obj, now)
            elif isinstance(obj, Reassembly):
                self._reassembly_timer(obj, now)
            elif obj is self._sweeper:
                self._sweep(now)

    # ----- dispatch --------------------------------------------------------------------

    def _dispatch(self, message: AnyMessage, peer: Addr, size: int, now: float) -> None:
        match message:
            case Request():
                _ = self._on_request(message, peer, size, now)
            case Reply():
                self._on_reply(message, peer, now)
            case Message():
                self._on_message(message, peer, size, now)
            case Ack():
                self._on_ack(message, peer, now)
            case Error():
                self._on_error(message, peer, now)
            case Poll():
                self._on_poll(message, peer, now)
            case Fragment():
                self._on_fragment(message, peer, size, now)
            case FragAck():
                self._on_frag_ack(message, peer, now)

    # ----- client side -----------------------------------------------------------------

    def _start(self, kind: Kind, peer: Addr, payload: bytes, now: float,
               timeout: float | None, answer_timeout: float | None = None) -> int:
        cfg = self.config
        self._born = now if self._born is None else self._born
        timeout = cfg.default_timeout if timeout is None else timeout
        if not 0 < timeout <= cfg.max_ttl:
            raise TransportError(f"timeout must be in (0, {cfg.max_ttl}] seconds",
                                 ErrorCode.TTL_TOO_LONG)
        if len(payload) > cfg.max_message:
            raise TransportError(f"payload of {len(payload)} bytes exceeds max_message "
                                 f"({cfg.max_message})", ErrorCode.MESSAGE_TOO_LARGE)
        if len(self._calls) >= cfg.max_outstanding_calls:
            raise TransportError("too many outstanding calls", ErrorCode.TOO_MANY_CALLS)
        handle = self._next_id
        self._next_id += 1
        if not self._next_id & _COUNTER_MASK:
            self._next_id = self._new_epoch()
        state = self._peer(peer)
        call = Call(handle, peer, kind, payload, now + timeout, state.rtt.rto, now,
                    origin=state.incarnation, answer_timeout=answer_timeout)
        self._calls[handle] = call
        state.pending.append(handle)
        if state.waiting or not self._within_span(state, handle):
            state.waiting.append(call)
            self._timers.arm(call, call.expires_at)
        else:
            self._transmit(call, state, now)
        return handle

    def _within_span(self, state: _Peer, handle: int) -> bool:
        """Flow control: keep our unfinished id span to one peer under its record bound."""
        low = state.pending[0] if state.pending and state.pending[0] in self._calls \
            else self._peer_low(state)
        return (low >> EPOCH_SHIFT != handle >> EPOCH_SHIFT
                or handle - low < self.config.max_call_span)

    def _peer_low(self, state: _Peer) -> int:
        """Our lowest unfinished id to this peer (amortised O(1))."""
        pending, calls = state.pending, self._calls
        while pending and pending[0] not in calls:
            pending.popleft()
        return pending[0] if pending else self._next_id

    def _start_waiting(self, state: _Peer, now: float) -> None:
        waiting = state.waiting
        while waiting:
            call = waiting[0]
            if call.handle not in self._calls:
                waiting.popleft()
            elif self._within_span(state, call.handle):
                waiting.popleft()
                call.sent_at = now
                self._transmit(call, state, now)
            else:
                return

    def _new_epoch(self) -> int:
        """A fresh random sender epoch: the first id of a new id space."""
        return (self._rng.getrandbits(31) + 1) << EPOCH_SHIFT

    def _encode_call(self, call: Call, state: _Peer, now: float) -> bytes:
        ttl_ms = max(int((call.expires_at - now) * 1000), 1)
        done_below = self._peer_low(state)
        attempt = min(call.transmissions, MAX_ATTEMPT)
        age_ms = min(int((now - call.sent_at) * 1000), MAX_U32)
        if call.kind is Kind.REQUEST:
            return encode_request(call.handle, ttl_ms, done_below, attempt, call.origin,
                                  age_ms, call.payload)
        return encode(Message(call.handle, ttl_ms, done_below, attempt, call.origin, age_ms,
                              call.payload))

    def _transmit(self, call: Call, state: _Peer, now: float) -> None:
        datagram = self._encode_call(call, state, now)
        if len(datagram) <= self.config.max_datagram:
            self._emit(datagram, call.peer)
        else:
            call.sender = self._new_sender(call.peer, call.kind, call.handle, datagram, None)
            self._pump(call.sender, now)
        self._arm_call(call, now + call.rto)

    def _call_timer(self, call: Call, now: float) -> None:
        if now >= call.expires_at:
            self._fail(call, ErrorCode.TIMEOUT,
                       f"no answer from {call.peer[0]}:{call.peer[1]} before the deadline", now)
            return
        if (call.answer_timeout is not None and call.state is CallState.SENT
                and now >= call.sent_at + call.answer_timeout):
            self._fail(call, ErrorCode.NO_ANSWER,
                       f"{call.peer[0]}:{call.peer[1]} did not acknowledge the request", now)
            return
        call.rto = self._backoff(call.rto)
        call.transmissions += 1
        self.stats.retransmissions += 1
        sender = call.sender
        if call.state is CallState.ACKED:
            self._emit(encode(Poll(call.handle)), call.peer)
        elif sender is not None:
            self._resend_fragments(sender, now)
        else:
            self._emit(self._encode_call(call, self._peer(call.peer), now), call.peer)
        self._arm_call(call, now + call.rto)

    def _backoff(self, rto: float) -> float:
        """The next timeout after one expiry of `rto`: doubled, capped at max_rto."""
        return min(rto * 2, self.config.max_rto)

    def _arm_call(self, call: Call, when: float) -> None:
        """Arm a call's timer at `when`, its deadline, or its answer deadline if sooner."""
        limit = call.expires_at
        if call.answer_timeout is not None and call.state is CallState.SENT:
            limit = min(limit, call.sent_at + call.answer_timeout)
        self._timers.arm(call, min(when, limit))

    def _resend_fragments(self, sender: FragmentSender, now: float) -> None:
        """A transfer's timer fired with no progress: probe it if finished, else presume
        the window lost (the caller re-arms with backed-off time)."""
        if sender.complete:
            self._emit(sender.probe(), sender.peer)
            return
        sender.on_timeout()
        self._pump(sender, now)

    def _on_reply(self, reply: Reply, peer: Addr, now: float) -> None:
        call = self._own_call(reply.id, peer, Kind.REQUEST)
        if call is None:
            return
        state = self._peer(peer)
        state.incarnation = reply.incarnation
        if call.transmissions == 1 and call.sender is None:
            state.rtt.sample(now - call.sent_at)
        self._complete(call, ReplyReceived(call.handle, reply.payload), now)

    def _on_ack(self, ack: Ack, peer: Addr, now: float) -> None:
        if ack.kind is Kind.REPLY:
            record = self._records.get(peer, ack.id)
            if record is not None:
                record.sender = None
            return
        call = self._own_call(ack.id, peer, ack.kind)
        if call is None:
            return
        self._peer(peer).incarnation = ack.incarnation
        if ack.kind is Kind.MESSAGE:
            if call.transmissions == 1 and call.sender is None:
                self._peer(peer).rtt.sample(now - call.sent_at)
            self._complete(call, MessageDelivered(call.handle), now)
            return
        self._peer_holds(call)
        self._timers.arm(call, min(now + max(call.rto, self._peer(peer).rtt.rto),
                                   call.expires_at))

    def _on_error(self, error: Error, peer: Addr, now: float) -> None:
        if error.kind is Kind.REPLY:
            record = self._records.get(peer, error.id)
            if record is not None:
                record.sender = None
            return
        call = self._own_call(error.id, peer, error.kind)
        if call is None:
            return
        if error.code == ErrorCode.OVERLOADED and call.state is CallState.SENT:
            self.stats.overloaded_retries += 1
            call.rto = self._backoff(call.rto)
            self._arm_call(call, now + call.rto)
            return
        self._complete(call, CallFailed(call.handle, error.code, error.detail), now)

    def _own_call(self, handle: int, peer: Addr, kind: Kind) -> Call | None:
        call = self._calls.get(handle)
        if call is None or call.peer != peer or call.kind is not kind:
            self.stats.unexpected += 1
            return None
        return call

    @staticmethod
    def _peer_holds(call: Call) -> None:
        """SENT -> ACKED: the peer has the whole request, so stop resending it (poll)."""
        call.state = CallState.ACKED
        call.sender = None

    def _complete(self, call: Call, event: TransportEvent, now: float) -> None:
        del self._calls[call.handle]
        self._forget_call(call)
        self._events.append(event)
        self._after_finish(call, now)

    def _after_finish(self, call: Call, now: float) -> None:
        state = self._peers.get(call.peer)
        if state is not None and state.waiting:
            self._start_waiting(state, now)

    def _fail(self, call: Call, code: ErrorCode, detail: str, now: float) -> None:
        self.stats.timeouts += code is ErrorCode.TIMEOUT
        self._complete(call, CallFailed(call.handle, code, detail), now)

    def _forget_call(self, call: Call) -> None:
        call.deadline = None
        call.sender = None
        entry = self._reassembler.active.get((call.peer, Kind.REPLY, call.handle))
        if entry is not None:
            self._reassembler.remove(entry)

    # ----- server side -----------------------------------------------------------------

    def _on_request(self, request: Request, peer: Addr, size: int, now: float) -> bool:
        """Start or answer a request; False when it was refused or stale."""
        match self._records.lookup(peer, request.id, request.done_below):
            case Record() as record:
                self._answer_duplicate(record, now)
                return True
            case LookupVerdict.STALE:
                self.stats.stale += 1
                return False
            case LookupVerdict.NEW:
                pass
            case unreachable:
                assert_never(unreachable)
        if not self._admit(Kind.REQUEST, request, peer, now):
            return False
        ttl = request.ttl_ms / 1000
        record = Record(peer, request.id, Kind.REQUEST, now + ttl + self.config.record_slack,
                        size, RecordState.RUNNING)
        self._remember(record)
        self._events.append(RequestReceived(peer, request.id, request.payload, now + ttl))
        return True

    def _on_message(self, message: Message, peer: Addr, size: int, now: float) -> None:
        match self._records.lookup(peer, message.id, message.done_below):
            case Record():
                self.stats.duplicates += 1
                self._emit(encode(Ack(Kind.MESSAGE, message.id, self.incarnation)), peer)
                return
            case LookupVerdict.STALE:
                self.stats.stale += 1
                return
            case LookupVerdict.NEW:
                pass
            case unreachable:
                assert_never(unreachable)
        if not self._admit(Kind.MESSAGE, message, peer, now):
            return
        expires = now + message.ttl_ms / 1000 + self.config.record_slack
        self._remember(Record(peer, message.id, Kind.MESSAGE, expires, size,
                              RecordState.DELIVERED))
        self._emit(encode(Ack(Kind.MESSAGE, message.id, self.incarnation)), peer)
        self._events.append(MessageReceived(peer, message.id, message.payload))

    def _may_predate_restart(self, first: Request | Message, now: float) -> bool:
        """A retransmission addressed to an earlier incarnation of ours, first sent before
        we started (with slack for its travel): its first attempt may have run there."""
        if first.attempt <= 1 or first.origin in (0, self.incarnation):
            return False
        uptime = now - self._born if self._born is not None else 0.0
        return first.age_ms / 1000 + RESTART_SLACK > uptime

    def _admit(self, kind: Kind, first: Request | Message, peer: Addr, now: float) -> bool:
        """Whether a new exchange may start; otherwise answer with the typed reason."""
        code, detail = ErrorCode.OVERLOADED, "too many exchanges in progress; retry later"
        if first.ttl_ms > self.config.max_ttl * 1000:
            code, detail = ErrorCode.TTL_TOO_LONG, f"ttl over {self.config.max_ttl:g}s"
        elif self._may_predate_restart(first, now):
            code, detail = ErrorCode.REQUEST_LOST, ("this node restarted after the first "
                                                    "attempt; it may have run and is not rerun")
        elif self._records.has_room(peer, first.id, now):
            return True
        self._emit(encode(Error(kind, first.id, code, detail)), peer)
        self.stats.refused += 1
        return False

    def _remember(self, record: Record) -> None:
        self._records.add(record)
        if self._sweeper.deadline is None:
            self._timers.arm(self._sweeper, record.expires_at)

    def _sweep(self, now: float) -> None:
        next_sweep = self._records.sweep(now)
        if next_sweep is not None:
            self._timers.arm(self._sweeper, next_sweep)

    def _answer_duplicate(self, record: Record, now: float) -> None:
        self.stats.duplicates += 1
        if record.reply is not None:
            self._emit(record.reply, record.peer)
        elif record.sender is not None:
            self._pump(record.sender, now)
        elif record.state is RecordState.REPLIED:
            self._emit(encode(Error(Kind.REQUEST, record.id, ErrorCode.REQUEST_LOST,
                                    "reply no longer held; the request ran once")), record.peer)
        else:
            self._emit(encode(Ack(Kind.REQUEST, record.id, self.incarnation)), record.peer)

    def _on_poll(self, poll: Poll, peer: Addr, now: float) -> None:
        record = self._records.get(peer, poll.id)
        if record is None or record.kind is not Kind.REQUEST:
            self._emit(encode(Error(Kind.REQUEST, poll.id, ErrorCode.REQUEST_LOST,
                                    "no such request here; it may or may not have run")), peer)
            return
        if record.sender is not None and record.reply is None:
            return
        self._answer_duplicate(record, now)

    def _finish(self, peer: Addr, request_id: int, datagram: bytes, now: float) -> bool:
        record = self._records.get(peer, request_id)
        if record is None or record.state is not RecordState.RUNNING:
            self.stats.late_replies += 1
            return False
        record.state = RecordState.REPLIED
        if len(datagram) <= self.config.max_datagram:
            self._emit(datagram, peer)
            if self._records.reply_fits(len(datagram)):
                record.reply = datagram
                self._records.charge_reply(record, len(datagram))
            return True
        budget = None if self._peer(peer).validated else max(
            record.bytes_in * self.config.amplification_factor, self.config.max_datagram)
        record.sender = self._new_sender(peer, Kind.REPLY, request_id, datagram, budget)
        self._records.charge_reply(record, len(datagram))
        self._pump(record.sender, now)
        self._timers.arm(record, min(now + record.sender.rto, record.expires_at))
        return True

    def _record_timer(self, record: Record, now: float) -> None:
        """Retransmission timer of a large reply; expiry itself is the sweeper's job."""
        sender = record.sender
        if now >= record.expires_at or sender is None or sender.complete:
            return
        sender.rto = self._backoff(sender.rto)
        self._resend_fragments(sender, now)
        self._timers.arm(record, min(now + sender.rto, record.expires_at))

    # ----- fragments -------------------------------------------------------------------

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

    def _on_fragment(self, frag: Fragment, peer: Addr, size: int, now: float) -> None:
        self.stats.fragments_in += 1
        if not self._fragment_wanted(frag, peer, now):
            return
        outcome = self._reassembler.add(peer, frag, now)
        verdict, entry = outcome.verdict, outcome.entry
        if entry is None:
            self._refuse_fragment(frag, peer, verdict)
            return
        if entry.received == 1 and verdict is not FragmentVerdict.DUPLICATE:
            self._timers.arm(entry, now + self.config.reassembly_timeout)
        if verdict is FragmentVerdict.COMPLETE:
            self._emit(encode(entry.frag_ack()), peer)
            self._reassembler.remove(entry)
            self._on_reassembled(entry, peer, now)
        elif self._reassembler.wants_ack(entry, frag, verdict):
            self._emit(encode(entry.frag_ack()), peer)

    def _fragment_wanted(self, frag: Fragment, peer: Addr, now: float) -> bool:
        """Fragments of exchanges already complete are answered, not reassembled again."""
        if frag.kind is Kind.REPLY:
            call = self._own_call(frag.id, peer, Kind.REQUEST)
            if call is None:
                return False
            self._peer_holds(call)
            self._timers.arm(call, min(now + call.rto, call.expires_at))
            return True
        record = self._records.get(peer, frag.id)
        if record is None:
            return True
        if record.kind is Kind.MESSAGE:
            self._emit(encode(Ack(Kind.MESSAGE, frag.id, self.incarnation)), peer)
        else:
            self._answer_duplicate(record, now)
        return False

    def _refuse_fragment(self, frag: Fragment, peer: Addr, verdict: FragmentVerdict) -> None:
        self.stats.fragments_refused += 1
        if verdict is FragmentVerdict.TOO_LARGE and frag.kind is not Kind.REPLY:
            self._emit(encode(Error(frag.kind, frag.id, ErrorCode.MESSAGE_TOO_LARGE,
                                    f"message over {self.config.max_message} bytes")), peer)

    def _on_reassembled(self, entry: Reassembly, peer: Addr, now: float) -> None:
        try:
            inner = decode_datagram(entry.assemble(), self.config.inner_limits)
        except MessageError as exc:
            self.stats.count_decode_error(exc.code)
            return
        if getattr(inner, "id", None) != entry.id or not isinstance(inner, _KIND_CLASS[
                entry.kind]):
            self.stats.unexpected += 1
            return
        size = entry.total
        if isinstance(inner, Request):
            if self._on_request(inner, peer, size, now):
                self._emit(encode(Ack(Kind.REQUEST, inner.id, self.incarnation)), peer)
        elif isinstance(inner, Message):
            self._on_message(inner, peer, size, now)
        elif isinstance(inner, Reply):
            self._emit(encode(Ack(Kind.REPLY, inner.id, self.incarnation)), peer)
            self._on_reply(inner, peer, now)

    def _on_frag_ack(self, ack: FragAck, peer: Addr, now: float) -> None:
        sender = self._sender_for(ack, peer)
        if sender is None or sender.nonce != ack.nonce:
            self.stats.unexpected += 1
            return
        state = self._peer(peer)
        state.validated = True
        progress = sender.on_ack(ack.cumulative, ack.sack, now)
        if progress.rtt_sample is not None:
            state.rtt.sample(progress.rtt_sample)
        self._pump(sender, now)
        if progress.advanced:
            self._restart_transfer_timer(ack, peer, state.rtt.rto, now)

    def _restart_transfer_timer(self, ack: FragAck, peer: Addr, rto: float, now: float) -> None:
        """Progress resets the backoff: the timer measures time without progress."""
        owner: Call | Record | None
        if ack.kind is Kind.REPLY:
            owner = self._records.get(peer, ack.id)
            if owner is not None and owner.sender is not None:
                owner.sender.rto = rto
                self._timers.arm(owner, min(now + rto, owner.expires_at))
            return
        owner = self._calls.get(ack.id)
        if owner is not None:
            owner.rto = rto
            self._timers.arm(owner, min(now + rto, owner.expires_at))

    def _sender_for(self, ack: FragAck, peer: Addr) -> FragmentSender | None:
        if ack.kind is Kind.REPLY:
            record = self._records.get(peer, ack.id)
            return record.sender if record is not None else None
        call = self._calls.get(ack.id)
        return call.sender if call is not None and call.peer == peer else None

    def _reassembly_timer(self, entry: Reassembly, now: float) -> None:
        idle_until = entry.last_activity + self.config.reassembly_timeout
        if now < idle_until:
            self._timers.arm(entry, idle_until)
            return
        self.stats.reassemblies_expired += 1
        self._reassembler.remove(entry)

    # ----- plumbing --------------------------------------------------------------------

    def _emit(self, datagram: bytes, peer: Addr) -> None:
        self._out.append((datagram, peer))
        self.stats.datagrams_out += 1
        self.stats.bytes_out += len(datagram)

    def _peer(self, peer: Addr) -> _Peer:
        state = self._peers.get(peer)
        if state is None:
            cfg = self.config
            state = _Peer(RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto))
            self._peers[peer] = state
            if len(self._peers) > cfg.max_peers:
                self._peers.popitem(last=False)
        return state


_KIND_CLASS: dict[Kind, type] = {Kind.REQUEST: Request, Kind.MESSAGE: Message,
                                 Kind.REPLY: Reply}
