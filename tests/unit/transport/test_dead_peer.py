"""A caller whose peer acknowledged a request and then died learns it within a bounded
number of polls (protocol.md 3.3), while a slow handler that keeps answering polls is
waited for until its reply. The clock is injected: every time below is exact."""

from __future__ import annotations

import random

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import (
    CallFailed,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
)

A = ("192.0.2.1", 1000)
B = ("192.0.2.2", 2000)
CFG = TransportConfig()


def events(t: Transport) -> list[object]:
    out = []
    while (e := t.next_event()) is not None:
        out.append(e)
    return out


def acked_call(timeout: float = 30.0) -> tuple[Transport, Transport, int, int]:
    """A client call that the server holds and has acknowledged at time 0."""
    client, server = Transport(rng=random.Random(1)), Transport(rng=random.Random(2))
    handle = client.call(B, b"slow work", 0.0, timeout=timeout)
    for data, _ in client.datagrams_to_send():
        server.receive_datagram(data, A, 0.0)
    (request,) = events(server)
    assert isinstance(request, RequestReceived)
    server.acknowledge(A, request.request_id)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, 0.0)
    return client, server, handle, request.request_id


def run_until_event(client: Transport, server: Transport | None, limit: float
                    ) -> tuple[list[object], float, int]:
    """Fire the client's timers; `server` (None: dead) answers every datagram at once.
    Returns the client's events, the time they came, and how many POLLs it sent."""
    now, polls = 0.0, 0
    while not (out := events(client)):
        deadline = client.get_timer()
        assert deadline is not None and deadline <= limit
        now = deadline
        client.handle_timer(now)
        for data, _ in client.datagrams_to_send():
            polls += data[2] == 6  # [1, 6, id]: a POLL
            if server is not None:
                server.receive_datagram(data, A, now)
        if server is not None:
            for data, _ in server.datagrams_to_send():
                client.receive_datagram(data, B, now)
    return out, now, polls


def test_a_peer_that_dies_after_its_ack_fails_the_call_as_request_lost_in_bounded_time(
        ) -> None:
    client, _, handle, _ = acked_call(timeout=30.0)
    out, when, polls = run_until_event(client, None, limit=30.0)
    (failed,) = out
    assert isinstance(failed, CallFailed) and failed.handle == handle
    # 204, not 208: 208 tells the node layer the request never ran, and it may have.
    assert failed.code == ErrorCode.REQUEST_LOST and "it may have run" in failed.detail
    assert polls == CFG.max_poll_misses
    # Polls back off from the 0.5 s initial RTO, capped at max_poll_interval (0.5 s): the
    # first at 0.5 s after the ack, then every 0.5 s; the call fails one interval after
    # the last unanswered poll: 0.5 + 10 * 0.5 = 5.5 s, not the 30 s deadline.
    assert when == pytest.approx(0.5 + CFG.max_poll_misses * CFG.max_poll_interval)
    assert client.outstanding == 0


def test_a_slow_handler_that_answers_every_poll_is_waited_for_until_its_reply() -> None:
    client, server, handle, request_id = acked_call(timeout=120.0)
    now, polls = 0.0, 0
    while now < 100.0:  # the handler takes 100 s; the server answers each POLL with ACK
        deadline = client.get_timer()
        assert deadline is not None
        now = deadline
        client.handle_timer(now)
        for data, _ in client.datagrams_to_send():
            polls += data[2] == 6
            server.receive_datagram(data, A, now)
        for data, _ in server.datagrams_to_send():
            client.receive_datagram(data, B, now)
        assert events(client) == []
    assert polls >= 100 / CFG.max_poll_interval - 1
    assert server.reply(A, request_id, b"done at last", now)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, now)
    assert events(client) == [ReplyReceived(handle, b"done at last")]


def test_a_poll_lost_now_and_then_does_not_fail_a_live_peer() -> None:
    client, server, handle, request_id = acked_call(timeout=60.0)
    now, sent = 0.0, 0
    while now < 50.0:  # every other POLL is lost: never max_poll_misses in a row
        deadline = client.get_timer()
        assert deadline is not None
        now = deadline
        client.handle_timer(now)
        for data, _ in client.datagrams_to_send():
            sent += 1
            if sent % 2 == 0:
                server.receive_datagram(data, A, now)
        for data, _ in server.datagrams_to_send():
            client.receive_datagram(data, B, now)
        assert events(client) == []
    assert server.reply(A, request_id, b"ok", now)
    for data, _ in server.datagrams_to_send():
        client.receive_datagram(data, B, now)
    assert events(client) == [ReplyReceived(handle, b"ok")]


def test_a_peer_restarted_after_its_ack_fails_the_call_as_request_lost_at_the_first_poll(
        ) -> None:
    client, _, handle, _ = acked_call(timeout=30.0)
    restarted = Transport(rng=random.Random(3))
    out, when, polls = run_until_event(client, restarted, limit=30.0)
    (failed,) = out
    assert isinstance(failed, CallFailed) and failed.handle == handle
    assert failed.code == ErrorCode.REQUEST_LOST
    assert polls == 1 and when == pytest.approx(0.5)


def test_a_poll_during_a_fragmented_reply_is_answered_with_an_ack() -> None:
    client, server, _, request_id = acked_call(timeout=30.0)
    assert server.reply(A, request_id, bytes(50_000), 0.0)
    server.datagrams_to_send()  # every reply fragment is lost
    now = client.get_timer()
    assert now is not None
    client.handle_timer(now)
    (poll,) = [d for d, _ in client.datagrams_to_send()]
    server.receive_datagram(poll, A, now)
    answers = [d for d, _ in server.datagrams_to_send()]
    assert [d[2] for d in answers] == [4], "an ACK(request): the server still works on it"
