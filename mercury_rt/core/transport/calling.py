"""The calling side: our requests and one-way messages, from start to their one outcome.

A call is transmitted (whole, or as fragments), retransmitted with backed-off RTO until
the peer acknowledges it (a request is then only polled); a peer's OVERLOADED refusal is
retried after a backoff. It ends with exactly one event (ReplyReceived, MessageDelivered
or CallFailed: TIMEOUT at its deadline, NO_ANSWER if unacknowledged while the peer
answered nothing of ours for `answer_timeout` (sent at least ANSWER_PROBES times in it),
REQUEST_LOST if acknowledged and then `max_poll_misses` polls went unanswered with no
other sign of the peer, or the peer's typed Error) or a cancel. Flow control keeps our
unfinished id span to one peer under the peer's record bound (`max_call_span`); calls
past it wait in id order. RTT samples follow Karn's rule: only from calls sent once.
"""

from __future__ import annotations

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport.events import (
    CallFailed,
    MessageDelivered,
    ReplyReceived,
    TransportEvent,
)
from mercury_rt.core.transport.exchanges import EPOCH_SHIFT, Call, CallState
from mercury_rt.core.transport.fastwire import write_request
from mercury_rt.core.transport.shared import PeerState, TransportError, TransportState
from mercury_rt.core.transport.wire import (
    MAX_ATTEMPT,
    MAX_U32,
    Ack,
    Addr,
    Error,
    Kind,
    Message,
    Poll,
    Reply,
    encode,
    encode_request,
)

_COUNTER_MASK = (1 << EPOCH_SHIFT) - 1
ANSWER_PROBES = 12
"""Transmissions of an unacknowledged call, at least, within each answer timeout."""


