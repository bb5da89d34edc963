"""Transport core behaviour, driven by hand (no sockets, no simulator randomness)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import (
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
    TransportError,
)
from mercury_rt.core.transport import wire as m
from mercury_rt.core.transport.fragments import Reassembler, ReassemblyLimits

A = ("192.0.2.1", 1000)
B = ("192.0.2.2", 2000)
LIMITS = TransportConfig().limits


def pair(client_cfg: TransportConfig | None = None, server_cfg: TransportConfig | None = None
         ) -> tuple[Transport, Transport]:
    return (Transport(client_cfg, rng=random.Random(1)),
            Transport(server_cfg, rng=random.Random(2)))


def pipe(src: Transport, src_addr: tuple[str, int], dst: Transport, now: float = 0.0,
         drop: bool = False) -> list[bytes]:
    """Move everything `src` queued into `dst` (or drop it); returns what was sent."""
    sent = [d for d, _ in src.datagrams_to_send()]
    if not drop:
        for data in sent:
            dst.receive_datagram(data, src_addr, now)
    return sent


def events(t: Transport) -> list[object]:
    out = []
    while (e := t.next_event()) is not None:
        out.append(e)
    return out


def test_small_request_and_reply_take_one_datagram_each() -> None:
    client, server = pair()
    handle = client.call(B, b"ping", 0.0)
    assert len(pipe(client, A, server)) == 1
    (req,) = events(server)
    assert isinstance(req, RequestReceived) and req.payload == b"ping"
    assert server.reply(A, req.request_id, b"pong", 0.001)
    assert len(pipe(server, B, client, 0.002)) == 1
    assert events(client) == [ReplyReceived(handle, b"pong")]
    assert client.get_timer() is None and client.outstanding == 0


def test_retransmitted_request_gets_the_cached_reply_and_never_runs_twice() -> None:
    client, server = pair()
    handle = client.call(B, b"once", 0.0)
    pipe(client, A, server)
    (req,) = events(server)
    server.reply(A, req.request_id, b"done", 0.0)
    pipe(server, B, client, drop=True)  # the reply is lost
    client.handle_timer(client.get_timer() or 0.0)  # retransmission
    pipe(client, A, server, 1.0)
    assert events(server) == []
    assert server.stats.duplicates == 1
    pipe(server, B, client, 1.0)
    assert events(client) == [ReplyReceived(handle, b"done")]


def test_duplicate_while_running_is_acked_then_polled_until_the_reply() -> None:
    client, server = pair()
    handle = client.call(B, b"slow", 0.0, timeout=60)
    pipe(client, A, server)
    (req,) = events(server)
    client.handle_timer(client.get_timer() or 0.0)
    pipe(client, A, server, 0.5)
    acks = pipe(server, B, client, 0.5)
    assert isinstance(m.decode_datagram(acks[0], LIMITS), m.Ack)
    t = client.get_timer()
    assert t is not None
    client.handle_timer(t)
    (poll,) = pipe(client, A, server, t)
    assert isinstance(m.decode_datagram(poll, LIMITS), m.Poll)
    server.reply(A, req.request_id, b"finally", t)
    pipe(server, B, client, t)
    assert events(client) == [ReplyReceived(handle, b"finally")]
    assert events(server) == []


def test_poll_for_an_unknown_request_fails_the_call_as_request_lost() -> None:
    client, server = pair()
    handle = client.call(B, b"x", 0.0)
    pipe(client, A, server)
    events(server)
    fresh_server = Transport(rng=random.Random(9))  # the server restarted
    client.receive_datagram(m.encode(m.Ack(m.Kind.REQUEST, handle, 0)), B, 0.1)
    client.handle_timer(client.get_timer() or 0.0)
    pipe(client, A, fresh_server, 1.0)
    pipe(fresh_server, B, client, 1.0)
    (failed,) = events(client)
    assert isinstance(failed, CallFailed) and failed.code == ErrorCode.REQUEST_LOST


def test_replies_to_unknown_requests_or_from_other_addresses_are_counted_and_dropped() -> None:
    client, _ = pair()
    handle = client.call(B, b"x", 0.0)
    client.receive_datagram(m.encode(m.Reply(handle + 1, 0, b"?")), B, 0.0)
    client.receive_datagram(m.encode(m.Reply(handle, 0, b"spoof")), ("192.0.2.99", 2000), 0.0)
    assert events(client) == []
    assert client.stats.unexpected == 2
    assert client.outstanding == 1


def test_garbage_never_raises_and_the_server_keeps_serving() -> None:
    client, server = pair()
    rng = random.Random(3)
    for _ in range(2000):
        server.receive_datagram(rng.randbytes(rng.randint(0, 80)), A, 0.0)
    assert sum(server.stats.decode_errors.values()) > 1900
    handle = client.call(B, b"still there?", 0.0)
    pipe(client, A, server)
    (req,) = events(server)
    server.reply(A, req.request_id, b"yes", 0.0)
    pipe(server, B, client)
    assert events(client) == [ReplyReceived(handle, b"yes")]


def test_a_stale_copy_below_the_senders_done_mark_is_not_run_again() -> None:
    client, server = pair()
    first = client.call(B, b"1", 0.0)
    (old_copy,) = pipe(client, A, server)
    (req,) = events(server)
    server.reply(A, req.request_id, b"r1", 0.0)
    pipe(server, B, client)
    assert events(client) == [ReplyReceived(first, b"r1")]
    second = client.call(B, b"2", 0.1)  # carries done_below past `first`
    pipe(client, A, server, 0.1)
    events(server)
    assert server._records.get(A, first) is None, "finished exchange is released early"
    server.receive_datagram(old_copy, A, 0.2)  # a long-delayed network duplicate
    assert events(server) == []
    assert server.stats.stale == 1
    assert second != first


def test_overloaded_server_refuses_and_the_client_retries_until_it_has_room() -> None:
    tight = TransportConfig(max_records_per_peer=2, max_call_span=2)
    client, server = pair(server_cfg=tight)
    handles = [client.call(B, bytes([i]), 0.0, timeout=60) for i in range(4)]
    now = 0.0
    ran: list[int] = []
    for _ in range(200):
        pipe(client, A, server, now)
        for e in events(server):
            assert isinstance(e, RequestReceived)
            ran.append(e.request_id)
            server.reply(A, e.request_id, e.payload, now)
        pipe(server, B, client, now)
        if len(ran) == 4:
            break
        now = min(t for t in (client.get_timer(), server.get_timer(), now + 1) if t)
        client.handle_timer(now)
        server.handle_timer(now)
    results = events(client)
    assert sorted(ran) == sorted(handles)
    assert all(isinstance(e, ReplyReceived) for e in results) and len(results) == 4
    assert server.stats.refused > 0 and client.stats.overloaded_retries > 0


def test_a_call_times_out_with_a_typed_error_and_cancel_emits_nothing() -> None:
    client, _ = pair()
    lost = client.call(B, b"x", 0.0, timeout=2.0)
    cancelled = client.call(B, b"y", 0.0, timeout=2.0)
    assert client.cancel(cancelled) and not client.cancel(cancelled)
    now = 0.0
    while (t := client.get_timer()) is not None:
        now = t
        client.handle_timer(now)
    (failed,) = events(client)
    assert isinstance(failed, CallFailed) and failed.handle == lost
    assert failed.code == ErrorCode.TIMEOUT and now == pytest.approx(2.0)
    assert client.stats.retransmissions >= 2


def test_local_misuse_raises_typed_errors() -> None:
    client, _ = pair()
    with pytest.raises(TransportError) as info:
        client.call(B, b"x" * (client.config.max_message + 1), 0.0)
    assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE
    with pytest.raises(TransportError) as info:
        client.call(B, b"x", 0.0, timeout=10_000)
    assert info.value.code == ErrorCode.TTL_TOO_LONG


def test_one_way_message_is_acknowledged_and_delivered_once() -> None:
    client, server = pair()
    handle = client.send(B, b"note", 0.0)
    (datagram,) = pipe(client, A, server)
    server.receive_datagram(datagram, A, 0.0)  # duplicated by the network
    assert events(server) == [MessageReceived(A, handle, b"note")]
    pipe(server, B, client)
    assert events(client) == [MessageDelivered(handle)]


def test_a_fragment_announcing_an_oversized_message_is_refused_with_a_typed_error() -> None:
    _, server = pair()
    frag = m.Fragment(m.Kind.REQUEST, 7, 1, 10 * 2**20, 1000, 0, 0, b"x" * 1000)
    server.receive_datagram(m.encode(frag), A, 0.0)
    (reply,) = [m.decode_datagram(d, LIMITS) for d, _ in server.datagrams_to_send()]
    assert isinstance(reply, m.Error) and reply.code == ErrorCode.MESSAGE_TOO_LARGE
    assert not server._reassembler.active


def test_fragment_floods_are_bounded_per_peer_and_expire() -> None:
    cfg = TransportConfig()
    _, server = pair(server_cfg=cfg)
    for i in range(100):
        frag = m.Fragment(m.Kind.MESSAGE, i, 1, 2**20, 1000, 0, 0, b"x" * 1000)
        server.receive_datagram(m.encode(frag), A, 0.0)
    assert len(server._reassembler.active) == cfg.max_reassemblies_per_peer
    assert server._reassembler.total_held < 100 * 1024, "declared 8 MiB is never reserved"
    assert server.stats.fragments_refused == 100 - cfg.max_reassemblies_per_peer
    server.handle_timer(cfg.reassembly_timeout + 1)
    assert not server._reassembler.active and server._reassembler.total_held == 0


def test_inconsistent_or_wrong_length_fragments_are_dropped() -> None:
    _, server = pair()
    good = m.Fragment(m.Kind.MESSAGE, 1, 5, 3000, 1000, 0, 0, b"a" * 1000)
    server.receive_datagram(m.encode(good), A, 0.0)
    for bad in (m.Fragment(m.Kind.MESSAGE, 1, 6, 3000, 1000, 1, 0, b"a" * 1000),
                m.Fragment(m.Kind.MESSAGE, 1, 5, 3000, 1000, 1, 0, b"a" * 999),
                m.Fragment(m.Kind.MESSAGE, 2, 5, 3000, 1000, 3, 0, b"a" * 1000),
                m.Fragment(m.Kind.MESSAGE, 3, 5, 3000, 100, 0, 0, b"a" * 100)):
        server.receive_datagram(m.encode(bad), A, 0.0)
    entry = next(iter(server._reassembler.active.values()))
    assert entry.received == 1 and server.stats.fragments_refused == 4


def test_a_fragment_index_past_an_open_transfers_end_is_dropped_not_raised() -> None:
    _, server = pair()
    first = m.Fragment(m.Kind.MESSAGE, 1, 5, 3000, 1000, 0, 0, b"a" * 1000)
    server.receive_datagram(m.encode(first), A, 0.0)
    past_end = m.Fragment(m.Kind.MESSAGE, 1, 5, 3000, 1000, 7, 0, b"a" * 1000)
    server.receive_datagram(m.encode(past_end), A, 0.0)
    entry = next(iter(server._reassembler.active.values()))
    assert entry.received == 1 and server.stats.fragments_refused == 1


def test_a_large_reply_to_an_unvalidated_address_is_limited_until_it_echoes_the_nonce() -> None:
    client, server = pair()
    handle = client.call(B, b"tiny", 0.0)
    request_bytes = sum(len(d) for d in pipe(client, A, server))
    (req,) = events(server)
    server.reply(A, req.request_id, b"R" * 500_000, 0.0)
    burst = server.datagrams_to_send()
    limit = max(request_bytes * 3, server.config.max_datagram)
    assert sum(len(d) for d, _ in burst) <= limit
    for data, _ in burst:  # the real client answers, proving its address
        client.receive_datagram(data, B, 0.0)
    now = 0.0
    for _ in range(10_000):
        pipe(client, A, server, now)
        pipe(server, B, client, now)
        if client.outstanding == 0:
            break
        now += 0.001
        client.handle_timer(now)
        server.handle_timer(now)
    assert events(client) == [ReplyReceived(handle, b"R" * 500_000)]


def test_records_are_bounded_under_a_flood_from_many_addresses() -> None:
    cfg = TransportConfig(max_records=500, max_records_per_peer=50, max_call_span=50)
    _, server = pair(server_cfg=cfg)
    for i in range(3000):
        peer = (f"198.51.100.{i % 200}", 1000 + i // 200)
        server.receive_datagram(m.encode(m.Request(i << 32, 1000, 0, 1, 0, 0, b"x")), peer, 0.0)
    assert len(server._records) == 500
    assert server.stats.refused == 2500


def test_a_restarted_server_refuses_a_retransmission_it_may_already_have_run() -> None:
    client, server = pair()
    warm = client.call(B, b"learn incarnation", 0.0)
    pipe(client, A, server)
    (req,) = events(server)
    server.reply(A, req.request_id, b"ok", 0.0)
    pipe(server, B, client)
    assert events(client) == [ReplyReceived(warm, b"ok")]
    client.call(B, b"transfer money", 0.1)
    pipe(client, A, server, 0.1)
    (req,) = events(server)  # it ran; then the server crashed before replying
    restarted = Transport(rng=random.Random(77))
    client.handle_timer(client.get_timer() or 0.0)
    pipe(client, A, restarted, 1.0)
    assert events(restarted) == [], "must not run a second time"
    pipe(restarted, B, client, 1.0)
    (failed,) = events(client)
    assert isinstance(failed, CallFailed) and failed.code == ErrorCode.REQUEST_LOST
    fresh = client.call(B, b"new request", 2.0)
    pipe(client, A, restarted, 2.0)
    (req,) = events(restarted)
    assert req.request_id == fresh, "a first attempt always runs"


def test_an_unacknowledged_call_fails_with_no_answer_but_an_acknowledged_one_waits() -> None:
    client, server = pair()
    silent = client.call(B, b"anyone?", 0.0, timeout=30, answer_timeout=1.0)
    acked = client.call(B, b"slow", 0.0, timeout=30, answer_timeout=1.0)
    sent = [d for d, _ in client.datagrams_to_send()]
    server.receive_datagram(sent[1], A, 0.0)  # only the second request arrives
    (req,) = events(server)
    server.acknowledge(A, req.request_id)  # its handler is slow: say so at once
    pipe(server, B, client, 0.0)
    now = 0.0
    while not (failed := events(client)):
        now = client.get_timer() or now + 1
        client.handle_timer(now)
        client.datagrams_to_send()
    assert len(failed) == 1 and isinstance(failed[0], CallFailed)
    assert failed[0].handle == silent and failed[0].code == ErrorCode.NO_ANSWER
    assert now == pytest.approx(1.0)
    assert client.outstanding == 1 and acked in client._calls


@pytest.mark.parametrize("kind", ["request", "message"])
def test_the_first_datagram_of_an_epoch_sets_its_done_below_mark(kind: str) -> None:
    """issue 16 item 2: from a fresh address, id E+10 with done_below E+10, then id E+3
    (below that mark, never seen): E+3 is a stale copy and MUST NOT run. A datagram's own
    done_below does not cover itself: E+10 runs."""
    _, server = pair()
    epoch = 0x5EED << 32
    make = m.Request if kind == "request" else m.Message

    def send(id_: int, done_below: int) -> list[object]:
        datagram = m.encode(make(id_, 30_000, done_below, 1, 0, 0, b"x"))
        server.receive_datagram(datagram, A, 0.0)
        return [e for e in events(server)
                if isinstance(e, RequestReceived | MessageReceived)]

    assert len(send(epoch + 10, epoch + 10)) == 1
    assert send(epoch + 3, 0) == []
    assert server.stats.stale == 1
    assert len(send(epoch + 11, epoch + 3)) == 1, "a lower mark later changes nothing"
    assert send(epoch + 4, 0) == []


def test_the_rtt_sample_of_a_request_is_taken_at_its_reply_not_at_its_ack() -> None:
    """protocol.md 3.3: an ACK(request) stops retransmission but gives no RTT sample; the
    REPLY of a request sent once (whole) does, measured from its first transmission."""
    client, server = pair()
    client.call(B, b"slow", 0.0)
    pipe(client, A, server, 0.0)
    (req,) = events(server)
    server.acknowledge(A, req.request_id)
    pipe(server, B, client, 0.01)
    assert client._peer(B).rtt.srtt is None, "no sample from the ACK"
    server.reply(A, req.request_id, b"done", 0.8)
    pipe(server, B, client, 0.8)
    assert client._peer(B).rtt.srtt == pytest.approx(0.8)


def test_a_fragment_with_chunk_size_under_256_is_dropped_silently() -> None:
    """protocol.md 3.2 (issue 16 item 19): no reassembly, no answer, counted."""
    _, server = pair()
    frag = m.Fragment(m.Kind.REQUEST, (9 << 32) + 1, 5, 1000, 255, 0, 1, b"x" * 255)
    server.receive_datagram(m.encode(frag), A, 0.0)
    assert server.datagrams_to_send() == [] and events(server) == []
    assert server.stats.fragments_refused == 1


def test_the_documented_sack_example_is_what_a_receiver_sends() -> None:
    """protocol.md 3.2: fragments 0, 1, 2, 4 and 6 of 8 held -> cumulative 3, sack 0x0a
    (bits 1 and 3; bit 0, fragment `cumulative` itself, is always 0)."""
    reassembler = Reassembler(ReassemblyLimits(1 << 20, 8, 1 << 20, 1 << 20, 30.0, 8))
    total, chunk = 8 * 256, 256
    entry = None
    for index in (0, 1, 2, 4, 6):
        frag = m.Fragment(m.Kind.MESSAGE, 7, 99, total, chunk, index, 0, b"\0" * chunk)
        entry = reassembler.add(A, frag, 0.0).entry
    assert entry is not None
    ack = entry.frag_ack()
    assert (ack.cumulative, ack.sack) == (3, b"\x0a")
    doc = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
    assert f"`[1, 8, 3, 7, 99, 3, h'0a']`, bytes `{m.encode(ack).hex()}`" in doc


def _large_reply(size: int) -> tuple[Transport, Transport, int, int]:
    """A request whose reply goes as fragments; returns (client, server, handle, id)."""
    client, server = pair()
    handle = client.call(B, b"big?", 0.0)
    pipe(client, A, server)
    (req,) = events(server)
    server.reply(A, req.request_id, b"R" * size, 0.0)
    return client, server, handle, req.request_id


def test_the_requester_acks_a_whole_fragmented_reply_and_the_replier_stops() -> None:
    """protocol.md 3.5 (issue 16 item 20): the requester's ACK(kind 2) carries its own
    incarnation; the replier then sends no more of that reply."""
    client, server, handle, request_id = _large_reply(5_000)
    sent: list[bytes] = []
    now = 0.0
    while client.outstanding:
        for data, _ in server.datagrams_to_send():
            client.receive_datagram(data, B, now)
        sent = [d for d, _ in client.datagrams_to_send()]
        for data in sent:
            server.receive_datagram(data, A, now)
        now += 0.01
        server.handle_timer(now)
    ack = m.decode_datagram(sent[-1], LIMITS)
    assert ack == m.Ack(m.Kind.REPLY, request_id, client.incarnation)
    assert events(client) == [ReplyReceived(handle, b"R" * 5_000)]
    server.datagrams_to_send()
    for later in (now + 1, now + 5, now + 30):
        server.handle_timer(later)
        assert server.datagrams_to_send() == [], "nothing resent once the reply is acked"


def test_an_error_about_our_reply_also_stops_its_retransmission() -> None:
    """ERROR kind 2 (never sent by this implementation) ends the reply transfer too."""
    _, server, _, request_id = _large_reply(50_000)
    server.datagrams_to_send()
    error = m.Error(m.Kind.REPLY, request_id, int(ErrorCode.CANCELLED), "gone")
    server.receive_datagram(m.encode(error), A, 0.1)
    for later in (1.0, 5.0, 30.0):
        server.handle_timer(later)
        assert server.datagrams_to_send() == []
