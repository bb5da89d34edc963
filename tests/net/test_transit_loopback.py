"""Loopback: what crosses the network between nodes is sealed (issue 11, "Done when").

Clusters on 127.0.x.y with a UDP relay (tests/net/udp_relay.py) at a node's published
address record every datagram: no request payload or reply text appears in the capture,
raw or CBOR-decoded, while the calls succeed. A fake node at a published address learns
nothing and is not believed; a node of another cluster presenting a cleared entity's EID
is refused with 712 before any handler runs; replayed datagrams run nothing a second time.
Bounded in time; every node and socket is closed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.cbor import Limits
from carbon.error_codes import ErrorCode
from carbon.principal import Principal
from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio import transit_host
from mercury_rt.aio.endpoint import CallError, TransportEndpoint, open_endpoint
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.cli import demo
from mercury_rt.core.node import decode_reply
from mercury_rt.core.node.messages import NodeRequest, encode_operation
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.responder import Answered, Opened, TransitResponder
from mercury_rt.core.transit.wire import (
    INIT,
    INIT_REPLY,
    KEY_QUERY,
    KEYS,
    SESSION,
    SESSION_REPLY,
    TransitRefusal,
    decode_answer,
    message_type,
)
from mercury_rt.core.transport import RequestReceived, TransportConfig
from mercury_rt.core.transport.wire import Reply, Request, decode_datagram
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan, start_cluster
from tests.net.udp_relay import UdpRelay, leaks, strings_in

pytestmark = pytest.mark.net
FAST = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0, reassembly_timeout=5.0)
NOTHING = dumps_typed(None, None)
SECRET = "transit-secret-payload-4f1c"
REPLY_TEXT = "zebra-node-replies-77"
"""A node id: it appears only in the `whoami` reply."""
LIMITS = Limits(max_bytes=70_000)


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=30))


@asynccontextmanager
async def stopping(*items: LocalCluster | UdpRelay) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for item in items:
            if isinstance(item, UdpRelay):
                item.close()
            else:
                await item.stop()


async def fronted(plan: ClusterPlan, relay_hosts: dict[str, str],
                  seed: int) -> tuple[LocalCluster, dict[str, UdpRelay]]:
    """Start `plan` with a relay published in front of each named node's inter port."""
    relays = {node_id: UdpRelay(host) for node_id, host in relay_hosts.items()}
    nodes = tuple(replace(n, public=relays[n.node_id].address) if n.node_id in relays else n
                  for n in plan.nodes)
    cluster = await start_cluster(replace(plan, nodes=nodes), FAST, seed=seed)
    for node_id, relay in relays.items():
        relay.upstream = cluster.nodes[node_id].addresses[0]
    return cluster, relays


def payload_of(datagram: bytes) -> bytes | None:
    """The transport payload a request or reply datagram carries (None for acks...)."""
    try:
        message = decode_datagram(datagram, LIMITS)
    except Exception:
        return None
    return message.payload if isinstance(message, Request | Reply) else None


def transit_kinds(datagrams: list[bytes]) -> set[int | None]:
    return {message_type(p) for p in map(payload_of, datagrams) if p is not None}


async def echo(node: NodeRuntime, target: bytes, text: str, timeout: float = 5.0) -> str:
    reply = await node.call(target, 1, 1, dumps_typed(str, text), caller=b"alice",
                            timeout=timeout)
    return str(loads_typed(str, reply))


async def whoami(node: NodeRuntime, target: bytes, timeout: float = 5.0) -> str:
    reply = await node.call(target, 1, 2, NOTHING, caller=b"alice", timeout=timeout)
    return str(loads_typed(str, reply))


HOME = ClusterPlan("home", (NodePlan("a1", "127.0.11.1", ("alice",)),))
AWAY = ClusterPlan("away", (NodePlan(REPLY_TEXT, "127.0.12.1", ("carol",)),))


# ----- 1. captures ------------------------------------------------------------------------

