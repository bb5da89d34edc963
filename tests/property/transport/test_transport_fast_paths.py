"""The transport's fast paths (fastpath.py, fastwire.py) change nothing but the cost.

Two transports built alike, one with its fast paths off, are driven by the same random
run (requests, replies, duplicates, reordering, mutated and random bytes, our own calls,
answers, validation and timers, under tight bounds so refusals happen): after every step
both must have sent the same datagrams, reported the same events and hold the same state.
The codec readers must accept only what the general decoder decodes to the same fields.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from carbon.cbor import Limits, dumps_flat
from mercury_rt.core.transport import RequestReceived, Transport, TransportConfig
from mercury_rt.core.transport import wire as m
from mercury_rt.core.transport.exchanges import Call, Record
from mercury_rt.core.transport.fastwire import read_reply, read_request, write_reply, write_request
from mercury_rt.core.transport.shared import RecordSweeper

U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)
PAYLOAD = st.binary(max_size=300)
PEERS = [("10.0.0.1", 1000), ("10.0.0.1", 1001), ("10.0.0.2", 1000)]
CONFIG = TransportConfig(max_datagram=512, max_ttl=60.0, max_records=8,
                         max_records_per_peer=3, max_call_span=2, max_epochs_per_peer=2,
                         max_epochs_per_host=3, amplification_factor=1, initial_rto=0.05,
                         min_rto=0.05, max_rto=1.0, record_slack=1.0, reassembly_timeout=3.0)


# ----- the codec --------------------------------------------------------------------------

REQUESTS = st.builds(m.Request, U64, U32, U64, st.integers(0, 255), U32, U32, PAYLOAD)
REPLIES = st.builds(m.Reply, U64, U32, PAYLOAD)


def mutated(data: bytes, how: int, at: int, byte: int) -> bytes:
    """One small corruption of a valid datagram: a byte changed, cut, or added."""
    at %= len(data)
    if how == 0:
        return data[:at] + bytes((byte,)) + data[at + 1:]
    if how == 1:
        return data[:at]
    if how == 2:
        return data[:at] + bytes((byte,)) + data[at:]
    return data + bytes((byte,))


ANY_DATAGRAM = (st.builds(mutated, (REQUESTS | REPLIES).map(m.encode), st.integers(0, 3),
                          st.integers(0, 10**6), st.integers(0, 255))
                | st.binary(max_size=64).map(lambda b: b"\x89\x01\x01" + b)
                | st.binary(max_size=32).map(lambda b: b"\x85\x01\x02" + b))


def general(data: bytes) -> m.AnyMessage | None:
    try:
        return m.decode_datagram(data, Limits())
    except m.MessageError:
        return None


@given(ANY_DATAGRAM)
def test_the_readers_accept_only_what_decodes_to_the_same_fields(data: bytes) -> None:
    decoded = general(data)
    request, reply = read_request(data), read_reply(data)
    if request is not None:
        assert decoded == m.Request(*request)
    if reply is not None:
        assert decoded == m.Reply(*reply)
    event("read" if request or reply else "left to the general decoder")


@given(REQUESTS | REPLIES)
def test_every_valid_request_and_reply_is_read_by_the_fast_reader(
        message: m.Request | m.Reply) -> None:
    data = m.encode(message)
    if isinstance(message, m.Request):
        assert read_request(data) == tuple(getattr(message, f) for f in message.__slots__)
    else:
        assert read_reply(data) == (message.id, message.incarnation, message.payload)


@given(st.tuples(U64, U64, U64, U64, U64, U64), PAYLOAD)
def test_the_writers_give_the_general_encoders_bytes(ints: tuple[int, ...],
                                                     payload: bytes) -> None:
    a, b, c, d, e, f = ints
    assert write_request(a, b, c, d, e, f, payload) == dumps_flat(
        [m.PROTOCOL_VERSION, m.MessageType.REQUEST, a, b, c, d, e, f, payload])
    assert write_reply(a, b, payload) == dumps_flat(
        [m.PROTOCOL_VERSION, m.MessageType.REPLY, a, b, payload])


@given(st.integers(-2**70, -1) | st.integers(2**64, 2**70))
def test_the_writers_leave_what_no_envelope_holds_to_the_general_encoder(bad: int) -> None:
    assert write_request(bad, 1, 1, 1, 1, 1, b"") is None
    assert write_reply(1, bad, b"") is None


# ----- the state machine ------------------------------------------------------------------

class Counting(Transport):
    """A Transport that counts the datagrams its fast paths took."""

    fast_hits = 0

    def _fast_request(self, data: bytes, peer: m.Addr, now: float) -> bool:
        taken = super()._fast_request(data, peer, now)
        self.fast_hits += taken
        return taken

    def _fast_reply(self, data: bytes, peer: m.Addr, now: float) -> bool:
        taken = super()._fast_reply(data, peer, now)
        self.fast_hits += taken
        return taken


def pair() -> tuple[Counting, Counting]:
    fast, slow = Counting(CONFIG, rng=random.Random(7)), Counting(CONFIG, rng=random.Random(7))
    slow.fast_paths = False
    return fast, slow


def timer_label(obj: object) -> tuple[Any, ...]:
    if isinstance(obj, Call):
        return ("call", obj.handle)
    if isinstance(obj, Record):
        return ("record", obj.peer, obj.id)
    if isinstance(obj, RecordSweeper):
        return ("sweeper",)
    return ("reassembly", getattr(obj, "peer", None), getattr(obj, "id", None))


def snapshot(t: Transport) -> dict[str, Any]:
    """Everything the transport holds that a later input could observe."""
    rec = t._records
    heap = t._timers._heap
    return {
        "stats": t.stats, "born": t._born, "next_id": t._next_id,
        "records": [(k, r.kind, r.expires_at, r.bytes_in, r.state, r.reply, r.sender is None,
                     r.reply_bytes, r.deadline) for k, r in rec.by_key.items()],
        "per_peer": dict(rec._per_peer), "reply_bytes": (rec.reply_bytes,
                                                         dict(rec._peer_reply_bytes)),
        "epochs": [(k, e.done_below, list(e.ids), e.keep_until, e.live, e.host_counted)
                   for k, e in rec._epochs.items()],
        "host_epochs": dict(rec._host_epochs),
        "validated": list(t._validated),
        "accounts": [(a, x.received, x.sent, list(x.blocked))
                     for a, x in t._amplification._accounts.items()],
        "peers": [(a, s.incarnation, s.heard_at, list(s.pending),
                   [c.handle for c in s.waiting], s.rtt.srtt, s.rtt.rttvar, s.rtt.rto)
                  for a, s in t._peers.items()],
        "calls": [(h, c.peer, c.state, c.transmissions, c.rto, c.deadline, c.sent_at,
                   c.polls_unanswered, c.refused) for h, c in t._calls.items()],
        "timers": sorted({(when, timer_label(obj)) for when, _, obj in heap
                          if obj.deadline == when}),
        "next_timer": t.get_timer(),
        "reassembly": sorted(t._reassembler.active),
    }


PEER = st.sampled_from([0, 0, 0, 1, 2])
REQ = st.tuples(st.just("req"), PEER, st.sampled_from([0, 0, 1, 2]), st.integers(0, 12),
                st.sampled_from([0, 1, 1, 2, 3, 6, -1, -2]),
                st.sampled_from([1, 900, 30_000, 30_000, 70_000]),
                st.sampled_from([1, 1, 2, 3]), st.sampled_from(["zero", "ours", "other"]),
                st.sampled_from([0, 5, 4_000]), st.sampled_from([0, 10, 10, 600]))
REPLY = st.tuples(st.just("reply"), PEER, st.integers(0, 8),
                  st.sampled_from([5, 2**32 - 1]), st.sampled_from([0, 10, 10, 600]))
CALL = st.tuples(st.just("call"), PEER, st.sampled_from([0, 10, 600]))
ANSWER = st.tuples(st.just("answer"), st.integers(0, 20),
                   st.sampled_from([0, 10, 600, 2_000]))
NEXT = st.tuples(st.just("next"), PEER, st.sampled_from([0, 1, 2, 5, 64]),
                 st.sampled_from([1, 1, 2]), st.sampled_from(["zero", "ours", "other"]),
                 st.sampled_from([0, 3_000]))
"""A busy caller's next request: the next id of its epoch, its mark `back` ids below."""
LAST = st.tuples(st.just("last"), PEER, st.sampled_from([0, 10, 600]))
"""A reply to our latest call."""
OPS = [NEXT, NEXT, NEXT, LAST, LAST, REQ, REQ, REPLY, CALL, CALL, ANSWER, ANSWER,
       st.tuples(st.just("raw"), PEER, ANY_DATAGRAM),
       st.tuples(st.just("dup"), st.integers(0, 40), PEER),
       st.tuples(st.just("validate"), PEER),
       st.tuples(st.just("tick"), st.sampled_from([0.0, 0.001, 0.03, 0.2, 1.5]))]
