"""Connections over real sockets between two clusters, in transit sessions: open,
requests and messages both ways with the same id at both ends, close, and failover to
another mirror of the far entity (docs/protocol.md 5.9)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from carbon.error_codes import ErrorCode
from carbon.types import dumps_typed, loads_typed
from lithium.connections import read_connection, record_connection
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.core.connections import (
    ConnectionField,
    ConnectionForm,
    ConnectionLimits,
    ConnectionSettings,
    Phase,
    Reservation,
)
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import CallRequest
from mercury_rt.localcluster import ClusterPlan, NodePlan
from tests.net.connection_apps import OPENER_OFFERS, Runs, offer_hear, serve_chat
from tests.net.test_node_paths import AWAY, HOME, clusters, run

pytestmark = pytest.mark.net


def _text(value: str) -> bytes:
    return dumps_typed(str, value)


def test_open_use_both_ways_and_close_between_two_clusters() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            runs = Runs()
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", runs)
            offer_hear(a1, "a1", runs)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice", offers=OPENER_OFFERS)
            cid = conn.connection_id
            assert len(cid) == 16
            assert loads_typed(str, conn.reply) == "welcome alice"
            assert conn.peer_offers == ((1, "/test/talk/v1"),)
            said = await conn.request(1, 1, _text("hello"))
            assert loads_typed(str, said) == "b1:hello"
            await conn.send(1, 2, _text("fyi"))

            back = b1.connections.served(b"carol", cid)
            assert back.connection_id == cid
            heard = await back.request(1, 1, _text("are you there"))
            assert loads_typed(str, heard) == "heard are you there"
            await back.send(1, 2, _text("noted"))

            assert {(r[1], r[2], r[3]) for r in runs.seen} == {
                ("chat.open", cid, b"alice"), ("talk.say", cid, b"alice"),
                ("talk.tell", cid, b"alice"), ("hear.ask", cid, b"carol"),
                ("hear.note", cid, b"carol")}, "one id at both ends, the right caller each way"
            assert [len(runs.of(h)) for h in ("talk.say", "talk.tell", "hear.note")] == [1, 1, 1]
            assert b1.core.connections.traffic(b"carol", cid) == 2, "counted where served"
            assert b1.core.connections.statistics()["served"] == 1
            assert a1.inter.core.stats.datagrams_out > 0  # type: ignore[union-attr]
            assert b1.transit.inter.session_count >= 1, "it travelled in a transit session"

            await conn.close()
            with b1.spec.store.reading() as view:
                assert read_connection(view, b"carol", cid) is None, "closed at the far end"
            with a1.spec.store.reading() as view:
                assert read_connection(view, b"alice", cid) is None, "closed here"
            with pytest.raises(NodeCallError) as info:
                await conn.request(1, 1, _text("after close"))
            assert info.value.code == ErrorCode.CONNECTION_CLOSED
            with pytest.raises(NodeCallError) as info:
                await back.request(1, 1, _text("after close"))
            assert info.value.code == ErrorCode.CONNECTION_CLOSED, "the peer's close ended it"
            with pytest.raises(NodeCallError) as info:
                b1.connections.served(b"carol", cid)
            assert info.value.code == ErrorCode.CONNECTION_UNKNOWN

    run(main)


def test_a_stranger_cannot_use_or_close_someone_elses_connection() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, a2 = home.nodes["a1"], home.nodes["a2"]
            runs = Runs()
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", runs)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice")
            forged = CallRequest(Eid.decode(away.eid("carol")), 1, 1, _text("me too"), b"bob",
                                 b"k" * 8, connection=ConnectionField(ConnectionForm.USE,
                                                                       conn.connection_id))
            reply = await a2.run_call(forged, 10.0)
            assert reply.code == ErrorCode.CONNECTION_NOT_PEER
            assert runs.of("talk.say") == []
            said = await conn.request(1, 1, _text("still mine"))
            assert loads_typed(str, said) == "b1:still mine"

    run(main)


def test_the_far_node_dies_and_the_next_request_is_served_by_another_mirror() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            runs = Runs()
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", runs)
            offer_hear(a1, "a1", runs)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice", offers=OPENER_OFFERS)
            cid = conn.connection_id
            assert loads_typed(str, await conn.request(1, 1, _text("one"))) == "b1:one"
            await away.nodes["b1"].stop()
            await conn.send(1, 2, _text("first after the failover"))
            assert [r[0] for r in runs.of("talk.tell")] == ["b2"], "the message ran once"
            assert loads_typed(str, await conn.request(1, 1, _text("two"))) == "b2:two"
            reopened = [r for r in runs.of("chat.open") if r[0] == "b2"]
            assert [(r[2], r[5]) for r in reopened] == [(cid, True)], \
                "b2's connection handler was told it re-establishes the same id"
            assert [r[0] for r in runs.of("talk.say")] == ["b1", "b2"], "each ran once"
            assert conn.connection_id == cid and conn.counters["reopened"] == 1
            back = away.nodes["b2"].connections.served(b"carol", cid)
            heard = await back.request(1, 1, _text("from b2"))
            assert loads_typed(str, heard) == "heard from b2"
            await conn.close()

    run(main)


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `condition` until it holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_the_sender_keeps_its_reservation_and_reports_a_smaller_one_after_failover() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1 = home.nodes["a1"]
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", Runs())
            away.nodes["b2"].core.connections.limits = ConnectionLimits(reservable=500)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice",
                                             reservation=Reservation(2000, 200))
            assert conn.state.granted == Reservation(2000, 200)
            back = away.nodes["b1"].connections.served(b"carol", conn.connection_id)
            assert back.state.granted == Reservation(2000, 200), "both ends send within it"
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(6):
                await conn.request(1, 1, _text("x" * 95 + str(i)))  # 100 bytes each
            assert loop.time() - start >= (600 - 200) / 2000 - 0.01, "rate held"
            assert conn.counters["waited"] >= 1
            await away.nodes["b1"].stop()
            assert loads_typed(str, await conn.request(1, 1, _text("on"))) == "b2:on"
            assert [(r.asked, r.granted) for r in conn.reservation_reports] == [
                (Reservation(2000, 200), Reservation(500, 200))]
            assert conn.state.granted == Reservation(500, 200)

    run(main)


def test_bounds_refuse_with_their_code_and_idle_connections_are_swept() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", Runs())
            b1.core.connections.limits = ConnectionLimits(per_peer=1, idle_timeout=0.3)
            b1.connections.sweep_every = 0.05
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("one"),
                                             caller=b"alice")
            with pytest.raises(NodeCallError) as info:
                await a1.connections.open(away.eid("carol"), 2, 1, _text("two"),
                                          caller=b"alice")
            assert info.value.code == ErrorCode.TOO_MANY_PEER_CONNECTIONS
            assert len(a1.connections) == 1, "the refused open left no handle"
            cid = conn.connection_id

            await _until(lambda: not _has_record(b1, b"carol", cid))
            assert len(b1.core.connections) == 0
            said = await conn.request(1, 1, _text("back"))
            assert loads_typed(str, said) == "b1:back", "the opener re-established it"
            assert conn.counters["reopened"] == 1

    run(main)


def _has_record(node: NodeRuntime, entity: bytes, cid: bytes) -> bool:
    with node.spec.store.reading() as view:
        return read_connection(view, entity, cid) is not None


def test_an_idle_connection_closes_at_both_ends() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", Runs())
            a1.connections.settings = ConnectionSettings(idle_timeout=0.2)
            a1.connections.sweep_every = 0.05
            idle = await a1.connections.open(away.eid("carol"), 2, 1, _text("idle"),
                                             caller=b"alice")
            cid = idle.connection_id
            assert _has_record(b1, b"carol", cid) and _has_record(a1, b"alice", cid)
            await _until(lambda: idle.state.phase is Phase.CLOSED)
            assert idle.state.ended == ErrorCode.CONNECTION_IDLE
            assert not _has_record(b1, b"carol", cid) and not _has_record(a1, b"alice", cid)
            with pytest.raises(NodeCallError) as info:
                await idle.request(1, 1, _text("late"))
            assert info.value.code == ErrorCode.CONNECTION_IDLE

    run(main)


def test_the_gate_decides_calls_back_with_the_server_entity_as_caller() -> None:
    guarded = replace(HOME, name="guarded", policy=(
        "version: 1\nlevels: [public]\nunknown_cluster_clearance: public\n"
        "entities:\n  alice:\n    endpoints:\n      1:\n        operations:\n"
        "          1: {acl: {allow: [bob]}}\n"))

    async def main() -> None:
        async with clusters(guarded, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            runs = Runs()
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", runs)
            offer_hear(a1, "a1", runs)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice", offers=OPENER_OFFERS)
            back = b1.connections.served(b"carol", conn.connection_id)
            with pytest.raises(NodeCallError) as info:
                await back.request(1, 1, _text("let me in"))
            assert info.value.code == ErrorCode.DAC_NOT_ON_ALLOW_LIST, "carol is not bob"
            await back.send(1, 2, _text("operation 2 is open"))
            assert [r[1] for r in runs.seen if r[0] == "a1"] == ["hear.note"]

    run(main)


def test_the_server_closes_and_a_vanished_peer_ends_the_connection() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", Runs())
            offer_hear(a1, "a1", Runs())
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("one"),
                                             caller=b"alice", offers=OPENER_OFFERS)
            await b1.connections.served(b"carol", conn.connection_id).close()
            assert conn.state.phase is Phase.CLOSED, "the opener's handle saw the close"
            assert not _has_record(a1, b"alice", conn.connection_id)
            assert not _has_record(b1, b"carol", conn.connection_id)

            gone = await a1.connections.open(away.eid("carol"), 2, 1, _text("two"),
                                             caller=b"alice", offers=OPENER_OFFERS)
            for node in away.nodes.values():
                await node.stop()
            codes = []
            for _ in range(3):
                with pytest.raises(NodeCallError) as info:
                    await gone.request(1, 1, _text("anyone?"), timeout=5.0)
                codes.append(info.value.code)
            assert codes == [ErrorCode.NO_NODE_ANSWERED] * 3, "each use says what happened"
            assert gone.state.phase is Phase.CLOSED
            assert gone.state.ended == ErrorCode.CONNECTION_PEER_VANISHED
            with pytest.raises(NodeCallError) as info:
                await gone.request(1, 1, _text("still?"))
            assert info.value.code == ErrorCode.CONNECTION_PEER_VANISHED

    run(main)


def test_a_connections_uses_stay_on_one_mirror_behind_a_forwarding_node() -> None:
    forwarding = ClusterPlan("fwd", (NodePlan("f1", "127.0.4.1", (), priority=10),
                                     NodePlan("f2", "127.0.4.2", ("dave",), priority=20),
                                     NodePlan("f3", "127.0.4.3", ("dave",), priority=20)))

    async def main() -> None:
        async with clusters(HOME, forwarding) as (home, fwd):
            a1 = home.nodes["a1"]
            runs = Runs()
            for node_id, node in fwd.nodes.items():
                serve_chat(node, node_id, b"dave", runs)
            served_by = set()
            for _ in range(3):
                conn = await a1.connections.open(fwd.eid("dave"), 2, 1, _text("alice"),
                                                 caller=b"alice")
                said = {loads_typed(str, await conn.request(1, 1, _text(str(i))))
                        .split(":")[0] for i in range(8)}
                assert len(said) == 1 and conn.counters["reopened"] == 0, \
                    "every use reached the mirror that took the open"
                served_by |= said
                await conn.close()
            assert served_by <= {"f2", "f3"}

    run(main)


def test_with_the_record_replicated_the_next_mirror_serves_without_reopening() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1, b2 = home.nodes["a1"], away.nodes["b1"], away.nodes["b2"]
            runs = Runs()
            for node_id, node in away.nodes.items():
                serve_chat(node, node_id, b"carol", runs)
            conn = await a1.connections.open(away.eid("carol"), 2, 1, _text("alice"),
                                             caller=b"alice")
            cid = conn.connection_id
            with b1.spec.store.reading() as view:  # what replicated entity state would do
                record = read_connection(view, b"carol", cid)
            assert record is not None
            b2.spec.store.apply(lambda txn: record_connection(txn, b"carol", cid, record))
            await b1.stop()
            assert loads_typed(str, await conn.request(1, 1, _text("on"))) == "b2:on"
            assert conn.counters["reopened"] == 0
            assert [r[0] for r in runs.of("chat.open")] == ["b1"], "no handler ran again"

    run(main)
