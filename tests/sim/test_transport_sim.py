"""Transport under a hostile simulated network: loss, duplication, reordering, delay."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from mercury_rt.core.transport import (
    CallFailed,
    MessageDelivered,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    Transport,
    TransportConfig,
    TransportEvent,
)
from mercury_rt.testing import LinkProfile, SimNetwork, TransportHost

SERVER = ("10.0.0.1", 4000)
CLIENT = ("10.0.0.2", 5000)
HOSTILE = LinkProfile(loss=0.2, duplicate=0.05, reorder=0.05, delay=0.002, jitter=0.003,
                      reorder_delay=0.02)


class EchoServer:
    """Replies with the request payload reversed, counting every execution."""

    def __init__(self) -> None:
        self.runs: Counter[tuple[tuple[str, int], int]] = Counter()
        self.messages: Counter[bytes] = Counter()

    def __call__(self, host: TransportHost, event: TransportEvent, now: float) -> None:
        if isinstance(event, RequestReceived):
            self.runs[(event.peer, event.request_id)] += 1
            host.transport.reply(event.peer, event.request_id, event.payload[::-1], now)
        elif isinstance(event, MessageReceived):
            self.messages[hashlib.sha256(event.payload).digest()] += 1


def _world(seed: int, profile: LinkProfile, config: TransportConfig | None = None
           ) -> tuple[SimNetwork, TransportHost, EchoServer, Transport]:
    net = SimNetwork(seed, profile)
    server = EchoServer()
    net.add(SERVER, TransportHost(net.transport(config), server))
    client = TransportHost(net.transport(config))
    net.add(CLIENT, client)
    return net, client, server, client.transport


def _outcomes(client: TransportHost) -> dict[int, TransportEvent]:
    return {e.handle: e for e in client.events}


class WindowedClient:
    """Keeps `window` calls outstanding until `total` have been started."""

    def __init__(self, total: int, window: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.total, self.window = total, window
        self.sent: dict[int, bytes] = {}
        self.outcomes: dict[int, TransportEvent] = {}

    def start(self, host: TransportHost, now: float) -> None:
        while len(self.sent) < self.total and len(self.sent) - len(self.outcomes) < self.window:
            payload = self.rng.randbytes(self.rng.randint(0, 200)) + len(self.sent).to_bytes(4)
            self.sent[host.transport.call(SERVER, payload, now, timeout=120)] = payload

    def __call__(self, host: TransportHost, event: TransportEvent, now: float) -> None:
        self.outcomes[event.handle] = event
        self.start(host, now)


def test_ten_thousand_requests_complete_exactly_once_under_hostile_network() -> None:
    net, client, server, transport = _world(7, HOSTILE)
    app = WindowedClient(10_000, 512, seed=1)
    client.handler = app
    app.start(client, 0.0)
    net.run_until(lambda: len(app.outcomes) == 10_000, max_time=600)
    assert all(isinstance(e, ReplyReceived) for e in app.outcomes.values())
    assert all(app.outcomes[h].payload == p[::-1]  # type: ignore[union-attr]
               for h, p in app.sent.items())
    assert len(server.runs) == 10_000
    assert set(server.runs.values()) == {1}
    assert net.dropped > 0 and transport.stats.retransmissions > 0
    assert server_records(net) < 10_000, "finished exchanges must be released early"


def server_records(net: SimNetwork) -> int:
    host = net.endpoints[SERVER]
    assert isinstance(host, TransportHost)
    return len(host.transport._records)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_mib_requests_and_replies_arrive_intact_under_loss(seed: int) -> None:
    net, client, server, transport = _world(seed, HOSTILE)
    rng = random.Random(seed)
    payloads = {transport.call(SERVER, p, 0.0, timeout=250): p
                for p in (rng.randbytes(1 << 20), rng.randbytes(300_000))}
    net.run_until(lambda: len(client.events) == 2, max_time=300)
    for handle, event in _outcomes(client).items():
        assert isinstance(event, ReplyReceived), event
        assert event.payload == payloads[handle][::-1]
    assert set(server.runs.values()) == {1}


def test_one_way_messages_are_delivered_once_and_acknowledged() -> None:
    net, client, server, transport = _world(11, HOSTILE)
    rng = random.Random(5)
    bodies = [rng.randbytes(rng.choice([10, 5000, 200_000])) for _ in range(40)]
    for body in bodies:
        transport.send(SERVER, body, 0.0, timeout=200)
    net.run_until(lambda: len(client.events) == len(bodies), max_time=300)
    assert all(isinstance(e, MessageDelivered) for e in client.events)
    assert server.messages == Counter(hashlib.sha256(b).digest() for b in bodies)


def test_partition_makes_calls_time_out_with_a_typed_error_then_heal_recovers() -> None:
    net, client, server, transport = _world(3, LinkProfile())
    net.partition(CLIENT, SERVER)
    lost = transport.call(SERVER, b"x", 0.0, timeout=2.0)
    net.run_until(lambda: len(client.events) == 1, max_time=10)
    failed = client.events.pop()
    assert isinstance(failed, CallFailed) and failed.handle == lost and failed.code == 200
    net.heal()
    ok = transport.call(SERVER, b"y", net.clock.now, timeout=2.0)
    net.run_until(lambda: len(client.events) == 1, max_time=20)
    assert client.events == [ReplyReceived(ok, b"y")]
    assert not server.runs[(CLIENT, lost)]
