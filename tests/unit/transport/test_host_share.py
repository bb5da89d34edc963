"""One host sending from thousands of its ports is still one sender: the addresses of one
IP together hold at most `max_epochs_per_host` sender-epoch marks, and heavy holders of
reply bytes cannot take the last quarter of the reply-byte bound, so a filled table keeps
room for a new caller (issue 17 item 2; found by bench/bench_hostile.py: 4,097 ports of one
IP, 16 epochs each with a record held, left every new caller refused with 203)."""

from __future__ import annotations

import random

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import EPOCH_SHIFT, RequestReceived, Transport, TransportConfig
from mercury_rt.core.transport import wire as m
from mercury_rt.core.transport.exchanges import (
    SMALL_REPLY_SHARE,
    Record,
    RecordState,
    RecordTable,
)
from tests.unit.transport.test_floods import SERVER, events, exchange

FLOOD_HOST = "198.51.100.6"
NEWCOMER = ("192.0.2.11", 1000)
CONFIG = TransportConfig(max_peers=1024, max_epochs_per_host=256)


def test_many_ports_of_one_host_cannot_fill_the_epoch_table() -> None:
    server = Transport(CONFIG, rng=random.Random(2))
    refused = admitted = 0
    for port in range(1, 1025):  # 1,024 ports x 16 epochs: four times the table
        for epoch in range(1, CONFIG.max_epochs_per_peer + 1):
            id_ = ((port << 8 | epoch) << EPOCH_SHIFT) + 1
            request = m.encode(m.Request(id_, 300_000, id_ & ~0xFFFFFFFF, 1, 0, 0, b""))
            server.receive_datagram(request, (FLOOD_HOST, port), 0.0)
            for data, _ in server.datagrams_to_send():
                answer = m.decode_datagram(data, CONFIG.limits)
                refused += isinstance(answer, m.Error) and answer.code == ErrorCode.OVERLOADED
        for event in events(server):  # each request runs and is answered: records held
            assert isinstance(event, RequestReceived)
            server.reply(event.peer, event.request_id, b"x", 0.0)
            admitted += 1
        server.datagrams_to_send()
    assert admitted == CONFIG.max_epochs_per_host
    assert refused == 1024 * CONFIG.max_epochs_per_peer - admitted, "each refusal a 203"

    newcomer = Transport(rng=random.Random(4))
    newcomer.call(SERVER, b"hello", 1.0, timeout=30)
    exchange(newcomer, NEWCOMER, server, 1.0)
    (first,) = events(server)
    assert isinstance(first, RequestReceived) and first.peer == NEWCOMER, "served at once"


def test_a_validated_port_of_the_flooding_host_is_not_held_to_its_share() -> None:
    server = Transport(CONFIG, rng=random.Random(2))
    for port in range(1, 40):
        for epoch in range(1, CONFIG.max_epochs_per_peer + 1):
            id_ = ((port << 8 | epoch) << EPOCH_SHIFT) + 1
            request = m.encode(m.Message(id_, 300_000, 0, 1, 0, 0, b""))
            server.receive_datagram(request, (FLOOD_HOST, port), 0.0)
    events(server)
    server.datagrams_to_send()
    proven = (FLOOD_HOST, 9999)
    server.validate_address(proven, 0.0)  # e.g. its transit session vouched for it
    caller = Transport(rng=random.Random(5))
    caller.call(SERVER, b"hello", 1.0, timeout=30)
    exchange(caller, proven, server, 1.0)
    (first,) = events(server)
    assert isinstance(first, RequestReceived) and first.peer == proven


def _held(table: RecordTable, peer: tuple[str, int], n: int, size: int) -> Record:
    record = Record(peer, (1 << EPOCH_SHIFT) + n, m.Kind.REQUEST, 300.0, 300.0,
                    RecordState.REPLIED)
    table.add(record)
    table.charge_reply(record, size)
    return record


def test_heavy_strangers_leave_the_last_quarter_of_reply_bytes_to_new_callers() -> None:
    bound, share = 1 << 20, 1 << 18
    heavy = [("198.51.100.7", p) for p in range(1, 5)]
    table = RecordTable(max_records=1000, max_per_peer=1000, max_reply_bytes=bound,
                        max_epochs=100, validated={heavy[3]}, max_reply_bytes_per_peer=share)
    for n, peer in enumerate(heavy[:3]):
        _held(table, peer, n, share)  # three quarters of the bound
    assert table.reply_bytes == 3 * share
    assert not table.reply_fits(heavy[0], 1), "at its own share"
    assert not table.reply_fits(("198.51.100.7", 77), SMALL_REPLY_SHARE + 1), \
        "a stranger's large reply would eat into the last quarter"
    assert table.reply_fits(("192.0.2.11", 1000), SMALL_REPLY_SHARE), "a newcomer's fits"
    assert table.reply_fits(heavy[3], share), "a validated address may use the rest"
