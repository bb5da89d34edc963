"""The `mercury_network` fixture as an app developer uses it: no set-up code, the app
named as in a node config, real nodes of two clusters, every one stopped afterwards."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from carbon.principal import Persona
from mercury_rt.apps import AppError
from mercury_rt.testing.clusters import NetworkStarter
from tests.devapp_support import ADMIN, COUNTER, RELAY, VIP, WHO

pytestmark = pytest.mark.net


def test_the_plugin_is_registered_for_pytest() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("mercury_rt") == "mercury_rt.testing.pytest_plugin"


def test_the_developers_app_runs_on_two_clusters(mercury_network: NetworkStarter) -> None:
    net = mercury_network(apps=["tests.devapp_support"], entities=["alice", "carol"],
                          clusters=2, nodes=2)
    alice, carol = net.eid("alice", cluster=0), net.eid("carol", cluster=1)
    counter = net.client(carol, COUNTER, caller="bob")
    relay = net.client(alice, RELAY, caller="bob")

    async def scenario() -> None:
        assert await counter.add(n=2) == 2
        await counter.reset()  # one-way
        assert await counter.total() == 0
        assert await relay.add_remote(target=carol, n=4, as_admin=True) == {
            "total": 4, "seen_as": "alice", "persona": ADMIN.cls.text}
        vip = net.node(cluster=1, node=1).eid_for(b"carol", Persona(VIP))
        assert (await net.client(vip, WHO, caller="bob").whoami())["vip"] is True
    net.run(scenario())
    assert net.run(counter.total()) == 4, "state persists between runs on the same nodes"
    assert len(net.clusters) == 2 and all(len(c.nodes) == 2 for c in net.clusters)


def test_every_node_is_stopped_when_the_test_ends(mercury_network: NetworkStarter) -> None:
    net = mercury_network(apps=["tests.devapp_support"], entities=["alice"])
    node = net.node()
    mercury_network.close()
    assert node.inter is not None and node.inter.closed.is_set()
    assert mercury_network.loop.is_closed()


def test_a_misspelt_app_is_reported_by_name(mercury_network: NetworkStarter) -> None:
    with pytest.raises(AppError, match=r"tests\.no_such_app"):
        mercury_network(apps=["tests.no_such_app"], entities=["alice"])