def test_a_capture_of_inter_cluster_calls_holds_no_payload_or_reply_bytes() -> None:
    """Echo calls with a distinctive text (one large enough to travel in fragments), a
    `whoami` whose reply is a distinctive node id and a one-way note all succeed through
    the relay, and neither text is in any captured datagram. As a control, the same
    search finds a cleartext request's text; and nothing reached the node but through
    the relay."""
    async def main() -> None:
        home = await start_cluster(HOME, FAST, seed=0)
        away, relays = await fronted(AWAY, {REPLY_TEXT: "127.0.12.9"}, seed=1)
        relay = relays[REPLY_TEXT]
        async with stopping(home, away, relay):
            a1, carol = home.nodes["a1"], away.eid("carol")
            for i in range(4):
                assert await echo(a1, carol, f"{SECRET}-{i}") == f"{SECRET}-{i}"
            assert await whoami(a1, carol) == REPLY_TEXT
            large = " ".join([SECRET] * 1500)  # ~42 kB each way: fragmented
            assert await echo(a1, carol, large) == large
            assert a1.inter is not None and a1.inter.core.stats.fragmented_sends >= 1
            note = f"note-{SECRET}"
            assert isinstance(await a1.send(carol, 1, 3, dumps_typed(str, note),
                                            caller=b"alice"), bytes)
            assert away.notes[REPLY_TEXT] == [note]
            captured = relay.up() + relay.down()
            assert {INIT, SESSION} <= transit_kinds(relay.up()), "calls crossed the relay"
            assert {INIT_REPLY, SESSION_REPLY} <= transit_kinds(relay.down())
            assert leaks(captured, SECRET.encode(), REPLY_TEXT.encode()) == []

            body = NodeRequest(carol, 1, 1, dumps_typed(str, SECRET), 1, a1.eid_for(b"alice"))
            assert a1.inter is not None
            answer = decode_answer(await a1.inter.call(relay.address,
                                                       encode_operation(body.body())))
            assert isinstance(answer, TransitRefusal)
            assert answer.code == ErrorCode.TRANSIT_REQUIRED
            assert leaks(relay.up(), SECRET.encode()) == [SECRET.encode()], \
                "the search finds a payload sent in clear"
            node = away.nodes[REPLY_TEXT]
            assert node.inter is not None
            assert node.inter.core.stats.datagrams_in == len(relay.up()), "none bypassed"

    run(main)


def test_a_capture_of_forwarded_intra_cluster_traffic_holds_no_payload() -> None:
    """f1 mirrors nothing and forwards to f2 over the intra-cluster port; both nodes' intra
    addresses are relays (heartbeats through them are refused as arriving from an address
    they are not signed for, so membership never routes around the relays). The sealed
    forwarded requests, replayed from another address, run nothing."""
    async def main() -> None:
        relays = {"f1": UdpRelay("127.0.14.11"), "f2": UdpRelay("127.0.14.12")}
        plan = ClusterPlan("fwd", (
            NodePlan("f1", "127.0.14.1", (), intra_public=relays["f1"].address),
            NodePlan(REPLY_TEXT, "127.0.14.2", ("dave",),
                     intra_public=relays["f2"].address)))
        home = await start_cluster(HOME, FAST, seed=0)
        fwd = await start_cluster(plan, FAST, seed=1)
        relays["f1"].upstream = fwd.nodes["f1"].addresses[1]
        relays["f2"].upstream = fwd.nodes[REPLY_TEXT].addresses[1]
        async with stopping(home, fwd, *relays.values()):
            a1, dave = home.nodes["a1"], fwd.eid("dave")
            for i in range(3):
                assert await echo(a1, dave, f"{SECRET}-{i}") == f"{SECRET}-{i}"
            assert await whoami(a1, dave) == REPLY_TEXT
            relay = relays["f2"]
            assert {INIT, SESSION} <= transit_kinds(relay.up()), "forwarded via the relay"
            captured = [c.data for r in relays.values() for c in r.captured]
            assert leaks(captured, SECRET.encode(), REPLY_TEXT.encode()) == []
            mirror = fwd.nodes[REPLY_TEXT]
            assert mirror.invoker is not None
            ran = mirror.invoker.statistics().get("calls", 0)
            assert ran == 4
            for kind in (INIT, SESSION):  # sealed forwarded requests, from another address
                answer = await replayed(relay, first_datagram(relay.up(), kind))
                assert not answer, "dropped"
            assert mirror.transit.intra.counts[ErrorCode.REPLAYED] == 2
            assert mirror.invoker.statistics().get("calls", 0) == ran

    run(main)


