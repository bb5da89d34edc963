"""Anti-amplification: what the transport sends an address that has not proved it receives
what we send is at most 3x what it sent us, for every kind of answer (protocol.md 3.7)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.transport import (
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
)
from mercury_rt.core.transport import wire as m
from mercury_rt.core.transport.fragments import LEAD_BYTES, MIN_CHUNK, lead_chunk_size

CLIENT = ("192.0.2.1", 1000)
SERVER = ("192.0.2.2", 2000)
VICTIM = ("203.0.113.9", 53)
FACTOR = TransportConfig().amplification_factor


class Ledger:
    """Bytes between one server and each address, counted on the wire."""

    def __init__(self, server: Transport) -> None:
        self.server = server
        self.received: dict[tuple[str, int], int] = {}
        self.sent: dict[tuple[str, int], int] = {}

    def feed(self, data: bytes, peer: tuple[str, int], now: float) -> None:
        self.received[peer] = self.received.get(peer, 0) + len(data)
        self.server.receive_datagram(data, peer, now)

    def take(self) -> list[tuple[bytes, tuple[str, int]]]:
        out = self.server.datagrams_to_send()
        for data, peer in out:
            self.sent[peer] = self.sent.get(peer, 0) + len(data)
        return out

    def within_limit(self, peer: tuple[str, int]) -> bool:
        return self.sent.get(peer, 0) <= FACTOR * self.received.get(peer, 0)


def server_and_client(cfg: TransportConfig | None = None) -> tuple[Transport, Transport]:
    return Transport(cfg, rng=random.Random(2)), Transport(cfg, rng=random.Random(1))


def events(t: Transport) -> list[object]:
    out = []
    while (e := t.next_event()) is not None:
        out.append(e)
    return out


def spoofed_request(payload: bytes, ttl_ms: int = 30_000, id_: int = 7 << 32) -> bytes:
    """A request as an attacker would send it with the victim's source address."""
    return m.encode_request(id_, ttl_ms, 0, 1, 0, 0, payload)


def run_timers(ledger: Ledger, until: float) -> int:
    """Fire the server's timers until `until` (the victim never answers); returns how many
    times they fired."""
    fired = 0
    while (when := ledger.server.get_timer()) is not None and when <= until:
        ledger.server.handle_timer(when)
        ledger.take()
        fired += 1
        assert fired < 1_000, "a retransmission timer spins"
    return fired


def converse(ledger: Ledger, client: Transport, now: float = 0.0, steps: int = 20_000) -> None:
    """Run a real client and the server to quiescence, the client answering everything."""
    for _ in range(steps):
        for data, _ in ledger.take():
            client.receive_datagram(data, SERVER, now)
        for data, _ in client.datagrams_to_send():
            ledger.feed(data, CLIENT, now)
        if client.outstanding == 0:
            return
        now += 0.005
        client.handle_timer(now)
        ledger.server.handle_timer(now)


def serve_one(ledger: Ledger, client: Transport, payload: bytes) -> tuple[int, RequestReceived]:
    handle = client.call(SERVER, payload, 0.0)
    for data, _ in client.datagrams_to_send():
        ledger.feed(data, CLIENT, 0.0)
    (request,) = [e for e in events(ledger.server) if isinstance(e, RequestReceived)]
    return handle, request


# ----- each kind of answer, to a spoofed (silent) address ------------------------------------

def test_a_transport_error_to_a_spoofed_address_keeps_its_code_within_the_budget() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"", ttl_ms=3_000_000), VICTIM, 0.0)  # over max_ttl
    (datagram, _), = ledger.take()
    error = m.decode_datagram(datagram, TransportConfig().limits)
    assert isinstance(error, m.Error) and error.code == ErrorCode.TTL_TOO_LONG
    assert ledger.within_limit(VICTIM)


