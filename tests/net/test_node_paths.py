"""Nodes on loopback (127.0.x.y): one call API for the three paths, failover, redirects,
the security gate, cluster-ID refresh. Bounded in time; every node is stopped."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.apps.echo import RAN, recorded_key
from mercury_rt.core.gate import MemorySpentStore
from mercury_rt.core.identity import (
    Eid,
    MintOptions,
    ServerAddress,
    change_addresses,
    issue_cluster_id,
    mint_eid,
)
from mercury_rt.core.node import (
    CallRequest,
    HeldMessage,
    HeldState,
    MemoryHeldStore,
    NodeRequest,
    RetryPolicy,
    decode_reply,
    encode_cluster_id_query,
    encode_operation,
    encode_state_fetch,
)
from mercury_rt.core.routing import NotMirroredChoice, RoutingConfig
from mercury_rt.core.transit.initiator import Finished, NeedKey, Pending, Prepared
from mercury_rt.core.transit.wire import TransitRefusal, decode_answer
from mercury_rt.core.transport import TransportConfig, wire
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan, start_cluster

pytestmark = pytest.mark.net
FAST = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0, reassembly_timeout=5.0)
NOTHING = dumps_typed(None, None)


@asynccontextmanager
async def clusters(*plans: ClusterPlan) -> AsyncIterator[list[LocalCluster]]:
    started: list[LocalCluster] = []
    try:
        for plan in plans:
            started.append(await start_cluster(plan, FAST, seed=len(started)))
        yield started
    finally:
        for cluster in started:
            await cluster.stop()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=30))


async def whoami(node: NodeRuntime, target: bytes) -> str:
    return str(loads_typed(str, await node.call(target, 1, 2, NOTHING, caller=b"alice")))


HOME = ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),
                            NodePlan("a2", "127.0.1.2", ("bob",))))
AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.2.1", ("carol",), priority=10),
                            NodePlan("b2", "127.0.2.2", ("carol",), priority=20)))


def test_one_api_reaches_this_node_the_cluster_and_another_cluster() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            before = a1.inter.core.stats.datagrams_out + a1.intra.core.stats.datagrams_out  # type: ignore[union-attr]
            assert await whoami(a1, home.eid("alice")) == "a1"
            after = a1.inter.core.stats.datagrams_out + a1.intra.core.stats.datagrams_out  # type: ignore[union-attr]
            assert after == before, "a call to an entity on the same node uses no network"
            assert await whoami(a1, home.eid("bob")) == "a2"
            assert await whoami(a1, away.eid("carol")) == "b1"
            echoed = await a1.call(away.eid("carol"), 1, 1, dumps_typed(str, "hi"),
                                   caller=b"alice")
            assert loads_typed(str, echoed) == "hi"

    run(main)


def test_calls_fail_over_to_the_next_priority_when_the_first_node_is_down() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            await away.nodes["b1"].stop()
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert await whoami(a1, away.eid("carol")) == "b2"
            assert loop.time() - start < 3 * FAST.initial_rto + 0.25

    run(main)


def test_a_node_that_does_not_mirror_the_entity_redirects_to_one_that_does() -> None:
    redirecting = ClusterPlan(
        "redir", (NodePlan("c1", "127.0.3.1", (), priority=10),
                  NodePlan("c2", "127.0.3.2", ("dave",), priority=20)),
        routing=RoutingConfig(not_mirrored=NotMirroredChoice.REDIRECT))
    forwarding = replace(redirecting, name="fwd", routing=RoutingConfig(),
                         nodes=(NodePlan("f1", "127.0.4.1", (), priority=10),
                                NodePlan("f2", "127.0.4.2", ("dave",), priority=20)))

    async def main() -> None:
        async with clusters(HOME, redirecting, forwarding) as (home, redir, fwd):
            a1 = home.nodes["a1"]
            assert await whoami(a1, redir.eid("dave")) == "c2"
            assert redir.nodes["c1"].inter.core.stats.datagrams_in > 0  # type: ignore[union-attr]
            assert await whoami(a1, fwd.eid("dave")) == "f2"
            assert fwd.nodes["f2"].inter.core.stats.datagrams_in == 0, "reached via f1"  # type: ignore[union-attr]

    run(main)


def test_hashcash_demands_are_met_and_mac_refusals_say_what_would_pass() -> None:
    guarded = replace(AWAY, name="guarded", policy=(
        "version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: public\n"
        "entities:\n  carol:\n    classification: public\n    hashcash_bits: 8\n"
        "  vault:\n    classification: secret\n"),
        nodes=(NodePlan("g1", "127.0.5.1", ("carol", "vault")),))

    async def main() -> None:
        async with clusters(HOME, guarded) as (home, away):
            a1 = home.nodes["a1"]
            assert await whoami(a1, away.eid("carol")) == "g1"
            assert len(away.nodes["g1"].core.spent) == 1  # type: ignore[arg-type]
            with pytest.raises(NodeCallError) as info:
                await whoami(a1, away.eid("vault"))
            assert info.value.code == ErrorCode.MAC_INSUFFICIENT_CLEARANCE
            assert "secret" in info.value.message

    run(main)


def test_unknown_entities_and_forged_intra_cluster_traffic_are_refused() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            with pytest.raises(NodeCallError) as info:
                await whoami(a1, away.eid("nobody"))
            assert info.value.code == ErrorCode.UNKNOWN_ENTITY
            ran_before = b1.invoker.statistics()  # type: ignore[union-attr]
            reply = await a1.inter.call(b1.addresses[1], b"\x80" * 40)  # type: ignore[union-attr]
            assert reply == b"", "a request outside a session gets nothing on the intra port"
            assert b1.invoker.statistics() == ran_before  # type: ignore[union-attr]

    run(main)


def test_a_caller_with_an_old_cluster_id_gets_and_keeps_the_newer_one() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            old_eid = away.eid("carol")
            moved = tuple(ServerAddress(a.host, a.port, 30 - a.priority, a.weight)
                          for a in away.cluster_id.addresses)
            newer = change_addresses(away.cluster_id, away.cluster_key, moved)
            for node in away.nodes.values():
                node.core.set_cluster_id(newer)
            assert await whoami(a1, old_eid) in ("b1", "b2")
            known = a1.planner.known[newer.master_hash]
            assert known.version == newer.version == 2
            assert await whoami(a1, old_eid) == "b2", "the new list puts b2 first"

    run(main)


def test_addresses_in_plans_are_real_loopback_hosts() -> None:
    for plan in (HOME, AWAY):
        for node in plan.nodes:
            assert ip_address(node.host).is_loopback


def test_a_one_way_message_to_an_unreachable_entity_is_held_then_delivered_once() -> None:
    quick = RetryPolicy(initial_delay=0.05, factor=2.0, max_delay=0.4, jitter=0.2, ttl=60.0)

    async def main() -> None:
        home = await start_cluster(HOME, FAST, seed=1, held_policy=quick)
        away = await start_cluster(AWAY, FAST, seed=2)
        try:
            a1 = home.nodes["a1"]
            delivered = await a1.send(away.eid("carol"), 1, 3, dumps_typed(str, "now"),
                                      caller=b"alice")
            assert isinstance(delivered, bytes) and away.notes["b1"] == ["now"]
            for node in away.nodes.values():
                await node.stop()
            held = await a1.send(away.eid("carol"), 1, 3, dumps_typed(str, "later"),
                                 caller=b"alice", timeout=5)
            assert isinstance(held, HeldMessage) and held.state is HeldState.PENDING
            assert [m.message_id for m in a1.held_messages(b"alice")] == [held.message_id]
            await away.restart("b2")
            final = await asyncio.wait_for(a1.message_settled(held.message_id), 10)
            assert final.state is HeldState.DELIVERED
            assert a1.message_status(held.message_id).state is HeldState.DELIVERED
            assert away.notes["b2"] == ["later"], "delivered exactly once, to the live node"
        finally:
            await home.stop()
            await away.stop()

    run(main)


def test_callers_holding_an_old_eid_follow_a_migrated_entity_to_its_new_cluster() -> None:
    new_home = ClusterPlan("newhome", (NodePlan("n1", "127.0.6.1", ("carol",)),))

    async def main() -> None:
        async with clusters(HOME, AWAY, new_home) as (home, away, moved_to):
            a1 = home.nodes["a1"]
            old_eid = away.eid("carol")
            for node in away.nodes.values():
                node.migrate(b"carol", moved_to.eid("carol"))
            assert await whoami(a1, old_eid) == "n1"
            forged = ClusterPlan("forger", (NodePlan("x1", "127.0.7.1", ()),))
            async with clusters(forged) as (forger,):
                for node in away.nodes.values():
                    node.migrate(b"carol", moved_to.eid("carol"))
                    record = node.core.state.view.moved[b"carol"]
                    bad = replace(record, signature=forger.cluster_key.sign(b"x"))
                    node.core.state.view = replace(node.core.state.view,
                                                   moved={b"carol": bad})
                with pytest.raises(NodeCallError) as info:
                    await whoami(a1, old_eid)
                assert info.value.code in (ErrorCode.FORWARDING_SIGNATURE_INVALID,
                                           ErrorCode.NO_NODE_ANSWERED)

    run(main)


def test_a_caller_looping_on_local_calls_does_not_starve_the_node() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, stop = home.nodes["a1"], asyncio.Event()
            local_calls = 0

            async def busy() -> None:
                nonlocal local_calls
                while not stop.is_set():
                    await a1.call(home.eid("alice"), 1, 2, NOTHING, caller=b"alice")
                    local_calls += 1

            looping = asyncio.ensure_future(busy())
            assert await whoami(away.nodes["b1"], home.eid("alice")) == "a1"
            stop.set()
            await looping
            assert local_calls > 0

    run(main)


def test_a_caller_with_a_hashes_only_eid_is_verified_after_a_key_fetch() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            hashes_only = mint_eid(home.cluster_key, home.cluster_id, b"alice",
                                   options=MintOptions(full_keys=False)).encode()
            a1.eid_for = lambda local, persona=None: hashes_only  # type: ignore[method-assign]
            b1 = away.nodes["b1"]
            assert b1.core.verifier.ring.master_key(home.cluster_id.master_hash) is None
            assert await whoami(a1, away.eid("carol")) == "b1"
            assert b1.core.verifier.ring.master_key(home.cluster_id.master_hash) is not None

    run(main)


def test_a_caller_eid_lacking_only_its_cert_triggers_a_key_fetch() -> None:
    """Keys inline but no certificate: below level 3, so the node fetches (item 12)."""
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            no_cert = mint_eid(home.cluster_key, home.cluster_id, b"alice",
                               options=MintOptions(full_keys=True, include_cert=False)).encode()
            a1.eid_for = lambda local, persona=None: no_cert  # type: ignore[method-assign]
            assert await whoami(a1, away.eid("carol")) == "b1"
            assert list(b1.core._fetched) == [home.cluster_id.master_hash]

    run(main)


def test_requests_arriving_during_a_key_fetch_wait_for_it_and_run() -> None:
    """Every request from a hashes-only caller that arrives while the node fetches its
    cluster's keys is answered once the keys arrive, not refused 620 (issue 16 item 9)."""
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            hashes_only = mint_eid(home.cluster_key, home.cluster_id, b"alice",
                                   options=MintOptions(full_keys=False)).encode()
            a1.eid_for = lambda local, persona=None: hashes_only  # type: ignore[method-assign]
            carol = away.eid("carol")
            answers = await asyncio.gather(*(whoami(a1, carol) for _ in range(6)))
            assert answers == ["b1"] * 6
            assert list(b1.core._fetched) == [home.cluster_id.master_hash], "one fetch"

    run(main)


