"""What a stranger sends never leaves state behind for good, nor pushes out ours (found by
review): a refused first fragment opens nothing, an epoch's id list stays as short as its
held records, and peer states holding our unfinished calls are not evicted."""

from __future__ import annotations

import random

from mercury_rt.core.transport import RequestReceived, Transport, TransportConfig
from mercury_rt.core.transport.wire import Fragment, Kind, decode_datagram, encode, encode_request


def test_a_refused_first_fragment_leaves_no_reassembly_open() -> None:
    t = Transport(TransportConfig(), rng=random.Random(1))
    for i in range(1000):
        peer = (f"127.0.0.{i % 250 + 1}", 1000 + i)
        bad = Fragment(Kind.REQUEST, (5 << 32) + i, 7, 1_000_000, 256, 0, 0, b"x" * 10)
        t.receive_datagram(encode(bad), peer, 0.0)
    assert len(t._reassembler.active) == 0 and t._reassembler.total_held == 0


def test_an_epochs_id_list_is_bounded_by_the_records_it_holds() -> None:
    t = Transport(TransportConfig(), rng=random.Random(1))
    peer, epoch = ("127.0.0.9", 5), 7 << 32
    for i in range(20_000):
        now = i * 0.002
        t.receive_datagram(encode_request(epoch + i, 1, 0, 1, 0, 0, b"x"), peer, now)
        t.handle_timer(now)
        while t.next_event():
            pass
        t.datagrams_to_send()
    table = t._records
    assert len(table._epochs[(peer, 7)].ids) <= len(table) + 1


def test_strangers_do_not_evict_the_state_of_a_peer_we_are_calling() -> None:
    cfg = TransportConfig(max_peers=4, max_epochs_per_peer=2)
    t = Transport(cfg, rng=random.Random(1))
    callee = ("127.0.0.2", 9)
    t.call(callee, b"x", 0.0, timeout=30)
    t.datagrams_to_send()
    now = 0.0
    for i in range(5):
        stranger = ("127.0.0.3", 2000 + i)
        now += 0.05
        t.receive_datagram(encode_request((9 << 32) + i, 10, 0, 1, 0, 0, b"q"), stranger,
                           now)
        while (event := t.next_event()) is not None:
            if isinstance(event, RequestReceived):
                t.reply(stranger, event.request_id, b"r" * 2000, now)
        now += 0.05
        t.handle_timer(now)
    t.datagrams_to_send()
    t.handle_timer(0.6)
    resent = [decode_datagram(d, cfg.limits) for d, a in t.datagrams_to_send() if a == callee]
    assert resent, "our call is retransmitted"
    assert all(m.done_below <= m.id for m in resent)  # type: ignore[union-attr]