def test_a_handler_error_reply_to_a_spoofed_address_stays_within_the_budget() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"q"), VICTIM, 0.0)
    (request,) = events(server)
    server.reply_error(VICTIM, request.request_id, ErrorCode.STATE_FAILURE, "x" * 1000, 0.0)
    (datagram, _), = ledger.take()
    run_timers(ledger, 600.0)
    assert ledger.within_limit(VICTIM)
    assert m.decode_datagram(datagram, TransportConfig().limits) == m.Error(
        m.Kind.REQUEST, request.request_id, ErrorCode.STATE_FAILURE, "")  # the code alone


def test_a_handler_error_reply_keeps_its_detail_for_a_real_client_with_the_budget() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle, request = serve_one(ledger, client, b"q" * 100)
    server.reply_error(CLIENT, request.request_id, ErrorCode.STATE_FAILURE, "denied", 0.0)
    converse(ledger, client)
    assert events(client) == [CallFailed(handle, ErrorCode.STATE_FAILURE, "denied")]


def test_of_a_reply_larger_than_the_budget_a_spoofed_address_gets_only_the_short_lead() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"q"), VICTIM, 0.0)
    (request,) = events(server)
    server.reply(VICTIM, request.request_id, b"R" * 900, 0.0)
    ledger.take()
    fired = run_timers(ledger, 600.0)
    assert ledger.within_limit(VICTIM) and ledger.sent[VICTIM] < 100
    assert fired <= 20  # backed off to max_rto, then the record expires
    assert server.stats.amplification_limited > 0


def test_a_redirect_sized_reply_completes_for_a_real_client_after_one_echo() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle, request = serve_one(ledger, client, b"where?")
    redirect = b"D" * 700  # a redirect with a bundled cluster ID is several hundred bytes
    server.reply(CLIENT, request.request_id, redirect, 0.0)
    first = ledger.take()
    assert sum(len(d) for d, _ in first) <= FACTOR * ledger.received[CLIENT]
    for data, _ in first:
        client.receive_datagram(data, SERVER, 0.0)
    converse(ledger, client)
    assert events(client) == [ReplyReceived(handle, redirect)]
    assert server.is_validated(CLIENT)


def test_a_short_reply_over_the_budget_waits_for_the_callers_retransmissions() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle, request = serve_one(ledger, client, b"")
    server.reply(CLIENT, request.request_id, b"S" * 200, 0.0)  # too short to split
    assert not ledger.take()
    converse(ledger, client)
    assert events(client) == [ReplyReceived(handle, b"S" * 200)]
    assert ledger.within_limit(CLIENT)


def test_a_plain_reply_within_the_budget_is_one_datagram_as_before() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    _handle, request = serve_one(ledger, client, b"ping")
    server.reply(CLIENT, request.request_id, b"pong", 0.0)
    assert len(ledger.take()) == 1 and ledger.within_limit(CLIENT)


def test_a_fragmented_reply_to_a_spoofed_address_stops_at_the_budget_for_its_whole_life() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"q" * 300), VICTIM, 0.0)
    (request,) = events(server)
    server.reply(VICTIM, request.request_id, b"R" * 500_000, 0.0)
    ledger.take()
    run_timers(ledger, 600.0)
    assert ledger.within_limit(VICTIM)
    assert ledger.sent[VICTIM] < 2_000


def test_a_fragmented_reply_to_a_real_client_completes_once_it_echoes_the_nonce() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle, request = serve_one(ledger, client, b"tiny")
    server.reply(CLIENT, request.request_id, b"R" * 500_000, 0.0)
    first = ledger.take()
    assert sum(len(d) for d, _ in first) <= FACTOR * ledger.received[CLIENT]
    assert not server.is_validated(CLIENT)
    converse(ledger, client)
    assert events(client) == [ReplyReceived(handle, b"R" * 500_000)]
    assert server.is_validated(CLIENT)


def test_retransmitted_requests_raise_the_budget_and_get_the_kept_reply_within_it() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    request = spoofed_request(b"q")
    ledger.feed(request, VICTIM, 0.0)
    (event,) = events(server)
    server.reply_error(VICTIM, event.request_id, ErrorCode.STATE_FAILURE, "", 0.0)
    for attempt in range(20):
        ledger.feed(request, VICTIM, 0.1 * attempt)
        ledger.take()
        assert ledger.within_limit(VICTIM)
    assert server.stats.duplicates == 20


