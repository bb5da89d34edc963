"""One fast path per direction for the common case; the general path keeps every rule.

(a) A new unfragmented REQUEST from a peer whose sender epoch we already hold, first
    sent (or addressed to this incarnation), within `max_ttl`: decoded once into plain
    fields, recorded and turned straight into a RequestReceived, with no message object
    and no dispatch.
(b) A REPLY from a validated address to a request of ours that went to it: matched by
    id, the call completed, with no message object and no walk through `_validate`.

Each path first checks, without changing anything, that the general path would take the
same branch; anything else (malformed bytes, another type, a duplicate, a stale or
refused request, a first datagram of an epoch, an unknown id, an unvalidated address)
returns False and the datagram goes through the general path untouched. What a fast
path then does is exactly what the general path does for that input: the same datagrams,
events, counters and state (tests/property/transport/test_transport_fast_paths.py
drives both with random datagrams and states and compares them).
"""

from __future__ import annotations

from mercury_rt.core.transport.answering import AnsweringSide
from mercury_rt.core.transport.calling import CallingSide
from mercury_rt.core.transport.events import ReplyReceived, RequestReceived
from mercury_rt.core.transport.exchanges import Record, RecordState
from mercury_rt.core.transport.fastwire import read_reply, read_request
from mercury_rt.core.transport.wire import Addr, Kind, Request


class FastPaths(CallingSide, AnsweringSide):
    """The two fast paths; `fast_paths = False` (tests) sends everything the general way."""

    fast_paths = True

    def _fast_request(self, data: bytes, peer: Addr, now: float) -> bool:
        """Path (a); False, having changed nothing, when it does not apply."""
        size = len(data)
        if size > self._max_in:
            return False
        fields = read_request(data)
        if fields is None:
            return False
        id_, ttl_ms, done_below, attempt, origin, _, payload = fields
        records = self._records
        epoch = records.known_epoch_new(peer, id_, done_below)
        if (epoch is None or ttl_ms > self._max_ttl_ms
                or (attempt > 1 and origin not in (0, self.incarnation))):
            return False
        self._born = now if self._born is None else self._born
        stats = self.stats
        stats.datagrams_in += 1
        stats.bytes_in += size
        account = None if peer in self._validated else self._amplification.received(
            peer, size)
        records.apply_mark(peer, epoch, id_, done_below)
        if records.has_room(peer, id_, now):
            ttl = ttl_ms / 1000
            self._remember(Record(peer, id_, Kind.REQUEST,
                                  now + ttl + self.config.record_slack, size,
                                  RecordState.RUNNING), done_below)
            self._events.append(RequestReceived(peer, id_, payload, now + ttl))
        else:  # refused: the general path gives the typed answer (its lookup is idempotent)
            self._on_request(Request(*fields), peer, size, now)
        if account is not None and account.blocked:
            self._unblock(account, now)
        return True

    def _fast_reply(self, data: bytes, peer: Addr, now: float) -> bool:
        """Path (b); False, having changed nothing, when it does not apply."""
        validated = self._validated
        if peer not in validated or len(data) > self._max_in:
            return False
        fields = read_reply(data)
        if fields is None:
            return False
        id_, incarnation, payload = fields
        call = self._calls.get(id_)
        state = self._peers.get(peer)
        if call is None or state is None or call.peer != peer or call.kind is not Kind.REQUEST:
            return False
        self._born = now if self._born is None else self._born
        stats = self.stats
        stats.datagrams_in += 1
        stats.bytes_in += len(data)
        state.heard_at = now
        validated.move_to_end(peer)  # what validating a validated address does
        state.incarnation = incarnation
        if call.transmissions == 1 and call.sender is None:
            state.rtt.sample(now - call.sent_at)
        self._complete(call, ReplyReceived(id_, payload), now)
        return True