def test_key_fetches_for_unverifiable_callers_are_rate_limited() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
            nowhere = ServerAddress(ip_address("127.0.9.9"), 9, 10, 10)
            bogus = issue_cluster_id(master, key, [nowhere])
            hashes_only = mint_eid(key, bogus, b"mallory",
                                   options=MintOptions(full_keys=False)).encode()
            a1.eid_for = lambda local, persona=None: hashes_only  # type: ignore[method-assign]
            loop = asyncio.get_running_loop()
            for attempt in range(2):
                start = loop.time()
                with pytest.raises(NodeCallError) as info:
                    await whoami(a1, away.eid("carol"))
                assert info.value.code == ErrorCode.SOURCE_UNVERIFIED
                if attempt == 1:
                    assert loop.time() - start < FAST.initial_rto, "no second fetch"
            assert list(b1.core._fetched) == [bogus.master_hash]

    run(main)


def test_a_retried_message_is_not_run_again_by_a_restarted_node() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, target = home.nodes["a1"], away.eid("carol")
            message_id = b"m" * 16
            note = dumps_typed(str, "once")
            await a1._deliver(_message(target, note, message_id), 5.0)
            await away.nodes["b1"].stop()
            await away.restart("b1")
            await a1._deliver(_message(target, note, message_id), 5.0)
            assert away.notes["b1"] == ["once"]
            assert away.nodes["b1"].core.duplicates == 1

    run(main)