# ----- 2. the README demo -----------------------------------------------------------------

def test_a_capture_of_every_inter_cluster_datagram_of_the_readme_demo_holds_no_payload(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`mercury-rt demo`'s cluster part, unchanged, with a relay published in front of every
    node of its three clusters: every inter-cluster datagram (each goes to a published
    address or answers one) is captured. The demo still succeeds, and the capture holds
    none of its entity names, target EIDs, note text or `whoami` replies; and every
    datagram a node's inter-cluster port received (requests, and replies to its own
    calls) came through a relay."""
    relays: dict[tuple[str, str], UdpRelay] = {}
    started: list[LocalCluster] = []

    async def fronting(plan: ClusterPlan, *args: object, **kwargs: object) -> LocalCluster:
        hosts = {}
        for node in plan.nodes:
            octets = node.host.split(".")
            hosts[node.node_id] = ".".join([*octets[:2], str(int(octets[2]) + 40), octets[3]])
        cluster, fronts = await fronted(plan, hosts, seed=len(started))
        relays.update({(plan.name, node_id): relay for node_id, relay in fronts.items()})
        started.append(cluster)
        return cluster

    monkeypatch.setattr(demo, "start_cluster", fronting)

    async def main() -> None:
        try:
            lines = await demo._cluster_demo()
        finally:
            for relay in relays.values():
                relay.close()
        assert any("served by c2" in line for line in lines)
        assert any("delivered" in line for line in lines)

    run(main)
    home, away, redir = started
    captured = [c.data for r in relays.values() for c in r.captured]
    for cluster in started:
        for node_id, node in cluster.nodes.items():
            assert node.inter is not None
            via = len(relays[(cluster.plan.name, node_id)].up()) + sum(
                1 for r in relays.values() for c in r.captured
                if c.direction == "down" and c.client == node.addresses[0])
            received = node.inter.core.stats.datagrams_in
            if cluster is away:  # b1 was stopped (the relay kept receiving), b2 restarted
                assert received <= via
            else:
                assert received == via, "none bypassed a relay"
    assert len(captured) > 20 and {INIT, SESSION} <= transit_kinds(captured)
    secrets = [b"see you", b"alice", b"carol", b"dave", away.eid("carol"),
               redir.eid("dave"), home.eid("alice")]
    assert leaks(captured, *secrets) == []
    replies = {r for c in started for n in c.plan.nodes
               for r in (dumps_typed(str, n.node_id), n.node_id.encode())}
    decoded = {piece for data in captured for piece in strings_in(data)}
    assert not replies & decoded, "no whoami reply (a node id) is readable in the capture"


# ----- 3. a fake node at a published address ---------------------------------------------

@dataclass
class FakeNode:
    """A transport endpoint at a published address that answers with `answer`; keeps
    every request payload it receives and any plaintext it ever manages to open."""

    answer: Callable[[bytes, tuple[str, int]], bytes]
    received: list[bytes] = field(default_factory=list)
    opened: list[bytes] = field(default_factory=list)
    endpoint: TransportEndpoint | None = None

    async def start(self, address: tuple[str, int]) -> FakeNode:
        self.endpoint = await open_endpoint(address, config=FAST, on_request=self._request)
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.endpoint is not None
        return self.endpoint.local_address

    def _request(self, event: RequestReceived) -> bytes:
        self.received.append(event.payload)
        return self.answer(event.payload, event.peer)

    async def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            await self.endpoint.closed.wait()


def own_key_fake(master_hash: bytes) -> FakeNode:
    """A node with a transit key of its own (certified by a cluster key of its own) that
    claims the target cluster: a real responder, so it would open what it could."""
    now = time.time()
    keys = NodeTransitKeys(Ed25519PrivateKey.generate(), master_hash, os.urandom, now)
    responder = TransitResponder(keys, master_hash, token_secret=os.urandom(32),
                                 boot_ms=int(now * 1000) - 60_000, random_bytes=os.urandom)

    def answer(payload: bytes, peer: tuple[str, int]) -> bytes:
        outcome = responder.open(payload, peer, time.time())
        if isinstance(outcome, Opened):
            fake.opened.append(outcome.payload)
            return responder.seal(outcome.channel, NOTHING)
        return outcome.reply if isinstance(outcome, Answered) else b""

    fake = FakeNode(answer)
    return fake


def replaying_fake(genuine: dict[int | None, bytes]) -> FakeNode:
    """Answers each transit request with a genuine answer of the matching kind, captured
    earlier from the real node at this address."""
    matching = {KEY_QUERY: KEYS, INIT: INIT_REPLY, SESSION: SESSION_REPLY}

    def answer(payload: bytes, peer: tuple[str, int]) -> bytes:
        return genuine.get(matching.get(message_type(payload) or -1), b"")

    return FakeNode(answer)


def garbage_fake() -> FakeNode:
    return FakeNode(lambda payload, peer: os.urandom(len(payload) % 200 + 16))


CALLERS = ClusterPlan("callers", (NodePlan("a1", "127.0.17.1", ("alice",)),
                                  NodePlan("a2", "127.0.17.2", ("alice",)),
                                  NodePlan("a3", "127.0.17.3", ("alice",))))
PAIR = ClusterPlan("pair", (NodePlan("b1", "127.0.18.1", ("carol",), priority=10),
                            NodePlan("b2", "127.0.18.2", ("carol",), priority=20)))


def test_a_fake_node_at_a_published_address_learns_nothing_and_is_not_believed() -> None:
    """b1's published address is first a relay (genuine traffic is captured there), then
    a fake node: one replaying the genuine answers, one with its own transit key, one
    answering garbage. Each call still succeeds, served by b2 (the cluster ID's next
    address), and the fake never receives the payload nor opens anything."""
    async def main() -> None:
        home = await start_cluster(CALLERS, FAST, seed=0)
        away, relays = await fronted(PAIR, {"b1": "127.0.18.9"}, seed=1)
        relay = relays["b1"]
        fakes: list[FakeNode] = []
        async with stopping(home, away, relay):
            try:
                a1, a2, a3 = (home.nodes[n] for n in ("a1", "a2", "a3"))
                carol = away.eid("carol")
                assert await echo(a1, carol, "warm-up") == "warm-up"
                assert await echo(a1, carol, "warm-up 2") == "warm-up 2"
                genuine = {message_type(p): p for p in map(payload_of, relay.down())
                           if p is not None}
                assert {KEYS, INIT_REPLY, SESSION_REPLY} <= set(genuine)
                relay.close()
                master = away.cluster_id.master_hash
                for fake, callers in ((replaying_fake(genuine), (a1,)),
                                      (own_key_fake(master), (a1, a2)),
                                      (garbage_fake(), (a3,))):
                    fakes.append(await fake.start(relay.address))
                    for caller in callers:
                        seen = len(fake.received)
                        assert await echo(caller, carol, SECRET) == SECRET
                        assert await whoami(caller, carol) == "b2"
                        assert len(fake.received) > seen, "the call tried the fake first"
                    assert leaks(fake.received, SECRET.encode()) == []
                    assert fake.opened == []
                    await fake.close()
            finally:
                for fake in fakes:
                    await fake.close()

    run(main)


def test_a_fake_node_at_a_clusters_only_address_makes_the_call_fail_with_a_code() -> None:
    """The cluster ID lists only the fake's address: answering garbage, then with a transit
    certificate of its own, it makes the call fail with NO_NODE_ANSWERED whose attempt
    says why (715 malformed, 711 certificate not from the called cluster)."""
    async def main() -> None:
        fake = await garbage_fake().start(("127.0.19.9", 0))
        lone = ClusterPlan("lone", (NodePlan("l1", "127.0.19.1", ("carol",),
                                             public=fake.address),))
        home = await start_cluster(HOME, FAST, seed=0)
        away = await start_cluster(lone, FAST, seed=1)
        impostor = own_key_fake(away.cluster_id.master_hash)
        async with stopping(home, away):
            try:
                with pytest.raises(NodeCallError) as info:
                    await echo(home.nodes["a1"], away.eid("carol"), SECRET, timeout=3.0)
                assert info.value.code == ErrorCode.NO_NODE_ANSWERED
                assert "code 715" in info.value.message
                await fake.close()
                await impostor.start(fake.address)
                with pytest.raises(NodeCallError) as info:
                    await echo(home.nodes["a1"], away.eid("carol"), SECRET, timeout=3.0)
                assert info.value.code == ErrorCode.NO_NODE_ANSWERED
                assert "code 711" in info.value.message
                assert impostor.received and impostor.opened == []
                assert leaks(impostor.received, SECRET.encode()) == []
            finally:
                await fake.close()
                await impostor.close()

    run(main)


# ----- 4. impersonation -------------------------------------------------------------------

def vault_policy(trusted: bytes) -> str:
    """B's policy: `vault` is secret, and only cluster `trusted` is cleared for it."""
    return ("version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: public\n"
            "entities:\n  vault:\n    classification: secret\n"
            f"trusted_clusters:\n  home:\n    master_hash: \"{trusted.hex()}\"\n"
            "    max_clearance: secret\n    default_clearance: secret\n")


