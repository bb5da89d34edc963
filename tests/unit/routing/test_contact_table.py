"""A contact given its caller's kept SRV table (issue 13) draws its first round from it,
and a cluster-ID restart drops it: the new round orders the new version's list."""

from __future__ import annotations

import random

from carbon.error_codes import ErrorCode
from mercury_rt.core.routing import (
    ClusterIdReplaced,
    Contact,
    ErrorWithClusterId,
    NoAnswer,
    SrvTable,
    TryAddress,
)
from tests.routing_support import FakeClusterId, addr, supersedes

P1, P2 = addr("192.0.2.1", priority=1), addr("192.0.2.2", priority=2)
V1 = FakeClusterId(1, (P1, P2))


def test_the_first_round_is_drawn_from_the_kept_table() -> None:
    kept = Contact(V1, random.Random(0), supersedes,  # type: ignore[arg-type]
                   table=SrvTable.of((P2,)))  # a table of another list, to see it used
    assert kept.start() == [TryAddress(P2, 1)]


def test_a_restart_orders_the_new_list_not_the_kept_table() -> None:
    new_node = addr("203.0.113.1", priority=1)
    v2 = FakeClusterId(2, (new_node, P1))
    c = Contact(V1, random.Random(0), supersedes,  # type: ignore[arg-type]
                table=SrvTable.of(V1.addresses))  # type: ignore[arg-type]
    assert c.start() == [TryAddress(P1, 1)]
    actions = c.handle(ErrorWithClusterId(int(ErrorCode.NODE_LOCAL_ERROR), v2))
    assert actions == [ClusterIdReplaced(v2), TryAddress(new_node, 2)]
    assert c.handle(NoAnswer()) == [TryAddress(P1, 2)]