def test_acks_of_messages_and_of_slow_requests_stay_within_the_budget() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    message = m.encode(m.Message(9 << 32, 30_000, 0, 1, 0, 0, b""))
    for _ in range(5):
        ledger.feed(message, VICTIM, 0.0)
        ledger.take()
    ledger.feed(spoofed_request(b"", id_=(9 << 32) + 1), VICTIM, 0.0)
    request = next(e for e in events(server) if isinstance(e, RequestReceived))
    for _ in range(40):
        server.acknowledge(VICTIM, request.request_id)
        ledger.take()
    assert ledger.within_limit(VICTIM)
    assert server.stats.amplification_limited > 0


def test_frag_acks_of_a_spoofed_fragment_stream_stay_within_the_budget() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    for index in range(30):  # duplicates of one fragment, each answered with a FRAG_ACK
        frag = m.Fragment(m.Kind.MESSAGE, 5 << 32, 1, 300_000, 1000, index % 2, m.ACK_NOW,
                          b"a" * 1000)
        ledger.feed(m.encode(frag), VICTIM, 0.0)
        ledger.take()
        assert ledger.within_limit(VICTIM)


def test_undecodable_datagrams_earn_no_budget() -> None:
    server, _ = server_and_client()
    server.receive_datagram(b"\xff" * 1000, VICTIM, 0.0)
    server.receive_datagram(spoofed_request(b""), VICTIM, 0.0)
    account = server._amplification.account(VICTIM)
    assert account is not None and account.received == len(spoofed_request(b""))


# ----- what validates an address, and what that changes ---------------------------------------

def test_a_reply_to_our_own_call_validates_the_address() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    server.call(CLIENT, b"hello", 0.0)  # the "server" calls the client first
    for data, _ in ledger.take():
        client.receive_datagram(data, SERVER, 0.0)
    (request,) = events(client)
    client.reply(SERVER, request.request_id, b"hi", 0.0)
    for data, _ in client.datagrams_to_send():
        ledger.feed(data, CLIENT, 0.0)
    assert server.is_validated(CLIENT)
    _handle, request = serve_one(ledger, client, b"tiny")
    server.reply(CLIENT, request.request_id, b"R" * 100_000, 0.0)
    burst = ledger.take()  # a whole first window, far above 3x what the client sent
    assert sum(len(d) for d, _ in burst) > 10 * FACTOR * ledger.received[CLIENT]


def test_our_own_calls_to_an_unvalidated_address_are_not_limited() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    server.call(VICTIM, b"x" * 100_000, 0.0)
    assert sum(len(d) for d, _ in ledger.take()) > 30_000
    assert server.stats.amplification_limited == 0


def test_the_layer_above_can_validate_an_address_and_waiting_replies_resume_at_once() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle, request = serve_one(ledger, client, b"q" * 200)
    server.reply(CLIENT, request.request_id, b"R" * 200_000, 0.0)
    before = sum(len(d) for d, _ in ledger.take())
    server.validate_address(CLIENT, 0.0)
    resumed = sum(len(d) for d, _ in ledger.take())
    assert before <= FACTOR * ledger.received[CLIENT] < resumed
    converse(ledger, client)
    assert events(client) == [ReplyReceived(handle, b"R" * 200_000)]


def test_a_frag_ack_with_a_wrong_nonce_validates_nothing() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"q" * 300), VICTIM, 0.0)
    (request,) = events(server)
    server.reply(VICTIM, request.request_id, b"R" * 50_000, 0.0)
    (first, _), = ledger.take()
    frag = m.decode_datagram(first, TransportConfig().limits)
    assert isinstance(frag, m.Fragment)
    for guess in range(50):
        forged = m.FragAck(m.Kind.REPLY, request.request_id, frag.nonce ^ (guess + 1), 0, b"")
        ledger.feed(m.encode(forged), VICTIM, 0.0)
    assert not server.is_validated(VICTIM)