def _decoded(eid: bytes) -> Eid:
    return Eid.decode(eid)


def _message(eid: bytes, note: bytes, message_id: bytes) -> CallRequest:
    return CallRequest(_decoded(eid), 1, 3, note, b"alice", message_id[:8],
                       message_id=message_id)


def test_a_node_uses_the_durable_stores_it_is_given_even_when_empty() -> None:
    async def main() -> None:
        async with clusters(HOME) as (home,):
            spec = home.nodes["a1"].spec
            spec.spent, spec.held_store = MemorySpentStore(10), MemoryHeldStore()
            spec.delivered = MemorySpentStore(10)
            node = NodeRuntime(spec)
            assert node.core.spent is spec.spent
            assert node.core.delivered is spec.delivered
            assert node.held._store is spec.held_store

    run(main)


def test_remote_state_runs_the_call_on_the_receiving_node_with_state_on_a_mirror() -> None:
    """routing.not_mirrored: remote-state. r1 (first in SRV order) mirrors nothing: it
    runs the request itself and its write lands in the state of m1, which mirrors the
    entity. A one-way message with an id is forwarded to m1 (which remembers the id),
    and a state request reaching the public port is refused."""
    remote = ClusterPlan(
        "rstate", (NodePlan("r1", "127.0.6.1", (), priority=10),
                   NodePlan("m1", "127.0.6.2", ("dave",), priority=20)),
        routing=RoutingConfig(not_mirrored=NotMirroredChoice.RUN_WITH_REMOTE_STATE),
        record_state=True)

    async def main() -> None:
        async with clusters(HOME, remote) as (home, rs):
            a1, r1, m1 = home.nodes["a1"], rs.nodes["r1"], rs.nodes["m1"]
            assert await whoami(a1, rs.eid("dave")) == "r1"
            echoed = await a1.call(rs.eid("dave"), 1, 1, dumps_typed(str, "hi"),
                                   caller=b"alice")
            assert loads_typed(str, echoed) == "hi"
            with m1.spec.store.reading() as view:
                assert view.get(b"dave", Symbol(RAN), ("hi",)) == ("r1",)
            with r1.spec.store.reading() as view:
                assert view.scan(b"dave", Symbol(RAN)) == []
            assert m1.invoker.counters["remote_commits"] == 1  # type: ignore[union-attr]
            assert await a1.send(rs.eid("dave"), 1, 3, dumps_typed(str, "n1"),
                                 caller=b"alice")
            assert rs.notes["m1"] == ["n1"] and rs.notes["r1"] == []
            fetch = encode_state_fetch(b"dave")
            clear = decode_answer(await a1.inter.call(m1.addresses[0], fetch))  # type: ignore[union-attr]
            assert isinstance(clear, TransitRefusal)
            assert clear.code == ErrorCode.TRANSIT_REQUIRED
            assert a1.inter is not None
            sent = await a1.transit.caller.call(a1.inter, m1.addresses[0],
                                                rs.cluster_id.master_hash, fetch)
            assert decode_reply(sent).code == ErrorCode.BAD_REMOTE_STATE

    run(main)


