"""A lossy but live peer is not given up (issue 17 item 8, protocol.md 3.3).

A call's NO_ANSWER (which lets the node fail over to another address, where the request
would run a second time if it had reached this one) comes only after the peer answered
nothing of ours for a whole answer timeout, in which the call was sent at least
ANSWER_PROBES times; a peer that answers other calls meanwhile is alive, so the call is
retransmitted on. Likewise an acknowledged request whose POLLs are lost is not REQUEST_LOST
while the peer answers other calls. The clock is injected: every time below is exact."""

from __future__ import annotations

import heapq
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import (
    CallFailed,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
)
from mercury_rt.core.transport import wire as m
from mercury_rt.core.transport.calling import ANSWER_PROBES

A = ("192.0.2.1", 1000)
B = ("192.0.2.2", 2000)
CFG = TransportConfig()
LIMITS = CFG.limits


def events(t: Transport) -> list[object]:
    out = []
    while (e := t.next_event()) is not None:
        out.append(e)
    return out


def ids(datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[int]:
    """The exchange id of each datagram."""
    return [int(getattr(m.decode_datagram(d, LIMITS), "id", -1)) for d, _ in datagrams]


def answer_all(server: Transport, client: Transport, sent: list[bytes], now: float) -> None:
    """Deliver `sent` to the server, which replies to every new request at once, and its
    answers back to the client."""
    for data in sent:
        server.receive_datagram(data, A, now)
    for event in events(server):
        assert isinstance(event, RequestReceived)
        server.reply(A, event.request_id, b"re:" + event.payload, now)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, now)


def test_a_silent_peer_is_asked_answer_probes_times_then_fails_no_answer() -> None:
    client = Transport(rng=random.Random(1))
    handle = client.call(B, b"anyone?", 0.0, timeout=30, answer_timeout=1.0)
    sent = ids(client.datagrams_to_send())
    now = 0.0
    while not (out := events(client)):
        now = client.get_timer() or 0.0
        client.handle_timer(now)
        sent += ids(client.datagrams_to_send())
    (failed,) = out
    assert isinstance(failed, CallFailed) and failed.code == ErrorCode.NO_ANSWER
    assert now == pytest.approx(1.0), "a dead peer is still passed over after 1 s"
    assert sent.count(handle) >= ANSWER_PROBES, "asked often enough to believe silence"


def test_a_call_whose_datagrams_are_lost_waits_while_the_peer_answers_others() -> None:
    """Call X's datagrams are all lost for 5 s while the peer answers a call every 0.3 s:
    X is not failed over; when its datagrams get through it completes. Then the peer dies:
    the next call fails NO_ANSWER one answer timeout after the peer's last answer."""
    client, server = Transport(rng=random.Random(1)), Transport(rng=random.Random(2))
    x = client.call(B, b"x", 0.0, timeout=30, answer_timeout=1.0)
    now, next_other, got = 0.0, 0.0, Counter[int]()
    while now < 8.0:
        if now >= next_other:
            client.call(B, b"other", now, timeout=30, answer_timeout=1.0)
            next_other = now + 0.3
        sent = client.datagrams_to_send()
        answer_all(server, client, [d for (d, _), i in zip(sent, ids(sent), strict=True)
                                    if i != x or now >= 5.0], now)
        for event in events(client):
            assert isinstance(event, ReplyReceived), event
            got[event.handle] += 1
        now = min(client.get_timer() or next_other, next_other)
        client.handle_timer(now)
    assert got[x] == 1 and all(n == 1 for n in got.values())
    last_answer = now
    dead = client.call(B, b"into the void", now, timeout=30, answer_timeout=1.0)
    while not (out := events(client)):
        client.datagrams_to_send()
        now = client.get_timer() or 0.0
        client.handle_timer(now)
    (failed,) = out
    assert isinstance(failed, CallFailed)
    assert (failed.handle, failed.code) == (dead, ErrorCode.NO_ANSWER)
    assert now == pytest.approx(last_answer + 1.0)


def acked_call() -> tuple[Transport, Transport, int, int]:
    """A client call that the server holds and has acknowledged at time 0."""
    client, server = Transport(rng=random.Random(1)), Transport(rng=random.Random(2))
    handle = client.call(B, b"slow work", 0.0, timeout=60.0)
    for data, _ in client.datagrams_to_send():
        server.receive_datagram(data, A, 0.0)
    (request,) = events(server)
    assert isinstance(request, RequestReceived)
    server.acknowledge(A, request.request_id)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, 0.0)
    return client, server, handle, request.request_id