def test_a_node_presenting_another_clusters_eid_as_source_is_refused_before_any_handler(
        ) -> None:
    """A's alice is cleared for B's secret `vault`; a node of cluster C, with its own valid
    keys, sends B requests whose source (key 5) is alice's EID, through its own transit
    sessions, to B's forwarding node and to the mirror: 3 of 3 at each are refused with
    712 and no handler runs. C calling as itself is
    refused by MAC (its session proves C), a request outside any session gets 701, and a
    session C's node opens on B's intra-cluster port (to send a "vouched" request) is
    dropped at once."""
    home_plan = ClusterPlan("home", (NodePlan("a1", "127.0.20.1", ("alice",)),))
    other_plan = ClusterPlan("other", (NodePlan("c1", "127.0.20.3", ("mallory",)),))

    async def main() -> None:
        home = await start_cluster(home_plan, FAST, seed=0)
        other = await start_cluster(other_plan, FAST, seed=2)
        vault_plan = ClusterPlan("vaults", (NodePlan("v0", "127.0.20.4", (), priority=10),
                                            NodePlan("v1", "127.0.20.2", ("vault",),
                                                     priority=20)),
                                 policy=vault_policy(home.cluster_id.master_hash))
        vaults = await start_cluster(vault_plan, FAST, seed=1)
        async with stopping(home, other, vaults):
            a1, c1, v1 = home.nodes["a1"], other.nodes["c1"], vaults.nodes["v1"]
            v0, vault = vaults.nodes["v0"], vaults.eid("vault")
            assert await whoami(a1, vault) == "v1", "alice is cleared (forwarded by v0)"
            assert v1.invoker is not None and c1.inter is not None
            ran = v1.invoker.statistics().get("calls", 0)
            with pytest.raises(NodeCallError) as info:
                await c1.call(vault, 1, 2, NOTHING, caller=b"mallory", timeout=5.0)
            assert info.value.code == ErrorCode.MAC_INSUFFICIENT_CLEARANCE
            stolen = a1.eid_for(b"alice")
            version = vaults.cluster_id.version
            for node in (v0, v1):  # the forwarding node, and the mirror directly
                for attempt in range(3):
                    body = NodeRequest(vault, 1, 1, dumps_typed(str, f"{SECRET}-{attempt}"),
                                       version, source=stolen).body()
                    reply = decode_reply(await c1.transit.caller.call(
                        c1.inter, node.addresses[0], vaults.cluster_id.master_hash,
                        encode_operation(body), timeout=5.0))
                    assert reply.code == ErrorCode.SOURCE_NOT_PROVEN, reply
            clear = NodeRequest(vault, 1, 2, NOTHING, version, source=stolen).body()
            refusal = decode_answer(await c1.inter.call(v1.addresses[0],
                                                        encode_operation(clear)))
            assert isinstance(refusal, TransitRefusal)
            assert refusal.code == ErrorCode.TRANSIT_REQUIRED
            assert c1.intra is not None
            vouched = NodeRequest(vault, 1, 2, NOTHING, version,
                                  vouched=Principal(vaults.cluster_id.master_hash, b"vault"))
            with pytest.raises(CallError):
                await c1.transit.caller.call(c1.intra, v1.addresses[1],
                                             vaults.cluster_id.master_hash,
                                             encode_operation(vouched.body()), timeout=0.5)
            assert v1.transit.intra.counts[ErrorCode.SOURCE_NOT_PROVEN] >= 1, \
                "B's intra port admits sessions from B's own nodes only"
            assert v1.invoker.statistics().get("calls", 0) == ran, "no handler ran for C"
            assert v0.invoker is not None and v0.invoker.statistics().get("calls", 0) == 0

    run(main)