def test_every_gate_decision_is_written_to_the_audit_log(tmp_path: Path) -> None:
    """With an audit file configured, each allow and each refusal is one JSON line naming
    the target, the rule and who sent it."""
    guarded = replace(AWAY, name="audited", policy=(
        "version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: public\n"
        "entities:\n  carol:\n    classification: public\n"
        "  vault:\n    classification: secret\n"),
        nodes=(NodePlan("g1", "127.0.5.2", ("carol", "vault")),))
    audit = tmp_path / "audit.jsonl"

    async def main() -> None:
        async with clusters(HOME, guarded) as (home, away):
            g1 = away.nodes["g1"]
            await g1.stop()
            g1.spec.audit_file = audit
            await away.restart("g1")
            a1 = home.nodes["a1"]
            assert await whoami(a1, away.eid("carol")) == "g1"
            with pytest.raises(NodeCallError):
                await whoami(a1, away.eid("vault"))

    run(main)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["target"].split("/")[0], r["outcome"]) for r in lines] == [
        ("carol", "allow"), ("vault", "deny")]
    assert lines[1]["error"] == "MAC_INSUFFICIENT_CLEARANCE"
    assert lines[0]["originator"]["local"] == "alice"


def test_a_forwarding_node_passes_over_a_dead_mirror_to_a_live_one() -> None:
    """Right after a mirror dies (before membership notices), every call through the
    front node still lands on the other mirror (issue 16, item 1)."""
    plan = ClusterPlan("fwd2", (NodePlan("g1", "127.0.5.1", (), priority=10),
                                NodePlan("g2", "127.0.5.2", ("dave",), priority=20),
                                NodePlan("g3", "127.0.5.3", ("dave",), priority=30)))

    async def main() -> None:
        async with clusters(HOME, plan) as (home, fwd):
            a1, g1 = home.nodes["a1"], fwd.nodes["g1"]
            dave = fwd.eid("dave")
            await fwd.nodes["g2"].stop()
            assert g1.core.state.view.nodes[b"g2"].alive, "membership has not noticed yet"
            answers = [await whoami(a1, dave) for _ in range(8)]
            assert answers == ["g3"] * 8
            assert fwd.nodes["g3"].inter.core.stats.datagrams_in == 0, "all via g1"  # type: ignore[union-attr]

    run(main)


