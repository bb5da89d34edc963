"""Cluster-ID versions published with compare-and-swap: of two nodes racing to publish
the next version from the same live one, exactly one wins; the loser sees the winner's."""

from __future__ import annotations

import asyncio

import pytest

from mercury_rt.aio.etcd_versions import EtcdVersionStore
from tests.etcd_support import EtcdCluster, etcd_cluster
from tungsten.etcd_store import EtcdState

__all__ = ["etcd_cluster"]
pytestmark = pytest.mark.net


def test_two_nodes_can_never_publish_the_same_next_version(etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        one, two = (EtcdState(etcd_cluster.settings(b"v1/")) for _ in range(2))
        a, b = EtcdVersionStore(one), EtcdVersionStore(two)
        try:
            assert await a.current() is None
            assert await a.publish(b"v1", None)
            assert not await b.publish(b"v1-other", None)
            live = await b.current()
            assert live is not None and live.signed == b"v1"
            results = await asyncio.gather(a.publish(b"v2-from-a", live),
                                           b.publish(b"v2-from-b", live))
            assert sorted(results) == [False, True]
            won = await a.current()
            assert won is not None
            assert won.signed == (b"v2-from-a" if results[0] else b"v2-from-b")
        finally:
            await one.close()
            await two.close()

    asyncio.run(run())