class CallingSide(TransportState):
    """Our calls: starting, transmitting, timing out and completing them."""

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
                    state.incarnation, answer_timeout)
        self._calls[handle] = call
        state.pending.append(handle)
        if state.waiting or not self._within_span(state, handle):
            state.waiting.append(call)
            self._timers.arm(call, call.expires_at)
        else:
            self._transmit(call, state, now)
        return handle

    def _within_span(self, state: PeerState, handle: int) -> bool:
        """Flow control: keep our unfinished id span to one peer under its record bound."""
        low = state.pending[0] if state.pending and state.pending[0] in self._calls \
            else self._peer_low(state)
        return (low >> EPOCH_SHIFT != handle >> EPOCH_SHIFT
                or handle - low < self.config.max_call_span)

    def _start_waiting(self, state: PeerState, now: float) -> None:
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

    def _encode_call(self, call: Call, state: PeerState, now: float) -> bytes:
        ttl_ms = max(int((call.expires_at - now) * 1000), 1)
        done_below = self._peer_low(state)
        attempt = min(call.transmissions, MAX_ATTEMPT)
        age_ms = min(int((now - call.sent_at) * 1000), MAX_U32)
        if call.kind is Kind.REQUEST:
            return (write_request(call.handle, ttl_ms, done_below, attempt, call.origin,
                                  age_ms, call.payload)
                    or encode_request(call.handle, ttl_ms, done_below, attempt, call.origin,
                                      age_ms, call.payload))
        return encode(Message(call.handle, ttl_ms, done_below, attempt, call.origin, age_ms,
                              call.payload))

    def _transmit(self, call: Call, state: PeerState, now: float) -> None:
        datagram = self._encode_call(call, state, now)
        if len(datagram) <= self.config.max_datagram:
            self._emit_own(datagram, call.peer)
        else:
            call.sender = self._new_sender(call.peer, call.kind, call.handle, datagram)
            self._pump(call.sender, now)
        if call.answer_timeout is not None:  # else the interval is the rto itself
            call.rto = self._probe_interval(call, call.rto)
        self._arm_call(call, now + call.rto)

    def _call_timer(self, call: Call, now: float) -> None:
        if now >= call.expires_at:
            self._fail(call, ErrorCode.TIMEOUT,
                       f"no answer from {call.peer[0]}:{call.peer[1]} before the deadline", now)
            return
        if call.state is CallState.SENT and now >= self._answer_due(call):
            why = ("refused the request as overloaded" if call.refused else
                   "did not acknowledge the request and answered nothing of ours")
            self._fail(call, ErrorCode.NO_ANSWER, f"{call.peer[0]}:{call.peer[1]} {why} for "
                       f"{call.answer_timeout:g} s", now)
            return
        if call.state is CallState.ACKED:
            self._poll(call, now)
            return
        call.rto = self._probe_interval(call, self._backoff(call.rto))
        call.transmissions += 1
        self.stats.retransmissions += 1
        sender = call.sender
        if sender is not None:
            self._resend_fragments(sender, now)
        else:
            self._emit_own(self._encode_call(call, self._peer(call.peer), now), call.peer)
        self._arm_call(call, now + call.rto)

    def _answer_due(self, call: Call) -> float:
        """When an unacknowledged call fails NO_ANSWER: once its peer has been silent for
        the whole answer timeout, counted from the later of the call's first transmission
        and the last time the peer answered anything of ours. A peer that keeps answering
        other calls is alive and this call's datagrams were lost: it is retransmitted
        until its deadline rather than failed over, since a request that reached the peer
        may have run there and must not run again elsewhere (protocol.md 3.3). A call the
        peer refused as overloaded (203: not run) is not kept there by those answers: it
        moves on one answer timeout after its first transmission, as before."""
        if call.answer_timeout is None:
            return float("inf")
        heard = float("-inf") if call.refused else self._peer(call.peer).heard_at
        return max(call.sent_at, heard) + call.answer_timeout

    def _probe_interval(self, call: Call, rto: float) -> float:
        """The wait before an unacknowledged call's next transmission: `rto`, but with an
        answer timeout at most 1/ANSWER_PROBES of it, so the peer is asked that many
        times before its silence is believed. Under 20 % loss each way a round trip
        fails 36 % of the time: two tries leave 13 % of calls wrongly failed over, twelve
        leave 5 in 10^6 (and only a call alone with that peer: one that answers other
        calls meanwhile is not silent, see `_answer_due`)."""
        if call.answer_timeout is None or call.state is not CallState.SENT:
            return rto
        return max(min(rto, call.answer_timeout / ANSWER_PROBES), self.config.min_rto)

    def _poll(self, call: Call, now: float) -> None:
        """An acknowledged request's timer: ask the peer about it again, at most every
        `max_poll_interval`; after `max_poll_misses` polls in a row with no sign of the
        request from the peer (ACK, reply fragment), it is gone (crashed, or unreachable),
        so fail now rather than at the deadline. REQUEST_LOST, as a restarted peer would
        answer, not NO_ANSWER: the request may have run, and NO_ANSWER tells the layer
        above that it did not (it may retry it elsewhere). A live peer with a slow handler
        answers every POLL with an ACK; one that answered other exchanges of ours since the
        first of those polls is alive too, and only our polls were lost: it is polled on."""
        cfg = self.config
        if call.polls_unanswered >= cfg.max_poll_misses:
            if self._peer(call.peer).heard_at <= call.polled_at:
                self._fail(call, ErrorCode.REQUEST_LOST,
                           f"{call.peer[0]}:{call.peer[1]} acknowledged the request, then did "
                           f"not answer {call.polls_unanswered} polls; it may have run", now)
                return
            call.polls_unanswered = 0
        call.rto = min(self._backoff(call.rto), cfg.max_poll_interval)
        call.transmissions += 1
        if not call.polls_unanswered:
            call.polled_at = now
        call.polls_unanswered += 1
        self.stats.retransmissions += 1
        self._emit_own(encode(Poll(call.handle)), call.peer)
        self._arm_call(call, now + call.rto)

    def _arm_call(self, call: Call, when: float) -> None:
        """Arm a call's timer at `when`, its deadline, or its answer deadline if sooner."""
        limit = call.expires_at
        if call.state is CallState.SENT and call.answer_timeout is not None:
            limit = min(limit, self._answer_due(call))
        self._timers.arm(call, min(when, limit))

    def _on_reply(self, reply: Reply, peer: Addr, now: float) -> None:
        call = self._own_call(reply.id, peer, Kind.REQUEST)
        if call is None:
            return
        self._validate(peer, now)
        state = self._peer(peer)
        state.incarnation = reply.incarnation
        if call.transmissions == 1 and call.sender is None:
            state.rtt.sample(now - call.sent_at)
        self._complete(call, ReplyReceived(call.handle, reply.payload), now)

    def _on_ack(self, ack: Ack, peer: Addr, now: float) -> None:
        if ack.kind is Kind.REPLY:
            self._peer_has_reply(peer, ack.id)
            return
        call = self._own_call(ack.id, peer, ack.kind)
        if call is None:
            return
        self._validate(peer, now)
        self._peer(peer).incarnation = ack.incarnation
        if ack.kind is Kind.MESSAGE:
            if call.transmissions == 1 and call.sender is None:
                self._peer(peer).rtt.sample(now - call.sent_at)
            self._complete(call, MessageDelivered(call.handle), now)
            return
        self._peer_holds(call)
        wait = min(max(call.rto, self._peer(peer).rtt.rto), self.config.max_poll_interval)
        self._timers.arm(call, min(now + wait, call.expires_at))

    def _on_error(self, error: Error, peer: Addr, now: float) -> None:
        if error.kind is Kind.REPLY:
            self._peer_has_reply(peer, error.id)
            return
        call = self._own_call(error.id, peer, error.kind)
        if call is None:
            return
        self._validate(peer, now)
        if error.code == ErrorCode.OVERLOADED and call.state is CallState.SENT:
            self.stats.overloaded_retries += 1
            call.refused = True
            call.rto = self._backoff(call.rto)
            self._arm_call(call, now + call.rto)
            return
        self._complete(call, CallFailed(call.handle, error.code, error.detail), now)

    def _peer_has_reply(self, peer: Addr, request_id: int) -> None:
        """The peer answered about our reply (ACK: it has it; ERROR: it wants no more): stop
        resending it."""
        record = self._records.get(peer, request_id)
        if record is not None and record.sender is not None:
            record.sender = None
            self._records.release_reply(record)

    def _own_call(self, handle: int, peer: Addr, kind: Kind) -> Call | None:
        call = self._calls.get(handle)
        if call is None or call.peer != peer or call.kind is not kind:
            self.stats.unexpected += 1
            return None
        return call

    @staticmethod
    def _peer_holds(call: Call) -> None:
        """SENT -> ACKED: the peer has the whole request, so stop resending it (poll). Also
        every later sign that the peer still holds it: it answered our last poll."""
        call.state = CallState.ACKED
        call.sender = None
        call.polls_unanswered = 0

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