def test_a_node_call_over_the_transports_max_message_fails_with_202() -> None:
    """Our own size bound surfaces as the documented NodeCallError, not TransportError."""
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            huge = b"x" * (FAST.max_message + 1)
            with pytest.raises(NodeCallError) as info:
                await a1.call(away.eid("carol"), 1, 1, huge, caller=b"alice")
            assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE
            assert await whoami(a1, away.eid("carol")) == "b1"

    run(main)


def test_the_demo_echo_app_echoes_texts_of_any_size_and_records_each_run() -> None:
    """A long text is recorded under its digest (a state key is bounded), so it echoes
    instead of failing with 427 (issue 16 item 8)."""
    recording = replace(AWAY, name="rec", record_state=True)

    async def main() -> None:
        async with clusters(HOME, recording) as (home, rec):
            a1, b1 = home.nodes["a1"], rec.nodes["b1"]
            for size in (1, 200, 201, 480, 600, 100_000):
                text = "é" * (size // 2) + "x" * (size % 2)
                echoed = await a1.call(rec.eid("carol"), 1, 1, dumps_typed(str, text),
                                       caller=b"alice")
                assert loads_typed(str, echoed) == text
                with b1.spec.store.reading() as view:
                    assert view.get(b"carol", Symbol(RAN), recorded_key(text)) == ("b1",)

    run(main)


def _exchange(address: tuple[str, int], payload: bytes, ttl_ms: int = 10_000) -> list[object]:
    """Send one transport REQUEST from a raw loopback socket; the datagrams that come
    back until the REPLY (protocol.md 6.9: when a node acknowledges)."""
    limits = TransportConfig().limits
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.bind(("127.0.0.9", 0))
        raw.settimeout(5.0)
        raw.sendto(wire.encode(wire.Request((0x77 << 32) + 1, ttl_ms, 0, 1, 0, 0, payload)),
                   address)
        got: list[object] = []
        while not got or not isinstance(got[-1], wire.Reply):
            got.append(wire.decode_datagram(raw.recv(65_536), limits))
        return got


async def first_datagram(caller: NodeRuntime, address: tuple[str, int], target: bytes,
                         payload: bytes) -> tuple[bytes, Pending]:
    """An INIT from `caller` carrying `payload` to the cluster of EID `target` (verified
    first, then the node's transit key fetched), and what opening the answer needs:
    raw-socket tests send it themselves."""
    master_hash = caller.core.verifier.verify(target).principal.cluster
    init = caller.transit.initiator
    step = init.prepare(address, master_hash, 2, payload, time.time())
    if isinstance(step, NeedKey):
        assert caller.inter is not None
        init.learn_key(address, master_hash, await caller.inter.call(address, step.query),
                       time.time())
        step = init.prepare(address, master_hash, 2, payload, time.time())
    assert isinstance(step, Prepared)
    return step.datagram, step.pending


def opened(caller: NodeRuntime, pending: Pending, reply: object) -> bytes:
    assert isinstance(reply, wire.Reply)
    result = caller.transit.initiator.finish(pending, reply.payload, time.time())
    assert isinstance(result, Finished)
    return result.reply


def test_a_node_acks_every_operation_at_once_but_never_a_key_query() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            b1 = away.nodes["b1"]
            address = b1.addresses[0]
            query = encode_cluster_id_query(away.cluster_id.master_hash)
            got = await asyncio.to_thread(_exchange, address, query)
            assert [type(d) for d in got] == [wire.Reply]
            a1 = home.nodes["a1"]
            body = NodeRequest(away.eid("carol"), 1, 2, NOTHING, version=1,
                               source=home.eid("alice")).body()
            init, _ = await first_datagram(a1, address, away.eid("carol"),
                                           encode_operation(body))
            got = await asyncio.to_thread(_exchange, address, init)
            assert [type(d) for d in got] == [wire.Ack, wire.Reply]
            refused = NodeRequest(away.eid("nobody"), 1, 2, NOTHING, version=1,
                                  source=home.eid("alice")).body()
            init, _ = await first_datagram(a1, address, away.eid("carol"),
                                           encode_operation(refused))
            got = await asyncio.to_thread(_exchange, address, init)
            assert [type(d) for d in got] == [wire.Reply], "refusals are answered at once"

    run(main)


def test_a_request_with_ttl_0_is_acknowledged_then_answered_431() -> None:
    """ttl 0 is admitted with a deadline of its arrival: the node ACKs the operation and
    its handler never starts (issue 16 item 21)."""
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            body = NodeRequest(away.eid("carol"), 1, 2, NOTHING, version=1,
                               source=home.eid("alice")).body()
            address, a1 = away.nodes["b1"].addresses[0], home.nodes["a1"]
            init, pending = await first_datagram(a1, address, away.eid("carol"),
                                                 encode_operation(body))
            got = await asyncio.to_thread(_exchange, address, init, 0)
            assert [type(d) for d in got] == [wire.Ack, wire.Reply]
            reply = opened(a1, pending, got[-1])
            assert decode_reply(reply).code == ErrorCode.DEADLINE_EXPIRED

    run(main)
