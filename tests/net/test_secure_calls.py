"""Concurrent first calls to one node share one session (aio/secure_calls.py)."""

from __future__ import annotations

import asyncio

from carbon.types import dumps_typed, loads_typed
from tests.net.test_node_paths import AWAY, HOME, clusters, run


def test_a_burst_of_first_calls_opens_one_session_not_sixty_four() -> None:
    async def main() -> None:
        async with clusters(HOME, AWAY) as (home, away):
            a1, b1 = home.nodes["a1"], away.nodes["b1"]
            carol = away.eid("carol")
            calls = [a1.call(carol, 1, 1, dumps_typed(str, f"m{i}"), caller=b"alice")
                     for i in range(64)]
            replies = await asyncio.gather(*calls)
            assert [loads_typed(str, r) for r in replies] == [f"m{i}" for i in range(64)]
            opened = sum(n.transit.inter.session_count for n in away.nodes.values())
            assert opened == 1, f"{opened} sessions for one calling node"
            assert b1.transit.inter.session_count == 1, "the highest-priority node served"

    run(main)