def test_transfer_nonces_are_unpredictable_not_a_counter_nor_raw_generator_output() -> None:
    server, _ = server_and_client()
    nonces = []
    for _ in range(8):
        server.call(VICTIM, b"x" * 5_000, 0.0)
        for data, _ in server.datagrams_to_send():
            frag = m.decode_datagram(data, TransportConfig().limits)
            if isinstance(frag, m.Fragment) and frag.index == 0:
                nonces.append(frag.nonce)
    assert len(set(nonces)) == 8
    assert sorted(nonces) != list(range(min(nonces), min(nonces) + 8))
    raw = random.Random(2)  # the server's generator: its outputs are not the nonces
    assert not set(nonces) & {raw.getrandbits(32) for _ in range(100)}


def test_validated_and_accounted_addresses_are_bounded_tables() -> None:
    cfg = TransportConfig(max_validated_addresses=3, max_address_accounts=4)
    server, _ = server_and_client(cfg)
    for i in range(10):
        server.validate_address((f"198.51.100.{i}", 1), 0.0)
        server.receive_datagram(spoofed_request(b""), (f"203.0.113.{i}", 1), 0.0)
    assert [server.is_validated((f"198.51.100.{i}", 1)) for i in range(10)] == \
        [False] * 7 + [True] * 3
    assert len(server._amplification) == 4


def test_an_evicted_account_restarts_from_a_zero_budget() -> None:
    cfg = TransportConfig(max_address_accounts=1)
    server, _ = server_and_client(cfg)
    ledger = Ledger(server)
    ledger.feed(spoofed_request(b"q" * 300), VICTIM, 0.0)
    (request,) = events(server)
    server.receive_datagram(spoofed_request(b""), ("203.0.113.200", 1), 0.0)  # evicts VICTIM
    server.reply(VICTIM, request.request_id, b"R" * 200, 0.0)
    assert not [d for d, peer in ledger.take() if peer == VICTIM]


def test_messages_received_from_an_unvalidated_address_are_still_delivered() -> None:
    server, client = server_and_client()
    ledger = Ledger(server)
    handle = client.send(SERVER, b"note", 0.0)
    for data, _ in client.datagrams_to_send():
        ledger.feed(data, CLIENT, 0.0)
    assert [e.payload for e in events(server) if isinstance(e, MessageReceived)] == [b"note"]
    converse(ledger, client)
    assert events(client) == [MessageDelivered(handle)] and ledger.within_limit(CLIENT)


@given(st.integers(min_value=1, max_value=3_000_000), st.integers(min_value=MIN_CHUNK,
                                                                  max_value=64_000))
def test_the_lead_chunk_size_is_in_range_and_leaves_a_short_last_piece(total: int,
                                                                       largest: int) -> None:
    chunk = lead_chunk_size(total, largest)
    assert MIN_CHUNK <= chunk <= largest
    if chunk != largest:
        assert 0 < total % chunk <= LEAD_BYTES


def test_many_waiting_replies_cost_bounded_work_per_datagram_and_stay_within_budget() -> None:
    server, _ = server_and_client()
    ledger = Ledger(server)
    for i in range(100):
        ledger.feed(spoofed_request(b"q" * 20, id_=(7 << 32) + i), VICTIM, 0.0)
    for request in events(server):
        assert isinstance(request, RequestReceived)
        server.reply(VICTIM, request.request_id, b"R" * 20_000, 0.0)
    ledger.take()
    account = server._amplification.account(VICTIM)
    assert account is not None and 0 < len(account.blocked) <= 64
    for i in range(50):  # tiny datagrams from the victim's address, each raising the budget
        ledger.feed(m.encode(m.Poll((7 << 32) + i)), VICTIM, 0.1)
        assert len(ledger.take()) <= 2
        assert ledger.within_limit(VICTIM)
