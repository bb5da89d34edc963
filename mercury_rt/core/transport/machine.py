"""The transport state machine: reliable request/reply and one-way messages over datagrams,
sans-IO.

Fed `receive_datagram(data, peer, now)`, `handle_timer(now)` and API calls; it returns
nothing directly but queues datagrams (`datagrams_to_send`), events (`next_event`) and
one timer deadline (`get_timer`). It never touches a socket, a clock or a global RNG,
so any scenario replays exactly from its inputs. Peer input never raises: malformed or
unexpected datagrams are counted in `stats` and dropped, or answered with a typed Error.

`Transport` joins the calling side (calling.py) and the answering side (answering.py);
this module holds the public API, the dispatch of datagrams and timers to the two
sides (the common request and reply first to fastpath.py), and the receiving end of
fragmented transfers, which may belong to either.
"""

from __future__ import annotations

from typing import assert_never

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport.events import TransportEvent
from mercury_rt.core.transport.exchanges import Call, Record, RecordState
from mercury_rt.core.transport.fastpath import FastPaths
from mercury_rt.core.transport.fastwire import REPLY_HEAD, REQUEST_HEAD, write_reply
from mercury_rt.core.transport.fragments import FragmentSender, FragmentVerdict, Reassembly
from mercury_rt.core.transport.shared import RecordSweeper
from mercury_rt.core.transport.wire import (
    MAX_DETAIL,
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
)


class Transport(FastPaths):
    """One endpoint's exchanges with all its peers. See module docstring."""

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

    def held_bytes(self, peer: Addr) -> int:
        """Bytes held for `peer`: replies kept or being sent to it, and its transfers being
        reassembled (each bounded per address and in total; protocol.md 3.4, 3.5)."""
        return self._records.held_bytes(peer) + self._reassembler.held(peer)

    @property
    def outstanding(self) -> int:
        """Calls and messages of ours still in progress."""
        return len(self._calls)

    # ----- client API ------------------------------------------------------------------

    def call(self, peer: Addr, payload: bytes, now: float, timeout: float | None = None,
             answer_timeout: float | None = None) -> int:
        """Start a request to `peer`; its outcome arrives as ReplyReceived or CallFailed.

        With `answer_timeout`, a request the peer has not acknowledged (nor answered) within
        that time, while answering nothing else of ours either, fails with NO_ANSWER, so a
        caller can try another node (a lossy but live peer is not given up); once the peer
        has acknowledged it, it waits until `timeout` while the peer answers its polls,
        and fails with REQUEST_LOST (it may have run) when `max_poll_misses` go unanswered.
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
        datagram = (write_reply(request_id, self.incarnation, payload)
                    or encode_reply(request_id, self.incarnation, payload))
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
        error = Error(Kind.REQUEST, request_id, int(code), detail[:MAX_DETAIL])
        return self._finish(peer, request_id, self._error_datagram(error, peer), now,
                            fragmentable=False)

    # ----- inputs ----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        """Process one datagram from `peer`. Never raises for any input bytes."""
        if self.fast_paths and type(data) is bytes:  # a payload must come out as bytes
            head = data[:3]
            if head == REPLY_HEAD and self._fast_reply(data, peer, now):
                return
            if head == REQUEST_HEAD and self._fast_request(data, peer, now):
                return
        self._born = now if self._born is None else self._born
        self.stats.datagrams_in += 1
        self.stats.bytes_in += len(data)
        try:
            message = decode_datagram(data, self.config.limits)
        except MessageError as exc:
            self.stats.count_decode_error(exc.code)
            return
        account = None if peer in self._validated else self._amplification.received(
            peer, len(data))
        self._dispatch(message, peer, len(data), now)
        if account is not None and account.blocked:
            self._unblock(account, now)

    def validate_address(self, peer: Addr, now: float) -> None:
        """The layer above has proof that `peer` receives what we send (e.g. it used keys
        only our reply carried): lift its anti-amplification limit and resume the replies
        that were waiting for it."""
        self._validate(peer, now)

    def is_validated(self, peer: Addr) -> bool:
        """Whether `peer` has proved its address (so it is not amplification-limited)."""
        return peer in self._validated

    def handle_timer(self, now: float) -> None:
        """Run every timer due at `now`: retransmissions, deadlines, expiries."""
        self._born = now if self._born is None else self._born
        for obj in self._timers.expired(now):
            match obj:
                case Call():
                    self._call_timer(obj, now)
                case Record():
                    self._record_timer(obj, now)
                case Reassembly():
                    self._reassembly_timer(obj, now)
                case RecordSweeper():
                    self._sweep(now)
                case unreachable:
                    assert_never(unreachable)

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
            case unreachable:
                assert_never(unreachable)

    # ----- fragments received ----------------------------------------------------------

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
            self._validate(peer, now)
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
            self._emit_error(Error(frag.kind, frag.id, ErrorCode.MESSAGE_TOO_LARGE,
                                   f"message over {self.config.max_message} bytes"), peer)

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
        progress = sender.on_ack(ack.cumulative, ack.sack, now)
        if progress.rtt_sample is not None:
            state.rtt.sample(progress.rtt_sample)
        self._validate(peer, now)
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


_KIND_CLASS: dict[Kind, type] = {Kind.REQUEST: Request, Kind.MESSAGE: Message,
                                 Kind.REPLY: Reply}