def test_lost_polls_do_not_fail_a_request_while_the_peer_answers_other_calls() -> None:
    client, server, handle, request_id = acked_call()
    now, next_other, polls = 0.0, 0.0, 0
    while now < 20.0:  # every POLL is lost; a call every second is answered
        if now >= next_other:
            client.call(B, b"other", now, timeout=30)
            next_other = now + 1.0
        sent = client.datagrams_to_send()
        polls += sum(d[2] == 6 for d, _ in sent)
        answer_all(server, client, [d for d, _ in sent if d[2] != 6], now)
        assert all(isinstance(e, ReplyReceived) for e in events(client))
        now = min(client.get_timer() or next_other, next_other)
        client.handle_timer(now)
    assert polls > 3 * CFG.max_poll_misses
    assert server.reply(A, request_id, b"done", now)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, now)
    assert events(client) == [ReplyReceived(handle, b"done")]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0.0, 0.6),
       gap=st.floats(0.01, 1.5))
def test_no_answer_only_after_a_whole_answer_timeout_of_silence(seed: int, loss: float,
                                                                gap: float) -> None:
    """Calls every `gap` seconds over a link losing `loss` of the datagrams each way:
    every call ends once, before its deadline; each request ran at most once; a call
    failed NO_ANSWER only when no reply had arrived for a whole answer timeout, and after
    being sent at least ANSWER_PROBES times."""
    rng = random.Random(seed)
    client, server = Transport(rng=random.Random(1)), Transport(rng=random.Random(2))
    answer, timeout, calls = 0.5, 10.0, 30
    flight: list[tuple[float, int, bytes, bool]] = []
    replies: list[float] = []
    ended: dict[int, tuple[float, object]] = {}
    started: dict[int, float] = {}
    sent_ids: Counter[int] = Counter()
    ran: Counter[int] = Counter()
    now, seq = 0.0, 0

    def launch() -> None:
        nonlocal seq
        for to_server, t in ((True, client), (False, server)):
            for data, _ in t.datagrams_to_send():
                if to_server:
                    sent_ids.update(ids([(data, B)]))
                if rng.random() >= loss:
                    seq += 1
                    heapq.heappush(flight, (now + 0.002 + rng.random() * 0.01, seq, data,
                                            to_server))

    def collect() -> None:
        for event in events(server):
            assert isinstance(event, RequestReceived)
            ran[event.request_id] += 1
            server.reply(A, event.request_id, b"ok", now)
        for event in events(client):
            assert isinstance(event, ReplyReceived | CallFailed), event
            handle = event.handle
            assert handle not in ended, "a call ended twice"
            ended[handle] = (now, event)
            if isinstance(event, ReplyReceived):
                replies.append(now)

    next_call = 0.0
    while len(ended) < calls:
        if len(started) < calls and now >= next_call:
            started[client.call(B, b"q", now, timeout=timeout, answer_timeout=answer)] = now
            next_call = now + gap
        launch()
        times = [t for t in (flight[0][0] if flight else None, client.get_timer(),
                             server.get_timer(), next_call if len(started) < calls else None)
                 if t is not None]
        now = max(now, min(times))
        while flight and flight[0][0] <= now:
            _, _, data, to_server = heapq.heappop(flight)
            if to_server:
                server.receive_datagram(data, A, now)
            else:
                client.receive_datagram(data, B, now)
            collect()
        client.handle_timer(now)
        server.handle_timer(now)
        collect()
    assert all(n == 1 for n in ran.values())
    for handle, (when, event) in ended.items():
        assert when <= started[handle] + timeout + 1e-9
        if isinstance(event, CallFailed):
            assert event.code in (ErrorCode.NO_ANSWER, ErrorCode.TIMEOUT), event
            if event.code == ErrorCode.NO_ANSWER:
                assert not [r for r in replies if when - answer < r < when], \
                    "failed over while the peer was answering"
                assert sent_ids[handle] >= ANSWER_PROBES


def test_a_call_refused_as_overloaded_still_moves_on_after_the_answer_timeout() -> None:
    """203 says the request did not run: trying another node is safe, so a peer that
    keeps refusing it (while answering, so alive) is passed over as before, at 1 s."""
    client = Transport(rng=random.Random(1))
    handle = client.call(B, b"busy?", 0.0, timeout=30, answer_timeout=1.0)
    now = 0.0
    while not (out := events(client)):
        for data, _ in client.datagrams_to_send():
            if data[2] == 1:  # [1, 1, id, ...]: a REQUEST, refused at once
                refusal = m.Error(m.Kind.REQUEST, handle, int(ErrorCode.OVERLOADED), "busy")
                client.receive_datagram(m.encode(refusal), B, now)
        now = client.get_timer() or 0.0
        client.handle_timer(now)
    (failed,) = out
    assert isinstance(failed, CallFailed) and failed.code == ErrorCode.NO_ANSWER
    assert "overloaded" in failed.detail and now == pytest.approx(1.0)