# ----- 5. replays at loopback level -------------------------------------------------------

def first_datagram(datagrams: list[bytes], kind: int) -> bytes:
    """The first captured datagram whose transit message is of `kind`."""
    return next(d for d in datagrams if (p := payload_of(d)) is not None
                and message_type(p) == kind)


async def replayed(relay: UdpRelay, datagram: bytes, **how: bool) -> bytes | None:
    """Replay `datagram` through `relay` and wait for the node's answer (its transit
    payload: a refusal, or empty for a silent drop)."""
    client = relay.replay(datagram, **how)

    def answered() -> bool:
        return any(c.client == client and c.direction == "down" for c in relay.captured)

    await relay.wait_for(answered)
    answer = next(c.data for c in relay.captured if c.client == client and c.direction == "down")
    return payload_of(answer)


def refusal_code(answer: bytes | None) -> int | None:
    """The code of a transit refusal; None for an empty answer (dropped)."""
    if not answer:
        return None
    decoded = decode_answer(answer)
    assert isinstance(decoded, TransitRefusal), decoded
    return decoded.code


class HourLater:
    """Stands in for the `time` module of the transit shell: its clock is an hour ahead."""

    @staticmethod
    def time() -> float:
        return time.time() + 3600


def test_captured_requests_replayed_from_elsewhere_to_another_node_or_after_a_restart_run_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A first datagram and a session message are captured at b1's relay, then replayed:
    from another source address, from the caller's own address, to b2 (same cluster,
    another node), to b1 an hour later (its transit shell's clock moved on), and to b1
    after it restarted on the same ports (it has new transit keys
    then, so the first datagram is refused by its key id; its timestamp predates the
    restart too). Each handler ran once, for the genuine calls only."""
    async def main() -> None:
        home = await start_cluster(HOME, FAST, seed=0)
        away, relays = await fronted(PAIR, {"b1": "127.0.18.9", "b2": "127.0.18.10"}, seed=1)
        async with stopping(home, away, *relays.values()):
            a1, carol, relay = home.nodes["a1"], away.eid("carol"), relays["b1"]
            assert await echo(a1, carol, "first") == "first"
            assert await echo(a1, carol, "second") == "second"
            init, session = first_datagram(relay.up(), INIT), first_datagram(relay.up(), SESSION)
            b1, b2 = away.nodes["b1"], away.nodes["b2"]
            assert b1.invoker is not None and b2.invoker is not None
            assert b1.invoker.statistics().get("calls", 0) == 2
            for datagram in (init, session):
                assert refusal_code(await replayed(relay, datagram)) is None, "dropped"
            assert b1.transit.inter.counts[ErrorCode.REPLAYED] == 2
            caller = relay.captured[0].client
            for datagram in (init, session):  # from the caller's own address, then a call
                relay.replay(datagram, from_new_address=False, client=caller)
            assert await echo(a1, carol, "after") == "after"  # behind the replays
            assert b1.invoker.statistics().get("calls", 0) == 3
            assert refusal_code(await replayed(relays["b2"], init)) == \
                ErrorCode.UNKNOWN_TRANSIT_KEY, "b2's transit key is its own"
            assert refusal_code(await replayed(relays["b2"], session)) == \
                ErrorCode.UNKNOWN_SESSION
            with monkeypatch.context() as later:
                later.setattr(transit_host, "time", HourLater)
                assert refusal_code(await replayed(relay, init)) in (
                    ErrorCode.UNKNOWN_TRANSIT_KEY, ErrorCode.STALE_FIRST_DATAGRAM)
                assert refusal_code(await replayed(relay, session)) == \
                    ErrorCode.UNKNOWN_SESSION, "an hour later the session is gone"
            assert b1.invoker.statistics().get("calls", 0) == 3
            await b1.stop()
            restarted = await away.restart("b1")
            assert refusal_code(await replayed(relay, init)) in (
                ErrorCode.UNKNOWN_TRANSIT_KEY, ErrorCode.STALE_FIRST_DATAGRAM)
            assert refusal_code(await replayed(relay, session)) == ErrorCode.UNKNOWN_SESSION
            assert restarted.invoker is not None
            assert restarted.invoker.statistics().get("calls", 0) == 0
            assert await echo(a1, carol, "third") == "third", "callers open a new session"
            assert restarted.invoker.statistics().get("calls", 0) == 1
            assert b1.invoker.statistics().get("calls", 0) == 3
            assert b2.invoker.statistics().get("calls", 0) == 0

    run(main)


# ----- tampering on the path --------------------------------------------------------------

def flip_ciphertext(datagram: bytes) -> bytes:
    """The datagram with one byte of its transit message's tail flipped (the AEAD tag or
    ciphertext of a first datagram or session message); anything else unchanged."""
    payload = payload_of(datagram)
    if payload is None or message_type(payload) not in (INIT, SESSION):
        return datagram
    at = datagram.rindex(payload) + len(payload) - 1
    return datagram[:at] + bytes([datagram[at] ^ 0x01]) + datagram[at + 1:]


def test_altered_requests_are_dropped_unrun_and_the_call_fails_over() -> None:
    """A relay on the path to b1 flips a bit in every sealed request: b1 opens none of
    them (each counted as 704) and runs nothing; the caller, getting no answer, moves on
    to b2. Silence, not an error, so a man in the middle learns nothing new either."""
    async def main() -> None:
        home = await start_cluster(HOME, FAST, seed=0)
        away, relays = await fronted(PAIR, {"b1": "127.0.18.9"}, seed=1)
        relay = relays["b1"]
        relay.on_up = lambda data, client: [flip_ciphertext(data)]
        async with stopping(home, away, relay):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            assert await echo(a1, away.eid("carol"), SECRET) == SECRET
            assert await whoami(a1, away.eid("carol")) == "b2"
            assert INIT in transit_kinds(relay.up()), "the first datagram went to b1"
            assert b1.transit.inter.counts.get(ErrorCode.TRANSIT_OPEN_FAILED, 0) >= 1
            assert b1.invoker is not None and b1.invoker.statistics().get("calls", 0) == 0

    run(main)


def test_every_datagram_duplicated_on_the_path_still_runs_each_call_once() -> None:
    """A relay that sends every datagram twice, both ways (an immediate replay of each
    first datagram, session message and reply): every call succeeds and each ran once."""
    async def main() -> None:
        home = await start_cluster(HOME, FAST, seed=0)
        away, relays = await fronted(AWAY, {REPLY_TEXT: "127.0.12.9"}, seed=1)
        relay = relays[REPLY_TEXT]
        relay.on_up = relay.on_down = lambda data, client: [data, data]
        async with stopping(home, away, relay):
            a1, node = home.nodes["a1"], away.nodes[REPLY_TEXT]
            for i in range(5):
                assert await echo(a1, away.eid("carol"), f"{SECRET}-{i}") == f"{SECRET}-{i}"
            assert {INIT, SESSION} <= transit_kinds(relay.up())
            assert node.invoker is not None and node.invoker.statistics().get("calls", 0) == 5

    run(main)
