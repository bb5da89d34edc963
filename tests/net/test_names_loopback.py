"""Readable names through the node API, in-process on 127.0.0.1: a node publishes, a
client node resolves and pins, and `call_traced` says which node answered."""

from __future__ import annotations

import asyncio

import pytest

from carbon.error_codes import ErrorCode
from carbon.names import NAMING_SPEC, NamePinMismatchError
from carbon.types import dumps_typed, loads_typed
from lithium.bindings import read_interface_map
from mercury_rt.aio.names import NAMING_ENTITY
from mercury_rt.aio.node_runtime import NodeCallError
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import CallRequest
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from mercury_rt.tool_client import throwaway_client

pytestmark = pytest.mark.net
PLAN = ClusterPlan("names", (NodePlan("n1", "127.0.0.1", ("alice", "bob", "names")),),
                   apps=("mercury_rt.apps.echo", "mercury_rt.apps.naming"), echo=False)


def test_names_resolve_through_the_node_api_and_stay_pinned() -> None:
    async def main() -> None:
        cluster = await start_cluster(PLAN)
        client = await throwaway_client()
        try:
            node = cluster.nodes["n1"]
            with node.spec.store.reading() as view:  # echo took endpoint 1, naming the next
                assert read_interface_map(view, NAMING_ENTITY).endpoint_of(
                    NAMING_SPEC.interface) == 2
            node.publish_name("alice@names", cluster.eid("alice"))
            naming = cluster.eid("names")
            found = await client.node.resolve_name("alice@names", naming, caller=b"cli")
            assert found == cluster.eid("alice")

            node.publish_name("alice@names", cluster.eid("bob"))  # re-pointed behind our back
            with pytest.raises(NamePinMismatchError):
                await client.node.resolve_name("alice@names", naming, caller=b"cli")
            with pytest.raises(NodeCallError) as caught:
                await client.node.resolve_name("carol@names", naming, caller=b"cli")
            assert caught.value.code is ErrorCode.NAME_NOT_FOUND

            request = CallRequest(Eid.decode(found), 1, 2, dumps_typed(None, None), b"cli",
                                  b"k" * 8)
            trace = await client.node.call_traced(request)
            assert loads_typed(str, trace.reply.payload or b"") == "n1"
            assert trace.answered_by == node.addresses[0]
        finally:
            await client.close()
            await cluster.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
