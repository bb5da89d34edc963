"""Typed clients between real nodes on loopback: a handler on cluster A calls an entity
on cluster B through `ctx.calls`, as itself or as one of its personas; callers address a
persona of the target; one-way messages; errors name the node's incident."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from carbon.error_codes import ErrorCode
from carbon.principal import Persona
from mercury_rt.aio.node_runtime import EID_CACHE_LIMIT, NodeCallError
from mercury_rt.apps import NodeApp
from mercury_rt.testing.clusters import app_network
from tests.devapp_support import ADMIN, COUNTER, RELAY, VIP, WHO, broken, setup

pytestmark = pytest.mark.net


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_handler_on_cluster_a_calls_cluster_b_as_itself_and_as_its_persona() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities={0: ["alice"], 1: ["carol"]},
                               clusters=2) as net:
            relay = net.client(net.eid("alice", cluster=0), RELAY, caller="dave")
            carol = net.eid("carol", cluster=1)
            plain = await relay.add_remote(target=carol, n=5, as_admin=False)
            assert plain == {"total": 5, "seen_as": "alice", "persona": None}
            admin = await relay.add_remote(target=carol, n=2, as_admin=True)
            assert admin == {"total": 7, "seen_as": "alice", "persona": ADMIN.cls.text}
            counter = net.client(carol, COUNTER, cluster=1)
            assert await counter.total() == 7, "carol's state on cluster B holds both adds"
    _run(scenario)


def test_a_caller_acts_as_a_persona_and_addresses_the_targets_persona() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities={0: ["alice"], 1: ["carol"]},
                               clusters=2) as net:
            b_node = net.node(cluster=1)
            carol_vip = b_node.eid_for(b"carol", Persona(VIP, {"tier": 1}))
            who = net.client(carol_vip, WHO, caller="alice", persona=ADMIN)
            assert await who.whoami() == {"local": "alice", "persona": ADMIN.cls.text,
                                          "vip": True}
            plain = net.client(net.eid("carol", cluster=1), WHO, caller="alice")
            assert await plain.whoami() == {"local": "alice", "persona": None, "vip": False}
            same_cluster = net.client(net.eid("alice"), WHO, caller="bob", persona=ADMIN)
            assert await same_cluster.whoami() == {"local": "bob", "persona": ADMIN.cls.text,
                                                   "vip": False}
    _run(scenario)


def test_a_one_way_message_through_the_typed_client() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities=["alice"], clusters=2) as net:
            counter = net.client(net.eid("alice", cluster=1), COUNTER, caller="bob")
            assert await counter.add(n=3) == 3
            receipt = await counter.reset()
            assert isinstance(receipt, bytes) and len(receipt) == 16, "delivered, not held"
            assert await counter.total() == 0
    _run(scenario)


def _with_broken(app: NodeApp) -> None:
    app.registry.register("test.broken", broken)
    app.attach_to_mirrors(COUNTER, endpoint=4, handlers={"add": "test.broken"})


def test_a_failing_handler_names_the_nodes_incident() -> None:
    async def scenario() -> None:
        async with app_network(apps=[_with_broken], entities=["alice"], nodes=1) as net:
            counter = net.client(net.eid("alice"), COUNTER, caller="bob")
            with pytest.raises(NodeCallError) as info:
                await counter.add(n=1)
            assert info.value.code is ErrorCode.HANDLER_FAILED
            assert "incident c0-n0-" in info.value.message
            assert "secret" not in info.value.message
    _run(scenario)


def test_a_persona_crosses_the_intra_cluster_path() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities=["alice", "carol"], nodes=2) as net:
            who = net.client(net.eid("carol"), WHO, caller="bob", node=0, persona=ADMIN)
            assert await who.whoami() == {"local": "bob", "persona": ADMIN.cls.text,
                                          "vip": False}
            caller_node, mirror = net.node(node=0).invoker, net.node(node=1).invoker
            assert caller_node is not None and mirror is not None
            assert (caller_node.counters["calls"], mirror.counters["calls"]) == (0, 2), \
                "carol's mirror (node 1) ran endpoint 0 and whoami, over the intra path"
    _run(scenario)


def test_a_message_sent_as_a_persona_is_refused_rather_than_held() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities=["alice"], clusters=2) as net:
            target = net.eid("alice", cluster=1)
            await net.clusters[1].stop()
            as_admin = net.client(target, COUNTER, caller="bob", persona=ADMIN, endpoint=4,
                                  timeout=2.0)
            with pytest.raises(NodeCallError):
                await as_admin.reset()
            plain = net.client(target, COUNTER, caller="bob", endpoint=4, timeout=2.0)
            held = await plain.reset()
            assert not isinstance(held, bytes), "without a persona the message is held"
            assert net.node().held_messages(b"bob") == [held]
    _run(scenario)


def test_a_nodes_eid_cache_stays_bounded_however_many_personas_it_names() -> None:
    async def scenario() -> None:
        async with app_network(apps=[setup], entities=["alice"]) as net:
            node = net.node()
            for i in range(EID_CACHE_LIMIT + 10):
                node.eid_for(b"alice", Persona(VIP, i))
            assert len(node._eids) <= EID_CACHE_LIMIT
            who = net.client(node.eid_for(b"alice", Persona(VIP, 7)), WHO, caller="bob")
            assert (await who.whoami())["vip"] is True, "EIDs minted after a reset still work"
    _run(scenario)