OP = st.sampled_from(range(len(OPS))).flatmap(OPS.__getitem__)
"""Weighted: `one_of` would treat repeated strategies as one."""


class Run:
    """One random run applied to a transport; returns what it sent and reported."""

    def __init__(self, t: Counting) -> None:
        self.t, self.now = t, 0.0
        self.sent: list[tuple[bytes, m.Addr]] = []
        self.handles: list[int] = []
        self.counters = [0, 0, 0]
        self.requests: list[RequestReceived] = []

    def datagram(self, op: tuple[Any, ...]) -> tuple[bytes, m.Addr] | None:
        t = self.t
        match op:
            case ("req", p, e, n, back, ttl, attempt, origin, age, size):
                id_ = ((e + 5) << 32) + n  # mark: `back` ids below it, none, or above it
                below = id_ - back if back >= 0 else 0 if back == -1 else id_ + 1
                who = {"zero": 0, "ours": t.incarnation, "other": 99}[origin]
                return m.encode_request(id_, ttl, below, attempt, who, age, b"q" * size), PEERS[p]
            case ("next", p, back, attempt, origin, age):
                id_ = (9 << 32) + self.counters[p]
                self.counters[p] += 1
                who = {"zero": 0, "ours": t.incarnation, "other": 99}[origin]
                return (m.encode_request(id_, 30_000, max(id_ - back, 9 << 32), attempt, who,
                                         age, b"n"), PEERS[p])
            case ("last", p, size) if self.handles:
                return m.encode_reply(self.handles[-1], 5, b"l" * size), PEERS[p]
            case ("reply", p, k, incarnation, size):
                id_ = self.handles[k % len(self.handles)] if self.handles else k
                return m.encode_reply(id_, incarnation, b"r" * size), PEERS[p]
            case ("raw", p, data):
                return data, PEERS[p]
            case ("dup", k, p):
                return (self.sent[k % len(self.sent)][0], PEERS[p]) if self.sent else None
        return None

    def step(self, op: tuple[Any, ...]) -> tuple[Any, ...]:
        t = self.t
        incoming = self.datagram(op)
        if incoming is not None:
            self.sent.append(incoming)
            t.receive_datagram(incoming[0], incoming[1], self.now)
        match op:
            case ("call", p, size):
                self.handles.append(t.call(PEERS[p], b"c" * size, self.now))
            case ("answer", k, size) if self.requests:
                asked = self.requests[k % len(self.requests)]
                t.reply(asked.peer, asked.request_id, b"a" * size, self.now)
            case ("validate", p):
                t.validate_address(PEERS[p], self.now)
            case ("tick", dt):
                self.now += dt
                t.handle_timer(self.now)
        events = []
        while (ev := t.next_event()) is not None:
            events.append(ev)
            if isinstance(ev, RequestReceived):
                self.requests.append(ev)
        return t.datagrams_to_send(), events


@settings(max_examples=1000, deadline=None)
@given(st.lists(OP, min_size=5, max_size=80))
def test_fast_and_general_paths_send_report_and_hold_the_same(ops: list[tuple[Any, ...]]) -> None:
    fast, slow = pair()
    a, b = Run(fast), Run(slow)
    for op in ops:
        assert a.step(op) == b.step(op), op
        assert snapshot(fast) == snapshot(slow), op
    assert slow.fast_hits == 0
    event(f"fast paths taken: {min(fast.fast_hits, 5)}{'+' if fast.fast_hits >= 5 else ''}")


def test_the_common_exchange_takes_both_fast_paths() -> None:
    """Not vacuous: a busy caller's requests and the replies to ours do go the fast way."""
    fast, slow = pair()
    ops: list[tuple[Any, ...]] = [("validate", 0)]
    for n in range(6):
        ops += [("req", 0, 0, n, n - 1, 30_000, 1, "zero", 0, 10), ("answer", n, 10),
                ("call", 0, 10), ("reply", 0, n, 5, 10)]
    a, b = Run(fast), Run(slow)
    for op in ops:
        assert a.step(op) == b.step(op)
    assert snapshot(fast) == snapshot(slow)
    assert fast.fast_hits >= 10
