"""One address (or a few) flooding a node cannot lock out new callers nor make a caller
that has proved its address lose what protects its requests from running twice
(issue 17 items 2 and 3; protocol.md 3.4)."""

from __future__ import annotations

import random

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import (
    EPOCH_SHIFT,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
)
from mercury_rt.core.transport import wire as m

SERVER = ("192.0.2.2", 2000)
FLOOD = ("198.51.100.6", 6666)
KNOWN = ("192.0.2.10", 1000)
NEWCOMER = ("192.0.2.11", 1000)


def events(t: Transport) -> list[object]:
    out = []
    while (e := t.next_event()) is not None:
        out.append(e)
    return out


def exchange(client: Transport, addr: tuple[str, int], server: Transport, now: float) -> None:
    for data, _ in client.datagrams_to_send():
        server.receive_datagram(data, addr, now)
    for data, peer in server.datagrams_to_send():
        if peer == addr:
            client.receive_datagram(data, SERVER, now)


def test_one_address_flooding_70000_epochs_locks_out_no_one() -> None:
    server = Transport(rng=random.Random(2))
    known = Transport(rng=random.Random(3))
    server.validate_address(KNOWN, 0.0)  # e.g. its transit session vouched for it
    handle = known.call(SERVER, b"transfer 10", 0.0, timeout=60)
    sent = [d for d, _ in known.datagrams_to_send()]
    for data in sent:
        server.receive_datagram(data, KNOWN, 0.0)
    (request,) = events(server)
    assert isinstance(request, RequestReceived)
    assert server.reply(KNOWN, request.request_id, b"done", 0.0)
    server.datagrams_to_send()  # the reply is lost: the caller will retransmit

    refused = 0
    for n in range(70_000):  # each a tiny one-way message of a fresh sender epoch
        id_ = ((n + 1) << EPOCH_SHIFT) + 1
        server.receive_datagram(m.encode(m.Message(id_, 1, 0, 1, 0, 0, b"")), FLOOD,
                                0.0001 * n)
        for data, _ in server.datagrams_to_send():
            answer = m.decode_datagram(data, TransportConfig().limits)
            refused += isinstance(answer, m.Error) and answer.code == ErrorCode.OVERLOADED
    events(server)
    now = 7.0
    cfg = TransportConfig()
    assert refused == 70_000 - cfg.max_epochs_per_peer  # each refusal a 203, none silent
    assert len(server._records._epochs) == cfg.max_epochs_per_peer + 1  # the flood's + ours

    newcomer = Transport(rng=random.Random(4))
    newcomer.call(SERVER, b"hello", now, timeout=30)
    exchange(newcomer, NEWCOMER, server, now)
    (first,) = events(server)
    assert isinstance(first, RequestReceived) and first.peer == NEWCOMER, "served at once"

    known.handle_timer(known.get_timer() or now)  # the known caller retransmits
    exchange(known, KNOWN, server, now)
    assert events(server) == [], "not run twice"
    assert events(known) == [ReplyReceived(handle, b"done")], "its record survived"
    for data in sent:  # a delayed copy of its first datagram
        server.receive_datagram(data, KNOWN, now)
    assert events(server) == []


def test_the_flooder_is_told_to_retry_later_with_overloaded_and_a_hint() -> None:
    server = Transport(rng=random.Random(2))
    details = []
    for n in range(40):
        id_ = ((n + 1) << EPOCH_SHIFT) + 1
        server.receive_datagram(m.encode(m.Message(id_, 1, 0, 1, 0, 0, bytes(200))), FLOOD, 0.0)
        for data, _ in server.datagrams_to_send():
            answer = m.decode_datagram(data, TransportConfig().limits)
            if isinstance(answer, m.Error):
                details.append((answer.code, answer.detail))
    assert len(details) == 40 - TransportConfig().max_epochs_per_peer
    assert set(details) == {(ErrorCode.OVERLOADED,
                             "too many exchanges in progress; retry after 10 s")}


def _answers(server: Transport, codes: dict[int, int]) -> None:
    for data, _ in server.datagrams_to_send():
        answer = m.decode_datagram(data, TransportConfig().limits)
        if isinstance(answer, m.Error):
            codes[answer.code] = codes.get(answer.code, 0) + 1


def _big_request(server: Transport, n: int, now: float) -> None:
    server.receive_datagram(m.encode_request((7 << EPOCH_SHIFT) + n, 60_000, 0, 1, 0, 0,
                                             b"big please"), FLOOD, now)


def test_many_requests_for_large_replies_hold_at_most_the_per_address_bound() -> None:
    """300 small requests (13 bytes of payload each) for 100 kB replies (30 MB asked), from
    an address that never acknowledges a fragment: what the node holds for it stays under
    its 8 MiB bound, replies past it are dropped (204: ran, reply gone), new requests are
    refused (203: not run), and another caller is served."""
    cfg = TransportConfig()
    server = Transport(rng=random.Random(2))
    server.validate_address(FLOOD, 0.0)  # no amplification limit: the byte bound binds
    codes: dict[int, int] = {}
    for n in range(300):  # all arrive while their handlers run
        _big_request(server, n, 0.001 * n)
    running = events(server)
    assert len(running) == 300
    peak = 0
    for event in running:
        assert isinstance(event, RequestReceived)
        server.reply(FLOOD, event.request_id, bytes(100_000), 0.5)
        _answers(server, codes)
        peak = max(peak, server.held_bytes(FLOOD))
    reply_size = 100_022  # the REPLY envelope around 100,000 bytes, held for its transfer
    kept = cfg.max_reply_bytes_per_peer // reply_size
    assert peak == kept * reply_size <= cfg.max_reply_bytes_per_peer  # 83: 8,301,826 B
    assert codes == {ErrorCode.REQUEST_LOST: 300 - kept} == {204: 217}
    assert server.stats.replies_dropped == 217
    _big_request(server, 300, 0.6)
    _answers(server, codes)
    assert events(server) == [] and codes[ErrorCode.OVERLOADED] == 1, "refused, not run"

    other = Transport(rng=random.Random(5))
    handle = other.call(SERVER, b"my turn", 1.0, timeout=30)
    exchange(other, KNOWN, server, 1.0)
    (request,) = events(server)
    server.reply(KNOWN, request.request_id, bytes(100_000), 1.0)
    now = 1.0
    for _ in range(200):
        exchange(other, KNOWN, server, now)
        if (done := events(other)):
            break
        now = min(t for t in (other.get_timer(), server.get_timer()) if t is not None)
        other.handle_timer(now)
        server.handle_timer(now)
    assert done == [ReplyReceived(handle, bytes(100_000))]
    exchange(other, KNOWN, server, now)  # its ACK(reply)
    assert server.held_bytes(KNOWN) == 0, "released once the caller has the whole reply"


def test_a_node_configured_for_large_messages_still_holds_one_largest_reply() -> None:
    cfg = TransportConfig(max_message=32 * 1024 * 1024)
    assert cfg.reply_bytes_per_peer == cfg.max_envelope > cfg.max_reply_bytes_per_peer
    assert TransportConfig().reply_bytes_per_peer == 8 * 1024 * 1024
