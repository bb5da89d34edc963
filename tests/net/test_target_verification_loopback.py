"""Loopback: a calling node verifies target EIDs before trusting them (issue 11).

Two clusters on 127.0.x.y. The caller fetches keys for a hashes-only EID through the real
asyncio shell; a forged EID claiming the other cluster's master hash at a higher version,
with the forger's key and a UDP socket of the forger's as its only address, fails with an
identity code, and genuine calls keep going to the genuine nodes while the forger's socket
receives nothing. Bounded in time; every node and socket is closed.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

import pytest

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError
from mercury_rt.core.identity import MintOptions, ServerAddress, mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from tests.forgery_support import forged_cluster_id, forged_eid

pytestmark = pytest.mark.net
NOTHING = dumps_typed(None, None)
FAST = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0, reassembly_timeout=5.0)
HOME = ClusterPlan("home", (NodePlan("a1", "127.0.5.1", ("alice",)),))
AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.6.1", ("carol",)),))


class Recorder(asyncio.DatagramProtocol):
    """The forger's published address: keeps every datagram, answers none."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.received.append(data)


def test_forged_eid_does_not_hijack_and_hashes_only_targets_are_fetched() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, forger = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.9.66", 0))
        port = transport.get_extra_info("sockname")[1]
        home = await start_cluster(HOME, FAST, seed=0)
        away = await start_cluster(AWAY, FAST, seed=1)
        try:
            a1 = home.nodes["a1"]

            async def whoami(target: bytes) -> str:
                reply = await a1.call(target, 1, 2, NOTHING, caller=b"alice", timeout=5.0)
                return str(loads_typed(str, reply))

            hashes_only = mint_eid(away.cluster_key, away.cluster_id, b"carol",
                                   options=MintOptions(full_keys=False, include_hints=False))
            assert await whoami(hashes_only.encode()) == "b1"
            ring = a1.core.verifier.ring
            assert ring.certified(away.cluster_id.master_hash,
                                  away.cluster_id.cluster_key_hash) is not None

            listed = (ServerAddress(ip_address("127.0.9.66"), port, 1, 10),)
            forged = forged_eid(forged_cluster_id(99, with_cert=True, addresses=listed,
                                                  of=away.cluster_id), b"carol")
            with pytest.raises(NodeCallError) as info:
                await whoami(forged.encode())
            assert 300 <= info.value.raw_code < 400
            held = a1.planner.known[away.cluster_id.master_hash]
            assert held.core_message() == away.cluster_id.core_message()
            assert await whoami(away.eid("carol")) == "b1"
            assert forger.received == []
        finally:
            await home.stop()
            await away.stop()
            transport.close()

    asyncio.run(asyncio.wait_for(main(), timeout=30))
