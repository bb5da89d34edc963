"""A node answers a request in an established transit session whose handler finishes at
once with the REPLY alone (no ACK before it: the REPLY acknowledges it), and still
acknowledges a session's first datagram first (docs/protocol.md 6.9, Acknowledgement).
Loopback 127.0.113.x only."""

from __future__ import annotations

import pytest

from carbon.types import dumps_typed, loads_typed
from mercury_rt.localcluster import ClusterPlan, NodePlan
from tests.net.test_node_paths import clusters, run

pytestmark = pytest.mark.net
HOME = ClusterPlan("home", (NodePlan("a1", "127.0.113.1", ("alice",)),))
AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.113.2", ("carol",)),))


def test_an_in_session_request_answered_at_once_costs_one_datagram_each_way() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            assert b1.inter is not None
            core = b1.inter.core
            acknowledged: list[int] = []
            acknowledge = core.acknowledge

            def counting(peer: tuple[str, int], request_id: int) -> None:
                acknowledged.append(request_id)
                acknowledge(peer, request_id)

            core.acknowledge = counting  # type: ignore[method-assign]
            text = dumps_typed(str, "hello")
            await a1.call(away.eid("carol"), 1, 1, text, caller=b"alice")  # opens the session
            assert len(acknowledged) == 1, "the session's first datagram is acknowledged first"
            before = core.stats.datagrams_out
            for _ in range(5):
                echoed = await a1.call(away.eid("carol"), 1, 1, text, caller=b"alice")
                assert loads_typed(str, echoed) == "hello"
            assert len(acknowledged) == 1
            assert core.stats.datagrams_out - before == 5, "one REPLY per request, no ACK"

    run(main)
