"""The answering side: requests and one-way messages from peers, run at most once.

A new exchange is admitted only within the record bounds, within `max_ttl`, and if it
cannot predate our restart; a refusal is a typed Error. Each admitted exchange leaves a
Record until no retransmission of it can arrive (or the sender's `done_below` mark
releases it), so a duplicate is answered from the record, never run again: with the
kept reply, the rest of a fragmented reply, an Ack while it runs, or REQUEST_LOST once
the reply is no longer held.
"""

from __future__ import annotations

from typing import assert_never

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport.events import MessageReceived, RequestReceived
from mercury_rt.core.transport.exchanges import LookupVerdict, Record, RecordState
from mercury_rt.core.transport.fragments import MIN_CHUNK
from mercury_rt.core.transport.shared import TransportState
from mercury_rt.core.transport.wire import (
    Ack,
    Addr,
    Error,
    Kind,
    Message,
    Poll,
    Request,
    encode,
)

RESTART_SLACK = 1.0
"""Seconds allowed for a first transmission's travel when judging if it predates us."""


class AnsweringSide(TransportState):
    """Exchanges peers started with us: admitting, remembering and answering them."""

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
        self._remember(record, request.done_below)
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
                              RecordState.DELIVERED), message.done_below)
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
        code, detail = ErrorCode.OVERLOADED, ""
        if first.ttl_ms > self.config.max_ttl * 1000:
            code, detail = ErrorCode.TTL_TOO_LONG, f"ttl over {self.config.max_ttl:g}s"
        elif self._may_predate_restart(first, now):
            code, detail = ErrorCode.REQUEST_LOST, ("this node restarted after the first "
                                                    "attempt; it may have run and is not rerun")
        elif self._records.has_room(peer, first.id, now):
            return True
        else:
            detail = (f"too many exchanges in progress; retry after "
                      f"{self._records.retry_after(peer, now):.0f} s")
        self._emit_error(Error(kind, first.id, code, detail), peer)
        self.stats.refused += 1
        return False

    def _remember(self, record: Record, done_below: int) -> None:
        self._records.add(record, done_below)
        if self._sweeper.deadline is None:
            self._timers.arm(self._sweeper, record.expires_at)

    def _sweep(self, now: float) -> None:
        next_sweep = self._records.sweep(now)
        if next_sweep is not None:
            self._timers.arm(self._sweeper, next_sweep)

    def _answer_duplicate(self, record: Record, now: float) -> None:
        self.stats.duplicates += 1
        if record.reply is not None:
            if not self._emit(record.reply, record.peer):  # withheld until the budget grows:
                self._emit(encode(Ack(Kind.REQUEST, record.id, self.incarnation)),
                           record.peer)  # say we hold it, so the caller keeps polling
        elif record.sender is not None:
            self._pump(record.sender, now)
        elif record.state is RecordState.REPLIED:
            self._emit_error(Error(Kind.REQUEST, record.id, ErrorCode.REQUEST_LOST,
                                   "reply no longer held; the request ran once"), record.peer)
        else:
            self._emit(encode(Ack(Kind.REQUEST, record.id, self.incarnation)), record.peer)

    def _on_poll(self, poll: Poll, peer: Addr, now: float) -> None:
        record = self._records.get(peer, poll.id)
        if record is None or record.kind is not Kind.REQUEST:
            self._emit_error(Error(Kind.REQUEST, poll.id, ErrorCode.REQUEST_LOST,
                                   "no such request here; it may or may not have run"), peer)
            return
        if record.sender is not None and record.reply is None:
            self._emit(encode(Ack(Kind.REQUEST, record.id, self.incarnation)), peer)
            return
        self._answer_duplicate(record, now)

    def _finish(self, peer: Addr, request_id: int, datagram: bytes, now: float,
                fragmentable: bool = True) -> bool:
        """Send a request's answer, once. One datagram when it fits `max_datagram` and the
        address's budget; a reply that does not fit the budget becomes a transfer led by a
        short last fragment (protocol.md 3.7); anything withheld is kept for the caller's
        retransmissions."""
        record = self._records.get(peer, request_id)
        if record is None or record.state is not RecordState.RUNNING:
            self.stats.late_replies += 1
            return False
        record.state = RecordState.REPLIED
        size = len(datagram)
        if size <= self.config.max_datagram:
            lead = not self._emit(datagram, peer) and fragmentable and size > MIN_CHUNK
            if not lead:  # sent, or withheld and kept for the caller's retransmission
                if self._records.reply_fits(peer, size):
                    record.reply = datagram
                    self._records.charge_reply(record, size)
                return True
        else:
            lead = not self._fits(peer, size)
        if not self._records.reply_fits(peer, size):
            self._drop_reply(record, size)
            return True
        record.sender = self._new_sender(peer, Kind.REPLY, request_id, datagram, lead)
        self._records.charge_reply(record, size)
        self._pump(record.sender, now)
        self._timers.arm(record, min(now + record.sender.rto, record.expires_at))
        return True

    def _drop_reply(self, record: Record, size: int) -> None:
        """A reply to send as fragments would take the bytes held for its address (or in
        all) past their bound: it is not held, and the caller learns at once that the
        request ran but its reply is gone (the same answer its retransmissions get)."""
        self.stats.replies_dropped += 1
        self._emit_error(Error(Kind.REQUEST, record.id, ErrorCode.REQUEST_LOST,
                               f"reply of {size} bytes not held: this node holds its bound "
                               f"for your address; the request ran once"), record.peer)

    def _record_timer(self, record: Record, now: float) -> None:
        """Retransmission timer of a large reply; expiry itself is the sweeper's job."""
        sender = record.sender
        if now >= record.expires_at or sender is None or sender.complete:
            return
        sender.rto = self._backoff(sender.rto)
        self._resend_fragments(sender, now)
        self._timers.arm(record, min(now + sender.rto, record.expires_at))
